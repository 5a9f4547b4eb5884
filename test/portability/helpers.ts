// Shared helpers of the portability tests: WAT modules written from the spec,
// compiled with wabt; a real upstream; HTTP requests (and raw ones, to see the
// bytes on the wire); log capture.

import http from 'node:http';
import net from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import { main } from '../../host/src/cli/main.js';
import type { MixerConfig } from '../../host/src/config/schema.js';
import { startProxy, type RunningProxy } from '../../host/src/index.js';
import { compileWatText } from '../fixtures/guests/index.js';
import { createLogger, type LogRecord } from '../../host/src/log/logger.js';

const WAT_DIR = join(dirname(fileURLToPath(import.meta.url)), 'wat');

/** Compiles test/portability/wat/NAME.wat. */
export async function compileWat(name: string): Promise<Uint8Array<ArrayBuffer>> {
  return compileWatText(await readFile(join(WAT_DIR, `${name}.wat`), 'utf8'), `${name}.wat`);
}

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`request ${path} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Sends a raw HTTP/1.1 request (Connection: close) and returns the response head as text, exactly as sent. */
export function rawHead(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nhost: example.com\r\nconnection: close\r\n\r\n`));
    const chunks: Buffer[] = [];
    s.setTimeout(10_000, () => s.destroy(new Error('raw request timed out')));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.on('error', reject);
  });
}

/** A logger that keeps records (and keeps them off stderr). */
export function capture(): { logs: LogRecord[]; logger: ReturnType<typeof createLogger> } {
  const logs: LogRecord[] = [];
  return { logs, logger: createLogger(LogLevel.Trace, (r) => logs.push(r)) };
}

/** An upstream that echoes what it received as JSON: method, url, headers, body length. */
export async function startEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** Scrapes the admin port's /metrics until `re` matches (or 5 s pass), returning the last text: on_log runs after the reply. */
export async function metricsUntil(adminPort: number, re: RegExp): Promise<string> {
  const deadline = Date.now() + 5000;
  let text = (await request(adminPort, '/metrics')).body;
  while (!re.test(text) && Date.now() < deadline) text = (await request(adminPort, '/metrics')).body;
  return text;
}

/** Runs `wasm-mixer check FILES...` in process; its exit code and what it printed. */
export async function runCheck(files: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  try {
    return { code: await main(['check', ...files]), out: out.join('\n') };
  } finally {
    console.log = orig;
  }
}

/** What startEcho's upstream answers, as the tests read it. */
export const echoed = (body: string) => JSON.parse(body) as { method: string; url: string; headers: Record<string, string>; body: string };

/**
 * The real proxy in front of an echo upstream (one route, "default"), with `files` written to a
 * fresh temp folder that plugin urls are relative to; `config` gives the rest (plugins, admin…).
 * The proxy, the upstream and the folder go with `t`'s teardown.
 */
export async function echoProxy(t: Test, prefix: string, files: Record<string, Uint8Array>, config: MixerConfig): Promise<{ proxy: RunningProxy; log: ReturnType<typeof capture>; dir: string; upstreamPort: number }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
  const up = await startEcho();
  const log = capture();
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [{ name: 'default', upstream: `http://127.0.0.1:${up.port}` }], ...config },
    { baseDir: dir, logger: log.logger },
  );
  t.teardown(async () => {
    await proxy.close();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { proxy, log, dir, upstreamPort: up.port };
}

/**
 * POSTs `size` bytes through the proxy and checks they reach the upstream with their
 * Content-Length, not re-chunked: a body callback that leaves the body alone keeps it (Envoy).
 */
export async function assertBodyKeepsLength(t: Test, port: number, size: number): Promise<void> {
  const r = await request(port, '/post', { method: 'POST', body: 'b'.repeat(size) });
  const e = echoed(r.body);
  t.equal(e.headers['content-length'], String(size));
  t.equal(e.headers['transfer-encoding'], undefined);
  t.equal(e.body.length, size);
}
