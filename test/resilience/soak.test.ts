// Soak: the proxy with all four adapters (auth, quota, logging, prometheus) and
// a trapping adapter under sustained concurrency on loopback, while adapters are
// reloaded every 2 s and the trapping adapter crashes on every /trap request.
// Bounded: SOAK_SECONDS (default 20) of load, at most 16 requests in flight,
// every request times out after 5 s. Passes when no request gets an unexpected
// status, none is lost or hung, and RSS levels off (reported once a second).
import { createHash } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildAdapter } from '../../host/src/build/build-adapter.js';
import { startDemoUpstream, startProxy, type MixerConfig } from '../../host/src/index.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { captureLogs, metric, request, sleep } from './helpers.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 20);
// Adapter builds (asc) take 10-40 s on a busy 2-core machine, on top of the load.
t.setTimeout(240_000);
const CONCURRENCY = 16;
const KEY = 'soak-api-key-0123456789';

t.test(`soak: ${SECONDS} s, ${CONCURRENCY} in flight, reloads and a trapping adapter`, { timeout: (SECONDS + 90) * 1000 }, async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'wm-soak-'));
  const wasm: Record<string, string> = {};
  for (const name of ['auth', 'quota', 'logging', 'prometheus']) wasm[name] = (await buildAdapter(join(process.cwd(), 'adapters', name), { outDir: out })).wasmPath;
  const up = await startDemoUpstream(0);
  const { logger, records } = captureLogs(3 /* warn */);
  let accessLogs = 0;
  const config = (generation: number): MixerConfig => ({
    listen: { port: 0 },
    admin: { port: 0 },
    routes: [{ name: 'api', upstream: `http://127.0.0.1:${up.port}` }],
    plugins: [
      { name: 'auth', url: wasm.auth!, phase: 'AUTHN', pluginConfig: { api_keys: { sources: [{ header: 'x-api-key' }], keys: [{ name: 'soak', sha256: createHash('sha256').update(KEY).digest('hex') }] } }, match: [{ paths: [{ prefix: '/api' }] }] },
      { name: 'quota', url: wasm.quota!, phase: 'AUTHZ', pluginConfig: { limits: [{ name: 'all', limit: 100_000_000 + generation, window: '1m' }] } },
      { name: 'trap', url: 'trap.wasm', failStrategy: 'FAIL_CLOSE', match: [{ paths: [{ prefix: '/trap' }] }], restart: { maxRestarts: 1000, windowMs: 1000, initialBackoffMs: 1, maxBackoffMs: 5 } },
      { name: 'access', url: wasm.logging!, phase: 'STATS', pluginConfig: {} },
      { name: 'prom', url: wasm.prometheus!, phase: 'STATS', pluginConfig: { max_series_per_metric: 10_000 + generation } },
    ],
  });
  const modules = { 'trap.wasm': await compileGuest('trap') };
  const sink = { name: 'count', write: () => (accessLogs++, true), flush: async () => {}, close: async () => {} };
  const proxy = await startProxy(config(0), { logger, modules, accessLogSinks: [sink as never] });
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });

  const counts = new Map<string, number>();
  const unexpected: string[] = [];
  const expect = (kind: string, status: number) => {
    const want = kind === 'ok' ? 200 : kind === 'nokey' ? 401 : 503;
    counts.set(`${kind}:${status}`, (counts.get(`${kind}:${status}`) ?? 0) + 1);
    if (status !== want && unexpected.length < 20) unexpected.push(`${kind} got ${status}`);
  };
  const deadline = Date.now() + SECONDS * 1000;
  let sent = 0;
  let errors = 0;
  const worker = async (w: number) => {
    for (let i = 0; Date.now() < deadline; i++) {
      const r = (i + w) % 20;
      const kind = r === 0 ? 'trap' : r === 1 ? 'nokey' : 'ok';
      const path = kind === 'trap' ? `/trap/${i}` : `/api/${w}/${i}`;
      sent++;
      try {
        const res = await request(proxy.port, path, { headers: kind === 'nokey' ? {} : { 'x-api-key': KEY }, timeoutMs: 5000 });
        expect(kind, res.status);
      } catch (err) {
        errors++;
        if (unexpected.length < 20) unexpected.push(`${kind} ${path}: ${(err as Error).message}`);
      }
    }
  };
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(Math.round(process.memoryUsage().rss / 1048576)), 1000);
  sampler.unref();
  let reloads = 0;
  const reloadErrors: string[] = [];
  const reloader = (async () => {
    for (let g = 1; Date.now() < deadline - 2500; g++) {
      await sleep(2000);
      try {
        await proxy.reload({ config: config(g), reason: 'soak' });
        reloads++;
      } catch (err) {
        reloadErrors.push((err as Error).message);
      }
    }
  })();
  try {
    await Promise.all([...Array.from({ length: CONCURRENCY }, (_, w) => worker(w)), reloader]);
  } finally {
    clearInterval(sampler);
  }
  t.same(reloadErrors, [], 'every reload succeeded');

  t.comment(`requests ${sent}, errors ${errors}, reloads ${reloads}, statuses ${JSON.stringify(Object.fromEntries(counts))}`);
  t.comment(`RSS MiB per second: ${rss.join(' ')}`);
  t.same(unexpected, [], 'every request got its expected status (200, 401 without a key, 503 from the trapping adapter)');
  t.equal(errors, 0, 'no request lost or hung');
  t.ok(sent > SECONDS * 100, `sustained load: ${sent} requests`);
  t.ok(reloads >= Math.floor(SECONDS / 2) - 2, `${reloads} reloads during the load`);
  const m = (await request(proxy.adminPort!, '/metrics')).body;
  t.ok((metric(m, 'wasm_mixer_vm_restarts_total', { adapter: 'trap' }) ?? 0) > 10, 'the trapping adapter was restarted many times');
  t.ok(accessLogs > sent * 0.9, `access logs written (${accessLogs})`);
  t.notOk(records.some((r) => r.code === 'RELOAD_FAILED'), 'no reload failed');
  // Levels off: after warm-up, the last third of the run is not far above the middle third.
  const third = Math.floor(rss.length / 3);
  const mid = Math.max(...rss.slice(third, 2 * third));
  const last = Math.max(...rss.slice(2 * third));
  t.ok(last <= mid * 1.25 + 32, `RSS levels off: max ${mid} MiB in the middle third, ${last} MiB in the last third`);
});
