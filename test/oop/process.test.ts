// `wasm-mixer serve` as a real process: it starts from the config file, answers on
// its admin port, and shuts down gracefully on SIGTERM. Then the outage test: under
// load, the adapter server is killed (SIGKILL) and started again. Requests to a
// fail-closed adapter get 503 during the outage, requests to a fail-open adapter go
// through, none waits longer than the deadline, and once the server is back the
// proxy reconnects on its own and every request is served by the adapters again.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import type { MixerConfig } from '../../host/src/config/schema.js';
import { startDemoUpstream } from '../../host/src/proxy/demo-upstream.js';
import { capture, fixtureDir, request, ROOT, sleep, startRemoteProxy } from './helpers.js';

const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || a === '--enable-source-maps');

/** The compiled CLI when dist/ is newer than every source file (npm run build), else the sources through the TS loader (slower to start). */
function command(): string[] {
  const built = join(ROOT, 'dist/host/src/cli/main.js');
  if (!existsSync(built)) return [...loader, join(ROOT, 'test/oop/fixtures/serve.ts')];
  const builtAt = statSync(built).mtimeMs;
  const stale = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((e) => (e.isDirectory() ? stale(join(dir, e.name)) : e.name.endsWith('.ts') && statSync(join(dir, e.name)).mtimeMs > builtAt));
  return stale(join(ROOT, 'host/src')) ? [...loader, join(ROOT, 'test/oop/fixtures/serve.ts')] : [join(ROOT, 'bin/wasm-mixer.js'), 'serve'];
}
const SERVE = command();

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Child {
  proc: ChildProcess;
  stderr: string[];
  exited: Promise<number | null>;
}

async function serve(args: string[]): Promise<Child> {
  const proc = spawn(process.execPath, [...SERVE, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr.join('')}`)), 30_000);
    proc.stderr!.on('data', (c: Buffer) => {
      stderr.push(c.toString());
      if (stderr.join('').includes('adapter server listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => reject(new Error(`server exited with ${code}: ${stderr.join('')}`)));
  });
  return { proc, stderr, exited };
}

const dir = await fixtureDir();
const upstream = await startDemoUpstream(0);
t.teardown(() => upstream.close());

t.test('serve: config file, admin port, SIGTERM drains and exits 0', async (t) => {
  const [port, admin] = [await freePort(), await freePort()];
  const file = join(dir, 'serve.yaml');
  await writeFile(file, stringify({ logLevel: 'warn', plugins: [{ name: 'spec', url: 'spec.wasm', pluginConfig: 'ok' }] }));
  const child = await serve(['--config', file, '--listen', `127.0.0.1:${port}`, '--admin', String(admin)]);
  t.teardown(() => void child.proc.kill('SIGKILL'));
  t.equal((await request(admin, '/ready')).status, 200, '/ready');
  t.match((await request(admin, '/metrics')).body, /wasm_mixer_server_sessions 0/, '/metrics has the server metrics');
  t.match((await request(admin, '/adapters')).body, /"name": "spec"/, '/adapters');
  child.proc.kill('SIGTERM');
  t.equal(await child.exited, 0, 'exit status 0');
  t.match(child.stderr.join(''), /shutting down the adapter server/);
});

t.test('serve: a bad config is refused with the field', async (t) => {
  const file = join(dir, 'bad.yaml');
  await writeFile(file, stringify({ plugins: [{ name: 'spec', url: 'spec.wasm', remote: { cache: { mode: 'sometimes' } } }] }));
  await t.rejects(serve(['--config', file, '--listen', '127.0.0.1:0']), /CONFIG_INVALID[\s\S]*\/plugins\/0\/remote/);
});

t.test('kill and restart the adapter server under load', async (t) => {
  const port = await freePort();
  const file = join(dir, 'outage.yaml');
  const timeoutMs = 300;
  const config: MixerConfig = {
    logLevel: 'error',
    routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }],
    plugins: [
      { name: 'closed', url: 'spec.wasm', pluginConfig: 'ok', failStrategy: 'FAIL_CLOSE', match: [{ paths: [{ prefix: '/closed' }] }] },
      { name: 'open', url: 'spec.wasm', pluginConfig: 'ok', failStrategy: 'FAIL_OPEN', match: [{ paths: [{ prefix: '/open' }] }] },
    ],
    // No cache: every request needs the server, so the outage shows on every request.
    remote: { address: `127.0.0.1:${port}`, plugins: 'all', timeoutMs, checkCache: { enabled: false }, reconnect: { initialBackoffMs: 50, maxBackoffMs: 200 } },
  };
  await writeFile(file, stringify(config));
  let child = await serve(['--config', file]);
  t.teardown(() => void child.proc.kill('SIGKILL'));
  const log = capture();
  const proxy = await startRemoteProxy(config, { baseDir: dir, logger: log.logger });
  t.teardown(() => proxy.close());

  // `start` and `at` (end) of each request, in ms since t0.
  interface Sample { start: number; at: number; path: string; status: number; ms: number; spec: boolean }
  const samples: Sample[] = [];
  const t0 = performance.now();
  let running = true;
  const loops = Array.from({ length: 8 }, async (_, i) => {
    const path = i % 2 ? '/open/x' : '/closed/x';
    while (running) {
      const start = performance.now() - t0;
      const r = await request(proxy.port, path, { timeoutMs: 5000 });
      const spec = r.status === 200 && JSON.parse(r.body).headers['x-spec-filter'] === 'seen';
      samples.push({ start, at: performance.now() - t0, path, status: r.status, ms: r.ms, spec });
    }
  });
  // Phases end on sample counts (bounded in time), not fixed sleeps, so a slow machine still gets enough of each.
  const waitFor = async (enough: () => boolean, minMs: number, maxMs: number) => {
    const from = performance.now();
    while ((performance.now() - from < minMs || !enough()) && performance.now() - from < maxMs) await sleep(50);
  };
  await waitFor(() => samples.length >= 40, 800, 15_000);
  const killedAt = performance.now() - t0;
  child.proc.kill('SIGKILL');
  await child.exited;
  await waitFor(() => samples.filter((x) => x.start > killedAt + 50).length >= 40, 1000, 15_000);
  const restartAt = performance.now() - t0;
  child = await serve(['--config', file]);
  const upAt = performance.now() - t0;
  await waitFor(() => samples.filter((x) => x.start > upAt + 500).length >= 40, 1500, 20_000);
  running = false;
  await Promise.all(loops);

  t.comment(`${samples.length} requests; killed at ${killedAt.toFixed(0)} ms, restarted at ${restartAt.toFixed(0)} ms, up at ${upAt.toFixed(0)} ms`);
  const before = samples.filter((s) => s.at < killedAt);
  // Requests that started after the kill and ended before the restart saw only the outage.
  const outage = samples.filter((s) => s.start > killedAt + 50 && s.at < restartAt);
  const after = samples.filter((s) => s.start > upAt + 500);
  t.ok(before.length > 20 && outage.length > 20 && after.length > 20, `samples before ${before.length}, during ${outage.length}, after ${after.length}`);
  t.ok(before.every((s) => s.status === 200 && s.spec), 'before the kill: every request served through the adapters');
  const maxMs = Math.max(...samples.map((s) => s.ms));
  // The deadline bounds the wait for the adapter server; the slack covers the proxy hop and timer delays on a loaded 2-core machine.
  t.ok(maxMs < timeoutMs + 1000, `no request waited much longer than the deadline (max ${maxMs.toFixed(0)} ms, deadline ${timeoutMs} ms)`);
  const closedOut = outage.filter((s) => s.path.startsWith('/closed'));
  const openOut = outage.filter((s) => s.path.startsWith('/open'));
  t.ok(closedOut.every((s) => s.status === 503 || s.status === 504), `fail closed during the outage: ${[...new Set(closedOut.map((s) => s.status))].join(', ')}`);
  t.ok(openOut.every((s) => s.status === 200 && !s.spec), 'fail open during the outage: forwarded without the adapter');
  t.ok(after.every((s) => s.status === 200 && s.spec), 'after the restart: reconnected, every request served through the adapters again');
  const m = proxy.host.metrics;
  t.ok((m.value('wasm_mixer_remote_calls_total', { method: 'Check', code: 'UNAVAILABLE' }) ?? 0) > 0, 'UNAVAILABLE calls counted');
  t.ok((m.value('wasm_mixer_adapter_failures_total', { adapter: 'closed', code: 'REMOTE_UNAVAILABLE', strategy: 'FAIL_CLOSE' }) ?? 0) > 0, 'fail-closed failures counted');
  t.ok((m.value('wasm_mixer_adapter_failures_total', { adapter: 'open', code: 'REMOTE_UNAVAILABLE', strategy: 'FAIL_OPEN' }) ?? 0) > 0, 'fail-open failures counted');
  t.equal(m.value('wasm_mixer_remote_connected'), 1, 'connected again');
  t.ok(log.logs.some((r) => r.code === 'REMOTE_UNAVAILABLE' && /unreachable/.test(r.message)), 'the outage was logged');
  t.ok(log.logs.some((r) => /reachable again/.test(r.message) || /restarted/.test(r.message)), 'the recovery was logged');
});
