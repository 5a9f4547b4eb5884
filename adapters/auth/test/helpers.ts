// Shared by the auth adapter's tests: one build of the adapter per source
// digest (test files run in parallel and reuse it), a proxy with the adapter in
// front of an echo upstream on real sockets, a JWKS server, and token signing
// with jose (an independent JWT implementation).
import http from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload } from 'jose';
import { buildAdapter } from '../../../host/src/build/build-adapter.js';
import { startDemoUpstream, startProxy } from '../../../host/src/index.js';
import type { MixerConfig } from '../../../host/src/config/schema.js';
import { createLogger, type LogRecord } from '../../../host/src/log/logger.js';

const here = dirname(fileURLToPath(import.meta.url));
const adapterDir = join(here, '..');

/** Builds adapters/auth once per content of its sources (and the SDK's), shared across test files. */
export async function authWasm(): Promise<string> {
  const h = createHash('sha256');
  for (const dir of [join(adapterDir, 'assembly'), join(adapterDir, '..', '..', 'sdk', 'assembly'), join(adapterDir, '..', '..', 'sdk', 'assembly', 'abi')]) {
    for (const f of (await readdir(dir)).sort()) if (f.endsWith('.ts')) h.update(f).update(await readFile(join(dir, f)));
  }
  h.update(await readFile(join(adapterDir, 'adapter.json')));
  const out = join(tmpdir(), `wasm-mixer-auth-${h.digest('hex').slice(0, 16)}`);
  const wasm = join(out, 'auth.wasm');
  if (!existsSync(wasm)) {
    await mkdir(out, { recursive: true });
    await buildAdapter(adapterDir, { outDir: out }); // writes via rename: safe when two files build at once
  }
  return wasm;
}

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
}

export function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; localAddress?: string; host?: string } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: opts.host ?? '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false, localAddress: opts.localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          let json: any = null;
          try {
            json = JSON.parse(body);
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export interface AuthProxy {
  port: number;
  adminPort: number;
  logs: LogRecord[];
  /** GET through the proxy. The echo upstream answers 200 with what it received in `json`. */
  get(path: string, headers?: Record<string, string>, opts?: { method?: string; localAddress?: string; host?: string }): Promise<Res>;
  /** A counter's value from the admin /metrics endpoint (0 when absent). */
  metric(family: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export interface ProxyExtras {
  clusters?: Record<string, { url: string }>;
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  listenAddress?: string;
  timeoutMs?: number;
}

/** The real proxy on 127.0.0.1 (or `listenAddress`), the auth adapter in front of an echo upstream. */
export async function startAuthProxy(pluginConfig: unknown, extras: ProxyExtras = {}): Promise<AuthProxy> {
  const wasm = await authWasm();
  const upstream = await startDemoUpstream(0);
  const logs: LogRecord[] = [];
  const level = extras.logLevel ?? 'debug';
  const config: MixerConfig = {
    listen: { port: 0, address: extras.listenAddress ?? '127.0.0.1' },
    admin: { port: 0 },
    logLevel: level,
    routes: [{ name: 'api', upstream: `http://127.0.0.1:${upstream.port}` }],
    clusters: extras.clusters,
    plugins: [{ name: 'auth', url: wasm, phase: 'AUTHN', pluginConfig, logLevel: level, timeoutMs: extras.timeoutMs, clusters: Object.keys(extras.clusters ?? {}) }],
  };
  let proxy;
  try {
    proxy = await startProxy(config, { logger: createLogger(0, (r) => logs.push(r)) });
  } catch (err) {
    await upstream.close();
    throw err;
  }
  const p = proxy;
  return {
    port: p.port,
    adminPort: p.adminPort!,
    logs,
    get: (path, headers = {}, opts = {}) => request(p.port, path, { headers, ...opts }),
    async metric(family, labels = {}) {
      const text = (await request(p.adminPort!, '/metrics')).body;
      for (const line of text.split('\n')) {
        if (!line.startsWith(family)) continue;
        const m = /^([a-z_:]+)(\{(.*)\})? ([0-9.eE+-]+)$/.exec(line);
        if (m === null || m[1] !== family) continue;
        const have: Record<string, string> = {};
        for (const kv of (m[3] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) have[kv[1]!] = kv[2]!;
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
      }
      return 0;
    },
    async close() {
      await p.close();
      await upstream.close();
    },
  };
}

// ---- keys and tokens -----------------------------------------------------------------------

export type Alg = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'ES256' | 'ES384' | 'ES512';
export const ALGS: Alg[] = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512'];

export interface TestKey {
  alg: Alg;
  kid: string;
  /** What signs (a CryptoKey/KeyObject, or the HMAC secret). */
  signing: Parameters<SignJWT['sign']>[0];
  /** The public JWK (or the oct JWK for HMAC), with kid. */
  jwk: JWK;
}

/** A key for `alg` (HMAC secrets are 64 random bytes). */
export async function makeKey(alg: Alg, kid: string, opts: { withAlg?: boolean } = {}): Promise<TestKey> {
  if (alg.startsWith('HS')) {
    const secret = crypto.getRandomValues(new Uint8Array(64));
    const jwk: JWK = { kty: 'oct', k: Buffer.from(secret).toString('base64url'), kid };
    if (opts.withAlg !== false) jwk.alg = alg;
    return { alg, kid, signing: secret, jwk };
  }
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig' } as JWK;
  if (opts.withAlg !== false) jwk.alg = alg;
  return { alg, kid, signing: privateKey, jwk };
}

export const nowS = (): number => Math.floor(Date.now() / 1000);

/** A token signed by jose. `header` overrides protected header fields. */
export async function sign(key: TestKey, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header } as never).sign(key.signing);
}

export const b64url = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

export const sha256hex = (s: string): string => createHash('sha256').update(s).digest('hex');

// ---- a JWKS endpoint --------------------------------------------------------------------------

export interface JwksServer {
  port: number;
  /** The keys served now. */
  keys: JWK[];
  /** Answer with this status (and no keys) instead, e.g. 500. 200 serves `keys`. */
  status: number;
  /** Raw body override. */
  body: string | null;
  /** Requests served so far. */
  hits: number;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  const state = { keys, status: 200, body: null as string | null, hits: 0 };
  const server = http.createServer((req, res) => {
    state.hits++;
    if (state.status !== 200) {
      res.writeHead(state.status, { 'content-type': 'text/plain' });
      res.end('unavailable');
      return;
    }
    const body = state.body ?? JSON.stringify({ keys: state.keys });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}

/** Polls `fn` until it returns true (or `ms` passes). */
export async function until(fn: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return fn();
}
