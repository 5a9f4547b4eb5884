// The import object a module is instantiated with: the Proxy-Wasm ABI host
// functions under "env" (one file per area: env-stream, env-maps, env-shared,
// env-callouts) and WASI under both of its module names. Which names exist is
// abi/names.ts's table; the state they act on is abi/context.ts's interface.

import type { AbiContext } from './context.js';
import { calloutFunctions } from './env-callouts.js';
import { mapFunctions } from './env-maps.js';
import { sharedFunctions } from './env-shared.js';
import { streamFunctions } from './env-stream.js';
import { guestIo } from './guest-io.js';
import { wasiFunctions } from './wasi.js';

export function createImports(vm: AbiContext): WebAssembly.Imports {
  const io = guestIo(vm);
  const env = { ...streamFunctions(vm, io), ...mapFunctions(vm, io), ...sharedFunctions(vm, io), ...calloutFunctions(vm, io) };
  const wasi = wasiFunctions(vm, io);
  return { env, wasi_snapshot_preview1: wasi, wasi_unstable: wasi };
}
