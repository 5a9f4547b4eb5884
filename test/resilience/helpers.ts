// Shared helpers for the resilience tests: compile WAT fixtures (including ones
// not listed in GUESTS, and inline snippets), talk to a real proxy over
// loopback, and capture the host's log records.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LogLevel } from '../../host/src/abi/constants.js';
import { createLogger, type HostLogger, type LogRecord } from '../../host/src/log/logger.js';
import { compileWatText } from '../fixtures/guests/index.js';

const GUEST_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'guests');

/** Compiles WAT text to a wasm binary. */
export function wat(text: string, name = 'inline.wat', features: Record<string, boolean> = {}): Promise<Uint8Array> {
  return compileWatText(text, name, features);
}

/** Compiles test/fixtures/guests/<name>.wat. */
export async function fixture(name: string, features: Record<string, boolean> = {}): Promise<Uint8Array> {
  return wat(await readFile(join(GUEST_DIR, `${name}.wat`), 'utf8'), `${name}.wat`, features);
}

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** One HTTP request to 127.0.0.1:port; rejects after timeoutMs so a hung request fails the test instead of hanging it. */
export function request(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number; fresh?: boolean } = {},
): Promise<Res> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.fresh ? false : agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: performance.now() - t0 }));
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`request ${path} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A logger that keeps every record (and prints nothing). */
export function captureLogs(level: LogLevel = LogLevel.Debug): { logger: HostLogger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  return { logger: createLogger(level, (r) => records.push(r)), records };
}

export function upstreamHeaders(res: Res): Record<string, string> {
  return (JSON.parse(res.body) as { headers: Record<string, string> }).headers;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A metric sample's value from Prometheus text, or undefined. */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

/** An echo upstream; paths starting with /slow answer after 300 ms. */
export async function echoUpstream(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const send = () => {
        const body = JSON.stringify({ url: req.url, headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      };
      if (req.url?.startsWith('/slow')) setTimeout(send, 300);
      else send();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

