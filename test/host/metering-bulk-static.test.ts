// Bulk operations in the work budget (vm/metering.ts): one whose length is an i32.const right
// before it (AssemblyScript zeroing its shadow-stack frame) is charged with its block, a fixed
// cost, instead of by its length at run time; any other length is still charged at run time,
// on the global, so a caller holding the counter in a local writes it back around a call to
// a function that does one.
import t from 'tap';
import { BULK_FUEL_PER_BYTE } from '../../host/src/limits.js';
import { compileWatText } from '../fixtures/guests/index.js';
import { FUEL_EXPORT, rewriteModule } from '../../host/src/vm/metering.js';
import { budgetRunner } from './metered-run.js';

const wat = (text: string) => compileWatText(text, 't.wat');

const MODULE = await wat(`(module
  (memory 32)
  ;; a site-charged leaf: no loop, only called directly
  (func $fill (param $len i32) (memory.fill (i32.const 0) (i32.const 0) (local.get $len)))
  (func (export "const_fills") (param $n i32)
    (loop $l (if (local.get $n) (then
      (memory.fill (i32.const 0) (i32.const 0) (i32.const 100))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))))
  (func (export "dynamic_fills") (param $n i32) (local $len i32)
    (local.set $len (i32.const 100))
    (loop $l (if (local.get $n) (then
      (memory.fill (i32.const 0) (i32.const 0) (local.get $len))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))))
  (func (export "big_const_fill") (memory.fill (i32.const 0) (i32.const 0) (i32.const 0x100000)))
  (func (export "leaf_fills") (param $n i32)
    (loop $l (if (local.get $n) (then
      (call $fill (i32.const 65536))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))))
  (func (export "spin_const") (loop $l (memory.fill (i32.const 0) (i32.const 0) (i32.const 16384)) (br $l)))
)`);

function instance(localFuel = true) {
  const rw = rewriteModule(MODULE, { fuel: true, localFuel, source: 'b.wasm' });
  return budgetRunner(new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(rw.bytes)), {}).exports, 100_000_000);
}

t.test('a constant-length fill costs its bytes, charged with its block', async (t) => {
  const run = instance();
  const one = run('const_fills', 1).used;
  const eleven = run('const_fills', 11).used;
  t.ok(eleven - one >= 10 * 100 * BULK_FUEL_PER_BYTE, `ten more fills of 100 bytes cost ${eleven - one} fuel`);
  // The same work with the length in a local, charged at run time, costs the same.
  const dyn = run('dynamic_fills', 11).used - run('dynamic_fills', 1).used;
  t.equal(eleven - one, dyn, 'as the same fills charged by their length at run time');
  const big = run('big_const_fill', 0, 1_000_000);
  t.equal(big.trapped, true, 'a constant length above the static bound is still charged at run time: 4 MiB of fuel > the budget');
  t.equal(big.used, 1_000_001, 'by the run-time charge (fuel set to -1)');
});

t.test('a loop of constant-length fills stops on the budget', async (t) => {
  const r = instance()('spin_const', 0, 10_000_000);
  t.equal(r.trapped, true);
  t.ok(r.used > 10_000_000, 'with the budget gone');
});

t.test('a run-time bulk charge in a callee is not lost by a caller holding the counter in a local', async (t) => {
  const local = instance(true);
  const global = instance(false);
  const a = local('leaf_fills', 10).used;
  const b = global('leaf_fills', 10).used;
  t.equal(a, b, `the same fuel with the local counter as with the global (${a})`);
  t.ok(a >= 10 * 65536 * BULK_FUEL_PER_BYTE, 'every fill paid');
  const r = local('leaf_fills', 1_000_000_000, 10_000_000);
  t.equal(r.trapped, true, 'a loop of such calls stops on the budget');
});

t.test('constant-length bulk costs charged with a block are capped: past the cap they are charged at run time', async (t) => {
  // 40 000 fills of 16 KiB, 65 536 fuel each: 2.6e9 in one block, above the largest budget
  // (2e9) and above i32. Summed into the block's charge they would wrap around; the block
  // takes MAX_STATIC_BLOCK's worth, the rest are charged as they run.
  const n = 40_000;
  const fills = '(memory.fill (i32.const 0) (i32.const 0) (i32.const 16384))\n'.repeat(n);
  const bytes = await wat(`(module (memory 1) (func (export "many") ${fills}))`);
  const rw = rewriteModule(bytes, { fuel: true, source: 'many.wasm' });
  const e = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(rw.bytes)), {}).exports as Record<string, unknown>;
  const g = e[FUEL_EXPORT] as WebAssembly.Global;
  g.value = 2_000_000_000;
  t.throws(() => (e.many as () => void)(), 'traps before the 40 000th fill');
  t.ok((g.value as number) < 0, 'on the budget');
});
