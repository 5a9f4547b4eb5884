// The README's example configuration (config.example.json) loads and behaves as the
// README says, through the real proxy, with its JWKS served by this test.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeKey, nowS, sha256hex, sign, startAuthProxy, startJwksServer } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const example = JSON.parse(await readFile(join(here, '..', 'config.example.json'), 'utf8'));

t.test('config.example.json', async (t) => {
  // the placeholder secret is refused as it stands
  const jwks = await startJwksServer([]);
  t.teardown(() => jwks.close());
  const clusters = { idp: { url: `http://127.0.0.1:${jwks.port}` } };
  await t.rejects(startAuthProxy(example, { clusters }), { message: /jwt.providers\[1\].local_jwks": has no usable keys/ });

  const rs = await makeKey('RS256', 'login-1');
  const hs = await makeKey('HS256', 'batch-2026');
  jwks.keys = [rs.jwk];
  const cfg = structuredClone(example);
  cfg.jwt.providers[1].local_jwks.keys[0].k = hs.jwk.k;
  cfg.api_keys.keys[0].sha256 = sha256hex('billing-key-1');
  const p = await startAuthProxy(cfg, { clusters });
  t.teardown(() => p.close());

  const user = await sign(rs, { iss: 'https://login.example.com', aud: 'orders', sub: 'ann', org_id: 'acme', groups: ['admin'], exp: nowS() + 600, iat: nowS() });
  t.equal((await p.get('/healthz')).status, 200, 'no credentials needed');
  const anon = await p.get('/orders');
  t.equal(anon.status, 401);
  t.equal(anon.headers['www-authenticate'], 'Bearer realm="orders-api", ApiKey realm="orders-api"', 'a challenge per configured method');
  const ok = await p.get('/orders', { authorization: `Bearer ${user}` });
  t.equal(ok.status, 200);
  t.equal(ok.json.headers['x-user'], 'ann');
  t.equal(ok.json.headers['x-user-groups'], 'admin');
  t.equal(ok.json.headers['x-auth-tenant'], 'acme');
  t.equal((await p.get('/admin/x', { authorization: `Bearer ${user}` })).status, 200);
  const dev = await sign(rs, { iss: 'https://login.example.com', aud: 'orders', sub: 'bob', exp: nowS() + 600, iat: nowS() });
  t.equal((await p.get('/admin/x', { authorization: `Bearer ${dev}` })).status, 403);
  const key = await p.get('/orders', { 'x-api-key': 'billing-key-1' });
  t.equal(key.status, 200);
  t.equal(key.json.headers['x-api-key'], undefined, 'forward: false');
  t.equal((await p.get('/partner/x', { authorization: `Bearer ${user}` })).status, 401, '/partner requires an API key');
  const batch = await sign(hs, { iss: 'internal-batch', sub: 'nightly', exp: nowS() + 60 });
  t.equal((await p.get('/orders', { 'x-internal-token': batch })).status, 200);
  t.equal((await p.get('/public/x', { 'x-forwarded-for': '203.0.113.9' })).status, 403, 'blocked range');
});
