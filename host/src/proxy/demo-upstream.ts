// A tiny upstream for quick starts and tests: answers every request with a JSON
// echo of what it received, so the effect of adapters (added headers) is visible.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoUpstream {
  readonly port: number;
  close(): Promise<void>;
}

export async function startDemoUpstream(port = 3000, address = '127.0.0.1'): Promise<DemoUpstream> {
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const payload = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyBytes: body.length, body: body.toString('utf8').slice(0, 4096) });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
