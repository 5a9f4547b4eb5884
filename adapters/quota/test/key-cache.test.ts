// The key cache (assembly/keys.ts, bytecache.ts): limits keyed by header and address
// bytes stay exact per value when more values arrive than the cache holds (64 per
// limit), overrides apply to cached values, and a reload that changes the limits is
// honoured at once.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { WasmHost } from '../../../host/src/host.js';
import { reloadHost } from '../../../host/src/reload/reloader.js';
import type { MixerConfig } from '../../../host/src/config/schema.js';
import { buildQuota } from './helpers.js';

const { wasm, cleanup } = await buildQuota();
t.teardown(cleanup);
const quiet = { level: 5, log() {} } as never;

const limits = (vipLimit: number | null, ipLimit = 4) => ({
  domain: 'kc',
  headers: 'draft',
  limits: [
    {
      name: 'per_user',
      limit: 3,
      window: '1d',
      dimensions: { user: 'header:x-user' },
      ...(vipLimit === null ? {} : { overrides: [{ match: { user: 'vip' }, limit: vipLimit }] }),
    },
    { name: 'per_ip', limit: ipLimit, window: '1d', dimensions: { ip: 'source.ip' } },
  ],
});

async function makeHost(pluginConfig: unknown) {
  const config = { plugins: [{ name: 'quota', url: 'q.wasm', pluginConfig }] } as MixerConfig;
  const host = await WasmHost.create(config, { modules: { 'q.wasm': await readFile(wasm) }, logger: quiet });
  /** One request: its status and the RateLimit-Limit the client gets. */
  const send = async (user: string, ip: string) => {
    const st = host.newStream({ method: 'GET', path: '/', authority: 'x', headers: [['x-user', user]], info: { sourceAddress: ip, sourcePort: 40000 } });
    let d = st.requestHeaders(true);
    if (d instanceof Promise) d = await d;
    let status = d.action === 'continue' ? 200 : d.action === 'respond' ? d.reply.status : 0;
    let limit: string | undefined;
    if (status === 200) {
      const r = st.responseHeaders(200, [], true);
      if (r instanceof Promise) await r;
      limit = new Map(st.stream.responseHeaders).get('ratelimit-limit');
    } else if (d.action === 'respond') {
      limit = new Map(d.reply.headers).get('ratelimit-limit');
    }
    st.finish();
    return { status, limit };
  };
  return { host, send };
}

t.test('more distinct values than the cache holds: every value keeps its own exact count', async (t) => {
  const { host, send } = await makeHost(limits(5));
  t.teardown(() => host.close());
  // 150 users (the cache holds 64 per limit), each from its own address, interleaved so entries are evicted
  const users = Array.from({ length: 150 }, (_, i) => ({ user: `u${i}`, ip: `10.0.${i >> 8}.${i & 255}` }));
  const seen = new Map<string, number[]>();
  for (let round = 0; round < 4; round++) {
    for (const u of users) {
      const r = await send(u.user, u.ip);
      seen.set(u.user, [...(seen.get(u.user) ?? []), r.status]);
    }
  }
  const wrong = [...seen].filter(([, s]) => s.join() !== '200,200,200,429');
  t.same(wrong, [], 'each user: three admitted, the fourth denied');
  const vip = [];
  for (let i = 0; i < 6; i++) vip.push((await send('vip', `10.9.0.${i}`)).status);
  t.same(vip, [200, 200, 200, 200, 200, 429], 'the override applies to a cached value');
  // one address shared by new users: per_ip counts it across them
  const shared = [];
  for (let i = 0; i < 5; i++) shared.push((await send(`s${i}`, '10.8.0.1')).status);
  t.same(shared, [200, 200, 200, 200, 429], 'per_ip keyed by the address bytes');
  t.same([(await send('s9', '[2001:db8::1]')).status, (await send('s8', '[2001:db8::1]')).status], [200, 200], 'a bracketed IPv6 peer');
});

t.test('a reload that changes a limit is honoured at once', async (t) => {
  // per_ip high enough that RateLimit-Limit reports per_user (the limit nearest to exhaustion)
  const { host, send } = await makeHost(limits(5, 1000));
  t.teardown(() => host.close());
  const before = await send('vip', '10.1.0.1');
  t.equal(before.limit, '5', 'the override, cached for "vip"');
  t.equal((await send('vip', '10.1.0.2')).limit, '5');
  const next = { plugins: [{ name: 'quota', url: 'q.wasm', pluginConfig: limits(null, 1000) }] } as MixerConfig;
  await reloadHost(host, next, { reason: 'test', drainTimeoutMs: 1000 });
  const after = await send('vip', '10.1.0.3');
  t.equal(after.limit, '3', 'the override removed: the base limit applies to "vip"');
});
