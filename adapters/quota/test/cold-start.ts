// Shared by cold-start-open.test.ts and cold-start-closed.test.ts (one file per policy keeps each
// under a minute on a loaded machine).
// The documented bound "Redis healthy: at most N per window" under the shipped defaults,
// whatever the local load: three freshly started proxy processes (the real CLI) share one
// redis-server, a fixed window of 1,000 per minute, and 3 x 1,500 requests arrive at once.
// Redis answers in microseconds; the proxies are busy. A busy proxy is not Redis being down:
// nothing may be admitted without a lease (on_error "open"), and nothing refused with a 503
// (on_error "closed").
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startDemoUpstream } from '../../../host/src/index.js';
import { blast, buildQuota, count, metricValue, repoRoot, request, sleep, startProxyProcess, startRedis, type ProxyProcess, type Res } from './helpers.js';

async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'quota-cold-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

// The module `npm run build` made (CI builds before testing), else a fresh build: compiling takes
// longer than the scenario itself on a loaded machine.
const built = join(repoRoot, 'wasm', 'quota.wasm');
const { wasm, dir, cleanup } = existsSync(built) ? { wasm: built, ...(await tempDir()) } : await buildQuota();
t.teardown(cleanup);
const upstream = await startDemoUpstream(0);
t.teardown(() => upstream.close());
const redis = await startRedis();
t.teardown(() => redis.stop());

const LIMIT = 1000;
const PROXIES = 3;
const PER_PROXY = 1500;
const WINDOW_MS = 60_000;
/** Connections per proxy: all 1,500 requests are queued at once, 300 on the wire at a time. */
const CONCURRENCY = 300;

async function fleet(t: Test, name: string, global: Record<string, unknown>): Promise<ProxyProcess[]> {
  const config = {
    listen: { address: '127.0.0.1', port: 0 },
    admin: { port: 0 },
    logLevel: 'warn',
    routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }],
    clusters: { redis: { url: redis.url } },
    plugins: [{ name: 'quota', url: wasm, clusters: ['redis'], pluginConfig: { domain: name, global: { cluster: 'redis', ...global }, limits: [{ name: 'api', limit: LIMIT, window: '1m', mode: 'global' }] } }],
  };
  const ps = await Promise.all(Array.from({ length: PROXIES }, (_, i) => startProxyProcess(config, dir, `${name}-${i}`)));
  t.teardown(() => Promise.all(ps.map((p) => p.stop())));
  return ps;
}

/** Waits until the rest of the current fixed window is long enough for the whole burst. */
async function freshWindow(): Promise<void> {
  const left = WINDOW_MS - (Date.now() % WINDOW_MS);
  if (left < 20_000) await sleep(left + 50);
}

async function metric(ps: ProxyProcess[], series: string): Promise<number> {
  let sum = 0;
  for (const p of ps) sum += metricValue((await request(p.adminPort, '/metrics')).body, series);
  return sum;
}

async function burst(t: Test, ps: ProxyProcess[]) {
  const windowStart = Math.floor(Date.now() / WINDOW_MS);
  let all: Res[][];
  try {
    all = await Promise.all(ps.map((p) => blast(p.port, PER_PROXY, CONCURRENCY, undefined, 60_000)));
  } catch (err) {
    throw new Error(`${(err as Error).message}; the proxies said:\n${ps.map((p) => p.stderr()).join('')}`);
  }
  const rs = all.flat();
  t.equal(Math.floor(Date.now() / WINDOW_MS), windowStart, 'the burst stayed inside one fixed window');
  return { admitted: count(rs, 200), denied: count(rs, 429), unavailable: count(rs, 503), total: rs.length, window: windowStart };
}

/** Starts a fresh fleet with `on_error` and fires the burst at it; checks the bound and the policy's side. */
export async function coldStart(onError: 'open' | 'closed'): Promise<void> {
  await t.test(`cold start, 3 proxies x 1,500 requests at once, on_error ${onError}: at most ${LIMIT} admitted`, async (t) => {
    const t0 = performance.now();
    const ps = await fleet(t, `cold-${onError}`, onError === 'open' ? {} : { on_error: 'closed' });
    const t1 = performance.now();
    await freshWindow();
    const t2 = performance.now();
    const r = await burst(t, ps);
    t.comment(`start ${(t1 - t0).toFixed(0)} ms, window wait ${(t2 - t1).toFixed(0)} ms, burst ${(performance.now() - t2).toFixed(0)} ms`);
    const failedOpen = await metric(ps, 'quota_requests_total{limit="api",result="failed_open"}');
    const failedLeases = await metric(ps, 'quota_leases_total{limit="api",result="failed"}');
    t.comment(`on_error ${onError}: admitted ${r.admitted}, 429 ${r.denied}, 503 ${r.unavailable}, failed open ${failedOpen}, failed leases ${failedLeases}`);
    t.ok(r.admitted <= LIMIT, `admitted ${r.admitted} <= ${LIMIT} (Redis healthy: at most N per window)`);
    t.equal(r.admitted + r.denied, r.total, 'every request got 200 or 429: none admitted or refused for want of a lease');
    t.equal(r.unavailable, 0, 'no 503 (rate limit service unavailable) while Redis answers');
    t.equal(failedOpen, 0, 'nothing admitted without a lease');
    t.equal(failedLeases, 0, `no lease failed: Redis answered every one${failedLeases > 0 ? `\n${ps.map((p) => p.stderr()).join('')}` : ''}`);
    const lease = LIMIT / 20; // the default lease size
    t.ok(r.admitted >= LIMIT - PROXIES * lease, `admitted ${r.admitted} >= ${LIMIT - PROXIES * lease} (only tokens stranded in pools are lost)`);
    const leased = Number(await redis.command('GET', `wasm-mixer:quota:cold-${onError}:api:${r.window * WINDOW_MS}`));
    t.ok(leased <= LIMIT && leased >= r.admitted, `Redis counted ${leased} tokens leased: >= admitted, <= limit`);
  });
}
