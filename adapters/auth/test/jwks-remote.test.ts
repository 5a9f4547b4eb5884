// Remote JWKS through the real proxy: keys fetched with proxy_http_call from a JWKS
// endpoint served by this test, requests held until the first keys arrive, rotation
// picked up on an unknown kid (rate-limited) and on the refresh timer, failed
// refreshes keeping the last good keys, and one fetch for many waiting requests.
import t from 'tap';
import { makeKey, nowS, sign, startAuthProxy, startJwksServer, until, type TestKey } from './helpers.js';

const ISS = 'https://login.example.com';
const claims = (sub = 'u1') => ({ iss: ISS, sub, exp: nowS() + 600 });
const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` });

const a = await makeKey('RS256', 'key-a');
const b = await makeKey('ES256', 'key-b');
const c = await makeKey('RS256', 'key-c');

function config(remote: Record<string, unknown> = {}) {
  return {
    jwt: {
      providers: [
        {
          name: 'login',
          issuer: ISS,
          remote_jwks: { cluster: 'idp', uri: 'http://login.example.com/.well-known/jwks.json', timeout_ms: 1000, cache_duration_seconds: 60, min_refetch_seconds: 0.3, retry_seconds: 0.1, ...remote },
        },
      ],
    },
  };
}

t.test('rotation: first keys, a new kid fetched on demand (rate-limited), old keys dropped on refresh', async (t) => {
  const jwks = await startJwksServer([a.jwk]);
  // windows wide enough that a busy CI machine does not blur them: refetch on unknown kid at most
  // once a second, timer refresh every 3 s (each fetch restarts that period)
  const p = await startAuthProxy(config({ cache_duration_seconds: 3, min_refetch_seconds: 1 }), { clusters: { idp: { url: `http://127.0.0.1:${jwks.port}` } } });
  t.teardown(async () => {
    await p.close();
    await jwks.close();
  });

  const tokA = await sign(a, claims('alice'));
  const first = await p.get('/x', bearer(tokA));
  t.equal(first.status, 200, 'keys from the endpoint (the request waited for them if needed)');
  t.equal(first.json.headers['x-auth-principal'], 'alice');
  t.equal(await p.metric('auth_jwks_keys', { provider: 'login' }), 1);
  t.ok(jwks.hits >= 1);
  const startHits = jwks.hits;

  // the IdP adds key b; a token signed with it has an unknown kid: one refetch (once min_refetch_seconds
  // have passed since the last fetch), and the request waits for it
  jwks.keys = [a.jwk, b.jwk];
  await new Promise((r) => setTimeout(r, 1050));
  const tokB = await sign(b, claims('bob'));
  const second = await p.get('/x', bearer(tokB));
  t.equal(second.status, 200, 'new kid picked up by a refetch');
  t.equal(jwks.hits, startHits + 1, 'exactly one refetch');
  t.equal(await p.metric('auth_jwks_keys', { provider: 'login' }), 2);

  // a kid the IdP does not have: refetched at most once per min_refetch_seconds
  const tokC = await sign(c, claims('mallory'));
  await new Promise((r) => setTimeout(r, 1050));
  const h0 = jwks.hits;
  t.equal((await p.get('/x', bearer(tokC))).status, 401);
  t.equal(jwks.hits, h0 + 1, 'an unknown kid triggers a refetch');
  for (let i = 0; i < 5; i++) t.equal((await p.get('/x', bearer(tokC))).status, 401);
  t.equal(jwks.hits, h0 + 1, 'further unknown kids within min_refetch_seconds do not');
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'unknown_kid' }), 6);

  // the IdP retires key a: the refresh timer picks that up, and a cached token signed with a is refused
  t.equal((await p.get('/x', bearer(tokA))).status, 200, 'tokA verified and cached');
  jwks.keys = [b.jwk];
  const h1 = jwks.hits;
  t.ok(await until(async () => jwks.hits > h1 && (await p.metric('auth_jwks_keys', { provider: 'login' })) === 1, 8000), 'refreshed on the timer');
  t.equal((await p.get('/x', bearer(tokA))).status, 401, 'a retired key no longer verifies, even for a cached token');
  t.equal((await p.get('/x', bearer(tokB))).status, 200);
});

t.test('a failed or bad refresh keeps the last good keys; recovery', async (t) => {
  const jwks = await startJwksServer([a.jwk]);
  const p = await startAuthProxy(config({ cache_duration_seconds: 0.3 }), { clusters: { idp: { url: `http://127.0.0.1:${jwks.port}` } }, logLevel: 'info' });
  t.teardown(async () => {
    await p.close();
    await jwks.close();
  });
  const tokA = await sign(a, claims());
  t.equal((await p.get('/x', bearer(tokA))).status, 200);

  jwks.status = 500;
  t.ok(await until(async () => (await p.metric('auth_jwks_fetches_total', { provider: 'login', result: 'failed' })) >= 2, 4000), 'refreshes fail');
  t.equal((await p.get('/x', bearer(tokA))).status, 200, 'still verifying with the last good keys');
  t.equal((await p.get('/x', bearer(await sign(a, claims('fresh'))))).status, 200, 'also tokens never seen before');
  t.ok((await p.metric('auth_errors_total', { error: 'jwks_fetch_failed' })) >= 2);
  t.ok(p.logs.some((r) => r.level === 'warn' && /JWKS fetch failed \(status 500\); keeping the 1 keys loaded before/.test(r.message)));

  jwks.status = 200;
  jwks.body = '{"keys": [ {"kty": "RSA", "n": "AQAB"';
  const f0 = await p.metric('auth_jwks_fetches_total', { provider: 'login', result: 'failed' });
  t.ok(await until(async () => (await p.metric('auth_jwks_fetches_total', { provider: 'login', result: 'failed' })) > f0, 4000), 'an invalid body is a failed refresh');
  t.equal((await p.get('/x', bearer(await sign(a, claims('again'))))).status, 200);
  jwks.body = JSON.stringify({ keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB', kid: 'tiny' }] });
  const f1 = await p.metric('auth_jwks_fetches_total', { provider: 'login', result: 'failed' });
  t.ok(await until(async () => (await p.metric('auth_jwks_fetches_total', { provider: 'login', result: 'failed' })) > f1, 4000), 'a set with no usable key is a failed refresh');
  t.equal((await p.get('/x', bearer(await sign(a, claims('still'))))).status, 200);

  jwks.body = null;
  jwks.keys = [c.jwk];
  t.ok(await until(async () => (await p.get('/x', bearer(await sign(c, claims())))).status === 200, 4000), 'recovers when the endpoint does');
});

t.test('endpoint down at start: 503 until keys can be loaded, then 200', async (t) => {
  const jwks = await startJwksServer([a.jwk]);
  jwks.status = 503;
  const p = await startAuthProxy(config({ retry_seconds: 0.1 }), { clusters: { idp: { url: `http://127.0.0.1:${jwks.port}` } } });
  t.teardown(async () => {
    await p.close();
    await jwks.close();
  });
  const tok = await sign(a, claims());
  t.ok(await until(() => jwks.hits >= 1));
  await new Promise((r) => setTimeout(r, 50));
  const r = await p.get('/x', bearer(tok));
  t.equal(r.status, 503);
  t.same(Object.keys(r.json).sort(), ['error', 'message', 'request_id']);
  t.equal(r.json.error, 'auth_unavailable');
  t.ok((await p.metric('auth_denied_total', { status: '503', reason: 'jwks_unavailable' })) >= 1);
  jwks.status = 200;
  t.ok(await until(async () => (await p.get('/x', bearer(tok))).status === 200, 4000));
});

t.test('one fetch serves many requests waiting for the same keys', async (t) => {
  const jwks = await startJwksServer([a.jwk]);
  const p = await startAuthProxy(config({ min_refetch_seconds: 0 }), { clusters: { idp: { url: `http://127.0.0.1:${jwks.port}` } } });
  t.teardown(async () => {
    await p.close();
    await jwks.close();
  });
  t.equal((await p.get('/x', bearer(await sign(a, claims())))).status, 200);
  const h0 = jwks.hits;
  jwks.keys = [a.jwk, b.jwk];
  const toks = await Promise.all(Array.from({ length: 20 }, (_, i) => sign(b, claims(`user-${i}`))));
  const rs = await Promise.all(toks.map((tok) => p.get('/x', bearer(tok))));
  t.same(rs.map((r) => r.status), Array(20).fill(200));
  t.same(rs.map((r) => r.json.headers['x-auth-principal']), toks.map((_, i) => `user-${i}`), 'each request resumed as itself');
  t.ok(jwks.hits - h0 <= 2, `a handful of fetches, not one per request (${jwks.hits - h0})`);
});

t.test('a JWKS cluster the plugin may not call is a configuration error', async (t) => {
  await t.rejects(startAuthProxy(config(), { clusters: {} }), { code: 'PLUGIN_CONFIGURE_FAILED', message: /cluster "idp" \(it must be in the proxy's clusters and granted to this plugin\)/ });
});

export type { TestKey };
