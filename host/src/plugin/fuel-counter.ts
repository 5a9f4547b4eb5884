// The metered module's fuel global (vm/metering.ts exports it as a mutable i32), read and
// written by the host around each guest callback (plugin/guest-call.ts: one swap per
// outermost callback, which reads what it left and sets the next one's budget).
// WebAssembly.Global's `value` accessor is a call into the engine's C++ API (about 30 ns
// a pair); a small wasm module that imports the same global reads and writes it from JS
// in about a third of that, and one process-wide dispatcher (FUEL_DISPATCH_MODULE) gives
// every counter's swap the same call target. Same global, same values: only the path from
// JS to it changes.

/**
 * (module
 *   (import "m" "f" (global $f (mut i32)))
 *   (func (export "s") (param i32) (global.set $f (local.get 0)))
 *   (func (export "g") (result i32) (global.get $f))
 *   (func (export "x") (param i32) (result i32) (global.get $f) (global.set $f (local.get 0))))
 * test/host/fuel-counter.test.ts compiles this text and checks it gives these bytes.
 */
export const FUEL_ACCESS_MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  // type: (i32) -> (), () -> i32, (i32) -> i32
  0x01, 0x0e, 0x03, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7f,
  // import "m" "f": global (mut i32)
  0x02, 0x08, 0x01, 0x01, 0x6d, 0x01, 0x66, 0x03, 0x7f, 0x01,
  // three functions, of type 0, 1 and 2
  0x03, 0x04, 0x03, 0x00, 0x01, 0x02,
  // export "s" (func 0), "g" (func 1), "x" (func 2)
  0x07, 0x0d, 0x03, 0x01, 0x73, 0x00, 0x00, 0x01, 0x67, 0x00, 0x01, 0x01, 0x78, 0x00, 0x02,
  // code: local.get 0 global.set 0; global.get 0; global.get 0 local.get 0 global.set 0
  0x0a, 0x16, 0x03, 0x06, 0x00, 0x20, 0x00, 0x24, 0x00, 0x0b, 0x04, 0x00, 0x23, 0x00, 0x0b,
  0x08, 0x00, 0x23, 0x00, 0x20, 0x00, 0x24, 0x00, 0x0b,
]);

/**
 * (module
 *   (type $x (func (param i32) (result i32)))
 *   (table (export "t") 0 funcref)
 *   (func (export "x") (param i32 i32) (result i32) (call_indirect (type $x) (local.get 1) (local.get 0))))
 * One per process: every counter's swap goes through its one function, slot k of the table
 * holding that counter's own "x". With four adapters the call site in plugin/guest-call.ts
 * otherwise sees four different wasm functions and V8 calls them through its generic path
 * (about 17 ns a swap against 5 for one target, measured in a loop; 13 swaps per request of
 * the benchmark's chain). test/host/fuel-counter.test.ts checks these bytes too.
 */
export const FUEL_DISPATCH_MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  // type: (i32) -> i32, (i32 i32) -> i32
  0x01, 0x0c, 0x02, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f,
  // one function of type 1
  0x03, 0x02, 0x01, 0x01,
  // table: funcref, min 0
  0x04, 0x04, 0x01, 0x70, 0x00, 0x00,
  // export "t" (table 0), "x" (func 0)
  0x07, 0x09, 0x02, 0x01, 0x74, 0x01, 0x00, 0x01, 0x78, 0x00, 0x00,
  // code: local.get 1 local.get 0 call_indirect (type 0) (table 0)
  0x0a, 0x0b, 0x01, 0x09, 0x00, 0x20, 0x01, 0x20, 0x00, 0x11, 0x00, 0x00, 0x0b,
]);

let accessModule: WebAssembly.Module | null = null;

/** The process's dispatcher: its table, its swap, and the table's free slots (null: the engine refused it). */
let dispatch: { table: WebAssembly.Table; x: (k: number, v: number) => number; free: number[]; gone: FinalizationRegistry<number> } | null | undefined;

function dispatcher(): typeof dispatch {
  if (dispatch !== undefined) return dispatch;
  try {
    const e = new WebAssembly.Instance(new WebAssembly.Module(FUEL_DISPATCH_MODULE)).exports;
    const table = e.t as WebAssembly.Table;
    const free: number[] = [];
    // A counter no longer referenced (its VM is gone) gives its slot back, and the slot lets go of its global.
    const gone = new FinalizationRegistry<number>((k) => {
      table.set(k, null);
      free.push(k);
    });
    dispatch = { table, x: e.x as (k: number, v: number) => number, free, gone };
  } catch {
    dispatch = null;
  }
  return dispatch;
}

/** A counter whose swap goes through the dispatcher's slot k: one call target for every counter. */
class SlotCounter implements FuelCounter {
  constructor(
    readonly global: WebAssembly.Global,
    readonly set: (value: number) => void,
    readonly get: () => number,
    private readonly k: number,
    private readonly x: (k: number, v: number) => number,
  ) {}

  swap(value: number): number {
    return this.x(this.k, value);
  }
}

export interface FuelCounter {
  /** The fuel global itself. */
  readonly global: WebAssembly.Global;
  set(value: number): void;
  get(): number;
  /** Sets the counter to `value` and returns what it held (one call instead of a get and a set). */
  swap(value: number): number;
}

/** A FuelCounter for a mutable i32 global (through the accessor if the engine refuses the import). */
export function fuelCounter(global: WebAssembly.Global): FuelCounter {
  try {
    accessModule ??= new WebAssembly.Module(FUEL_ACCESS_MODULE);
    const e = new WebAssembly.Instance(accessModule, { m: { f: global } }).exports;
    const s = e.s as (v: number) => void;
    const g = e.g as () => number;
    const x = e.x as (v: number) => number;
    const d = dispatcher();
    if (d === null || d === undefined) return { global, set: s, get: g, swap: x };
    const k = d.free.pop() ?? d.table.grow(1);
    d.table.set(k, x as unknown as WebAssembly.ExportValue);
    const counter = new SlotCounter(global, s, g, k, d.x);
    d.gone.register(counter, k);
    return counter;
  } catch {
    return {
      global,
      set: (v) => {
        global.value = v;
      },
      get: () => global.value as number,
      swap: (v) => {
        const old = global.value as number;
        global.value = v;
        return old;
      },
    };
  }
}

/** How many slots the dispatcher's table has (for tests: freed slots are reused). */
export function fuelSlots(): number {
  return dispatcher()?.table.length ?? 0;
}
