// The verified-key cache (assembly/bytecache.ts): bounded, evicting, keyed by the
// exact bytes and source, and never answering for a configuration it was not built
// by (a reload that revokes a key or changes its tenant is honoured at once).
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAdapter } from '../../../host/src/build/build-adapter.js';
import { WasmHost } from '../../../host/src/host.js';
import { reloadHost } from '../../../host/src/reload/reloader.js';
import type { MixerConfig } from '../../../host/src/config/schema.js';
import { authWasm, sha256hex } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const quiet = { level: 5, log() {} } as never;

t.test('the cache itself: bound, eviction, exact match (a probe module runs the checks in wasm)', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'auth-bytecache-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const built = await buildAdapter(join(here, 'fixtures', 'bytecache-probe'), { outDir: out });
  const host = await WasmHost.create({ plugins: [{ name: 'probe', url: 'p.wasm', pluginConfig: {} }] }, { modules: { 'p.wasm': await readFile(built.wasmPath) }, logger: quiet });
  await host.close();
  t.pass('every check in the probe held (configure would have been refused naming the one that failed)');
});

const keyOf = (i: number) => `ck_live_${i.toString(16).padStart(8, '0')}_${'z'.repeat(24)}`;
const authConfig = (keys: Array<{ key: string; name: string; tenant: string }>) => ({
  api_keys: {
    sources: [{ header: 'x-api-key' }, { header: 'authorization', prefix: 'ApiKey ' }],
    keys: keys.map((k) => ({ name: k.name, tenant: k.tenant, sha256: sha256hex(k.key) })),
  },
});

async function makeHost(pluginConfig: unknown) {
  const wasm = await readFile(await authWasm());
  const config = { plugins: [{ name: 'auth', url: 'auth.wasm', pluginConfig }] } as MixerConfig;
  const host = await WasmHost.create(config, { modules: { 'auth.wasm': wasm }, logger: quiet });
  /** One request: its status and the identity headers the upstream would get. */
  const send = async (headers: Array<[string, string]>, method = 'GET', path = '/x') => {
    const st = host.newStream({ method, path, authority: 'api', headers: headers.slice() });
    let d = st.requestHeaders(true);
    if (d instanceof Promise) d = await d;
    const h = new Map(st.stream.requestHeaders);
    st.finish();
    return { status: d.action === 'continue' ? 200 : d.action === 'respond' ? d.reply.status : 0, principal: h.get('x-auth-principal'), tenant: h.get('x-auth-tenant') };
  };
  return { host, send };
}

t.test('more verified keys than the cache holds: every one still gets its own identity', async (t) => {
  const keys = Array.from({ length: 600 }, (_, i) => ({ key: keyOf(i), name: `svc-${i}`, tenant: `t${i}` }));
  const { host, send } = await makeHost(authConfig(keys));
  t.teardown(() => host.close());
  let wrong = 0;
  for (let round = 0; round < 2; round++) {
    for (const k of keys) {
      const r = await send([['x-api-key', k.key]]);
      if (r.status !== 200 || r.principal !== k.name || r.tenant !== k.tenant) wrong++;
    }
  }
  t.equal(wrong, 0, '1200 requests over 600 keys (the cache holds 256): all allowed as their own key');
  t.equal((await send([['x-api-key', keyOf(0) + 'x']])).status, 401, 'a cached key plus a byte is unknown');
  t.equal((await send([['x-api-key', keyOf(0).slice(0, -1)]])).status, 401, 'a cached key minus a byte is unknown');
  t.equal((await send([['x-api-key', `  ${keyOf(1)} `]])).status, 200, 'surrounding spaces are trimmed as before');
  t.equal((await send([['authorization', `apikey ${keyOf(2)}`]])).principal, 'svc-2', 'a prefixed source');
  t.equal((await send([['authorization', keyOf(2)]])).status, 401, 'the same key without the prefix is not taken from that source');
  t.equal((await send([['x-api-key', 'ApiKey ' + keyOf(2)]])).status, 401, 'nor with the prefix from the plain source');
  t.equal((await send([['x-api-key', keyOf(3)], ['x-auth-principal', 'forged']])).principal, 'svc-3', 'a forged identity header is replaced');
});

t.test('a reload that revokes a key or changes its tenant is honoured at once', async (t) => {
  const a = { key: keyOf(100), name: 'billing', tenant: 'acme' };
  const b = { key: keyOf(101), name: 'reports', tenant: 'globex' };
  const { host, send } = await makeHost(authConfig([a, b]));
  t.teardown(() => host.close());
  for (let i = 0; i < 3; i++) t.equal((await send([['x-api-key', a.key]])).status, 200, 'cached after the first request');
  t.equal((await send([['x-api-key', b.key]])).tenant, 'globex');

  const next = { plugins: [{ name: 'auth', url: 'auth.wasm', pluginConfig: authConfig([{ ...b, tenant: 'initech' }]) }] } as MixerConfig;
  const res = await reloadHost(host, next, { reason: 'test', drainTimeoutMs: 1000 });
  t.ok(res, 'reloaded');
  t.equal((await send([['x-api-key', a.key]])).status, 401, 'the revoked key is refused');
  t.equal((await send([['x-api-key', b.key]])).tenant, 'initech', 'the changed tenant is forwarded');
});

t.test('paths and methods read as bytes (normalized paths cached by the raw path): rules decide as before', async (t) => {
  const k = { key: keyOf(7), name: 'svc', tenant: 'acme' };
  const { host, send } = await makeHost({
    ...authConfig([k]),
    rules: [
      { name: 'no-admin', action: 'DENY', match: { paths: ['/api/admin/**'] } },
      { name: 'api', action: 'ALLOW', match: { paths: ['/api/**'], methods: ['GET', 'PURGE'] } },
    ],
  });
  t.teardown(() => host.close());
  const h: Array<[string, string]> = [['x-api-key', k.key]];
  const got: string[] = [];
  // 100 distinct paths (the cache holds 64), each twice, some resolving into /api/admin
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 100; i++) {
      const path = i % 2 ? `/api/items/${i}?q=${i}` : `/api/items/../admin/${i}`;
      const want = i % 2 ? 200 : 403;
      const r = await send(h, 'GET', path);
      if (r.status !== want) got.push(`${path}: ${r.status}`);
    }
  }
  t.same(got, [], 'every path decided by its normalized form, first time and cached');
  t.equal((await send(h, 'GET', '/api/%61dmin/x')).status, 403, 'percent-encoded unreserved characters decoded');
  t.equal((await send(h, 'get', '/api/x')).status, 200, 'a lower-case method is upper-cased');
  t.equal((await send(h, 'PURGE', '/api/x')).status, 200, 'a method outside the usual table');
  t.equal((await send(h, 'POST', '/api/x')).status, 403, 'a method no rule allows');
});
