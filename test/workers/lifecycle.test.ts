// Worker processes die and are replaced under a crash-rate limit while the other worker
// keeps serving (test/workers/drain.test.ts: SIGTERM). Real CLI, two workers, SIGKILL on a worker.

import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { adminGet, metricValue, projectAdapter, request, sleep, slowUpstream as upstream, startCli, until, workersOf } from './helpers.js';

t.test('a worker that dies is replaced, the other keeps serving, and the crash-rate limit holds', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-workers-life-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const up = await upstream(0);
  t.teardown(() => up.close());
  const proxy = await startCli(
    {
      workers: 2,
      listen: { port: 0 },
      admin: { port: 0 },
      workerRestart: { maxRestarts: 1, windowMs: 120_000, initialBackoffMs: 50 },
      routes: [{ name: 'api', upstream: `http://127.0.0.1:${up.port}` }],
      plugins: [{ name: 'hc', url: await projectAdapter('header-check'), pluginConfig: { header: 'x-user' } }],
    },
    dir,
  );
  t.teardown(() => proxy.stop());

  // Four clients, each on its own keep-alive connection, sending one request after another.
  let running = true;
  t.teardown(() => void (running = false));
  const log: Array<{ at: number; ok: boolean }> = [];
  const clients = Array.from({ length: 4 }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    while (running) {
      const ok = await request(proxy.port, '/x', { headers: { 'x-user': 'ann' }, agent, timeoutMs: 5000 }).then((r) => r.status === 200, () => false);
      log.push({ at: Date.now(), ok });
      if (!ok) await sleep(20);
    }
    agent.destroy();
  });
  await until('traffic on both workers', async () => (await workersOf(proxy.adminPort)).every((w) => (w.requests ?? 0) > 20));
  const before = await workersOf(proxy.adminPort);
  const servedBefore = metricValue((await adminGet(proxy.adminPort, '/metrics')).body, 'wasm_mixer_host_streams_total');

  // First death: replaced at once.
  const victim = before[0]!;
  const killedAt = Date.now();
  process.kill(victim.pid!, 'SIGKILL');
  await until('worker 1 replaced', async () => {
    const w = (await workersOf(proxy.adminPort)).find((x) => x.worker === victim.worker)!;
    return w.up && w.pid !== victim.pid;
  });
  const replacedAt = Date.now();
  await until('ready again', async () => (await adminGet(proxy.adminPort, '/ready')).status === 200);
  await sleep(300);
  const failures = log.filter((x) => !x.ok).length;
  t.ok(failures <= 8, `only requests on the killed worker's connections failed (${failures})`);
  t.ok(log.some((x) => x.ok && x.at > killedAt && x.at < replacedAt) || replacedAt - killedAt < 200, 'the other worker kept answering while the first was replaced');
  const m1 = (await adminGet(proxy.adminPort, '/metrics')).body;
  t.equal(metricValue(m1, 'wasm_mixer_worker_exits_total{reason="signal"}'), 1);
  t.equal(metricValue(m1, 'wasm_mixer_worker_restarts_total'), 1);
  t.ok(metricValue(m1, 'wasm_mixer_host_streams_total') >= servedBefore, 'counters do not go back when a worker is replaced');
  t.equal(metricValue(m1, 'wasm_mixer_workers_up'), 2);

  // Second death within workerRestart.windowMs, past maxRestarts (1): it stays down; the other serves alone.
  const now = await workersOf(proxy.adminPort);
  const second = now.find((w) => w.worker !== victim.worker)!;
  process.kill(second.pid!, 'SIGKILL');
  await until('second worker seen down', async () => !(await workersOf(proxy.adminPort)).find((w) => w.worker === second.worker)!.up);
  await sleep(1500);
  const after = await workersOf(proxy.adminPort);
  t.notOk(after.find((w) => w.worker === second.worker)!.up, 'over the crash-rate limit: not replaced yet');
  t.equal((await adminGet(proxy.adminPort, '/ready')).status, 503, '/ready says a worker is missing');
  const m2 = (await adminGet(proxy.adminPort, '/metrics')).body;
  t.equal(metricValue(m2, 'wasm_mixer_workers_up'), 1);
  const n = log.length;
  await sleep(500);
  t.ok(log.slice(n).filter((x) => x.ok).length > 5, 'the remaining worker serves every request');
  running = false;
  await Promise.all(clients);
  t.match(proxy.stderr(), /WORKER_EXITED|exited \(signal SIGKILL\)/);
});
