// Runs the real CLI (`node bin/wasm-mixer.js proxy --config FILE`) with several
// workers, and reads its admin port. Everything started here is stopped in teardown.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export { projectAdapter } from '../oop/helpers.js';
export { startProxyCli as startCli, type CliProxy } from '../cli/proxy-process.js';
export { blast, count, metricValue, request, sleep, type Res } from '../../adapters/quota/test/helpers.js';

export function adminGet(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false, timeout: 20_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`admin ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export interface WorkerView {
  worker: number;
  pid: number | null;
  up: boolean;
  requests: number | null;
  adapters: Array<{ name: string; healthy: boolean }>;
}

export async function workersOf(adminPort: number): Promise<WorkerView[]> {
  return (JSON.parse((await adminGet(adminPort, '/adapters')).body) as { workers: WorkerView[] }).workers;
}

/** Polls `fn` until it returns true (or throws after `ms`). */
export async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An upstream that answers /slow after `slowMs`, everything else at once. */
export async function slowUpstream(slowMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const send = () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (req.url?.startsWith('/slow')) setTimeout(send, slowMs);
    else send();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}
