// The work budget kept in a local inside functions with loops that call nothing charging
// (vm/metering.ts localFuel):
// seen from outside the module, it must be the same counter as the exported global. At
// every host call, after every return (normal, early, by a branch to the function's label,
// by a tail call) and at every trap, the global holds exactly what it holds when every
// charge goes to the global; host charges made during a call are seen after it; runaway
// loops (in a leaf function, around a host call, around a call to a function with its own
// loop) still stop on the budget.
import t from 'tap';
import wabtInit from 'wabt';
import { FUEL_EXPORT, rewriteModule } from '../../host/src/vm/metering.js';

const wabt = await wabtInit();
const wat = (text: string): Uint8Array => {
  const m = wabt.parseWat('t.wat', text, { mutable_globals: true, reference_types: true, tail_call: true, bulk_memory: true });
  m.resolveNames();
  m.validate();
  const b = new Uint8Array(m.toBinary({}).buffer);
  m.destroy();
  return b;
};

const MODULE = wat(`(module
  (import "env" "host" (func $host (param i32) (result i32)))
  (memory 1)
  (table 1 funcref)
  (elem (i32.const 0) $indirect)
  (func $leaf (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func $leaf_host (param i32) (result i32) (call $host (local.get 0)))
  (func $indirect (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))
  ;; A loop calling only a pure leaf: the counter in a local.
  (func $looper (param $n i32) (result i32) (local $acc i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (i32.add (local.get $acc) (call $leaf (local.get $n))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $acc))
  (func (export "looper") (param i32) (result i32) (call $looper (local.get 0)))
  ;; Local: a pure call and a bulk operation in the loop.
  (func (export "bulk") (param $n i32) (result i32) (local $acc i32)
    (loop $next
      (local.set $acc (call $leaf (local.get $acc)))
      (memory.fill (i32.const 0) (i32.const 0) (i32.mul (local.get $n) (i32.const 10)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $next (local.get $n)))
    (local.get $acc))
  ;; Local: an early return from inside the loop.
  (func (export "early") (param $n i32) (result i32)
    (loop $next
      (if (i32.eq (local.get $n) (i32.const 5)) (then (return (call $leaf (local.get $n)))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next))
    (i32.const -1))
  ;; Local: a branch to the function's own label from inside the loop.
  (func (export "brout") (param $n i32)
    (loop $next
      (br_if 1 (i32.eqz (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (call $leaf (i32.const 0))))
      (br $next)))
  ;; Local: br_table with the function's label among its targets.
  (func (export "table") (param $n i32)
    (block $a (loop $next
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_table $next 2 $a (local.get $n)))))
  ;; Local: a tail call out of a looping function (to one with its own local counter).
  (func (export "tail") (param $n i32) (result i32)
    (loop $next
      (local.set $n (i32.sub (local.get $n) (call $leaf (i32.const 0))))
      (br_if $next (i32.gt_s (local.get $n) (i32.const 3))))
    (return_call $looper (local.get $n)))
  ;; Global: loops that call the host, or functions that charge, or through the table.
  (func (export "mixed") (param $n i32) (result i32) (local $acc i32)
    (loop $next
      (local.set $acc (call $leaf (local.get $acc)))
      (local.set $acc (call $leaf_host (local.get $acc)))
      (local.set $acc (call_indirect (param i32) (result i32) (local.get $acc) (i32.const 0)))
      (local.set $acc (i32.add (local.get $acc) (call $looper (i32.const 3))))
      (memory.fill (i32.const 0) (i32.const 0) (i32.const 100))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $next (local.get $n)))
    (local.get $acc))
  (func (export "spin_leaf") (loop $l (br $l)))
  (func (export "spin_pure_call") (loop $l (drop (call $leaf (i32.const 1))) (br $l)))
  (func (export "spin_bulk") (loop $l (memory.fill (i32.const 0) (i32.const 0) (i32.const 1000)) (br $l)))
  (func (export "spin_host") (loop $l (drop (call $host (i32.const 1))) (br $l)))
  (func (export "spin_calls_looper") (loop $l (drop (call $looper (i32.const 4))) (br $l)))
)`);

interface Run {
  result: number | null;
  trapped: boolean;
  fuel: number;
  /** The global's value at each host call. */
  seen: number[];
}

function instance(localFuel: boolean) {
  const rw = rewriteModule(MODULE, { fuel: true, hostCallFuel: 50, localFuel, source: 't.wasm' });
  const seen: number[] = [];
  let fuel: WebAssembly.Global | null = null;
  const inst = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(rw.bytes)), {
    env: {
      host: (x: number) => {
        seen.push(fuel!.value as number);
        fuel!.value = (fuel!.value as number) - 7; // a host charge (plugin/host-meter.ts writes the global)
        return x;
      },
    },
  });
  const e = inst.exports as Record<string, unknown>;
  fuel = e[FUEL_EXPORT] as WebAssembly.Global;
  const run = (name: string, arg: number, budget: number): Run => {
    seen.length = 0;
    fuel!.value = budget;
    let result: number | null = null;
    let trapped = false;
    try {
      result = (e[name] as (n: number) => number | undefined)(arg) ?? 0;
    } catch (err) {
      if (!(err instanceof WebAssembly.RuntimeError)) throw err;
      trapped = true;
    }
    return { result, trapped, fuel: fuel!.value as number, seen: [...seen] };
  };
  return { run, bytes: rw.bytes };
}

const local = instance(true);
const global = instance(false);

t.test('the rewrite uses a local where a function has a loop', async (t) => {
  t.not(local.bytes.length, global.bytes.length, 'the two rewrites differ');
});

t.test('the counter seen at host calls and after returns is the same as with the global alone', async (t) => {
  for (const [name, arg] of [['looper', 7], ['bulk', 6], ['early', 9], ['brout', 4], ['table', 4], ['tail', 9], ['mixed', 6]] as const) {
    const a = local.run(name, arg, 1_000_000);
    const b = global.run(name, arg, 1_000_000);
    t.same(a, b, `${name}: same result, same counter at each host call and at the end`);
    t.ok(a.fuel < 1_000_000 && !a.trapped, `${name} was charged and finished`);
  }
});

t.test('a budget running out mid-function traps at the same point with the same counter', async (t) => {
  for (const budget of [60, 300, 1000, 2500, 7000]) {
    const a = local.run('mixed', 50, budget);
    const b = global.run('mixed', 50, budget);
    t.ok(a.trapped, `mixed under ${budget}: trapped`);
    t.same(a, b, `mixed under ${budget}: the host saw the same counter, and the host sees a negative one after`);
    t.ok(a.fuel < 0, 'VM_BUDGET_EXCEEDED: the counter is negative');
  }
});

t.test('runaway loops stop on the budget: in a leaf function, around a pure call, a bulk operation, a host call, a call to a looping function', async (t) => {
  for (const name of ['spin_leaf', 'spin_pure_call', 'spin_bulk', 'spin_host', 'spin_calls_looper']) {
    const a = local.run(name, 0, 200_000);
    t.ok(a.trapped && a.fuel < 0, `${name} trapped on the budget`);
    t.same(a, global.run(name, 0, 200_000), `${name}: as with the global alone`);
  }
  // The bound: a runaway spends at most the budget plus one charge.
  const spin = local.run('spin_leaf', 0, 1_000_000);
  t.ok(spin.fuel > -100, `overshoot ${-spin.fuel} units is one charge at most`);
});

t.test('a loop making up to three calls that may read or charge the counter uses the local; more keep the global', async (t) => {
  const mod = (calls: number): Uint8Array => wat(`(module
    (import "env" "host" (func $host (param i32) (result i32)))
    (func (export "f") (param $n i32)
      (drop (call $host (i32.const 0))) (drop (call $host (i32.const 0))) (drop (call $host (i32.const 0))) (drop (call $host (i32.const 0)))
      (loop $l
        ${'(drop (call $host (local.get $n)))'.repeat(calls)}
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br_if $l (local.get $n)))))`);
  const differs = (calls: number): boolean => {
    const m = mod(calls);
    const a = rewriteModule(m, { fuel: true, hostCallFuel: 50, localFuel: true, source: 't.wasm' }).bytes;
    const b = rewriteModule(m, { fuel: true, hostCallFuel: 50, localFuel: false, source: 't.wasm' }).bytes;
    return a.length !== b.length || a.some((x, i) => x !== b[i]);
  };
  t.ok(differs(1), 'one host call in the loop (four outside it, not counted): local');
  t.ok(differs(3), 'three: local');
  t.notOk(differs(4), 'four: global');
  // 'mixed' (three such calls in its loop: host, table, a looping function) and the runaways
  // around a host call or a looping function are now local: their runs above match the global's.
  t.ok(MODULE.length > 0);
});
