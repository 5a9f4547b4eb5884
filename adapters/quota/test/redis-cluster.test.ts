// Global limits on a real Redis Cluster (3 masters, 1 replica each, started here), through
// the real CLI with two workers (P = 2 lease holders): the limit holds, and it still
// holds across a master failover during load (CLUSTER FAILOVER on the replica of the
// master that owns the limit's slot; the documented bound in the README's
// "Redis Cluster and Sentinel").
import t from 'tap';
import { globalSetup, startGlobalLimitProxy } from './global-setup.js';
import { blast, count, metricValue, request, sleep, type Res } from './helpers.js';
import { startRedisCluster } from './redis-cluster.js';

const setup = await globalSetup(t, 'quota-cluster-test');
const cluster = await startRedisCluster(3, 1);
t.teardown(() => cluster.stop());

const WORKERS = 2;

t.test('fixed window on a 3-master Redis Cluster across a master failover under load', async (t) => {
  const limit = 600;
  const lease = 20;
  const proxy = await startGlobalLimitProxy(t, setup, { redisUrl: cluster.url, domain: 'cl1', limit, lease, timeoutMs: 2000, workers: WORKERS, name: 'cluster-proxy' });

  // The lease key is hash-tagged: its slot is the tag's.
  const owner = await cluster.ownerOf('{wasm-mixer:quota:cl1:api}');
  t.comment(`slot ${owner.slot}: master :${owner.master}, replica :${owner.replica}`);

  const results: Res[] = [];
  const before = await blast(proxy.port, 200, 16);
  results.push(...before);
  t.ok(count(before, 200) >= 150, `leases work on the cluster (${count(before, 200)} of 200 admitted before the failover)`);

  // Fail the owning master over to its replica while requests keep coming.
  let failedOver = false;
  const load = (async () => {
    for (let i = 0; i < 12; i++) results.push(...(await blast(proxy.port, 60, 16)));
  })();
  await sleep(200);
  t.equal(await cluster.cli(owner.replica, 'CLUSTER', 'FAILOVER'), 'OK');
  for (let i = 0; i < 200 && !failedOver; i++) {
    failedOver = (await cluster.cli(owner.replica, 'ROLE')).startsWith('master');
    if (!failedOver) await sleep(50);
  }
  t.ok(failedOver, 'the replica is now the master of the slot');
  await load;
  // And enough traffic after it to spend what is left.
  results.push(...(await blast(proxy.port, 400, 16)));

  const admitted = count(results, 200);
  const denied = count(results, 429);
  const unavailable = count(results, 503);
  const m = (await request(proxy.adminPort, '/metrics')).body;
  const failedLeases = metricValue(m, 'quota_leases_total{limit="api",result="failed"}');
  t.comment(`admitted ${admitted}, denied 429 ${denied}, 503 during the failover ${unavailable}, failed leases ${failedLeases}`);
  t.equal(admitted + denied + unavailable, results.length, 'every request got 200, 429 or 503');
  t.ok(admitted <= limit, `admitted ${admitted} <= limit ${limit}: a manual failover loses no write`);
  t.ok(admitted >= limit - WORKERS * lease, `admitted ${admitted} >= limit - workers x lease = ${limit - WORKERS * lease}`);
  const windowStart = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  const leased = Number(await cluster.cli(owner.replica, 'GET', `{wasm-mixer:quota:cl1:api}:${windowStart}`));
  t.ok(leased >= admitted && leased <= limit, `the new master counted ${leased} tokens leased: >= admitted, <= limit`);
  t.ok(metricValue(m, 'quota_leases_total{limit="api",result="exhausted"}') > 0, 'leases after the failover reached the new master and found the budget spent');
});

