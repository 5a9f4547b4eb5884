// HMAC secrets and RFC 7518 §3.2 ("a key of the same size as the hash output or larger
// MUST be used"): 32 bytes for HS256, 48 for HS384, 64 for HS512. Checked when the key set
// loads (a key that can never verify is skipped with a warning, a set with none usable is
// refused), and a token that could only meet a too-short key is refused as key_too_short,
// not bad_signature. Through the real proxy; tokens signed with node:crypto (jose would
// refuse to sign with such keys).
import { createHmac, randomBytes } from 'node:crypto';
import t from 'tap';
import { b64url, nowS, startAuthProxy } from './helpers.js';

const ISS = 'https://idp.example.com';
const HASH = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' } as const;

function hsToken(alg: keyof typeof HASH, secret: Buffer, kid: string): string {
  const input = `${b64url({ alg, kid, typ: 'JWT' })}.${b64url({ iss: ISS, sub: 'ann', exp: nowS() + 300 })}`;
  return `${input}.${createHmac(HASH[alg], secret).update(input).digest('base64url')}`;
}

const oct = (secret: Buffer, kid: string, alg?: string) => ({ kty: 'oct', kid, k: secret.toString('base64url'), ...(alg ? { alg } : {}) });
const provider = (keys: unknown[], extra: Record<string, unknown> = {}) => ({ jwt: { providers: [{ name: 'corp', issuer: ISS, local_jwks: { keys }, ...extra }] } });

t.test('a key set whose only key is too short for its algorithm is refused at load', async (t) => {
  await t.rejects(startAuthProxy(provider([oct(randomBytes(40), 'k', 'HS512')])), {
    code: 'PLUGIN_CONFIGURE_FAILED',
    message: /has no usable keys \(key 0 \(kid "k"\): HS512 needs a secret of at least 64 bytes \(RFC 7518 section 3\.2\), this one has 40\)/,
  });
  await t.rejects(startAuthProxy(provider([oct(randomBytes(47), 'k', 'HS384')])), { message: /HS384 needs a secret of at least 48 bytes .*this one has 47/ });
  await t.rejects(startAuthProxy(provider([oct(randomBytes(40), 'k')], { algorithms: ['HS384', 'HS512'] })), {
    message: /key 0 \(kid "k"\): can never verify a token: it fits none of the provider's algorithms \(an HMAC secret of 40 bytes; HS256 needs 32, HS384 48, HS512 64\)/,
  });
});

t.test('a short key next to usable ones is skipped with a warning; secrets of exactly the hash size work', async (t) => {
  const short = randomBytes(40);
  const ok384 = randomBytes(48);
  const ok512 = randomBytes(64);
  const p = await startAuthProxy(provider([oct(short, 'short', 'HS512'), oct(ok384, 'k384', 'HS384'), oct(ok512, 'k512', 'HS512')]));
  t.teardown(() => p.close());
  const warn = p.logs.find((r) => r.level === 'warn' && r.message.includes('skipped key 0'));
  t.match(warn?.message, /jwt provider corp: skipped key 0 \(kid "short"\): HS512 needs a secret of at least 64 bytes/, 'warned at load');
  t.notOk(JSON.stringify(p.logs).includes(short.toString('base64url')), 'the secret is not logged');
  t.equal((await p.get('/', { authorization: `Bearer ${hsToken('HS384', ok384, 'k384')}` })).status, 200, 'HS384 with 48 bytes');
  t.equal((await p.get('/', { authorization: `Bearer ${hsToken('HS512', ok512, 'k512')}` })).status, 200, 'HS512 with 64 bytes');
  const r = await p.get('/', { authorization: `Bearer ${hsToken('HS512', short, 'short')}` });
  t.equal(r.status, 401, 'a token for the skipped key is refused');
  t.equal(await p.metric('auth_denied_total', { reason: 'unknown_kid' }), 1, 'as unknown_kid: the key is not in the set');
});

t.test('a 40-byte key without "alg" verifies HS256; an HS512 token for it is key_too_short, not bad_signature', async (t) => {
  const secret = randomBytes(40);
  const p = await startAuthProxy(provider([oct(secret, 'k40')]));
  t.teardown(() => p.close());
  t.equal((await p.get('/', { authorization: `Bearer ${hsToken('HS256', secret, 'k40')}` })).status, 200, 'HS256 verifies');
  const r = await p.get('/', { authorization: `Bearer ${hsToken('HS512', secret, 'k40')}` });
  t.equal(r.status, 401);
  t.equal(r.json.error, 'invalid_token', 'the client sees the same 401 as for any bad token');
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'key_too_short' }), 1, 'reason key_too_short');
  t.equal(await p.metric('auth_denied_total', { status: '401', reason: 'bad_signature' }), 0, 'not bad_signature');
  t.ok(p.logs.some((l) => /^deny 401 reason=key_too_short /.test(l.message)), 'in the debug log');
});
