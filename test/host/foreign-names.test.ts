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

t.test('arguments reach the function as the guest wrote them, small ones copied into a reused array', async (t) => {
  const wm = new WebAssembly.Memory({ initial: 1 });
  const u8 = new Uint8Array(wm.buffer);
  u8.set(Buffer.from('f'), 0);
  const seen: string[] = [];
  const vm = {
    memory: new GuestMemory(wm),
    callForeign: (_name: string, args: Uint8Array) => {
      seen.push(Buffer.from(args).toString('hex'));
      return Status.Ok;
    },
  } as unknown as AbiContext;
  const f = calloutFunctions(vm, guestIo(vm)) as unknown as Record<string, (...a: number[]) => number>;
  const want: string[] = [];
  for (const size of [0, 1, 4, 4, 15, 16, 16, 17, 64, 4]) {
    const bytes = Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + size + want.length) & 0xff));
    u8.set(bytes, 200);
    t.equal(f.proxy_call_foreign_function!(0, 1, 200, size, 100, 104), Status.Ok);
    want.push(bytes.toString('hex'));
  }
  t.same(seen, want, 'each call saw its own bytes');
  t.equal(f.proxy_call_foreign_function!(0, 1, 65536 - 2, 4, 100, 104), Status.InvalidMemoryAccess, 'small arguments past the end of memory');
  t.equal(f.proxy_call_foreign_function!(0, 1, 65536 - 2, 40, 100, 104), Status.InvalidMemoryAccess, 'large arguments past the end of memory');
  t.equal(seen.length, want.length, 'and the function was not called');
});
