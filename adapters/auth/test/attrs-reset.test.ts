// One request's attributes never reach the next one: the adapter reuses one Attrs for every
// decision (match.ts Attrs.reset), so each request here follows one whose principal, tenant,
// claims, token, peer, path or method would change its answer if anything were left over.
import t from 'tap';
import { makeKey, nowS, sha256hex, sign, startAuthProxy } from './helpers.js';

const ISS = 'https://idp.example.com';
const KEY = 'plain-key-0000000000000000000001';

t.test('each decision starts from its own request', async (t) => {
  const hs = await makeKey('HS256', 'k1');
  const bearer = async (c: Record<string, unknown>) => ({ authorization: `Bearer ${await sign(hs, { iss: ISS, exp: nowS() + 300, ...c })}` });
  const p = await startAuthProxy({
    requires: 'optional',
    xff_trusted_hops: 1,
    api_keys: { keys: [{ name: 'plain', sha256: sha256hex(KEY) }] },
    jwt: { providers: [{ issuer: ISS, local_jwks: { keys: [hs.jwk] }, tenant_claim: 'org', claim_to_headers: [{ claim: 'sub', header: 'x-user' }] }] },
    rules: [
      { name: 'bad-net', action: 'DENY', match: { remote_ips: ['203.0.113.0/24'] } },
      { name: 'admins', action: 'ALLOW', match: { paths: ['/admin/**'], claims: [{ claim: 'groups', values: ['admin'] }] } },
      { name: 'members', action: 'ALLOW', match: { paths: ['/m/**'], authenticated: true } },
      { name: 'reads', action: 'ALLOW', match: { paths: ['/open/**'], methods: ['GET'] } },
    ],
    default_action: 'DENY',
  });
  t.teardown(() => p.close());
  const admin = await bearer({ sub: 'ann', org: 'acme', groups: ['admin'] });

  for (let round = 0; round < 2; round++) {
    const a = await p.get('/admin/x', admin);
    t.equal(a.status, 200, 'an admin token');
    t.equal(a.json.headers['x-auth-principal'], 'ann');
    t.equal(a.json.headers['x-auth-tenant'], 'acme');
    t.equal(a.json.headers['x-user'], 'ann');

    const k = await p.get('/m/x', { 'x-api-key': KEY, 'x-user': 'forged' });
    t.equal(k.status, 200, 'an API key after a token');
    t.equal(k.json.headers['x-auth-principal'], 'plain');
    t.equal(k.json.headers['x-auth-tenant'], undefined, 'no tenant left from the token');
    t.equal(k.json.headers['x-user'], undefined, 'no claim header left from the token');

    t.equal((await p.get('/admin/x', { 'x-api-key': KEY })).status, 403, 'no claims left from the token');
    t.equal((await p.get('/m/x')).status, 403, 'anonymous after authenticated requests');
    t.equal((await p.get('/open/x', { 'x-forwarded-for': '203.0.113.9' })).status, 403, 'a client in the bad net');
    t.equal((await p.get('/open/x')).status, 200, 'the next client is not');
    t.equal((await p.get('/open/x', {}, { method: 'POST' })).status, 403, 'a POST');
    t.equal((await p.get('/open/y')).status, 200, 'then a GET of another path');
  }
});
