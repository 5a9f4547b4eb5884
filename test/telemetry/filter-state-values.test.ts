// proxy_set_property keeps the last few values (up to 4, each up to 1 KiB) set under each path and stores an identical one
// as those same bytes instead of a fresh copy (abi/env-maps.ts). Each request must still
// see exactly what its own adapter set: a changed value, a longer or shorter one, a prefix
// of the last, and the empty value, through the real host and an SDK-built adapter.
import t, { type Test } from 'tap';
import { WasmHost } from '../../host/src/host.js';
import { validateConfig } from '../../host/src/config/load.js';
import { buildSetAttrs } from './helpers.js';

/** A host with the set-attrs adapter, and a function that sends one request as `name` and returns the principal it stored. */
async function principals(t: Test): Promise<(name: string) => Uint8Array | undefined> {
  const url = await buildSetAttrs();
  const host = await WasmHost.create(validateConfig({ plugins: [{ name: 'set-attrs', url, pluginConfig: {} }] }, 'test'), { logger: { level: 5, log() {} } });
  t.teardown(() => host.close());
  return (name: string) => {
    const s = host.newStream({ method: 'GET', path: '/', authority: 'a', headers: [['x-test-principal', name]] });
    const d = s.requestHeaders(true);
    t.same(d, { action: 'continue' }, `request as ${JSON.stringify(name)} continues`);
    const v = s.stream.filterState.get('mixer.principal');
    s.finish();
    return v;
  };
}

t.test('each request keeps the principal its adapter set, while repeated values are shared', async (t) => {
  const principalOf = await principals(t);
  const seen: Array<[string, Uint8Array | undefined]> = [];
  for (const name of ['alice', 'alice', 'bob', 'alice', 'alic', 'alicex', '', 'alice', 'ALICE', 'alice']) seen.push([name, principalOf(name)]);
  for (const [name, v] of seen) t.equal(v === undefined ? undefined : Buffer.from(v).toString('utf8'), name, `the request as ${JSON.stringify(name)} sees its own principal`);
  t.equal(seen[0]![1], seen[1]![1], 'the same value twice in a row is stored once');
  t.not(seen[1]![1], seen[2]![1], 'a different value is a copy of its own');
});

t.test('values that alternate between requests (an API-key caller, a JWT caller) are shared too', async (t) => {
  const principalOf = await principals(t);
  const names = ['key-caller', 'jwt-caller', 'third', 'fourth'];
  const first = names.map(principalOf);
  for (let round = 0; round < 3; round++) {
    names.forEach((name, i) => t.equal(principalOf(name), first[i], `round ${round}: ${name}'s value is the bytes stored the first time`));
  }
  const big = 'x'.repeat(1025);
  const a = principalOf(big);
  const b = principalOf(big);
  t.equal(Buffer.from(b ?? []).toString('utf8'), big, 'a value past 1 KiB is stored whole');
  t.not(a, b, 'a value past 1 KiB is copied each time, never kept');
  t.equal(principalOf('key-caller'), first[0], 'a fifth distinct value did not evict the recent ones');
});
