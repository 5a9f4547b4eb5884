// The quota lease deadline (host/src/quota/deadline.ts) against a real redis-server:
// a Redis that does not answer (CLIENT PAUSE) fails the lease at about timeout_ms, while
// a process that was merely busy (its event loop blocked past the deadline) still reads
// the answer Redis sent in time. Bounded either way: MAX_DEADLINE_FACTOR x timeout_ms.
import t from 'tap';
import { closeRedisClients, redisLeaseCall } from '../../host/src/quota/lease.js';
import { MAX_DEADLINE_FACTOR, leaseDeadline } from '../../host/src/quota/deadline.js';
import { startRedis } from '../../adapters/quota/test/helpers.js';

const redis = await startRedis();
t.teardown(() => redis.stop());
t.teardown(() => closeRedisClients());

let seq = 0;
const lease = (timeoutMs: number) =>
  redisLeaseCall({
    cluster: 'redis',
    baseUrl: redis.url,
    headers: [[':method', 'POST'], [':path', '/quota/v1/lease'], [':authority', 'redis']],
    body: Buffer.from(JSON.stringify({ algorithm: 'fixed_window', key: `deadline-${++seq}`, limit: 10, want: 1, window_ms: 60_000, window_start: 0 })),
    timeoutMs,
    signal: new AbortController().signal,
  });

/** Blocks the event loop (a busy proxy: a burst of requests in one turn). */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

t.test('busy process, healthy Redis: the answer is read although the deadline passed while busy', async (t) => {
  await lease(1000); // connect and load the script first
  for (let i = 0; i < 3; i++) {
    const p = lease(50);
    // Two turns later, after the command went out: Redis answers in microseconds, and this
    // process, busy for 6 x the deadline, reads the answer only afterwards.
    setImmediate(() => setImmediate(() => busy(300)));
    const r = await p;
    t.equal(r.headers[0]![1], '200', `lease ${i} answered`);
    t.equal(JSON.parse(Buffer.from(r.body).toString()).granted, 1);
  }
});

t.test('busy before the command went out: Redis gets another timeout (within MAX_DEADLINE_FACTOR x)', async (t) => {
  for (let i = 0; i < 3; i++) {
    const p = lease(100);
    setImmediate(() => busy(200)); // runs before ioredis writes the command: the timer fires 100 ms late
    const r = await p;
    t.equal(r.headers[0]![1], '200', `lease ${i} answered`);
  }
});

t.test('responsive process, Redis paused: the lease fails at about its timeout', async (t) => {
  await redis.command('CLIENT', 'PAUSE', '1500', 'ALL');
  const t0 = performance.now();
  await t.rejects(lease(100), /quota lease timed out after 100 ms/);
  const took = performance.now() - t0;
  t.ok(took >= 95 && took < 100 * MAX_DEADLINE_FACTOR + 200, `failed after ${took.toFixed(0)} ms`);
  await new Promise((r) => setTimeout(r, 1600)); // the pause ends
});

t.test('a process busy in every turn still fails after MAX_DEADLINE_FACTOR x timeout', async (t) => {
  const t0 = performance.now();
  let expired = 0;
  leaseDeadline(40, () => (expired = performance.now() - t0));
  const ticker = setInterval(() => busy(60), 1); // each turn is late by more than the tolerance
  while (expired === 0 && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
  clearInterval(ticker);
  t.ok(expired > 0, 'it expired');
  t.ok(expired <= 40 * MAX_DEADLINE_FACTOR + 400, `after ${expired.toFixed(0)} ms`);
});
