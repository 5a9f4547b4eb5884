// The benchmark's adapter chains and proxy configurations, written from the adapters'
// READMEs and config.example.json files (realistic settings, nothing turned off to look
// fast), plus the credentials the load generator sends.
//
// Chain of N adapters (the "cost vs number of adapters" sweep):
//   1: auth                    API keys (100 keys, SHA-256 in the module) + JWT (ES256, local JWKS,
//                              verified-token cache on) + 2 rules (DENY by CIDR, ALLOW /api/** when
//                              authenticated), principal and tenant forwarded
//   2: + quota                 per-tenant sliding window and per-IP token bucket (local mode), with
//                              limits high enough never to deny during a run, draft RateLimit headers
//   4: + logging, prometheus   JSON access log of every request (file sink), Istio's standard metrics
//   8: + auth-b, quota-b,      a second copy of each policy adapter (own config, own VM) and a second
//        logging-b, header-check  access log (Envoy text format); header-check (the example adapter)
//                              instead of a second prometheus, whose istio_* families would clash
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

const sha = (s) => createHash('sha256').update(s).digest('hex');

export async function makeCredentials() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-es256', alg: 'ES256', use: 'sig' };
  const exp = Math.floor(Date.now() / 1000) + 6 * 3600;
  const jwt = await new SignJWT({ sub: 'user-7f3a9c', org_id: 'globex', groups: ['dev', 'ops'], scope: 'orders:read orders:write' })
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'JWT' })
    .setIssuer('https://login.example.com')
    .setAudience('orders')
    .setIssuedAt(exp - 3600)
    .setExpirationTime(exp)
    .sign(privateKey);
  return { apiKey: 'bk_live_3f9a1c0e7d2b4a6f8e1c3b5d7f9a2c4e', jwt, jwk };
}

function authConfig(c) {
  return {
    realm: 'orders-api',
    requires: 'any',
    principal_header: 'x-auth-principal',
    tenant_header: 'x-auth-tenant',
    api_keys: {
      sources: [{ header: 'x-api-key' }],
      forward: true,
      keys: [{ name: 'billing-svc', tenant: 'acme', sha256: sha(c.apiKey) }, ...Array.from({ length: 99 }, (_, i) => ({ name: `svc-${i}`, tenant: `t${i % 7}`, sha256: sha(`other-key-${i}`) }))],
    },
    jwt: {
      providers: [
        {
          name: 'corp',
          issuer: 'https://login.example.com',
          audiences: ['orders'],
          algorithms: ['ES256', 'RS256'],
          local_jwks: { keys: [c.jwk] },
          required_claims: ['sub'],
          tenant_claim: 'org_id',
          claim_to_headers: [{ claim: 'sub', header: 'x-user' }],
          forward: true,
        },
      ],
      cache: { max_entries: 256, max_token_bytes: 2048 },
    },
    rules: [
      { name: 'block-abusers', action: 'DENY', match: { remote_ips: ['203.0.113.0/24', '2001:db8:bad::/48'] } },
      { name: 'api', action: 'ALLOW', match: { paths: ['/api/**'], methods: ['GET', 'POST'], authenticated: true } },
    ],
    default_action: 'DENY',
  };
}

const quotaConfig = (domain) => ({
  domain,
  headers: 'draft',
  limits: [
    { name: 'per_tenant', algorithm: 'sliding_window', limit: 50_000_000, window: '1m', dimensions: { tenant: 'header:x-auth-tenant' } },
    { name: 'per_ip', algorithm: 'token_bucket', limit: 1_000_000, window: '1s', dimensions: { ip: 'source.ip' } },
  ],
});

const loggingConfig = { format: 'json', add_fields: { tenant: '%REQ(X-AUTH-TENANT)%' }, sample_ratio: 1, exclude_paths: ['/healthz'] };
const prometheusConfig = {
  preset: 'istio',
  reporter: 'destination',
  exclude_paths: ['/healthz'],
  overrides: [{ match: { metric: 'ALL_METRICS' }, tagOverrides: { destination_workload: { value: "'orders'" }, request_host: { operation: 'UPSERT', value: 'request.host' } } }],
};

/** The plugin list for a chain of n adapters (0, 1, 2, 4 or 8). */
export function chainPlugins(n, creds, wasmDir) {
  const w = (name) => resolve(wasmDir, `${name}.wasm`);
  const all = [
    { name: 'auth', url: w('auth'), phase: 'AUTHN', failStrategy: 'FAIL_CLOSE', pluginConfig: authConfig(creds) },
    { name: 'quota', url: w('quota'), phase: 'AUTHZ', failStrategy: 'FAIL_CLOSE', pluginConfig: quotaConfig('bench'), remote: { prefetch: true } },
    { name: 'logging', url: w('logging'), phase: 'STATS', failStrategy: 'FAIL_OPEN', pluginConfig: loggingConfig },
    { name: 'prometheus', url: w('prometheus'), phase: 'STATS', failStrategy: 'FAIL_OPEN', pluginConfig: prometheusConfig },
    { name: 'auth-b', url: w('auth'), phase: 'AUTHN', failStrategy: 'FAIL_CLOSE', pluginConfig: { ...authConfig(creds), principal_header: 'x-auth-principal-b', tenant_header: 'x-auth-tenant-b' } },
    { name: 'quota-b', url: w('quota'), phase: 'AUTHZ', failStrategy: 'FAIL_CLOSE', pluginConfig: quotaConfig('bench-b'), remote: { prefetch: true } },
    {
      name: 'logging-b',
      url: w('logging'),
      phase: 'STATS',
      failStrategy: 'FAIL_OPEN',
      pluginConfig: { format: 'text', log_name: 'access-text', sample_ratio: 1 },
    },
    { name: 'header-check', url: w('header-check'), phase: 'AUTHZ', failStrategy: 'FAIL_CLOSE', pluginConfig: { header: 'x-auth-principal' } },
  ];
  return all.slice(0, n).map((p) => structuredClone(p));
}

/**
 * A proxy (or adapter server) configuration.
 * mode: 'none' (no adapters), 'inproc', 'naive' (remote, no cache / batching / prefetch),
 * 'prod' (remote, check cache + report batching + quota prefetch: Mixer's production setting).
 */
export function benchConfig({ mode, n, creds, wasmDir, upstreamPort, remoteAddress, logDir }) {
  const plugins = mode === 'none' ? [] : chainPlugins(n, creds, wasmDir);
  if (mode !== 'prod') for (const p of plugins) delete p.remote; // prefetch only in Mixer's production setting
  const config = {
    listen: { address: '127.0.0.1', port: 0 },
    admin: { address: '127.0.0.1', port: 0 },
    logLevel: 'warn',
    routes: [{ name: 'orders', upstream: `http://127.0.0.1:${upstreamPort}`, timeoutMs: 10_000 }],
    upstream: { maxSockets: 256, keepAliveMs: 60_000 },
    plugins,
    accessLog: {
      sinks: [{ type: 'file', name: 'file', path: resolve(logDir, `access-${mode}-${n}.log`), maxBytes: 64 * 1024 * 1024, maxFiles: 1 }],
    },
  };
  if (mode === 'naive' || mode === 'prod') {
    const on = mode === 'prod';
    config.remote = {
      address: remoteAddress ?? '127.0.0.1:0',
      plugins: 'all',
      timeoutMs: 2000,
      checkCache: { enabled: on },
      reportBatch: { enabled: on, maxEntries: 100, maxDelayMs: 1000 },
      quotaPrefetch: { enabled: on },
    };
  }
  return config;
}

/** The requests the load generators send: POST /api/v1/orders with a 1 KiB body, half with an API key, half with a JWT. */
export function requestKinds(creds) {
  const body = Buffer.alloc(1024, 'b');
  const head = (auth) =>
    'POST /api/v1/orders?page=2 HTTP/1.1\r\nHost: orders.bench.local\r\nUser-Agent: wasm-mixer-bench/1\r\nAccept: */*\r\n' +
    'Content-Type: application/octet-stream\r\nContent-Length: 1024\r\n' + auth + '\r\n';
  return [
    { kind: 'api_key', head: head(`x-api-key: ${creds.apiKey}\r\n`), body: body.toString('base64') },
    { kind: 'jwt', head: head(`Authorization: Bearer ${creds.jwt}\r\n`), body: body.toString('base64') },
  ];
}
