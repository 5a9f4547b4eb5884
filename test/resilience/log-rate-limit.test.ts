// Repeated warnings are rate-limited with a count of what was suppressed: a down upstream
// or a crash-looping adapter under load must not log one line per rejected request.
import http from 'node:http';
import t from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import { startProxy } from '../../host/src/index.js';
import { captureLogs, fixture, request } from './helpers.js';

async function deadPort(): Promise<number> {
  const srv = http.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** n requests, `conc` at a time. */
async function load(port: number, path: string, n: number, conc = 20): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < n) {
      next++;
      statuses.push((await request(port, path)).status);
    }
  }));
  return statuses;
}

t.test('a down upstream under load: one warn per interval, then a count of the suppressed lines', async (t) => {
  const { logger, records } = captureLogs(LogLevel.Info);
  const proxy = await startProxy({ listen: { port: 0 }, routes: [{ name: 'dead', upstream: `http://127.0.0.1:${await deadPort()}` }] }, { logger });
  const t0 = performance.now();
  const statuses = await load(proxy.port, '/', 300);
  const secs = (performance.now() - t0) / 1000;
  t.equal(statuses.filter((s) => s === 503).length, 300, 'every request got its 503');
  const during = records.filter((r) => r.code === 'UPSTREAM_UNAVAILABLE' && r.suppressed === undefined);
  // The default: one line per 5 s window (this load takes a second or two).
  t.ok(during.length <= Math.ceil(secs / 5) + 1, `${during.length} warn line(s) for 300 failures in ${secs.toFixed(1)} s`);
  await proxy.close(); // flushes the pending count
  const summaries = records.filter((r) => r.code === 'UPSTREAM_UNAVAILABLE' && typeof r.suppressed === 'number');
  t.ok(summaries.length >= 1, 'a summary line says how many were suppressed');
  t.equal(summaries.reduce((n, r) => n + (r.suppressed as number), 0) + during.length, 300, 'written + suppressed = every failure');
  t.equal(summaries[0]?.level, 'warn');
  t.match(summaries[0]?.message, /^\d+ similar line\(s\) suppressed in the last \d+ s, like: upstream 127\.0\.0\.1:\d+ failed/);
});

t.test('a crash-looping adapter under load, and a short interval: lines bounded by windows, counts add up', async (t) => {
  const { logger, records } = captureLogs(LogLevel.Info);
  const upstream = http.createServer((_q, s) => s.end('ok'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => upstream.close(() => r())));
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      logRateLimit: { intervalMs: 400 },
      routes: [{ name: 'r', upstream: `http://127.0.0.1:${(upstream.address() as { port: number }).port}` }],
      plugins: [{ name: 'trap', url: 'trap.wasm', failStrategy: 'FAIL_CLOSE' }],
    },
    { logger, modules: { 'trap.wasm': await fixture('trap') } },
  );
  const t0 = performance.now();
  const statuses = await load(proxy.port, '/trap', 400);
  const secs = (performance.now() - t0) / 1000;
  await proxy.close();
  t.equal(statuses.filter((s) => s === 503).length, 400);
  const warns = records.filter((r) => r.source === 'trap' && (r.level === 'warn' || r.level === 'error'));
  const written = warns.filter((r) => r.suppressed === undefined);
  const suppressed = warns.reduce((n, r) => n + (typeof r.suppressed === 'number' ? r.suppressed : 0), 0);
  // Each distinct line (the trap, the rejection, "not running") at most once per 400 ms window.
  const windows = Math.ceil(secs / 0.4) + 1;
  t.ok(written.length <= 6 * windows, `${written.length} lines written in ${secs.toFixed(1)} s (at most ${6 * windows})`);
  t.ok(written.length < 100, 'far fewer than one per request');
  const rejections = warns.filter((r) => /rejecting the request \(FAIL_CLOSE\)/.test(r.message));
  t.ok(rejections.length > 0, 'rejections are still reported');
  t.ok(suppressed >= 400 - written.length - 50, `suppressed lines are counted (${suppressed})`);
});
