// Global limits on a real Redis Cluster (3 masters, 1 replica each, started here), through
// the real CLI with two workers (P = 2 lease holders), when the master that owns the
// limit's slot dies (SIGKILL) under load: leases fail until its replica takes over
// (on_error applies), then resume on the new master, within the documented bound
// (adapters/quota/README.md "Redis Cluster and Sentinel").
import t from 'tap';
import { globalSetup, startGlobalLimitProxy } from './global-setup.js';
import { blast, count, metricValue, request, sleep, type Res } from './helpers.js';
import { startRedisCluster } from './redis-cluster.js';

const setup = await globalSetup(t, 'quota-cluster-test');
const cluster = await startRedisCluster(3, 1);
t.teardown(() => cluster.stop());

const WORKERS = 2;

t.test('fixed window across an unplanned master failure (SIGKILL): within limit + workers x lease', async (t) => {
  const limit = 400;
  const lease = 20;
  const proxy = await startGlobalLimitProxy(t, setup, { redisUrl: cluster.url, domain: 'cl2', limit, lease, timeoutMs: 1000, workers: WORKERS, name: 'cluster-proxy-kill' });
  const owner = await cluster.ownerOf('{wasm-mixer:quota:cl2:api}');
  const results: Res[] = [...(await blast(proxy.port, 150, 16))];
  t.ok(count(results, 200) > 0, 'leases work before the failure');
  // The master dies; after cluster-node-timeout (2 s) its replica takes over the slot.
  await cluster.kill(owner.master);
  let promoted = false;
  for (let i = 0; i < 300 && !promoted; i++) {
    results.push(...(await blast(proxy.port, 16, 16)));
    promoted = (await cluster.cli(owner.replica, 'ROLE').catch(() => '')).startsWith('master');
  }
  t.ok(promoted, 'the replica took over the slot');
  // Leases reach the new master once ioredis has the new slot map; then spend what is left.
  for (let i = 0; i < 40 && count(results, 429) === 0; i++) results.push(...(await blast(proxy.port, 40, 16)));
  results.push(...(await blast(proxy.port, 300, 16)));
  const admitted = count(results, 200);
  const unavailable = count(results, 503);
  t.comment(`admitted ${admitted}, 429 ${count(results, 429)}, 503 while the slot had no master ${unavailable}`);
  t.equal(admitted + count(results, 429) + unavailable, results.length, 'every request got 200, 429 or 503 (closed)');
  t.ok(unavailable > 0, 'leases failed while the slot had no master, and on_error: closed denied them');
  t.ok(admitted <= limit + WORKERS * lease, `admitted ${admitted} <= limit + workers x lease = ${limit + WORKERS * lease} (grants the dead master had not replicated)`);
  t.ok(admitted >= limit - WORKERS * lease, `admitted ${admitted} >= limit - workers x lease`);
});
