// Counted loops (vm/metering.ts AT_COUNTED): `loop (if (i < n) (... i = i + 1; br loop)))` with
// i and n not written elsewhere in the loop is charged for all its iterations before it is
// entered, by n - i, instead of on every back edge. Fuel spent must stay an upper bound on
// instructions executed: equal to header charges when the loop runs to the end, more when it
// leaves early, and a loop that only looks counted (its bound or induction variable written in
// the body, another way back, the increment in an else or a block after the if, a step other
// than +1) must keep its back-edge charges: each of those cases runs more iterations than
// n - i, and is checked against header charges, so a rule that took it for counted fails here.
import t from 'tap';
import { compileWatText } from '../fixtures/guests/index.js';
import { rewriteModule } from '../../host/src/vm/metering.js';
import { budgetRunner } from './metered-run.js';

const wat = (text: string) => compileWatText(text, 't.wat');

// Counted: lt_u, lt_s, gt_u (n > i), gt_s, nested, early exit, a call in the body, i < n && x.
const COUNTED = 9;
const MODULE = await wat(`(module
  (import "env" "host" (func $host (param i32) (result i32)))
  (func $leaf (param i32) (result i32) (i32.add (local.get 0) (i32.const 3)))
  (func (export "lt_u") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (loop $l (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (local.set $acc (i32.add (local.get $acc) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $acc))
  ;; from i = -n up to n, compared signed
  (func (export "lt_s") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (local.set $i (i32.sub (i32.const 0) (local.get $n)))
    (loop $l (if (i32.lt_s (local.get $i) (local.get $n)) (then
      (local.set $acc (i32.add (local.get $acc) (i32.const 2)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $acc))
  (func (export "gt_u") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (loop $l (if (i32.gt_u (local.get $n) (local.get $i)) (then
      (local.set $acc (i32.xor (local.get $acc) (i32.mul (local.get $i) (i32.const 16777619))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $acc))
  (func (export "gt_s") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (local.set $i (i32.const -3))
    (loop $l (if (i32.gt_s (local.get $n) (local.get $i)) (then
      (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $acc))
  ;; n x n: both loops counted, the inner one charged on every outer iteration
  (func (export "nested") (param $n i32) (result i32) (local $i i32) (local $j i32) (local $acc i32)
    (loop $o (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (local.set $j (i32.const 0))
      (loop $in (if (i32.lt_u (local.get $j) (local.get $n)) (then
        (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $j))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $in))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $o))))
    (local.get $acc))
  ;; a search that leaves at i = 3: overpays for the iterations it skipped
  (func (export "early") (param $n i32) (result i32) (local $i i32)
    (block $found (loop $l (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (br_if $found (i32.eq (local.get $i) (i32.const 3)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))))
    (local.get $i))
  ;; a site-charged leaf and the host on every iteration
  (func (export "calls") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (loop $l (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (local.set $acc (call $host (call $leaf (local.get $acc))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $acc))
  ;; while (i < n && i != 50) i++, as AssemblyScript compiles it
  (func (export "and") (param $n i32) (result i32) (local $i i32)
    (loop $l
      (if (result i32) (i32.lt_s (local.get $i) (local.get $n)) (then (i32.ne (local.get $i) (i32.const 50))) (else (i32.const 0)))
      (if (then
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l))))
    (local.get $i))

  ;; Not counted, each running more iterations than n - i at its entry:
  ;; i < n || true: iterates past n (up to n + 20)
  (func (export "and_else_one") (param $n i32) (result i32) (local $i i32)
    (block $out (loop $l
      (if (result i32) (i32.lt_s (local.get $i) (local.get $n)) (then (i32.const 1)) (else (i32.const 1)))
      (if (then
        (br_if $out (i32.ge_s (local.get $i) (i32.add (local.get $n) (i32.const 20))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))))
    (local.get $i))
  ;; (i < n) | 1 between the two ifs
  (func (export "and_between") (param $n i32) (result i32) (local $i i32)
    (block $out (loop $l
      (if (result i32) (i32.lt_s (local.get $i) (local.get $n)) (then (i32.const 1)) (else (i32.const 0)))
      (i32.or (i32.const 1))
      (if (then
        (br_if $out (i32.ge_s (local.get $i) (i32.add (local.get $n) (i32.const 20))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))))
    (local.get $i))
  ;; the else yields 0 only after a call (n + 20 iterations)
  (func (export "and_else_more") (param $n i32) (result i32) (local $i i32)
    (block $out (loop $l
      (if (result i32) (i32.lt_s (local.get $i) (local.get $n)) (then (i32.const 1)) (else (i32.eqz (i32.const 0))))
      (if (then
        (br_if $out (i32.ge_s (local.get $i) (i32.add (local.get $n) (i32.const 20))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))))
    (local.get $i))
  ;; the bound raised in the body (n + 5 iterations)
  (func (export "writes_n") (param $n i32) (result i32) (local $i i32) (local $f i32)
    (loop $l (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (if (i32.eqz (local.get $f)) (then (local.set $f (i32.const 1)) (local.set $n (i32.add (local.get $n) (i32.const 5)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $i))
  ;; the induction variable reset once in the body (2n iterations)
  (func (export "writes_i") (param $n i32) (result i32) (local $i i32) (local $f i32) (local $acc i32)
    (loop $l (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
      (if (i32.and (i32.eqz (local.get $f)) (i32.eq (local.get $i) (i32.sub (local.get $n) (i32.const 1)))) (then (local.set $f (i32.const 1)) (local.set $i (i32.const -1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $acc))
  ;; the same with local.tee
  (func (export "tees_i") (param $n i32) (result i32) (local $i i32) (local $f i32) (local $acc i32)
    (loop $l (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
      (if (i32.and (i32.eqz (local.get $f)) (i32.eq (local.get $i) (i32.sub (local.get $n) (i32.const 1)))) (then (drop (local.tee $i (i32.const -1))) (local.set $f (i32.const 1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $acc))
  ;; a second way back without the increment (n + 1 iterations)
  (func (export "extra_back") (param $n i32) (result i32) (local $i i32) (local $f i32) (local $acc i32)
    (loop $l (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
      (if (i32.eqz (local.get $f)) (then (local.set $f (i32.const 1)) (br $l)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $acc))
  ;; a conditional way back without the increment
  (func (export "extra_back_if") (param $n i32) (result i32) (local $i i32) (local $f i32) (local $acc i32)
    (loop $l (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
      (local.set $f (i32.add (local.get $f) (i32.const 1)))
      (br_if $l (i32.eq (local.get $f) (i32.const 2)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $acc))
  ;; the increment and the way back in the else: runs while i < lim, from i = n (lim - n iterations)
  (func (export "in_else") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (local.set $i (local.get $n))
    (block $out (loop $l (if (i32.lt_u (local.get $i) (local.get $n))
      (then (local.set $acc (i32.const 99)))
      (else
        (br_if $out (i32.ge_u (local.get $i) (i32.add (local.get $n) (i32.const 20))))
        (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))))
    (local.get $acc))
  ;; the increment and the way back in a block after the if: runs up to n + 20
  (func (export "block_after") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (block $out (loop $l
      (if (i32.lt_u (local.get $i) (local.get $n)) (then (local.set $acc (i32.add (local.get $acc) (i32.const 1)))))
      (block
        (br_if $out (i32.ge_u (local.get $i) (i32.add (local.get $n) (i32.const 20))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l))))
    (local.get $acc))
  ;; steps of -1 (i + -1), leaving at i = -3 (4 iterations from 0 whatever n)
  (func (export "step_minus") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (block $out (loop $l (if (i32.lt_s (local.get $i) (local.get $n)) (then
      (br_if $out (i32.eq (local.get $i) (i32.const -3)))
      (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const -1)))
      (br $l)))))
    (local.get $acc))
  ;; i32.sub instead of i32.add
  (func (export "step_sub") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (block $out (loop $l (if (i32.lt_s (local.get $i) (local.get $n)) (then
      (br_if $out (i32.eq (local.get $i) (i32.const -3)))
      (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br $l)))))
    (local.get $acc))
  ;; i = j + 1 with j = i - 2: steps of -1 again
  (func (export "other_local") (param $n i32) (result i32) (local $i i32) (local $j i32) (local $acc i32)
    (block $out (loop $l (if (i32.lt_s (local.get $i) (local.get $n)) (then
      (br_if $out (i32.eq (local.get $i) (i32.const -3)))
      (local.set $acc (i32.add (local.get $acc) (i32.const 1)))
      (local.set $j (i32.sub (local.get $i) (i32.const 2)))
      (local.set $i (i32.add (local.get $j) (i32.const 1)))
      (br $l)))))
    (local.get $acc))

  ;; Runaways: counted, with more iterations than any budget
  (func (export "huge_u") (param $n i32) (result i32) (local $i i32)
    (loop $l (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (drop (call $host (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $i))
  ;; i from -2^31 to n, signed: 2^32 - 1 iterations for n = 2^31 - 1
  (func (export "huge_s") (param $n i32) (result i32) (local $i i32)
    (local.set $i (i32.const 0x80000000))
    (loop $l (if (i32.lt_s (local.get $i) (local.get $n)) (then
      (drop (call $host (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
    (local.get $i))
)`);

function instance(mode: 'counted' | 'header' | 'plain', localFuel = true) {
  const rw = rewriteModule(MODULE, { fuel: mode !== 'plain', backEdgeCharges: mode === 'counted', localFuel, source: 't.wasm' });
  const calls = { host: 0 };
  const inst = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(rw.bytes)), { env: { host: (x: number) => (calls.host++, x) } });
  const run = budgetRunner(inst.exports, 10_000_000);
  return { run, calls, rw };
}

const FULL = [['lt_u', 0], ['lt_u', 1], ['lt_u', 17], ['lt_s', 0], ['lt_s', 5], ['gt_u', 9], ['gt_s', -5], ['gt_s', 6], ['nested', 0], ['nested', 1], ['nested', 7], ['calls', 5], ['and', 0], ['and', 30]] as const;
const NOT_COUNTED = ['and_else_one', 'and_between', 'and_else_more', 'writes_n', 'writes_i', 'tees_i', 'extra_back', 'extra_back_if', 'in_else', 'block_after', 'step_minus', 'step_sub', 'other_local'];

t.test('the counted shapes are recognised, the look-alikes are not', async (t) => {
  t.equal(instance('counted').rw.counted, COUNTED + 2, `${COUNTED} counted loops and the two runaways`);
  t.equal(instance('header').rw.counted, 0, 'none with header charges');
});

for (const localFuel of [true, false]) {
  const where = localFuel ? 'local' : 'global';
  t.test(`a counted loop run to its end pays what header charges pay (${where} counter)`, async (t) => {
    const counted = instance('counted', localFuel);
    const header = instance('header', localFuel);
    const plain = instance('plain');
    for (const [name, arg] of FULL) {
      const a = counted.run(name, arg);
      t.equal(a.result, plain.run(name, arg).result, `${name}(${arg}): same result`);
      // The nested inner loop's first pass is paid with the outer iteration even on the
      // outer loop's exit pass, where the inner loop never runs (as with back-edge charges).
      if (name === 'nested') t.ok(a.used >= header.run(name, arg).used, `${name}(${arg}): at least header charges`);
      else t.equal(a.used, header.run(name, arg).used, `${name}(${arg}): ${a.used} fuel`);
    }
    const stopped = counted.run('and', 1000);
    t.equal(stopped.result, 50, 'i < n && x, stopped by x: same result');
    t.ok(stopped.used > header.run('and', 1000).used, 'i < n && x, stopped by x: the skipped iterations were paid for');
    const early = counted.run('early', 1000);
    t.equal(early.result, 3, 'early exit: same result');
    t.ok(early.used > header.run('early', 1000).used, 'early exit: the skipped iterations were paid for');
  });

  t.test(`loops that only look counted pay for every iteration (${where} counter)`, async (t) => {
    const counted = instance('counted', localFuel);
    const header = instance('header', localFuel);
    const plain = instance('plain');
    for (const name of NOT_COUNTED) {
      for (const n of [1, 4, 12]) {
        const a = counted.run(name, n);
        const b = header.run(name, n);
        t.equal(a.result, plain.run(name, n).result, `${name}(${n}): same result`);
        t.ok(a.used >= b.used, `${name}(${n}): ${a.used} >= ${b.used} fuel (header charges)`);
      }
    }
  });

  t.test(`a counted loop that could outrun the budget traps at its entry (${where} counter)`, async (t) => {
    const counted = instance('counted', localFuel);
    for (const [name, n, budget] of [['huge_u', 1_000_000, 100_000], ['huge_u', -1, 1_000_000_000], ['huge_s', 0x7fffffff, 2_000_000_000]] as const) {
      counted.calls.host = 0;
      const r = counted.run(name, n, budget);
      t.equal(r.result, null, `${name}(${n}) traps`);
      t.ok(r.left < 0, `${name}(${n}): with the counter below zero (VM_BUDGET_EXCEEDED)`);
      t.equal(counted.calls.host, 0, `${name}(${n}): before its first iteration`);
    }
    // Within the budget it runs.
    t.equal(counted.run('huge_u', 1000).result, 1000, 'huge_u(1000) runs');
    t.equal(counted.calls.host, 1000);
  });
}
