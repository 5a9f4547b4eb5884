// The admin port through the real proxy: /config shows no secret whatever form the config
// takes (JSON text, a single JWK, a JWKS as JSON text), and read endpoints refuse a Host
// header that is not the admin address (DNS rebinding).
import http from 'node:http';
import t from 'tap';
import { startDemoUpstream, startProxy } from '../../host/src/index.js';

const HMAC_K = 'c2VjcmV0LXNpZ25pbmcta2V5LWZvci1ocy0yNTYtdGVzdHMtMzItYnl0ZXM'; // base64url of a 40-byte secret
const RSA_D = 'rsa-private-exponent-d-value';
const DIGEST = 'f'.repeat(64);

function get(port: number, path: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false, setHost: host === undefined, headers: host !== undefined ? { host } : {} }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

t.test('/config: JSON-text pluginConfig, a single JWK and a JWKS as JSON text are redacted by JWK rules', async (t) => {
  const upstream = await startDemoUpstream(0);
  const jwk = { kty: 'oct', kid: 'hs', alg: 'HS256', k: HMAC_K };
  const rsa = { kty: 'RSA', kid: 'rs', n: 'public-modulus-n', e: 'AQAB', d: RSA_D, p: 'prime-p-value', q: 'prime-q-value', dp: 'dp-value-x', dq: 'dq-value-x', qi: 'qi-value-x' };
  const authConfig = {
    api_keys: { keys: [{ name: 'billing', tenant: 'acme', sha256: DIGEST }] },
    jwt: {
      providers: [
        { name: 'single', issuer: 'https://a.example', local_jwks: jwk },
        { name: 'text', issuer: 'https://b.example', local_jwks: JSON.stringify({ keys: [jwk, rsa] }) },
      ],
    },
  };
  const proxy = await startProxy({
    listen: { port: 0 },
    admin: { port: 0 },
    routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }],
    plugins: [
      // pluginConfig given as JSON text, the way a ConfigMap often carries it
      { name: 'auth-text', url: 'wasm/auth.wasm', pluginConfig: JSON.stringify(authConfig) },
      { name: 'auth-object', url: 'wasm/auth.wasm', pluginConfig: authConfig },
    ],
  });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const res = await get(proxy.adminPort!, '/config');
  t.equal(res.status, 200);
  for (const secret of [HMAC_K, RSA_D, 'prime-p-value', 'prime-q-value', 'dp-value-x', 'dq-value-x', 'qi-value-x', DIGEST]) {
    t.notMatch(res.body, secret, `${secret.slice(0, 12)}… is not shown`);
  }
  const config = JSON.parse(res.body) as { plugins: Array<{ pluginConfig: unknown }> };
  // JSON text stays JSON text, redacted; public members stay readable.
  const text = JSON.parse(config.plugins[0]!.pluginConfig as string) as typeof authConfig;
  t.same(text.api_keys.keys[0], { name: 'billing', tenant: 'acme', sha256: '[redacted]' });
  t.same(text.jwt.providers[0]!.local_jwks, { kty: 'oct', kid: 'hs', alg: 'HS256', k: '[redacted]' });
  const set = JSON.parse(text.jwt.providers[1]!.local_jwks as string) as { keys: Array<Record<string, string>> };
  t.same(set.keys[1], { kty: 'RSA', kid: 'rs', n: 'public-modulus-n', e: 'AQAB', d: '[redacted]', p: '[redacted]', q: '[redacted]', dp: '[redacted]', dq: '[redacted]', qi: '[redacted]' });
  const obj = config.plugins[1]!.pluginConfig as typeof authConfig;
  t.same(obj.jwt.providers[0]!.local_jwks, { kty: 'oct', kid: 'hs', alg: 'HS256', k: '[redacted]' });
});

t.test('admin read endpoints refuse a Host header that is not the admin address (DNS rebinding)', async (t) => {
  const proxy = await startProxy({ listen: { port: 0 }, admin: { port: 0 }, routes: [] });
  t.teardown(() => proxy.close());
  const port = proxy.adminPort!;
  for (const path of ['/config', '/adapters', '/metrics', '/ready', '/']) {
    const r = await get(port, path, `evil.example:${port}`);
    t.equal(r.status, 403, `${path} refuses Host: evil.example`);
    const body = JSON.parse(r.body) as { error: string; message: string };
    t.equal(body.error, 'ADMIN_FORBIDDEN');
    t.match(body.message, /is not the admin address/);
    t.match(body.message, `use http://127.0.0.1:${port}${path}`);
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, undefined]) {
    t.equal((await get(port, '/config', host)).status, 200, `Host ${host ?? '(none)'} is served`);
  }
});
