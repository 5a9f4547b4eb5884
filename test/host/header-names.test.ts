// proxy_add/replace/remove_header_map_value remember the last few valid lower-case names
// they wrote (abi/env-maps.ts KnownNames): a remembered name must not let an invalid or
// upper-case name through, however the writes are interleaved.
import t from 'tap';
import { GuestMemory } from '../../host/src/vm/guest-memory.js';
import { mapFunctions } from '../../host/src/abi/env-maps.js';
import { guestIo } from '../../host/src/abi/guest-io.js';
import type { AbiContext } from '../../host/src/abi/context.js';
import { Status } from '../../host/src/abi/constants.js';

type Fn = (...a: number[]) => number;

t.test('names are checked and lower-cased whatever was written before', async (t) => {
  const wm = new WebAssembly.Memory({ initial: 1 });
  const u8 = new Uint8Array(wm.buffer);
  let at = 0;
  const put = (s: string): [number, number] => {
    const p = at;
    for (let i = 0; i < s.length; i++) u8[p + i] = s.charCodeAt(i);
    at += s.length + 8;
    return [p, s.length];
  };
  const headers: Array<[string, string]> = [];
  const vm = { memory: new GuestMemory(wm), compiled: { abiVersion: '0.2.1' }, headerMap: () => headers, headersChanged() {} } as unknown as AbiContext;
  const f = mapFunctions(vm, guestIo(vm)) as unknown as Record<string, Fn>;
  const value = put('v');
  const names = ['x-a', 'X-A', 'x-b', 'bad name', 'x-c', 'x-d', 'x-e', 'x-f', 'x-g', 'x-h', 'x-i', 'X-B', 'x:a', ':path', ''];
  const expect = (n: string): string | null => (/^:?[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(n) ? n.toLowerCase() : null);
  const encoded = names.map(put);
  let seed = 7;
  for (let r = 0; r < 300; r++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const i = seed % names.length;
    const [p, n] = encoded[i]!;
    headers.length = 0;
    headers.push(['keep', '1']);
    const op = r % 3 === 0 ? 'proxy_add_header_map_value' : 'proxy_replace_header_map_value';
    const s = f[op]!(0, p, n, value[0], value[1]);
    const want = expect(names[i]!);
    if (want === null) {
      if (s !== Status.BadArgument || headers.length !== 1) t.fail(`${op} "${names[i]}": ${s}, ${JSON.stringify(headers)}`);
    } else {
      if (s !== Status.Ok || headers[1]?.[0] !== want) t.fail(`${op} "${names[i]}": ${s}, ${JSON.stringify(headers)}`);
      if (f.proxy_remove_header_map_value!(0, p, n) !== Status.Ok || headers.length !== 1) t.fail(`remove "${names[i]}" left ${JSON.stringify(headers)}`);
    }
  }
  t.pass('300 interleaved writes of valid, invalid and upper-case names');
});

t.test('a removed name takes every copy and keeps the order of the rest', async (t) => {
  const wm = new WebAssembly.Memory({ initial: 1 });
  const u8 = new Uint8Array(wm.buffer);
  'x-dup'.split('').forEach((c, i) => (u8[i] = c.charCodeAt(0)));
  const headers: Array<[string, string]> = [['a', '1'], ['x-dup', '2'], ['b', '3'], ['x-dup', '4'], ['c', '5']];
  const vm = { memory: new GuestMemory(wm), compiled: { abiVersion: '0.2.1' }, headerMap: () => headers, headersChanged() {} } as unknown as AbiContext;
  const f = mapFunctions(vm, guestIo(vm)) as unknown as Record<string, Fn>;
  t.equal(f.proxy_remove_header_map_value!(0, 0, 5), Status.Ok);
  t.same(headers, [['a', '1'], ['b', '3'], ['c', '5']]);
});
