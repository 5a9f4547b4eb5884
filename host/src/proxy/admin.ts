// The admin port: readiness, Prometheus metrics, and the loaded adapters.
// It listens on loopback unless the config explicitly allows remote access.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WasmHost } from '../host.js';
import { serveMetrics } from '../metrics/exposition.js';

export interface AdminServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export async function startAdmin(
  host: WasmHost,
  opts: { address: string; port: number; allowRemote: boolean },
  ready: () => boolean,
): Promise<AdminServer> {
  if (!LOOPBACK.has(opts.address) && !opts.allowRemote) {
    throw new Error(`admin.address ${opts.address} is not loopback; set admin.allowRemote: true to expose the admin port`);
  }
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (url.pathname) {
      case '/ready': {
        const ok = ready() && host.plugins.every((p) => p.vm.healthy);
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'LIVE\n' : 'NOT READY\n');
        return;
      }
      case '/metrics':
        // text 0.0.4 or OpenMetrics by Accept (q-values), gzip when accepted
        serveMetrics(req, res, host.metrics);
        return;
      case '/adapters':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(host.describe(), null, 2) + '\n');
        return;
      case '/':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('wasm-mixer admin: /ready /metrics /adapters\n');
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, () => resolve());
  });
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
