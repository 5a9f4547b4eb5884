// Shared by the telemetry tests (test/telemetry, adapters/logging/test, adapters/prometheus/test):
// a scriptable upstream, an in-memory access-log sink, an HTTP client, adapter builds,
// promtool, and a real Prometheus server on loopback.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAdapter } from '../../host/src/build/build-adapter.js';
import type { AccessLogEntry, AccessLogSink } from '../../host/src/log/access-log.js';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  raw: Buffer;
}

/** One request on a fresh connection (agent: false), body collected. */
export function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Res> {
  return new Promise((resolvePromise, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: raw.toString(), raw });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface Upstream {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * An upstream whose answer the path chooses:
 *   /status/<code>   that status, body "status <code>"
 *   /bytes/<n>       200 with exactly n bytes of body
 *   /grpc/<status>   200, content-type application/grpc, grpc-status trailer-as-header <status>
 *   /slow/<ms>       200 after a delay
 *   anything else    200 with body "ok"
 * It also sets set-cookie (for redaction tests) when the request has x-want-cookie.
 */
export async function startUpstream(): Promise<Upstream> {
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const url = req.url ?? '/';
      const [, kind, arg] = url.split('?')[0]!.split('/');
      const headers: Record<string, string> = { 'content-type': 'text/plain' };
      if (req.headers['x-want-cookie']) headers['set-cookie'] = 'session=secret-cookie';
      let status = 200;
      let body: Buffer = Buffer.from('ok');
      if (kind === 'status') {
        status = Number(arg);
        body = Buffer.from(`status ${arg}`);
      } else if (kind === 'bytes') {
        body = Buffer.alloc(Number(arg), 0x61);
      } else if (kind === 'grpc') {
        headers['content-type'] = 'application/grpc';
        headers['grpc-status'] = arg ?? '0';
        body = Buffer.alloc(0);
      }
      const send = () => {
        headers['content-length'] = String(body.length);
        res.writeHead(status, headers);
        res.end(body);
      };
      if (kind === 'slow') setTimeout(send, Number(arg));
      else send();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** An access-log sink that keeps every entry in memory. */
export class MemorySink implements AccessLogSink {
  readonly entries: AccessLogEntry[] = [];
  readonly buffered = 0;
  constructor(readonly name = 'memory') {}
  write(e: AccessLogEntry): boolean {
    this.entries.push(e);
    return true;
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  lines(): string[] {
    return this.entries.map((e) => Buffer.from(e.line).toString('utf8'));
  }
  json(): Array<Record<string, unknown>> {
    return this.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  /** Waits until at least n entries arrived (the log phase runs when the response closes). */
  async waitFor(n: number, timeoutMs = 5000): Promise<void> {
    const t0 = Date.now();
    while (this.entries.length < n) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`only ${this.entries.length} of ${n} access-log entries arrived`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

const built = new Map<string, Promise<string>>();

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'test') out.push(...filesUnder(p));
    } else if (e.name.endsWith('.ts') || e.name.endsWith('.json')) out.push(p);
  }
  return out.sort();
}

/**
 * Builds an adapter folder once per machine state: the .wasm is cached in the temp folder
 * under a hash of everything the build reads (the adapter, the shared attribute code, the
 * SDK, the build flags, the compiler version), so the test files, each its own process,
 * do not compile the same module again.
 */
async function cachedBuild(key: string, dir: string): Promise<string> {
  const h = createHash('sha256');
  const asc = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'assemblyscript', 'package.json'), 'utf8')) as { version: string };
  h.update(asc.version);
  for (const f of [...filesUnder(dir), ...filesUnder(join(ROOT, 'adapters', 'logging', 'assembly')), ...filesUnder(join(ROOT, 'sdk')), join(ROOT, 'host', 'src', 'build', 'build-adapter.ts')]) {
    h.update(f);
    h.update(readFileSync(f));
  }
  const cacheDir = join(tmpdir(), 'wasm-mixer-test-builds');
  const target = join(cacheDir, `${key}-${h.digest('hex').slice(0, 16)}.wasm`);
  if (existsSync(target)) return target;
  const out = await mkdtemp(join(tmpdir(), `wm-${key}-`));
  try {
    const r = await buildAdapter(dir, { outDir: out });
    mkdirSync(cacheDir, { recursive: true });
    renameSync(r.wasmPath, target); // atomic: a concurrent build of the same key just replaces it
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  return target;
}

/** Builds adapters/<name> (cached, see cachedBuild); returns the .wasm path. */
export function buildOnce(name: string): Promise<string> {
  let p = built.get(name);
  if (p === undefined) {
    p = cachedBuild(name, join(ROOT, 'adapters', name));
    built.set(name, p);
  }
  return p;
}

/** Builds the set-attrs fixture (stands in for auth/quota: sets mixer.principal / mixer.quota, denies on x-test-deny). */
export function buildSetAttrs(): Promise<string> {
  let p = built.get('fixture:set-attrs');
  if (p === undefined) {
    p = cachedBuild('set-attrs', join(ROOT, 'test', 'telemetry', 'fixtures', 'set-attrs'));
    built.set('fixture:set-attrs', p);
  }
  return p;
}

/**
 * Runs `promtool check metrics` on an exposition; returns its exit code and output. The
 * tests need it (scripts/system-deps.sh installs it): a missing promtool fails the test.
 */
export function promtool(text: string): Promise<{ code: number; output: string }> {
  if (!hasBinary('promtool')) return Promise.reject(new Error('promtool is not installed: run `npm run system-deps` (Debian package prometheus)'));
  return new Promise((resolvePromise) => {
    const child = execFile('promtool', ['check', 'metrics'], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code: unknown = err ? (err as unknown as { code?: unknown }).code : 0;
      resolvePromise({ code: typeof code === 'number' ? code : 1, output: `${stdout}${stderr}` });
    });
    child.stdin!.end(text);
  });
}

/** promtool's lint lines, without blank lines. */
export const findings = (output: string): string[] => output.split('\n').map((l) => l.trim()).filter((l) => l !== '');

/**
 * The promtool findings adapters/prometheus/README.md documents for the default `istio`
 * preset: the lines of the first ```text block of its "## promtool" section.
 */
export async function documentedPromtoolFindings(): Promise<string[]> {
  const readme = await readFile(join(ROOT, 'adapters', 'prometheus', 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('promtool'));
  const block = section === undefined ? null : /```text\n([\s\S]*?)```/.exec(section);
  return block === null ? [] : findings(block[1]!);
}

export const hasBinary = (name: string): boolean => (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, name)));

export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface PrometheusServer {
  readonly port: number;
  /** Instant query; returns the result vector. */
  query(q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  /** Scrape targets as Prometheus sees them. */
  targets(): Promise<Array<{ health: string; lastError: string; scrapeUrl: string; labels: Record<string, string> }>>;
  stop(): Promise<void>;
}

/** Starts Debian's prometheus on loopback scraping `targets` (host:port) every `intervalMs`. */
export async function startPrometheus(targets: string[], intervalMs = 500): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'wm-prom-'));
  const port = await freePort();
  const cfg = [
    'global:',
    `  scrape_interval: ${intervalMs}ms`,
    `  scrape_timeout: ${intervalMs}ms`,
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: wasm-mixer',
    `    static_configs:`,
    `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), cfg);
  const child: ChildProcess = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    '--storage.tsdb.retention.time=1h',
    '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const api = async (path: string): Promise<unknown> => {
    const res = await request(port, path);
    if (res.status !== 200) throw new Error(`prometheus ${path}: ${res.status} ${res.body}`);
    const j = JSON.parse(res.body) as { status: string; data: unknown };
    if (j.status !== 'success') throw new Error(`prometheus ${path}: ${res.body}`);
    return j.data;
  };
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };
  // ready?
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited: ${stderr}`);
    }
    try {
      const r = await request(port, '/-/ready');
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() - t0 > 20_000) {
      await stop();
      throw new Error(`prometheus did not become ready: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    query: async (q) => ((await api(`/api/v1/query?query=${encodeURIComponent(q)}`)) as { result: Array<{ metric: Record<string, string>; value: [number, string] }> }).result,
    targets: async () => ((await api('/api/v1/targets')) as { activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string; labels: Record<string, string> }> }).activeTargets,
    stop,
  };
}
