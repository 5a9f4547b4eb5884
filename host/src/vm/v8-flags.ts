// V8 flags the host sets for adapter modules, once per process, before it compiles the first one.
//
// --wasm-tiering-budget: how much a wasm function runs in Liftoff (baseline) code before V8
// recompiles it with TurboFan on a background thread; V8 sets a module's budgets when it
// compiles the module. At V8's default (1.8 M) the configure callbacks (auth parses 100 keys,
// a JWKS and its rules) have TurboFan compile their JSON parsing, hashing and GC code while
// the adapters start: ~16 ms of the benchmark's four adapters' start-up CPU (88 -> 71 ms at
// 6 M; 18 M saves no more). The budget is a trade: a request-path function that runs little
// per request reaches TurboFan later. 18 M made chain4 ~4.6 % dearer per request in
// bench/micro/adapters.js (its 5000-request warm-up no longer tiers everything up); 6 M did
// not (x0.97). Code that runs only at configure then stays in Liftoff.
//
// A budget given on the command line (node --wasm-tiering-budget=N, or in NODE_OPTIONS) wins.

import { setFlagsFromString } from 'node:v8';

export const WASM_TIERING_BUDGET = 6_000_000;

/** The flags to set, given the process's command line and NODE_OPTIONS ('' when they set them). */
export function wasmFlagsFor(execArgv: readonly string[], nodeOptions = ''): string {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--wasm[-_]tiering[-_]budget\b/.test(a));
  return given ? '' : `--wasm-tiering-budget=${WASM_TIERING_BUDGET}`;
}

let applied: string | null = null;

/** Sets the flags on the first call; later calls do nothing. Returns what was set. */
export function applyWasmFlags(): string {
  if (applied !== null) return applied;
  applied = wasmFlagsFor(process.execArgv, process.env.NODE_OPTIONS);
  if (applied !== '') setFlagsFromString(applied);
  return applied;
}

/** What applyWasmFlags set (null: not called yet). */
export function appliedWasmFlags(): string | null {
  return applied;
}
