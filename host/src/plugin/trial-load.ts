// `wasm-mixer check`: a trial load of a compiled module under the default limits,
// so that "ok" means the proxy will load it. It instantiates the (instrumented)
// module with the real host functions, which runs its wasm start function under
// the start budget, then _initialize/_start, proxy_on_vm_start and
// proxy_on_configure with an empty configuration. A module that cannot be
// instantiated or initialised will not load whatever its configuration; one that
// refuses an empty configuration may load with the right pluginConfig.

import { LogLevel } from '../abi/constants.js';
import { describeError, isHostError, type HostErrorCode } from '../errors.js';
import { createLogger, type LogRecord } from '../log/logger.js';
import { MetricsRegistry } from '../metrics/registry.js';
import { SharedStore } from '../shared/shared-store.js';
import type { CompiledModule } from '../vm/module.js';
import { PluginVm } from './plugin-vm.js';

export type TrialResult =
  | { readonly loads: true; readonly configureNote: string | null }
  | { readonly loads: false; readonly code: HostErrorCode; readonly reason: string };

export function trialLoad(compiled: CompiledModule): TrialResult {
  const errors: LogRecord[] = [];
  const vm = new PluginVm(compiled, {
    name: 'check',
    rootId: '',
    vmId: 'check',
    pluginConfig: new Uint8Array(0),
    vmConfig: new Uint8Array(0),
    env: {},
    logLevel: LogLevel.Error,
    clusters: {},
    logger: createLogger(LogLevel.Error, (r) => errors.push(r)),
    metrics: new MetricsRegistry(),
    shared: new SharedStore(),
  });
  try {
    vm.start();
    return { loads: true, configureNote: null };
  } catch (err) {
    const stage = isHostError(err) ? err.detail.stage : undefined;
    if (isHostError(err) && (stage === 'instantiate' || stage === 'initialise')) return { loads: false, code: err.code, reason: err.message };
    return { loads: true, configureNote: `with an empty configuration: ${describeError(err)}` };
  } finally {
    vm.stop();
  }
}
