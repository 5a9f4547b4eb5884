// JWT through the real proxy, with tokens signed by jose (an independent
// implementation) for every algorithm: valid, tampered, expired, not yet valid,
// wrong issuer/audience, alg none, algorithm confusion, unknown kid, claims
// forwarded, the token stripped, the cache, malformed input.
import t from 'tap';
import { createPublicKey } from 'node:crypto';
import { ALGS, b64url, makeKey, nowS, sign, startAuthProxy, type AuthProxy, type TestKey } from './helpers.js';
import { loadAdapter } from '../../../host/testing/index.js';
import { authWasm } from './helpers.js';

const ISS = 'https://idp.example.com';
const keys: TestKey[] = [];
for (const alg of ALGS) keys.push(await makeKey(alg, `k-${alg.toLowerCase()}`));
const byAlg = (alg: string) => keys.find((k) => k.alg === alg)!;
const rs = byAlg('RS256');
const hs = byAlg('HS256');

const claims = (extra: Record<string, unknown> = {}) => ({ iss: ISS, aud: 'orders', sub: 'user-42', exp: nowS() + 300, iat: nowS(), groups: ['dev', 'ops'], org: { id: 'acme' }, ...extra });

const provider = (extra: Record<string, unknown> = {}) => ({
  name: 'corp',
  issuer: ISS,
  audiences: ['orders', 'billing'],
  local_jwks: { keys: keys.map((k) => k.jwk) },
  claim_to_headers: [
    { claim: 'sub', header: 'x-user' },
    { claim: 'groups', header: 'x-groups' },
    { claim: 'org.id', header: 'x-org' },
  ],
  tenant_claim: 'org.id',
  forward_payload_header: 'x-jwt-payload',
  ...extra,
});

let p: AuthProxy;
t.before(async () => {
  p = await startAuthProxy({ realm: 'orders', jwt: { providers: [provider()] } });
});
t.teardown(() => p.close());

const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` });

/** Flips one base64url character in the middle of a segment (0 header, 1 payload, 2 signature). */
function tamper(tok: string, seg: number): string {
  const parts = tok.split('.');
  const s = parts[seg]!;
  const i = Math.floor(s.length / 2);
  parts[seg] = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  return parts.join('.');
}

t.test('every algorithm, signed by jose, verifies; a tampered signature or payload does not', async (t) => {
  for (const k of keys) {
    const tok = await sign(k, claims({ sub: `user-${k.alg}` }));
    const ok = await p.get('/orders', bearer(tok));
    t.equal(ok.status, 200, `${k.alg} verifies`);
    t.equal(ok.json.headers['x-auth-principal'], `user-${k.alg}`, `${k.alg}: sub is the principal`);
    const badSig = await p.get('/orders', bearer(tamper(tok, 2)));
    t.equal(badSig.status, 401, `${k.alg}: tampered signature refused`);
    t.equal(badSig.json.error, 'invalid_token');
    const [h, , s] = tok.split('.');
    const forged = `${h}.${b64url(claims({ sub: 'admin' }))}.${s}`;
    t.equal((await p.get('/orders', bearer(forged))).status, 401, `${k.alg}: payload swapped under a valid signature refused`);
  }
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'bad_signature' }), 18);
});

t.test('responses: 401 with a Bearer challenge, a stable code and nothing an attacker can use', async (t) => {
  const none = await p.get('/orders');
  t.equal(none.status, 401);
  t.equal(none.headers['www-authenticate'], 'Bearer realm="orders"');
  t.equal(none.json.error, 'missing_credentials');
  const expired = await p.get('/orders', bearer(await sign(rs, claims({ exp: nowS() - 3600 }))));
  const badSig = await p.get('/orders', bearer(tamper(await sign(rs, claims()), 2)));
  for (const r of [expired, badSig]) {
    t.equal(r.status, 401);
    t.equal(r.headers['www-authenticate'], 'Bearer realm="orders", error="invalid_token"');
    t.same(Object.keys(r.json).sort(), ['error', 'message', 'request_id']);
    t.equal(r.json.error, 'invalid_token');
    t.equal(r.json.message, 'The access token is not valid.');
  }
  t.equal(expired.body.replace(/"request_id":"[^"]+"/, ''), badSig.body.replace(/"request_id":"[^"]+"/, ''), 'an expired token and a forged one look the same to the client');
});

t.test('exp, nbf and clock skew (60 s by default); required exp; max lifetime', async (t) => {
  const at = async (c: Record<string, unknown>) => (await p.get('/o', bearer(await sign(rs, claims(c))))).status;
  t.equal(await at({ exp: nowS() - 120 }), 401, 'expired beyond the skew');
  t.equal(await at({ exp: nowS() - 30 }), 200, 'expired within the skew');
  t.equal(await at({ nbf: nowS() + 120 }), 401, 'not yet valid beyond the skew');
  t.equal(await at({ nbf: nowS() + 30 }), 200, 'not yet valid within the skew');
  t.equal(await at({ exp: undefined }), 401, 'exp is required by default');
  t.equal(await at({ exp: 'tomorrow' }), 401, 'a non-numeric exp is malformed');
  t.equal(await at({ exp: nowS() + 60.5 }), 200, 'NumericDate may have a fraction');
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'token_expired' }), 2);
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'token_not_yet_valid' }), 1);
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'missing_exp' }), 1);

  const q = await startAuthProxy({ jwt: { providers: [provider({ clock_skew_seconds: 0, require_expiration: false, max_lifetime_seconds: 600 })] } });
  t.teardown(() => q.close());
  const qa = async (c: Record<string, unknown>) => (await q.get('/o', bearer(await sign(rs, claims(c))))).status;
  t.equal(await qa({ exp: nowS() - 5 }), 401, 'no skew');
  t.equal(await qa({ exp: undefined }), 401, 'max_lifetime needs exp');
  t.equal(await qa({ iat: nowS(), exp: nowS() + 601 }), 401, 'lifetime over max_lifetime_seconds');
  t.equal(await qa({ iat: nowS(), exp: nowS() + 599 }), 200);
  const r = await startAuthProxy({ jwt: { providers: [provider({ require_expiration: false })] } });
  t.teardown(() => r.close());
  t.equal((await r.get('/o', bearer(await sign(rs, claims({ exp: undefined }))))).status, 200, 'require_expiration: false');
});

t.test('issuer and audience', async (t) => {
  const st = async (c: Record<string, unknown>) => (await p.get('/o', bearer(await sign(rs, claims(c))))).status;
  t.equal(await st({ iss: 'https://evil.example.com' }), 401, 'wrong issuer');
  t.equal(await st({ iss: undefined }), 401, 'no issuer');
  t.equal(await st({ aud: 'payments' }), 401, 'wrong audience');
  t.equal(await st({ aud: undefined }), 401, 'no audience');
  t.equal(await st({ aud: ['payments', 'billing'] }), 200, 'audience list: any one configured audience');
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'unknown_issuer' }), 2);
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'audience_mismatch' }), 2);
});

t.test('alg none, algorithm confusion and unknown kid are refused', async (t) => {
  const payload = b64url(claims());
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    const head = b64url({ alg, typ: 'JWT' });
    t.equal((await p.get('/o', bearer(`${head}.${payload}.`))).status, 401, `alg ${alg}, empty signature`);
    t.equal((await p.get('/o', bearer(`${head}.${payload}.${b64url('x')}`))).status, 401, `alg ${alg}, some signature`);
    t.equal((await p.get('/o', bearer(`${head}.${payload}`))).status, 401, `alg ${alg}, two segments`);
  }
  // An attacker signs HS256 with the RSA public key (as PEM, as DER, as the JWK) as the secret, naming the RSA key.
  const pub = createPublicKey({ key: rs.jwk as never, format: 'jwk' });
  const secrets = [
    Buffer.from(pub.export({ format: 'pem', type: 'spki' }) as string),
    pub.export({ format: 'der', type: 'spki' }),
    Buffer.from(JSON.stringify(rs.jwk)),
  ];
  for (const secret of secrets) {
    const forged = await sign({ alg: 'HS256', kid: rs.kid, signing: new Uint8Array(secret), jwk: {} }, claims({ sub: 'admin' }));
    t.equal((await p.get('/o', bearer(forged))).status, 401, 'HS256 with the RSA key as secret');
    const noKid = await sign({ alg: 'HS256', kid: rs.kid, signing: new Uint8Array(secret), jwk: {} }, claims({ sub: 'admin' }), { kid: undefined });
    t.equal((await p.get('/o', bearer(noKid))).status, 401, 'the same without a kid');
  }
  // A valid ES256 token relabelled ES384 or HS256 (same kid): the key does not fit the algorithm.
  const es = await sign(byAlg('ES256'), claims());
  const [, esPayload, esSig] = es.split('.');
  for (const alg of ['ES384', 'HS256', 'RS256']) {
    t.equal((await p.get('/o', bearer(`${b64url({ alg, kid: byAlg('ES256').kid })}.${esPayload}.${esSig}`))).status, 401, `ES256 key under ${alg}`);
  }
  const unknownKid = await sign(rs, claims(), { kid: 'k-rotated-away' });
  t.equal((await p.get('/o', bearer(unknownKid))).status, 401, 'unknown kid');
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'alg_not_allowed' }), 4, 'alg none with a signature');
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'key_mismatch' }), 6, 'the named key does not fit the algorithm');
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'unknown_kid' }), 1);
});

t.test('a token without kid is tried against the keys that fit its algorithm', async (t) => {
  for (const alg of ['HS384', 'RS512', 'ES256']) {
    const tok = await sign(byAlg(alg), claims(), { kid: undefined });
    t.equal((await p.get('/o', bearer(tok))).status, 200, alg);
  }
});

t.test('claims forwarded as headers and properties; the token stripped unless forward: true', async (t) => {
  const tok = await sign(hs, claims());
  const r = await p.get('/orders', { ...bearer(tok), 'x-user': 'forged', 'x-groups': 'admin', 'x-jwt-payload': 'forged', 'x-auth-tenant': 'forged' });
  t.equal(r.status, 200);
  const h = r.json.headers;
  t.equal(h['x-user'], 'user-42');
  t.equal(h['x-groups'], 'dev,ops', 'array claims joined with ","');
  t.equal(h['x-org'], 'acme', 'nested claim by dotted path');
  t.equal(h['x-auth-principal'], 'user-42');
  t.equal(h['x-auth-tenant'], 'acme', 'tenant_claim');
  t.same(JSON.parse(Buffer.from(h['x-jwt-payload'], 'base64url').toString()), claims({ exp: JSON.parse(Buffer.from(tok.split('.')[1]!, 'base64url').toString()).exp, iat: JSON.parse(Buffer.from(tok.split('.')[1]!, 'base64url').toString()).iat }));
  t.equal(h.authorization, undefined, 'token stripped by default (Envoy forward: false)');

  // without the claim the client's forged header is still removed
  const r2 = await p.get('/orders', { ...bearer(await sign(hs, claims({ groups: undefined }))), 'x-groups': 'admin' });
  t.equal(r2.json.headers['x-groups'], undefined);
  // control characters in a claim never become a header
  const r3 = await p.get('/orders', bearer(await sign(hs, claims({ sub: 'a\r\nx-injected: 1' }))));
  t.equal(r3.status, 200);
  t.equal(r3.json.headers['x-user'], undefined);
  t.equal(r3.json.headers['x-auth-principal'], undefined);
  t.equal(r3.json.headers['x-injected'], undefined);

  const q = await startAuthProxy({ jwt: { providers: [provider({ forward: true, sources: [{ query: 'token' }] })] } });
  t.teardown(() => q.close());
  const kept = await q.get(`/o?token=${await sign(hs, claims())}&x=1`);
  t.equal(kept.status, 200);
  t.match(kept.json.url, /^\/o\?token=ey.*&x=1$/, 'forward: true keeps it');
});

t.test('properties for later adapters in the same request', async (t) => {
  const h = await loadAdapter(await authWasm(), { config: { jwt: { providers: [provider()] } }, logLevel: 'warn' });
  t.teardown(() => h.close());
  const tok = await sign(byAlg('ES256'), claims());
  const s = h.stream({ path: '/orders', headers: bearer(tok) });
  const d = await s.requestHeaders(true);
  t.equal(d.action, 'continue');
  const fs = s.stream.filterState;
  const str = (k: string) => (fs.get(k) === undefined ? undefined : Buffer.from(fs.get(k)!).toString());
  t.equal(str('mixer.principal'), 'user-42');
  t.equal(str('mixer.tenant'), 'acme');
  t.equal(str('mixer.auth_method'), 'jwt');
  t.equal(str('mixer.jwt_issuer'), ISS);
  t.equal(str('mixer.jwt_provider'), 'corp');
  t.equal(JSON.parse(str('mixer.jwt_payload')!).sub, 'user-42');
  s.finish();
});

t.test('token sources: custom header with prefix, query parameter, cookie; every token present must verify', async (t) => {
  const q = await startAuthProxy({
    jwt: { providers: [provider({ sources: [{ header: 'x-token' }, { header: 'authorization', prefix: 'JWT ' }, { query: 'access_token' }, { cookie: 'session' }] })] },
  });
  t.teardown(() => q.close());
  const tok = await sign(rs, claims());
  t.equal((await q.get('/o', { 'x-token': tok })).status, 200);
  t.equal((await q.get('/o', { authorization: `jwt ${tok}` })).status, 200);
  t.equal((await q.get('/o', { authorization: `Bearer ${tok}` })).status, 401, 'a source not configured is not read');
  t.equal((await q.get(`/o?access_token=${tok}`)).status, 200);
  t.equal((await q.get('/o', { cookie: `a=b; session=${tok}` })).status, 200);
  t.equal((await q.get(`/o?access_token=${tok}`, { 'x-token': tok })).status, 200, 'the same token twice');
  const other = await sign(byAlg('ES384'), claims());
  t.equal((await q.get(`/o?access_token=${other}`, { 'x-token': tok })).status, 200, 'two valid tokens');
  t.equal((await q.get(`/o?access_token=${tamper(other, 2)}`, { 'x-token': tok })).status, 401, 'one valid and one forged: refused');
});

t.test('required claims and the algorithm allow-list', async (t) => {
  const q = await startAuthProxy({ jwt: { providers: [provider({ required_claims: ['email', 'org.id'], algorithms: ['RS256', 'ES256'] })] } });
  t.teardown(() => q.close());
  t.equal((await q.get('/o', bearer(await sign(rs, claims({ email: 'a@b.c' }))))).status, 200);
  t.equal((await q.get('/o', bearer(await sign(rs, claims())))).status, 401, 'missing email');
  t.equal((await q.get('/o', bearer(await sign(rs, claims({ email: 'a@b.c', org: {} }))))).status, 401, 'missing org.id');
  t.equal((await q.get('/o', bearer(await sign(hs, claims({ email: 'a@b.c' }))))).status, 401, 'HS256 not in the allow-list');
  t.equal(await q.metric('auth_denied_total', { status: '401', reason: 'missing_claim' }), 2);
  t.equal(await q.metric('auth_denied_total', { status: '401', reason: 'alg_not_allowed' }), 1);
});

t.test('malformed tokens are refused without trouble', async (t) => {
  const good = await sign(rs, claims());
  const [h, pl, s] = good.split('.') as [string, string, string];
  const bad = [
    'abc', 'a.b', 'a.b.c.d', '..', `${h}.${pl}.${s}.`, `${h}..${s}`, `.${pl}.${s}`,
    `${h}.${pl}.${s}=`, `${h}=.${pl}.${s}`, `${h}.${pl}.${s.slice(0, -1)}`, `${h}.${pl}.${s}A`,
    `${b64url('not json')}.${pl}.${s}`, `${b64url('[1]')}.${pl}.${s}`, `${h}.${b64url('"str"')}.${s}`,
    `${b64url('{"alg":"RS256","alg":"none"}')}.${pl}.${s}`,
    `${b64url({ alg: 'RS256', kid: rs.kid, crit: ['exp'] })}.${pl}.${s}`,
    `${b64url({ alg: 'RS256', kid: 7 })}.${pl}.${s}`,
    `${h}.${b64url({ ...claims(), sub: 42 })}.${s}`,
    `${h}.${pl}.${s.replace(/[A-Za-z]/, '+')}`,
    `${h}.${pl}.${'A'.repeat(9000)}`,
  ];
  for (const tok of bad) t.equal((await p.get('/o', bearer(tok))).status, 401, tok.slice(0, 40));
  // non-canonical base64url (unused trailing bits set) is a second spelling of the same signature: refused
  const es = await sign(byAlg('ES256'), claims()); // 64-byte signature: 86 chars, 4 unused bits
  const last = es.at(-1)!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const twin = es.slice(0, -1) + alphabet[alphabet.indexOf(last) | 1];
  t.not(twin, es);
  t.equal((await p.get('/o', bearer(twin))).status, 401, 'non-canonical base64url');
  t.equal((await p.get('/o', bearer(es))).status, 200);
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'token_too_large' }), 1);
});

t.test('verified tokens are cached (bounded, honouring exp)', async (t) => {
  const q = await startAuthProxy({ jwt: { providers: [provider({ clock_skew_seconds: 0 })], cache: { max_entries: 2 } } });
  t.teardown(() => q.close());
  const toks = await Promise.all([1, 2, 3].map((i) => sign(rs, claims({ sub: `u${i}` }))));
  for (let round = 0; round < 2; round++) for (const tok of toks.slice(0, 2)) t.equal((await q.get('/o', bearer(tok))).status, 200);
  t.equal(await q.metric('auth_jwt_cache_total', { result: 'miss' }), 2);
  t.equal(await q.metric('auth_jwt_cache_total', { result: 'hit' }), 2);
  await q.get('/o', bearer(toks[2]!)); // evicts the oldest
  await q.get('/o', bearer(toks[0]!));
  t.equal(await q.metric('auth_jwt_cache_total', { result: 'miss' }), 4, 'a full cache evicts the oldest entry');
  // a cached token still expires
  const exp = nowS() + 3;
  const short = await sign(rs, claims({ exp }));
  t.equal((await q.get('/o', bearer(short))).status, 200);
  t.equal((await q.get('/o', bearer(short))).status, 200);
  await new Promise((r) => setTimeout(r, (exp + 1) * 1000 - Date.now() + 50)); // past exp, by the clock the adapter reads
  const late = await q.get('/o', bearer(short));
  t.equal(late.status, 401, 'the cached token expired');
  t.equal(await q.metric('auth_denied_total', { status: '401', reason: 'token_expired' }), 1);
});

t.test('no token, key or secret in the logs', async (t) => {
  const text = JSON.stringify(p.logs);
  t.notMatch(text, /eyJ[A-Za-z0-9_-]{10,}/, 'no JWT');
  for (const k of keys) {
    if (k.jwk.k) t.notOk(text.includes(k.jwk.k as string), `${k.alg} secret`);
  }
  t.ok(p.logs.some((r) => r.source === 'auth' && r.level === 'debug' && /^deny 401 reason=bad_signature principal=anonymous GET \/orders from 127\.0\.0\.1:\d+$/.test(r.message)));
});

t.test('config errors', async (t) => {
  await t.rejects(startAuthProxy({ jwt: { providers: [{ issuer: ISS }] } }), { message: /exactly one of local_jwks, remote_jwks/ });
  await t.rejects(startAuthProxy({ jwt: { providers: [provider({ algorithms: ['none'] })] } }), { message: /"none" is not supported/ });
  await t.rejects(startAuthProxy({ jwt: { providers: [provider({ local_jwks: { keys: [{ kty: 'oct', k: 'c2hvcnQ' }] } })] } }), {
    message: /has no usable keys \(key 0: HMAC secret shorter than 32 bytes\)/,
  });
  await t.rejects(startAuthProxy({ jwt: { providers: [provider({ local_jwks: '{"keys": [' })] } }), { message: /local_jwks": is not valid JSON/ });
  await t.rejects(startAuthProxy({ jwt: { providers: [provider({ issuer: 5, claim_to_headers: [{ claim: 'sub', header: 'bad header' }] })] } }), {
    message: /"jwt.providers\[0\].issuer": must be a string.*claim_to_headers\[0\].header": is not a valid header name/,
  });
});
