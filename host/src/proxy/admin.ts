// The admin port: readiness, Prometheus metrics, the loaded adapters, the
// config in force (secrets redacted), and POST /reload.
//
// Security: it listens on loopback unless admin.allowRemote is set. Even then,
// POST /reload (the one endpoint that changes state) is accepted from loopback
// peers only, unless admin.allowRemoteReload is set too. A request that carries
// an Origin header (a browser page) or a non-IP, non-localhost Host header (DNS
// rebinding) cannot reload either, and every other endpoint refuses a Host header
// that is not an IP address, localhost or admin.address (403 ADMIN_FORBIDDEN).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HostError, isHostError } from '../errors.js';
import type { WasmHost } from '../host.js';
import type { ReloadResult } from '../reload/reloader.js';
import { redactConfig } from '../security/redact.js';
import { serveMetrics } from '../metrics/exposition.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import type { MixerConfig } from '../config/schema.js';
import { listenOn } from './listen.js';

export interface AdminServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** What the admin port shows: one host's, or (multi-worker proxy, host/src/workers) the primary's merged view. */
export interface AdminSource {
  ready(): boolean | Promise<boolean>;
  metrics(): MetricsRegistry | Promise<MetricsRegistry>;
  adapters(): unknown;
  config(): MixerConfig;
}

export function startAdmin(
  host: WasmHost,
  opts: { address: string; port: number; allowRemote: boolean; allowRemoteReload?: boolean },
  ready: () => boolean,
  reload?: (reason: string) => Promise<ReloadResult>,
): Promise<AdminServer> {
  return startAdminFor(
    { ready: () => ready() && host.plugins.every((p) => p.vm.healthy), metrics: () => host.metrics, adapters: () => host.describe(), config: () => host.config },
    opts,
    reload,
  );
}

export async function startAdminFor(
  source: AdminSource,
  opts: { address: string; port: number; allowRemote: boolean; allowRemoteReload?: boolean },
  reload?: (reason: string) => Promise<unknown>,
): Promise<AdminServer> {
  if (!LOOPBACK.has(opts.address) && !opts.allowRemote) {
    throw new HostError('ADMIN_FORBIDDEN', `admin.address ${opts.address} is not loopback; set admin.allowRemote: true to expose the admin port (read-only endpoints), and admin.allowRemoteReload: true as well to accept POST /reload from other hosts`, { field: 'admin.allowRemote' });
  }
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (url.pathname === '/reload') return void handleReload(req, res, opts.allowRemoteReload ?? false, reload);
    if (!isAdminHost(req.headers.host, opts.address)) {
      // DNS rebinding: a web page on evil.example whose name now resolves to this port sends Host: evil.example.
      return forbidden(res, `the Host header "${String(req.headers.host).slice(0, 100)}" is not the admin address; the admin port answers requests addressed to an IP address, localhost or admin.address (${opts.address}) only — use http://${opts.address.includes(':') ? `[${opts.address}]` : opts.address}:${(server.address() as AddressInfo).port}${url.pathname}`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const failed = (err: unknown) => {
      if (!res.headersSent) res.writeHead(503, { 'content-type': 'text/plain' }).end(`${(err as Error)?.message ?? String(err)}\n`);
    };
    switch (url.pathname) {
      case '/ready':
        Promise.resolve(source.ready()).then((ok) => {
          res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'LIVE\n' : 'NOT READY\n');
        }, failed);
        return;
      case '/metrics':
        // text 0.0.4 or OpenMetrics by Accept (q-values), gzip when accepted
        Promise.resolve(source.metrics()).then((registry) => serveMetrics(req, res, registry), failed);
        return;
      case '/adapters':
        Promise.resolve(source.adapters()).then((a) => {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(a, null, 2) + '\n');
        }, failed);
        return;
      case '/config':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(redactConfig(source.config()), null, 2) + '\n');
        return;
      case '/':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('wasm-mixer admin: /ready /metrics /adapters /config, POST /reload\n');
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await listenOn(server, opts.port, opts.address, 'the admin port', 'choose another port with --admin N (admin.port in the config)');
  return {
    address: opts.address,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function isLoopbackPeer(addr: string | undefined): boolean {
  if (addr === undefined) return false;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return a === '::1' || /^127\./.test(a);
}

/** A Host header a browser under DNS rebinding cannot send: an IP literal or localhost (with any port). */
function isSafeHostHeader(host: string | undefined): boolean {
  if (host === undefined) return true;
  const h = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return h === 'localhost' || /^[0-9.]+$/.test(h) || h.includes(':');
}

/** The admin address itself, an IP literal or localhost: names a DNS-rebinding page cannot make a browser send. */
function isAdminHost(host: string | undefined, adminAddress: string): boolean {
  if (isSafeHostHeader(host)) return true;
  const h = host!.replace(/:\d+$/, '').toLowerCase();
  return h === adminAddress.toLowerCase();
}

function forbidden(res: http.ServerResponse, message: string): void {
  res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'ADMIN_FORBIDDEN', message }) + '\n');
}

function handleReload(req: http.IncomingMessage, res: http.ServerResponse, allowRemote: boolean, reload: ((reason: string) => Promise<unknown>) | undefined): void {
  req.resume();
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('use POST /reload\n');
    return;
  }
  if (!allowRemote && !isLoopbackPeer(req.socket.remoteAddress)) {
    return forbidden(res, 'POST /reload is accepted from loopback only; set admin.allowRemoteReload: true to accept it from other hosts');
  }
  if (req.headers.origin !== undefined) return forbidden(res, 'requests with an Origin header (browsers) cannot reload; use curl -X POST or SIGHUP');
  if (!allowRemote && !isSafeHostHeader(req.headers.host)) return forbidden(res, 'the Host header must be an IP address or localhost');
  if (reload === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('reload is not available in this process\n');
    return;
  }
  reload('admin POST /reload').then(
    (r) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, ...(r as object) }) + '\n'),
    (err) => {
      const e = isHostError(err) ? err : null;
      res.writeHead(422, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error: e?.code ?? 'RELOAD_FAILED', cause: (e?.detail.cause as string | undefined) ?? null, message: e?.message ?? String(err) }) + '\n');
    },
  );
}
