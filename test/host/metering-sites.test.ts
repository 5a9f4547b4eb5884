// The work budget with straight-line functions charged at their call sites (vm/metering.ts):
// fuel spent never drops below what charging every function at entry spends, so it stays an
// upper bound on instructions executed; functions the host or a table can reach, and call
// cycles, are still charged at entry; runaway loops and recursion still trap on the budget.
import t from 'tap';
import wabtInit from 'wabt';
import { FUEL_EXPORT, rewriteModule } from '../../host/src/vm/metering.js';
import { budgetRunner } from './metered-run.js';

const wabt = await wabtInit();
const wat = (text: string): Uint8Array => {
  const m = wabt.parseWat('t.wat', text, { mutable_globals: true, reference_types: true, tail_call: true });
  m.resolveNames();
  m.validate();
  const b = new Uint8Array(m.toBinary({}).buffer);
  m.destroy();
  return b;
};

const MODULE = wat(`(module
  (import "env" "host" (func $host (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $in_table)
  (elem declare func $referenced)
  (func $leaf (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func $mid (param i32) (result i32) (call $leaf (call $leaf (local.get 0))))
  (func $calls_host (param i32) (result i32) (call $host (call $leaf (local.get 0))))
  (func $in_table (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
  (func $by_ref (result funcref) (ref.func $referenced))
  (func $referenced (param i32) (result i32) (local.get 0))
  (func $self (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0)) (else (call $self (i32.sub (local.get 0) (i32.const 1))))))
  (func $ping (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0)) (else (call $pong (i32.sub (local.get 0) (i32.const 1))))))
  (func $pong (param i32) (result i32) (call $ping (local.get 0)))
  (func $tail (param i32) (result i32) (return_call $leaf (local.get 0)))
  (func $exported_leaf (export "exported_leaf") (param i32) (result i32) (i32.sub (local.get 0) (i32.const 1)))
  (func (export "straight") (param i32) (result i32)
    (call $mid (call $tail (call $exported_leaf (local.get 0)))))
  (func (export "branchy") (param i32) (result i32)
    (if (result i32) (local.get 0) (then (call $mid (i32.const 1))) (else (i32.const 0))))
  (func (export "looped") (param $n i32) (result i32) (local $acc i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (call $mid (local.get $acc)))
      (local.set $acc (call_indirect (param i32) (result i32) (local.get $acc) (i32.const 0)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $acc))
  (func (export "recurse") (param i32) (result i32) (call $self (local.get 0)))
  (func (export "mutual") (param i32) (result i32) (call $ping (local.get 0)))
  (func (export "with_host") (param i32) (result i32) (call $calls_host (local.get 0)))
)`);

function instance(bytes: Uint8Array, fuel: boolean, callSiteCharges: boolean) {
  const rw = rewriteModule(bytes, { fuel, callSiteCharges, source: 't.wasm' });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(rw.bytes)), { env: { host: (x: number) => x + 100 } });
  const run = budgetRunner(inst.exports, 1_000_000);
  return { rw, run };
}

t.test('which functions are charged at their call sites', async (t) => {
  const { rw } = instance(MODULE, true, true);
  // defined: leaf mid calls_host in_table by_ref referenced self ping pong tail exported_leaf + 6 exports
  // at call sites: leaf, mid, calls_host, by_ref (no loop, only direct calls reach it), tail,
  // and one of ping/pong (the cycle is broken by charging the other at entry).
  t.equal(rw.siteCharged, 6);
  t.equal(rw.functions, 17 - 6, 'the rest at entry: exported, in a table, named by ref.func, self-recursive, one of the cycle');
  const all = instance(MODULE, true, false).rw;
  t.equal(all.siteCharged, 0);
  t.equal(all.functions, 17);
});

t.test('fuel spent is never less than with every function charged at entry', async (t) => {
  const site = instance(MODULE, true, true);
  const entry = instance(MODULE, true, false);
  const plain = instance(MODULE, false, false);
  for (const [name, arg] of [['straight', 5], ['branchy', 1], ['branchy', 0], ['looped', 7], ['recurse', 20], ['mutual', 20], ['with_host', 3]] as const) {
    const a = site.run(name, arg);
    const b = entry.run(name, arg);
    t.equal(a.result, plain.run(name, arg).result, `${name}(${arg}): same result`);
    t.ok(a.used >= b.used, `${name}(${arg}): ${a.used} >= ${b.used} fuel`);
    if (name === 'straight' || name === 'with_host' || (name === 'branchy' && arg === 1)) t.equal(a.used, b.used, `${name}(${arg}): straight-line work costs the same`);
  }
});

t.test('runaway loops and recursion still trap on the budget', async (t) => {
  const site = instance(MODULE, true, true);
  const loop = site.run('looped', 1_000_000_000, 100_000);
  t.equal(loop.result, null, 'a loop of site-charged calls traps');
  t.ok(loop.used > 100_000, 'with the budget gone');
  const deep = site.run('recurse', 1_000_000_000, 100_000);
  t.equal(deep.result, null);
  t.ok(deep.used > 100_000, 'self-recursion traps on the budget, not the stack');
  const mutual = site.run('mutual', 1_000_000_000, 100_000);
  t.equal(mutual.result, null);
  t.ok(mutual.used > 100_000, 'mutual recursion traps on the budget');
});

t.test('host calls charged at their call sites', async (t) => {
  const LOOP = wat(`(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func $twice (param i32) (result i32) (call $host (call $host (local.get 0))))
    (func (export "once") (param i32) (result i32) (call $host (local.get 0)))
    (func (export "nested") (param i32) (result i32) (call $twice (local.get 0)))
    (func (export "spin") (loop $l (drop (call $host (i32.const 1))) (br $l))))`);
  const rw = rewriteModule(LOOP, { fuel: true, hostCallFuel: 4000, source: 'h.wasm' });
  t.equal(rw.hostCallsCharged, true);
  let calls = 0;
  const inst = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(rw.bytes)), { env: { host: (x: number) => (calls++, x) } });
  const e = inst.exports as Record<string, unknown>;
  const g = e[FUEL_EXPORT] as WebAssembly.Global;
  const used = (name: string) => {
    g.value = 1_000_000;
    (e[name] as (x: number) => number)(1);
    return 1_000_000 - (g.value as number);
  };
  const once = used('once');
  t.ok(once >= 4000 && once < 4100, `one host call costs the host-call charge (${once})`);
  const nested = used('nested');
  t.ok(nested >= 8000 && nested < 8100, `two through a site-charged helper cost two charges (${nested})`);
  g.value = 100_000;
  calls = 0;
  t.throws(() => (e.spin as () => void)(), 'a loop of host calls traps on the budget');
  t.ok(g.value < 0 && calls <= 25, `within the budget's worth of host calls (${calls})`);

  const TABLED = wat(`(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (table 1 funcref) (elem (i32.const 0) $host)
    (func (export "once") (param i32) (result i32) (call $host (local.get 0))))`);
  t.equal(rewriteModule(TABLED, { fuel: true, hostCallFuel: 4000, source: 't.wasm' }).hostCallsCharged, false, 'an import a table can reach: the host charges its calls');
  t.equal(rewriteModule(LOOP, { fuel: false, hostCallFuel: 4000, maxMemoryPages: 10, source: 'h.wasm' }).hostCallsCharged, false, 'no budget, no charge');
});
