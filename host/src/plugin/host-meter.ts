// Host functions pay for the work they do on a guest's behalf (issue 11): a
// fixed cost per call plus one unit per byte read from or written to guest
// memory, taken from the same fuel counter the metered module spends. Without
// this a loop of cheap wasm instructions calling an expensive host function
// would run for seconds on a budget meant for milliseconds.
//
// The charge is collected in a plain number and applied to the guest's fuel
// global in batches (HOST_CHARGE_BATCH), because reading and writing a
// WebAssembly.Global from JS costs more than the small calls being charged.
//
// The fixed per-call charge is normally compiled into the module: vm/metering.ts
// adds HOST_CALL_FUEL to the charge of the block holding each call of an import
// (CompiledModule.hostCallsCharged), which costs nothing at run time, whereas a JS
// wrapper around every import cost about 4 % of the benchmark's chain of four
// adapters. meterImports is the fallback for modules whose imports a table can
// reach. Bytes are charged by vm/guest-memory.ts either way.

import { HOST_CALL_FUEL, HOST_CHARGE_BATCH } from '../limits.js';
import type { FuelCounter } from './fuel-counter.js';

/** Thrown from a host function when its charge exhausted the work budget: unwinds the guest call (VM_BUDGET_EXCEEDED). */
export class HostBudgetExceeded extends Error {
  constructor() {
    super('the work budget ran out in a host call');
    this.name = 'HostBudgetExceeded';
  }
}

export class HostMeter {
  /** Units charged and not yet taken from the fuel global. */
  pending = 0;
  /** The metered module's fuel global; null for an unmetered module (nothing is charged). */
  fuel: FuelCounter | null = null;

  /** Charges one host call (after it ran, so its bytes are included); may throw HostBudgetExceeded. */
  call(): void {
    if ((this.pending += HOST_CALL_FUEL) >= HOST_CHARGE_BATCH) this.flush();
  }

  /** Applies the pending charge to the fuel global; throws HostBudgetExceeded when the budget is gone. */
  flush(): void {
    const f = this.fuel;
    const p = this.pending;
    this.pending = 0;
    if (f === null || p === 0) return;
    // Clamp: the i32 global must not wrap around to a large positive budget.
    const v = Math.max(f.get() - p, -1);
    f.set(v);
    if (v < 0) throw new HostBudgetExceeded();
  }

  /** Takes the pending charge without applying it (at the end of a callback, for the high-water mark). */
  take(): number {
    const p = this.pending;
    this.pending = 0;
    return p;
  }
}

/** Wraps each import so that every call is charged (HOST_CALL_FUEL plus the bytes it touched). */
export function meterImports(fns: Record<string, (...args: never[]) => unknown>, meter: HostMeter): void {
  for (const name of Object.keys(fns)) fns[name] = metered(fns[name]! as (...args: unknown[]) => unknown, meter) as never;
}

type AnyFn = (...args: unknown[]) => unknown;

/**
 * A wrapper with the same number of parameters as `fn` (host functions take up to
 * ten, but proxy_grpc_call's twelve): a fixed-arity closure is cheaper for V8 to call than a rest/spread one,
 * and this sits on every host call.
 */
function metered(fn: AnyFn, meter: HostMeter): AnyFn {
  const f = fn as (a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown, g?: unknown, h?: unknown, i?: unknown, j?: unknown) => unknown;
  switch (fn.length) {
    case 0: return () => { const r = f(); meter.call(); return r; };
    case 1: return (a) => { const r = f(a); meter.call(); return r; };
    case 2: return (a, b) => { const r = f(a, b); meter.call(); return r; };
    case 3: return (a, b, c) => { const r = f(a, b, c); meter.call(); return r; };
    case 4: return (a, b, c, d) => { const r = f(a, b, c, d); meter.call(); return r; };
    case 5: return (a, b, c, d, e) => { const r = f(a, b, c, d, e); meter.call(); return r; };
    default:
      // proxy_grpc_call takes twelve: those past ten keep every argument.
      if (fn.length > 10) return (...args: unknown[]) => { const r = fn(...args); meter.call(); return r; };
      return (a, b, c, d, e, g, h, i, j, k) => { const r = f(a, b, c, d, e, g, h, i, j, k); meter.call(); return r; };
  }
}
