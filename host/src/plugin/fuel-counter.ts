// The metered module's fuel global (vm/metering.ts exports it as a mutable i32), read and
// written by the host around each guest callback (plugin/guest-call.ts: one swap per
// outermost callback, which reads what it left and sets the next one's budget).
// WebAssembly.Global's `value` accessor is a call into the engine's C++ API (about 30 ns
// a pair); a small wasm module that imports the same global reads and writes it from JS
// in about a third of that. Same global, same values: only the path from JS to it changes.

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

let accessModule: WebAssembly.Module | null = null;

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
    return { global, set: s, get: g, swap: x };
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
