// The fuel global is read and written through a two-function wasm module that imports it
// (plugin/fuel-counter.ts): the hand-written bytes must be the module its comment shows,
// and reads and writes must reach the very same global the metered module counts down.
import t from 'tap';
import wabtInit from 'wabt';
import { FUEL_ACCESS_MODULE, fuelCounter } from '../../host/src/plugin/fuel-counter.js';

t.test('the bytes are the module the comment shows', async (t) => {
  const wabt = await wabtInit();
  const m = wabt.parseWat('fuel.wat', `(module
    (import "m" "f" (global $f (mut i32)))
    (func (export "s") (param i32) (global.set $f (local.get 0)))
    (func (export "g") (result i32) (global.get $f))
    (func (export "x") (param i32) (result i32) (global.get $f) (global.set $f (local.get 0))))`);
  const bytes = new Uint8Array(m.toBinary({}).buffer);
  m.destroy();
  t.same([...FUEL_ACCESS_MODULE], [...bytes]);
});

t.test('reads and writes reach the same global a module counts down', async (t) => {
  const wabt = await wabtInit();
  const m = wabt.parseWat('spend.wat', `(module
    (global $fuel (export "fuel") (mut i32) (i32.const 0))
    (func (export "spend") (param i32) (global.set $fuel (i32.sub (global.get $fuel) (local.get 0)))))`);
  const inst = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(m.toBinary({}).buffer)));
  m.destroy();
  const global = inst.exports.fuel as WebAssembly.Global;
  const spend = inst.exports.spend as (n: number) => void;
  const f = fuelCounter(global);
  f.set(1000);
  t.equal(global.value, 1000, 'set is seen through the accessor');
  spend(300);
  t.equal(f.get(), 700, 'the module spent from the same global');
  global.value = -1;
  t.equal(f.get(), -1, 'negative values (an exhausted budget) read back');
  f.set(2 ** 31 - 1);
  t.equal(global.value, 2 ** 31 - 1);
  f.set(500);
  spend(800);
  t.equal(f.swap(1000), -300, 'swap returns what the module left');
  t.equal(global.value, 1000, 'and sets the new value');
});

t.test('a global of another type falls back to the accessor', async (t) => {
  const g = new WebAssembly.Global({ value: 'i64', mutable: true }, 0n);
  const f = fuelCounter(g);
  t.equal(f.global, g);
  const i32 = new WebAssembly.Global({ value: 'i32', mutable: false }, 5);
  t.equal(fuelCounter(i32).get(), 5, 'an immutable global is read through the accessor');
});
