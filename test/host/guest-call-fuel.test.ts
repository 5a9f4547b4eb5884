// plugin/guest-call.ts gives every outermost callback the budget with one swap at the end of
// the previous one (it reads what that call left and refills the counter): each callback must
// still start with exactly `budget`, a budget change must apply to the next call, nested
// calls must share their outermost call's budget, and a call that ran out must still be
// named VM_BUDGET_EXCEEDED although the counter was refilled before the trap is classified.
import t from 'tap';
import wabtInit from 'wabt';
import { CallPhase, GuestCalls, type RootContext } from '../../host/src/plugin/guest-call.js';
import { fuelCounter } from '../../host/src/plugin/fuel-counter.js';

async function spender(): Promise<{ global: WebAssembly.Global; spend: (n: number) => void }> {
  const wabt = await wabtInit();
  // What the metering rewrite does at a charge: fuel -= n; trap when it went below zero.
  const m = wabt.parseWat('spend.wat', `(module
    (global $fuel (export "fuel") (mut i32) (i32.const 0))
    (func (export "spend") (param i32)
      (global.set $fuel (i32.sub (global.get $fuel) (local.get 0)))
      (if (i32.lt_s (global.get $fuel) (i32.const 0)) (then unreachable))))`);
  const inst = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(m.toBinary({}).buffer)));
  m.destroy();
  return { global: inst.exports.fuel as WebAssembly.Global, spend: inst.exports.spend as (n: number) => void };
}

const root: RootContext = { kind: 'root', id: 1 };

t.test('each outermost call starts with the whole budget, nested calls share it', async (t) => {
  const { global, spend } = await spender();
  const calls = new GuestCalls(1, () => {});
  calls.fuel = fuelCounter(global);
  calls.budget = 1000;
  for (let i = 0; i < 3; i++) calls.run(root, CallPhase.None, () => spend(600));
  t.equal(calls.fuelHighWater, 600);
  t.throws(() => calls.run(root, CallPhase.None, () => {
    spend(600);
    calls.run(root, CallPhase.None, () => spend(600));
  }), 'a nested call does not refill the counter');
  t.equal(calls.classify(new WebAssembly.RuntimeError('unreachable'), 0, 0).code, 'VM_BUDGET_EXCEEDED', 'named as the budget although the counter was refilled');
  t.equal(global.value, 1000, 'the counter holds the next call\'s budget');
  calls.run(root, CallPhase.None, () => spend(1000));
  t.equal(calls.classify(new Error('other'), 0, 0).code, 'VM_TRAP', 'a later trap is not the budget');
  t.throws(() => calls.run(root, CallPhase.None, () => spend(1001)), 'one unit past the budget traps');
});

t.test('a budget change applies to the next call', async (t) => {
  const { global, spend } = await spender();
  const calls = new GuestCalls(1, () => {});
  calls.fuel = fuelCounter(global);
  calls.budget = 5000;
  calls.run(root, CallPhase.None, () => spend(4000));
  calls.budget = 300;
  t.throws(() => calls.run(root, CallPhase.None, () => spend(301)), 'the lower budget holds, not the one swapped in');
  calls.budget = 300;
  calls.run(root, CallPhase.None, () => spend(300));
});

t.test('a new counter gets the budget before its first call', async (t) => {
  const a = await spender();
  const b = await spender();
  const calls = new GuestCalls(1, () => {});
  calls.fuel = fuelCounter(a.global);
  calls.budget = 1000;
  calls.run(root, CallPhase.None, () => a.spend(10));
  calls.fuel = fuelCounter(b.global);
  calls.run(root, CallPhase.None, () => b.spend(900));
  t.equal(b.global.value, 1000);
  t.throws(() => calls.run(root, CallPhase.None, () => b.spend(1001)));
});

t.test('guest work outside a callback is charged to the next one', async (t) => {
  const { global, spend } = await spender();
  const calls = new GuestCalls(1, () => {});
  calls.fuel = fuelCounter(global);
  calls.budget = 1000;
  calls.run(root, CallPhase.None, () => spend(1));
  spend(600);
  t.throws(() => calls.run(root, CallPhase.None, () => spend(600)), 'never more than the budget between two ends of calls');
});
