// API keys through the real proxy: keys stored as SHA-256 digests, header / query /
// cookie sources, 401 for a missing or unknown key, 403 for a key used outside its
// routes, the tenant forwarded upstream, forged identity headers removed, no key in logs.
import t from 'tap';
import { sha256hex, startAuthProxy } from './helpers.js';

const BILLING = 'bk_live_3f9a1c0e7d2b4a6f8e1c3b5d7f9a2c4e';
const REPORTS = 'rk_live_0a1b2c3d4e5f60718293a4b5c6d7e8f9';
const ROTATED = 'bk_live_next_7e6d5c4b3a291807f6e5d4c3b2a1';

const config = {
  realm: 'billing-api',
  api_keys: {
    sources: [{ header: 'x-api-key' }, { header: 'authorization', prefix: 'ApiKey ' }, { query: 'api_key' }, { cookie: 'apikey' }],
    keys: [
      { name: 'billing-svc', tenant: 'acme', sha256: sha256hex(BILLING) },
      { name: 'billing-svc', tenant: 'acme', sha256: sha256hex(ROTATED).toUpperCase() },
      { name: 'reports', tenant: 'globex', sha256: sha256hex(REPORTS), paths: ['/reports/**', { exact: '/status' }], methods: ['GET'] },
    ],
  },
};

t.test('API keys from every source; 401 and 403 as the Envoy filter answers', async (t) => {
  const p = await startAuthProxy(config);
  t.teardown(() => p.close());

  const ok = await p.get('/invoices/7', { 'x-api-key': BILLING });
  t.equal(ok.status, 200);
  t.equal(ok.json.headers['x-auth-principal'], 'billing-svc', 'key name forwarded as the principal');
  t.equal(ok.json.headers['x-auth-tenant'], 'acme', 'tenant forwarded upstream');
  t.equal(ok.json.headers['x-api-key'], BILLING, 'the key is forwarded unless forward: false');

  t.equal((await p.get('/x', { authorization: `apikey ${ROTATED}` })).status, 200, 'header prefix, case-insensitive; a second key of the same client');
  t.equal((await p.get(`/x?a=1&api_key=${encodeURIComponent(BILLING)}`)).status, 200, 'query parameter');
  t.equal((await p.get('/x', { cookie: `theme=dark; apikey=${BILLING}` })).status, 200, 'cookie');

  const missing = await p.get('/invoices/7');
  t.equal(missing.status, 401);
  t.same(missing.json, { error: 'missing_credentials', message: 'Authentication is required.', request_id: missing.json.request_id });
  t.match(missing.json.request_id, /^[0-9a-f-]{36}$/);
  t.equal(missing.headers['www-authenticate'], 'ApiKey realm="billing-api"');
  t.equal(missing.headers['content-type'], 'application/json');
  t.equal(missing.headers['cache-control'], 'no-store');

  const unknown = await p.get('/invoices/7', { 'x-api-key': BILLING + 'x' });
  t.equal(unknown.status, 401);
  t.equal(unknown.json.error, 'invalid_api_key');
  t.notMatch(unknown.body, /billing|acme|sha|digest/i, 'nothing about keys or clients in the body');
  t.equal((await p.get('/x', { 'x-api-key': BILLING.toUpperCase() })).status, 401, 'keys are case-sensitive');
  t.equal((await p.get('/x', { 'x-api-key': 'k'.repeat(5000) })).status, 401, 'an over-long key is unknown, not an error');

  // per-key routes and methods
  t.equal((await p.get('/reports/2024/q1', { 'x-api-key': REPORTS })).status, 200);
  t.equal((await p.get('/status', { 'x-api-key': REPORTS })).status, 200);
  const wrongRoute = await p.get('/invoices/7', { 'x-api-key': REPORTS });
  t.equal(wrongRoute.status, 403);
  t.equal(wrongRoute.json.error, 'forbidden');
  t.equal(wrongRoute.headers['www-authenticate'], undefined, '403 carries no challenge');
  t.equal((await p.get('/reports/../invoices/7', { 'x-api-key': REPORTS })).status, 403, 'dot segments cannot escape the allowed routes');
  t.equal((await p.get('/reports/x', { 'x-api-key': REPORTS }, { method: 'DELETE' })).status, 403, 'method not allowed for the key');
  t.equal((await p.get('/reportsx', { 'x-api-key': REPORTS })).status, 403, '/reports/** does not match /reportsx');

  // forged identity headers never reach the upstream
  const forged = await p.get('/x', { 'x-api-key': REPORTS, 'x-auth-principal': 'admin', 'x-auth-tenant': 'root' }, { method: 'GET' });
  t.equal(forged.status, 403);
  const forged2 = await p.get('/status', { 'x-api-key': REPORTS, 'x-auth-principal': 'admin', 'x-auth-tenant': 'root' });
  t.equal(forged2.json.headers['x-auth-principal'], 'reports');
  t.equal(forged2.json.headers['x-auth-tenant'], 'globex');

  t.equal(await p.metric('auth_allowed_total', { method: 'api_key' }), 7);
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'missing_credentials' }), 1);
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'unknown_api_key' }), 3);
  t.equal(await p.metric('auth_denied_total', { status: '403', reason: 'route_not_allowed' }), 5);

  const text = JSON.stringify(p.logs);
  for (const k of [BILLING, REPORTS, ROTATED, sha256hex(BILLING)]) t.notOk(text.includes(k), 'no key or digest in the logs');
  t.ok(p.logs.some((r) => r.level === 'debug' && /^deny 401 reason=missing_credentials principal=anonymous GET \/invoices\/7 from 127\.0\.0\.1/.test(r.message)), 'decisions logged at debug');
});

t.test('forward: false strips the key from the request sent upstream', async (t) => {
  const p = await startAuthProxy({
    api_keys: { forward: false, sources: [{ header: 'x-api-key' }, { query: 'api_key' }, { cookie: 'apikey' }], keys: [{ name: 'a', sha256: sha256hex(BILLING) }] },
  });
  t.teardown(() => p.close());
  const h = await p.get('/x', { 'x-api-key': BILLING });
  t.equal(h.json.headers['x-api-key'], undefined);
  t.equal(h.json.headers['x-auth-tenant'], undefined, 'no tenant header when the key has none');
  const q = await p.get(`/x/y?a=1&api_key=${BILLING}&b=2`);
  t.equal(q.json.url, '/x/y?a=1&b=2');
  t.equal((await p.get(`/x?api_key=${BILLING}`)).json.url, '/x');
  const c = await p.get('/x', { cookie: `apikey=${BILLING}; theme=dark` });
  t.equal(c.json.headers.cookie, 'theme=dark');
});

t.test('config errors name the field', async (t) => {
  await t.rejects(startAuthProxy({ api_keys: { sources: [{ header: 'x-key', prefx: 'K ' }], keys: [] } }), { message: /config "api_keys.sources\[0\].prefx": unknown setting/ });
  await t.rejects(startAuthProxy({ api_keys: { keys: [{ name: 'a', sha256: 'abc' }], sourcs: [] } }), {
    code: 'PLUGIN_CONFIGURE_FAILED',
    message: /config "api_keys.sourcs": unknown setting.*config "api_keys.keys\[0\].sha256": must be the SHA-256 of the key as 64 hex digits/,
  });
  await t.rejects(startAuthProxy({ api_keys: { keys: [{ name: 'a', sha256: sha256hex('x') }, { name: 'b', sha256: sha256hex('x') }] } }), {
    message: /the same key is listed twice/,
  });
  await t.rejects(startAuthProxy({ requires: 'jwt', api_keys: { keys: [] } }), { message: /"jwt" needs a jwt section/ });
});
