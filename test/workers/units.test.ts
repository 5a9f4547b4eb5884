// The pieces of the multi-worker proxy on their own: the primary's lease store answers
// exactly as the Redis Lua scripts do (same leases against a real redis-server), and is
// bounded; the crash-rate limit; the metrics merge; Redis Cluster / Sentinel urls.

import t from 'tap';
import { validateConfig } from '../../host/src/config/load.js';
import { isHostError } from '../../host/src/errors.js';
import { MetricsRegistry } from '../../host/src/metrics/registry.js';
import { closeRedisClients, leaseOnRedis, redisClient } from '../../host/src/quota/lease.js';
import type { LeaseRequest } from '../../host/src/quota/lease-protocol.js';
import { parseRedisUrl } from '../../host/src/quota/redis-url.js';
import { LeaseStore } from '../../host/src/workers/lease-store.js';
import { mergedRegistry, mergeSnapshots, RetiredMetrics } from '../../host/src/workers/metrics-merge.js';
import { RestartLimiter } from '../../host/src/workers/restart-policy.js';
import { startRedis } from '../../adapters/quota/test/helpers.js';

t.test('the lease store grants exactly what the Redis scripts grant', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  t.teardown(() => closeRedisClients());
  const client = redisClient(redis.url);
  if (client.status !== 'ready') await new Promise((r) => client.once('ready', r));
  const store = new LeaseStore();
  t.teardown(() => store.close());
  const seq: LeaseRequest[] = [];
  for (let i = 0; i < 12; i++) seq.push({ algorithm: 'fixed_window', key: 'k:fw', limit: 50, want: 7, need: 1, window_ms: 60_000, window_start: 1_700_000_040_000 });
  // Sliding window: leases in successive buckets, old buckets leaving the window.
  for (let i = 0; i < 14; i++) seq.push({ algorithm: 'sliding_window', key: 'k:sw', limit: 30, want: 4, need: 2, window_ms: 5000, bucket: 100 + Math.floor(i / 3), buckets: 5, bucket_ms: 1000 });
  // Token bucket with a refill too slow to matter during the test: only the burst.
  for (let i = 0; i < 8; i++) seq.push({ algorithm: 'token_bucket', key: 'k:tb', limit: 1, want: 6, need: 1, window_ms: 1000, burst: 20, rate_per_ms: 1e-9 });
  for (const [i, l] of seq.entries()) {
    const fromRedis = await leaseOnRedis(client, l);
    const fromStore = store.lease(l);
    if (l.algorithm !== 'token_bucket') t.same(fromStore, fromRedis, `lease ${i} (${l.algorithm}) answered as Redis answers it`);
    else {
      // Redis refills on its clock, the store on the primary's: the refill between two calls differs by a hair.
      t.same({ ...fromStore, retry_ms: 0 }, { ...fromRedis, retry_ms: 0 }, `lease ${i} (token bucket) grants as Redis grants`);
      t.ok(Math.abs(fromStore.retry_ms - fromRedis.retry_ms) <= fromRedis.retry_ms * 1e-6 + 2, 'and the same retry time');
    }
  }
});

t.test('the lease store is bounded: past maxKeys, new keys are admitted without a counter', async (t) => {
  let now = 1_000_000;
  const store = new LeaseStore(3, () => now);
  t.teardown(() => store.close());
  const fw = (key: string): LeaseRequest => ({ algorithm: 'fixed_window', key, limit: 10, want: 4, need: 1, window_ms: 1000, window_start: 0 });
  for (const k of ['a', 'b', 'c']) t.equal(store.lease(fw(k)).granted, 4);
  t.equal(store.size, 3);
  t.same(store.lease(fw('d')), { granted: 4, used: 0, remaining: 10, retry_ms: 0, retry_buckets: 0 }, 'full: admitted');
  t.equal(store.fullGrants, 1);
  t.equal(store.size, 3, 'no fourth key');
  t.equal(store.lease(fw('a')).used, 8, 'known keys keep counting');
  now += 2001; // a, b, c expire (window + 1 s slack)
  t.equal(store.lease(fw('d')).used, 4, 'expired keys make room');
  t.ok(store.size <= 3);
});

t.test('crash-rate limit: at once, then backoff doubling, then down until the window passes', async (t) => {
  let now = 0;
  const l = new RestartLimiter({ maxRestarts: 3, windowMs: 10_000, initialBackoffMs: 100, maxBackoffMs: 250 }, () => now);
  t.equal(l.next(), 0);
  t.equal(l.next(), 100);
  t.equal(l.next(), 200);
  t.equal(l.next(), 10_000, 'past maxRestarts: until the first restart leaves the window');
  now = 60_000;
  t.equal(l.next(), 0, 'a new window: at once again');
  t.equal(new RestartLimiter({ maxRestarts: 0 }).next(), Infinity, 'maxRestarts 0: never replaced');
});

t.test('metrics merge: counters summed, histograms merged, gauges per worker, retired workers kept', async (t) => {
  const worker = (n: number) => {
    const r = new MetricsRegistry();
    r.counter('reqs_total', 'requests', { route: 'a' })(n);
    const h = r.histogram('lat_seconds', 'latency', {}, { buckets: [0.1, 1] });
    for (let i = 0; i < n; i++) h(i % 2 === 0 ? 0.05 : 0.5);
    r.gauge('mem_bytes', 'memory')(n * 1000);
    return r.collect();
  };
  const merged = mergeSnapshots([{ worker: '1', families: worker(4) }, { worker: '2', families: worker(6) }]);
  const text = mergedRegistry(merged).render();
  t.match(text, /^reqs_total\{route="a"\} 10$/m);
  t.match(text, /^lat_seconds_bucket\{le="0.1"\} 5$/m);
  t.match(text, /^lat_seconds_bucket\{le="1"\} 10$/m);
  t.match(text, /^lat_seconds_count 10$/m);
  t.match(text, /^mem_bytes\{worker="1"\} 4000$/m);
  t.match(text, /^mem_bytes\{worker="2"\} 6000$/m);
  const retired = new RetiredMetrics();
  retired.retire(worker(4));
  const after = mergedRegistry(mergeSnapshots([retired.snapshot(), { worker: '1', families: worker(1) }, { worker: '2', families: worker(6) }])).render();
  t.match(after, /^reqs_total\{route="a"\} 11$/m, 'a replaced worker does not make the sum go down');
  t.notMatch(after, /worker="retired"/, 'no gauge of a dead worker');
});

t.test('Redis Cluster and Sentinel urls', async (t) => {
  t.same(parseRedisUrl('redis+cluster://10.0.0.1:7000,10.0.0.2:7001'), { kind: 'cluster', nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }], username: undefined, password: undefined, tls: false });
  t.same(parseRedisUrl('rediss+sentinel://u:p%40ss@s1:26379,s2:26380/mymaster/2'), { kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }], name: 'mymaster', db: 2, username: 'u', password: 'p@ss', tls: true });
  t.same(parseRedisUrl('redis://127.0.0.1:6379'), { kind: 'single', url: 'redis://127.0.0.1:6379' });
  for (const bad of ['redis+cluster://', 'redis+cluster://h1', 'redis+sentinel://s1:26379', 'redis+cluster://h:1/0', 'redis+sentinel://:secret@s1:1/m/x']) {
    t.throws(() => parseRedisUrl(bad), { code: 'CONFIG_INVALID' }, bad);
  }
  try {
    validateConfig({ clusters: { r: { url: 'redis+sentinel://:hunter2@s1:26379' } } }, 'p.yaml');
    t.fail('refused');
  } catch (err) {
    t.ok(isHostError(err, 'CONFIG_INVALID'));
    t.match((err as Error).message, /\/clusters\/r\/url: .*name the master group/);
    t.notMatch((err as Error).message, /hunter2/, 'the password is not in the message');
  }
  t.throws(() => validateConfig({ workers: 0 }, 'p.yaml'), { code: 'CONFIG_INVALID' });
  t.ok(validateConfig({ workers: 'auto', workerRestart: { maxRestarts: 3 } }, 'p.yaml'));
});
