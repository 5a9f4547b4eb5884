// The last line (issue 11): an event loop blocked past watchdog.hardLimitMs
// ends the process cleanly (one critical log line naming the adapter, then
// SIGKILL) instead of hanging with every connection open. The hang is made
// with an unmetered module (limits.metering: false), the one way left for a
// module to block the loop for good.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { compileGuest } from '../fixtures/guests/index.js';
import { echoUpstream } from './helpers.js';

const CLI = resolve('bin/wasm-mixer.js');

t.test('a blocked event loop past watchdog.hardLimitMs: a critical EVENT_LOOP_BLOCKED line, then the process is killed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-watchdog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const up = await echoUpstream();
  t.teardown(() => up.close());
  await writeFile(join(dir, 'runaway.wasm'), await compileGuest('runaway'));
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({
      listen: { port: 0 },
      routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }],
      plugins: [{ name: 'spin', url: 'runaway.wasm', limits: { metering: false } }],
      watchdog: { hardLimitMs: 3000 }, // well above what start-up blocks on a loaded machine
      workers: 1, // the process itself is killed; with workers, the primary would replace the worker (test/workers)
    }),
  );
  const child = spawn(process.execPath, [CLI, 'proxy', '--config', join(dir, 'config.json')], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: string | null; at: number }>((r) => child.on('exit', (code, signal) => r({ code, signal, at: performance.now() })));
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${stderr}`)), 60_000);
    child.stderr.on('data', () => {
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    });
  });
  const get = (path: string) =>
    new Promise<number>((res, rej) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (r) => (r.resume(), res(r.statusCode ?? 0)));
      req.on('error', rej);
    });
  t.equal(await get('/ok'), 200, 'serving');
  await new Promise((r) => setTimeout(r, 3500));
  t.equal(await get('/ok'), 200, 'a healthy loop is not mistaken for a blocked one');
  const t0 = performance.now();
  const hung = get('/loop').then(
    (s) => `status ${s}`,
    (e: NodeJS.ErrnoException) => e.code ?? e.message,
  );
  const { signal, at } = await exit;
  t.equal(signal, 'SIGKILL', 'the process was killed');
  t.ok(at - t0 < 30_000, `within ${(at - t0).toFixed(0)} ms of the hang (hard limit 3000 ms)`);
  t.equal(await hung, 'ECONNRESET', 'the request in flight is reset, not left hanging');
  const line = stderr.split('\n').find((l) => l.includes('EVENT_LOOP_BLOCKED'));
  t.ok(line, 'one critical log line says why');
  const rec = JSON.parse(line!) as Record<string, unknown>;
  t.match(rec, { level: 'critical', source: 'watchdog', code: 'EVENT_LOOP_BLOCKED', adapter: 'spin' });
  t.ok((rec.blockedMs as number) > 3000);
});

t.test('with workers: the blocked worker is killed and replaced by the primary; the proxy keeps serving', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-watchdog-w-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const up = await echoUpstream();
  t.teardown(() => up.close());
  await writeFile(join(dir, 'runaway.wasm'), await compileGuest('runaway'));
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({
      listen: { port: 0 },
      routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }],
      plugins: [{ name: 'spin', url: 'runaway.wasm', limits: { metering: false } }],
      watchdog: { hardLimitMs: 3000 },
      workers: 2,
    }),
  );
  const child = spawn(process.execPath, [CLI, 'proxy', '--config', join(dir, 'config.json')], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${stderr}`)), 90_000);
    child.stderr.on('data', () => {
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    });
  });
  const get = (path: string) =>
    new Promise<number>((res) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (r) => (r.resume(), res(r.statusCode ?? 0)));
      req.setTimeout(20_000, () => req.destroy());
      req.on('error', () => res(0));
    });
  t.equal(await get('/ok'), 200, 'serving');
  void get('/loop'); // hangs one worker
  for (let i = 0; i < 600 && !stderr.includes('EVENT_LOOP_BLOCKED'); i++) await new Promise((r) => setTimeout(r, 100));
  t.match(stderr, /EVENT_LOOP_BLOCKED/, 'the blocked worker said why');
  for (let i = 0; i < 600 && !/WORKER_EXITED/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
  t.match(stderr, /exited \(signal SIGKILL\); replacing it in [^\n]*WORKER_EXITED/, 'the primary replaces it');
  t.equal(child.exitCode, null, 'the proxy itself is still running');
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push(await get(`/ok/${i}`));
  t.same(statuses, [200, 200, 200, 200, 200, 200], 'and answering');
});
