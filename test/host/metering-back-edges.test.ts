// Loops charged on their back edges (vm/metering.ts AT_BACK_EDGE): the first iteration is
// paid by the enclosing charge, each br/br_if back to the loop pays the next one. Fuel spent
// is the same as with a charge at every loop header whenever the loop is entered (and more
// when it is skipped), so it stays an upper bound on instructions executed; runaway loops,
// loops of site-charged leaf calls and recursion still trap on the budget.
import t from 'tap';
import { compileWatText } from '../fixtures/guests/index.js';
import { rewriteModule } from '../../host/src/vm/metering.js';
import { budgetRunner } from './metered-run.js';

const wat = (text: string) => compileWatText(text, 't.wat');

const MODULE = await wat(`(module
  (import "env" "host" (func $host (param i32) (result i32)))
  (func $leaf (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func $self (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0)) (else (call $self (i32.sub (local.get 0) (i32.const 1))))))
  ;; do { n-- } while (n > 0): br_if back
  (func (export "count") (param $n i32) (result i32)
    (loop $l (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
    (local.get $n))
  ;; while (n != 0) { acc = leaf(acc); n-- }: br_if out, br back
  (func (export "leaf_loop") (param $n i32) (result i32) (local $acc i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (call $leaf (local.get $acc)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $acc))
  ;; nested: n x n iterations of the inner loop
  (func (export "nested") (param $n i32) (result i32) (local $i i32) (local $j i32) (local $acc i32)
    (block $oe (loop $o
      (br_if $oe (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $j (i32.const 0))
      (block $ie (loop $in
        (br_if $ie (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $j))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $in)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $o)))
    (local.get $acc))
  ;; a loop only entered when n is odd
  (func (export "maybe") (param $n i32) (result i32)
    (if (i32.and (local.get $n) (i32.const 1))
      (then (loop $l (local.set $n (i32.sub (local.get $n) (i32.const 2))) (br_if $l (i32.gt_s (local.get $n) (i32.const 1))))))
    (local.get $n))
  ;; a loop with a result and a br_if carrying nothing back
  (func (export "result") (param $n i32) (result i32)
    (loop $l (result i32)
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0)))
      (i32.const 7)))
  ;; a loop with a parameter: keeps its header charge
  (func (export "param") (param $n i32) (result i32)
    (local.get $n)
    (loop $l (param i32) (result i32)
      (i32.const 1) (i32.sub) (local.tee $n)
      (i32.gt_s (local.get $n) (i32.const 0))
      (br_if $l)))
  ;; a loop a br_table goes back to: keeps its header charge
  (func (export "table") (param $n i32) (result i32)
    (block $out (loop $l
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_table $l $out (i32.le_s (local.get $n) (i32.const 0)))))
    (local.get $n))
  ;; one host call per iteration
  (func (export "host_loop") (param $n i32) (result i32)
    (loop $l (local.set $n (call $host (i32.sub (local.get $n) (i32.const 1)))) (br_if $l (local.get $n)))
    (local.get $n))
  (func (export "recurse") (param i32) (result i32) (call $self (local.get 0)))
  (func (export "spin") (loop $l (br $l)))
  (func (export "spin_if") (loop $l (br_if $l (i32.const 1))))
  (func (export "spin_nested") (loop $o (loop $i (br $i)) (br $o)))
  (func (export "spin_leaf") (local $x i32) (loop $l (local.set $x (call $leaf (local.get $x))) (br $l)))
)`);

function instance(backEdgeCharges: boolean | null, localFuel = true) {
  const rw = rewriteModule(MODULE, { fuel: backEdgeCharges !== null, backEdgeCharges: backEdgeCharges ?? false, localFuel, source: 't.wasm' });
  const calls = { host: 0 };
  const inst = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(rw.bytes)), { env: { host: (x: number) => (calls.host++, x) } });
  const run = budgetRunner(inst.exports, 1_000_000);
  return { run, calls };
}

const CASES = [['count', 1], ['count', 10], ['leaf_loop', 0], ['leaf_loop', 1], ['leaf_loop', 9], ['nested', 0], ['nested', 1], ['nested', 6], ['maybe', 2], ['maybe', 1], ['maybe', 9], ['result', 1], ['result', 5], ['param', 1], ['param', 5], ['table', 1], ['table', 5], ['host_loop', 4], ['recurse', 30]] as const;

for (const localFuel of [true, false]) {
  t.test(`fuel spent is the same as with header charges when the loop runs, never less (${localFuel ? 'local' : 'global'} counter)`, async (t) => {
    const back = instance(true, localFuel);
    const header = instance(false, localFuel);
    const plain = instance(null);
    for (const [name, arg] of CASES) {
      const a = back.run(name, arg);
      const b = header.run(name, arg);
      t.equal(a.result, plain.run(name, arg).result, `${name}(${arg}): same result`);
      // "maybe" with an even argument skips its loop, and "nested" skips its inner loop on the
      // outer loop's last pass: there the enclosing charge paid a first iteration that never ran.
      if (name === 'maybe' && arg % 2 === 0) t.ok(a.used > b.used, `${name}(${arg}): the skipped loop is paid for (${a.used} > ${b.used})`);
      else if (name === 'nested') t.ok(a.used >= b.used, `${name}(${arg}): ${a.used} >= ${b.used} fuel`);
      else t.equal(a.used, b.used, `${name}(${arg}): ${a.used} fuel`);
    }
  });
}

t.test('runaway loops still trap on the budget at their back edges', async (t) => {
  const back = instance(true);
  for (const name of ['spin', 'spin_if', 'spin_nested', 'spin_leaf']) {
    const r = back.run(name, 0, 100_000);
    t.equal(r.result, null, `${name} traps`);
    t.ok(r.used > 100_000, `${name}: with the budget gone`);
  }
  for (const name of ['count', 'leaf_loop', 'table', 'param', 'result']) {
    const r = back.run(name, 1_000_000_000, 100_000);
    t.equal(r.result, null, `${name}(1e9) traps`);
    t.ok(r.used > 100_000, `${name}(1e9): with the budget gone`);
  }
  const deep = back.run('recurse', 1_000_000_000, 100_000);
  t.equal(deep.result, null, 'recursion traps');
  t.ok(deep.used > 100_000, 'on the budget, not the stack');
});

t.test('a site-charged leaf called in a back-edge-charged loop is paid on every iteration', async (t) => {
  const back = instance(true);
  const one = back.run('leaf_loop', 1).used;
  const ten = back.run('leaf_loop', 11).used;
  // $leaf is 4 instructions (local.get, i32.const, i32.add, end), charged at its call site.
  t.ok(ten - one >= 10 * 4, `ten more iterations cost ${ten - one} fuel, at least the leaf's 4 instructions each`);
});

t.test('the first iteration is paid before it runs', async (t) => {
  const back = instance(true);
  // The entry charge includes the loop's first iteration and its host-call charge: a budget
  // below it traps before the loop (and the host) is reached.
  const full = back.run('host_loop', 1).used;
  back.calls.host = 0;
  const r = back.run('host_loop', 1, full - 1);
  t.equal(r.result, null, 'traps');
  t.equal(back.calls.host, 0, 'without calling the host');
});
