// Shared helpers of the out-of-process tests: fixture modules in a temp folder,
// an adapter server and a proxy on free loopback ports, HTTP requests, log capture.

import { existsSync } from 'node:fs';
import http from 'node:http';
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAdapter } from '../../host/src/build/build-adapter.js';
import { LogLevel } from '../../host/src/abi/constants.js';
import type { MixerConfig } from '../../host/src/config/schema.js';
import { validateConfig } from '../../host/src/config/load.js';
import { createLogger, type LogRecord } from '../../host/src/log/logger.js';
import { startAdapterServer, type RunningServer, type ServerOptions } from '../../host/src/oop/server.js';
import { startProxy, type ProxyOptions, type RunningProxy } from '../../host/src/proxy/proxy.js';
import { compileGuest } from '../fixtures/guests/index.js';

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<Res> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: performance.now() - t0 }));
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`request ${path} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const builds = new Map<string, Promise<string>>();

/** The project's adapter NAME: wasm/NAME.wasm when built (npm run build), else built once into a temp folder. */
export function projectAdapter(name: string): Promise<string> {
  const built = join(ROOT, 'wasm', `${name}.wasm`);
  if (existsSync(built)) return Promise.resolve(built);
  let p = builds.get(name);
  if (p === undefined) {
    p = mkdtemp(join(tmpdir(), `wm-oop-build-${name}-`)).then(async (out) => (await buildAdapter(join(ROOT, 'adapters', name), { outDir: out })).wasmPath);
    builds.set(name, p);
  }
  return p;
}

/** Copies project adapters into `dir` as NAME.wasm. */
export async function withAdapters(dir: string, names: string[]): Promise<void> {
  for (const n of names) await copyFile(await projectAdapter(n), join(dir, `${n}.wasm`));
}

/** A temp folder with the spec-filter fixture as spec.wasm. */
export async function fixtureDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wm-oop-'));
  await writeFile(join(dir, 'spec.wasm'), await compileGuest('spec-filter'));
  return dir;
}

/** A logger that keeps records (and drops them from stderr). */
export function capture(level: LogLevel = LogLevel.Trace): { logs: LogRecord[]; logger: ReturnType<typeof createLogger> } {
  const logs: LogRecord[] = [];
  return { logs, logger: createLogger(level, (r) => logs.push(r)) };
}

export async function startServer(config: MixerConfig, opts: ServerOptions = {}): Promise<RunningServer> {
  return startAdapterServer(validateConfig(config, 'test config'), { listen: '127.0.0.1:0', adminPort: null, ...opts });
}

export async function startRemoteProxy(config: MixerConfig, opts: ProxyOptions = {}): Promise<RunningProxy> {
  return startProxy(validateConfig(config, 'test config'), { port: 0, ...opts });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Metric value from a registry-rendered text, or undefined. */
export function metricValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
