// SIGTERM to the primary drains in-flight requests in every worker, then it exits 0.
// Real CLI, two workers.

import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { request, slowUpstream as upstream, startCli, until, workersOf } from './helpers.js';

t.test('SIGTERM drains in-flight requests in every worker, then exits 0', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-workers-drain-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const up = await upstream(1500);
  t.teardown(() => up.close());
  const proxy = await startCli({ workers: 2, listen: { port: 0 }, admin: { port: 0 }, routes: [{ name: 'api', upstream: `http://127.0.0.1:${up.port}` }] }, dir);
  t.teardown(() => proxy.stop());
  // Eight slow requests on eight connections: both workers hold some when SIGTERM arrives.
  const inflight = Array.from({ length: 8 }, () => request(proxy.port, '/slow', { timeoutMs: 15_000 }));
  await until('requests reached the upstream', async () => {
    const w = await workersOf(proxy.adminPort);
    return w.every((x) => (x.requests ?? 0) > 0) && w.reduce((a, x) => a + (x.requests ?? 0), 0) === 8;
  }, 10_000).catch(() => {}); // round-robin usually spreads them; the drain is checked either way
  const code = proxy.stop();
  const results = await Promise.all(inflight.map((p) => p.then((r) => r.status, () => 0)));
  t.same(results, Array(8).fill(200), 'every in-flight request finished');
  t.equal(await code, 0, 'the primary exited 0 after its workers');
  await t.rejects(request(proxy.port, '/x', { timeoutMs: 2000 }), 'nothing listens any more');
});
