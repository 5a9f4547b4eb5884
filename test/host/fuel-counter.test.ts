// The fuel global is read and written through a two-function wasm module that imports it
// (plugin/fuel-counter.ts): the hand-written bytes must be the module its comment shows,
// and reads and writes must reach the very same global the metered module counts down.
import t from 'tap';
import wabtInit from 'wabt';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FUEL_ACCESS_MODULE, FUEL_DISPATCH_MODULE, fuelCounter, fuelSlots } from '../../host/src/plugin/fuel-counter.js';

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

t.test('the dispatcher bytes are the module its comment shows', async (t) => {
  const wabt = await wabtInit();
  const m = wabt.parseWat('dispatch.wat', `(module
    (type $x (func (param i32) (result i32)))
    (table (export "t") 0 funcref)
    (func (export "x") (param i32 i32) (result i32) (call_indirect (type $x) (local.get 1) (local.get 0))))`);
  const bytes = new Uint8Array(m.toBinary({}).buffer);
  m.destroy();
  t.same([...FUEL_DISPATCH_MODULE], [...bytes]);
});

t.test('counters sharing the dispatcher each swap their own global', async (t) => {
  const globals = [1, 2, 3].map((v) => new WebAssembly.Global({ value: 'i32', mutable: true }, v));
  const counters = globals.map((g) => fuelCounter(g));
  t.same(counters.map((c, i) => c.swap(10 * (i + 1))), [1, 2, 3], 'each swap returns its own global');
  t.same(globals.map((g) => g.value), [10, 20, 30], 'and sets only its own');
  t.same(counters.map((c) => c.get()), [10, 20, 30]);
});

t.test('a counter no longer referenced gives its slot back', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const make = (n: number) => {
    for (let i = 0; i < n; i++) fuelCounter(new WebAssembly.Global({ value: 'i32', mutable: true }, i)).swap(1);
  };
  make(50);
  const after = fuelSlots();
  for (let i = 0; i < 20; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  make(50);
  t.ok(fuelSlots() < after + 50, `slots reused (${after} -> ${fuelSlots()})`);
});
