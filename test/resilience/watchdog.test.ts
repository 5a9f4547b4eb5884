// The last line (issue 11): an event loop blocked past watchdog.hardLimitMs
// ends the process cleanly (one critical log line naming the adapter, then
// SIGKILL) instead of hanging with every connection open. The hang is made
// with an unmetered module (limits.metering: false), the one way left for a
// module to block the loop for good.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startCli, type CliProcess } from '../cli/cli-process.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { echoUpstream } from './helpers.js';

const LISTENING = /listening on http:\/\/[^:]+:(\d+)/;

/** The real CLI with the runaway fixture as adapter "spin" (GET /loop spins for good) and a 3 s hard limit; resolves once it serves. */
async function runawayProxy(t: Test, workers: number, startTimeoutMs: number): Promise<{ cli: CliProcess; port: number }> {
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
      workers,
    }),
  );
  const cli = startCli(['proxy', '--config', join(dir, 'config.json')]);
  t.teardown(() => void cli.child.kill('SIGKILL'));
  await cli.waitFor(LISTENING, startTimeoutMs);
  return { cli, port: Number(LISTENING.exec(cli.stderr())![1]) };
}

t.test('a blocked event loop past watchdog.hardLimitMs: a critical EVENT_LOOP_BLOCKED line, then the process is killed', async (t) => {
  // workers: 1: the process itself is killed; with workers, the primary would replace the worker (the next test).
  const { cli, port } = await runawayProxy(t, 1, 60_000);
  const child = cli.child;
  const exit = new Promise<{ code: number | null; signal: string | null; at: number }>((r) => child.on('exit', (code, signal) => r({ code, signal, at: performance.now() })));
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
  const line = cli.stderr().split('\n').find((l) => l.includes('EVENT_LOOP_BLOCKED'));
  t.ok(line, 'one critical log line says why');
  const rec = JSON.parse(line!) as Record<string, unknown>;
  t.match(rec, { level: 'critical', source: 'watchdog', code: 'EVENT_LOOP_BLOCKED', adapter: 'spin' });
  t.ok((rec.blockedMs as number) > 3000);
});

t.test('with workers: the blocked worker is killed and replaced by the primary; the proxy keeps serving', async (t) => {
  const { cli, port } = await runawayProxy(t, 2, 90_000);
  const get = (path: string) =>
    new Promise<number>((res) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (r) => (r.resume(), res(r.statusCode ?? 0)));
      req.setTimeout(20_000, () => req.destroy());
      req.on('error', () => res(0));
    });
  t.equal(await get('/ok'), 200, 'serving');
  void get('/loop'); // hangs one worker
  for (let i = 0; i < 600 && !cli.stderr().includes('EVENT_LOOP_BLOCKED'); i++) await new Promise((r) => setTimeout(r, 100));
  t.match(cli.stderr(), /EVENT_LOOP_BLOCKED/, 'the blocked worker said why');
  for (let i = 0; i < 600 && !/WORKER_EXITED/.test(cli.stderr()); i++) await new Promise((r) => setTimeout(r, 100));
  t.match(cli.stderr(), /exited \(signal SIGKILL\); replacing it in [^\n]*WORKER_EXITED/, 'the primary replaces it');
  t.equal(cli.child.exitCode, null, 'the proxy itself is still running');
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push(await get(`/ok/${i}`));
  t.same(statuses, [200, 200, 200, 200, 200, 200], 'and answering');
});
