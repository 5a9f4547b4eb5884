// The module's own SHA-2/HMAC against node:crypto at every padding boundary, long HMAC
// keys, and memory: a full token cache of large tokens fits. In-process (the harness),
// because these are many small requests.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { loadAdapter } from '../../../host/testing/index.js';
import { authWasm, makeKey, nowS, sha256hex, sign, type TestKey } from './helpers.js';

const wasm = await authWasm();

t.test('SHA-256 of API keys of every length from 1 to 300 bytes (one and several blocks, all padding cases)', async (t) => {
  const keys = Array.from({ length: 300 }, (_, i) => randomBytes(i + 1).toString('base64url').slice(0, i + 1));
  const h = await loadAdapter(wasm, { config: { api_keys: { keys: keys.map((k, i) => ({ name: `k${i}`, sha256: sha256hex(k) })) } }, logLevel: 'warn' });
  t.teardown(() => h.close());
  let ok = 0;
  for (const [i, k] of keys.entries()) {
    const r = await h.run({ headers: { 'x-api-key': k } });
    if (r.status === 200 && r.upstream?.headers['x-auth-principal'] === `k${i}`) ok++;
    else t.fail(`key of length ${k.length}`);
  }
  t.equal(ok, 300);
  const multibyte = 'ключ-🔑-' + 'é'.repeat(70);
  const h2 = await loadAdapter(wasm, { config: { api_keys: { keys: [{ name: 'utf8', sha256: sha256hex(multibyte) }] } }, logLevel: 'warn' });
  t.teardown(() => h2.close());
  t.equal((await h2.run({ headers: { 'x-api-key': multibyte } })).status, 200, 'UTF-8 keys hash as UTF-8');
});

t.test('HMAC: HS256/384/512 over signing inputs of every length across the block boundaries, and long secrets', async (t) => {
  const iss = 'https://idp.example.com';
  const keys: TestKey[] = [await makeKey('HS256', 'a'), await makeKey('HS384', 'b'), await makeKey('HS512', 'c')];
  // secrets longer than the hash block (64 / 128 bytes) are hashed first (RFC 2104)
  for (const [alg, len, kid] of [['HS256', 100, 'long256'], ['HS512', 200, 'long512'], ['HS384', 128, 'block384']] as const) {
    const secret = randomBytes(len);
    keys.push({ alg, kid, signing: new Uint8Array(secret), jwk: { kty: 'oct', kid, alg, k: secret.toString('base64url') } });
  }
  const h = await loadAdapter(wasm, { config: { jwt: { providers: [{ issuer: iss, local_jwks: { keys: keys.map((k) => k.jwk) } }], cache: { max_entries: 0 } } }, logLevel: 'warn' });
  t.teardown(() => h.close());
  let ok = 0;
  let n = 0;
  for (const k of keys) {
    for (let pad = 0; pad < 140; pad++) {
      const tok = await sign(k, { iss, exp: nowS() + 60, p: 'x'.repeat(pad) });
      n++;
      if ((await h.run({ headers: { authorization: `Bearer ${tok}` } })).status === 200) ok++;
      else t.fail(`${k.kid} with padding ${pad}`);
    }
  }
  t.equal(ok, n, `${n} tokens`);
});

t.test('a full cache of the largest cacheable tokens stays within half the module memory', async (t) => {
  const iss = 'https://idp.example.com';
  const k = await makeKey('HS256', 'a');
  const h = await loadAdapter(wasm, { config: { jwt: { providers: [{ issuer: iss, local_jwks: { keys: [k.jwk] } }] } }, logLevel: 'warn' });
  t.teardown(() => h.close());
  const blob = randomBytes(2100).toString('base64url'); // tokens just under the 4096-byte cache limit
  let ok = 0;
  for (let i = 0; i < 1500; i++) {
    const tok = await sign(k, { iss, exp: nowS() + 600, sub: `u${i}`, blob });
    if (i === 0) t.ok(tok.length > 3900 && tok.length <= 4096, `token of ${tok.length} bytes`);
    if ((await h.run({ headers: { authorization: `Bearer ${tok}` } })).status === 200) ok++;
  }
  t.equal(ok, 1500, 'every request answered: the cache evicts instead of growing');
  t.equal(h.metric("auth_jwt_cache_total", { result: "miss" }), 1500);
  t.equal(h.logsAt('error').length, 0, 'no crash');
  t.ok(h.host.plugins[0]!.adapter.healthy);
  const mem = h.host.plugins[0]!.adapter.details().memoryBytes;
  t.ok(mem <= 16 * 1024 * 1024, `linear memory ${mem / 1048576} MiB: half the 32 MiB cap at most`);
});

t.test('the cache size is bounded by what the module can hold', async (t) => {
  const jwk = (await makeKey('HS256', 'a')).jwk;
  await t.rejects(loadAdapter(wasm, { config: { jwt: { providers: [{ local_jwks: { keys: [jwk] } }], cache: { max_entries: 1000 } } } }), {
    message: /max_entries x max_token_bytes must not exceed 1048576/,
  });
  const h = await loadAdapter(wasm, { config: { jwt: { providers: [{ local_jwks: { keys: [jwk] } }], cache: { max_entries: 1024, max_token_bytes: 1024 } } }, logLevel: 'warn' });
  h.close();
});
