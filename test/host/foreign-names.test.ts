// proxy_call_foreign_function remembers the last few names a VM called, by their bytes
// (abi/env-callouts.ts RecentNames): whatever the order, each call must reach the function
// whose name the guest passed, also for names of one length and more names than it keeps.
import t from 'tap';
import { GuestMemory } from '../../host/src/vm/guest-memory.js';
import { calloutFunctions } from '../../host/src/abi/env-callouts.js';
import { guestIo } from '../../host/src/abi/guest-io.js';
import type { AbiContext } from '../../host/src/abi/context.js';
import { Status } from '../../host/src/abi/constants.js';

t.test('each call reaches the function it names', async (t) => {
  const wm = new WebAssembly.Memory({ initial: 1 });
  const u8 = new Uint8Array(wm.buffer);
  const names = ['wasm_mixer.aaaa', 'wasm_mixer.aaab', 'wasm_mixer.baaa', 'f', 'g', 'wasm_mixer.access_log', 'h\u00e9', 'x'.repeat(100)];
  const slots = names.map((n, i) => {
    const b = Buffer.from(n, 'utf8');
    u8.set(b, 1000 + i * 200);
    return [1000 + i * 200, b.length] as const;
  });
  const called: string[] = [];
  const vm = {
    memory: new GuestMemory(wm),
    callForeign: (name: string) => {
      called.push(name);
      return Status.Ok;
    },
  } as unknown as AbiContext;
  const f = calloutFunctions(vm, guestIo(vm)) as unknown as Record<string, (...a: number[]) => number>;
  const want: string[] = [];
  let seed = 3;
  for (let r = 0; r < 500; r++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const i = r < 100 ? r % 3 : seed % names.length;
    // the guest may reuse a name's buffer for another name: rewrite slot 0 now and then
    if (r % 50 === 49) {
      const b = Buffer.from(names[(r / 50) % 2 ? 1 : 0]!, 'utf8');
      u8.set(b, slots[0]![0]);
      names[0] = names[(r / 50) % 2 ? 1 : 0]!;
    }
    f.proxy_call_foreign_function!(slots[i]![0], slots[i]![1], 0, 0, 100, 104);
    want.push(names[i]!);
  }
  t.same(called, want);
});
