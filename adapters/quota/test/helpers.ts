// Shared by the quota tests: build the adapter once, run redis-server and proxy
// processes on free loopback ports, send requests. Everything started here is
// stopped by the test's teardown.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { buildAdapter } from '../../../host/src/build/build-adapter.js';
import { startProxyCli } from '../../../test/cli/proxy-process.js';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..', '..');

/** Builds adapters/quota into a temp folder; returns the .wasm path and a cleanup. */
export async function buildQuota(): Promise<{ wasm: string; dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'quota-test-'));
  const built = await buildAdapter(join(here, '..'), { outDir: dir });
  return { wasm: built.wasmPath, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  stop(): Promise<void>;
  /** Runs one command on a fresh connection (e.g. CLIENT PAUSE 1000 ALL, GET key). */
  command(...args: string[]): Promise<unknown>;
}

/** Starts Debian's redis-server on a free loopback port, no persistence. */
export async function startRedis(port?: number): Promise<RedisServer> {
  const p = port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'quota-redis-'));
  const proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(p), '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  let exited = false;
  proc.once('exit', () => (exited = true));
  for (let i = 0; i < 100 && !(await canConnect(p)); i++) {
    if (exited) throw new Error('redis-server exited at start');
    await sleep(20);
  }
  return {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    stop: async () => {
      if (!exited) {
        const gone = new Promise<void>((r) => proc.once('exit', () => r()));
        proc.kill('SIGKILL');
        await gone;
      }
      await rm(dir, { recursive: true, force: true });
    },
    command: async (...args: string[]) => {
      const c = new Redis(`redis://127.0.0.1:${p}`, { maxRetriesPerRequest: 1 });
      try {
        return await c.call(args[0]!, ...args.slice(1));
      } finally {
        c.disconnect();
      }
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface ProxyProcess {
  readonly port: number;
  readonly adminPort: number;
  readonly stderr: () => string;
  stop(): Promise<void>;
}

/** Runs the real CLI, `node bin/wasm-mixer.js proxy --config FILE`, in a child process. */
export async function startProxyProcess(config: unknown, dir: string, name: string): Promise<ProxyProcess> {
  // One process per proxy: the bounds these tests check count proxy processes (workers: auto would fork one per core).
  const p = await startProxyCli({ workers: 1, ...(config as object) }, dir, name, { timeoutMs: 30_000, cwd: repoRoot });
  return { port: p.port, adminPort: p.adminPort, stderr: p.stderr, stop: async () => void (await p.stop(3000)) };
}

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

export function request(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; agent?: http.Agent; timeoutMs?: number } = {},
): Promise<Res> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false, timeout: opts.timeoutMs ?? 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: performance.now() - t0 }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to :${port}${path} timed out`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive socket the server closed as idle just as this request went out (the race
      // Node's docs describe for req.reusedSocket): the server never saw it, so send it again.
      if (req.reusedSocket && err.code === 'ECONNRESET') request(port, path, opts).then(resolve, reject);
      else reject(err);
    });
    req.end(opts.body);
  });
}

/** Sends `n` requests with at most `concurrency` in flight; returns every response. */
export async function blast(
  port: number,
  n: number,
  concurrency: number,
  make: (i: number) => { path?: string; headers?: Record<string, string> } = () => ({}),
  timeoutMs?: number,
): Promise<Res[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const out: Res[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const r = make(i);
      out[i] = await request(port, r.path ?? '/', { headers: r.headers, agent, timeoutMs });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  } finally {
    agent.destroy();
  }
  return out;
}

export function count(rs: Res[], status: number): number {
  return rs.filter((r) => r.status === status).length;
}

/** A metric's value from Prometheus text, 0 when absent. */
export function metricValue(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return 0;
}
