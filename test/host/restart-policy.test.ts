// The crash-loop rule of host/src/plugin/restart-policy.ts, on a fake clock:
// restarts are immediate unless the module crashes on most of its requests.
import t from 'tap';
import { RestartTracker } from '../../host/src/plugin/restart-policy.js';

t.test('1 crash in 50 requests, for 10 minutes: every restart is immediate', async (t) => {
  const r = new RestartTracker();
  let now = 0;
  for (let i = 1; i <= 60_000; i++) {
    now += 10; // 100 req/s
    r.request();
    if (i % 50 === 0) {
      const d = r.crashed(now);
      if (d.delayMs !== 0) return t.fail(`request ${i}: held down ${d.delayMs} ms (${d.crashes} crashes on ${d.requests} requests)`);
    }
  }
  t.equal(r.state(true, false, now).state, 'running');
  t.ok(r.state(true, false, now).crashesInWindow >= 100, 'many crashes in the window, but on 2 % of requests');
});

t.test('a crash on every request: immediate up to maxRestarts, then exponential backoff up to the cap', async (t) => {
  const r = new RestartTracker({ maxRestarts: 3, windowMs: 60_000, initialBackoffMs: 100, maxBackoffMs: 1000 });
  const delays: number[] = [];
  for (let i = 0; i < 9; i++) {
    r.request();
    delays.push(r.crashed(i).delayMs);
  }
  t.same(delays, [0, 0, 0, 100, 200, 400, 800, 1000, 1000]);
  t.match(r.state(false, false, 9), { state: 'crash-looping', crashesInWindow: 9, requestsInWindow: 9 });
});

t.test('the backoff resets once crashes are no longer on most requests', async (t) => {
  const r = new RestartTracker({ maxRestarts: 2, windowMs: 60_000, initialBackoffMs: 100 });
  for (let i = 0; i < 4; i++) {
    r.request();
    r.crashed(i);
  }
  for (let i = 0; i < 20; i++) r.request();
  t.equal(r.crashed(10).delayMs, 0, '5 crashes on 24 requests: restarted at once');
});

t.test('crashes older than the window are forgotten', async (t) => {
  const r = new RestartTracker({ maxRestarts: 2, windowMs: 1000 });
  for (let i = 0; i < 3; i++) {
    r.request();
    r.crashed(i);
  }
  r.request();
  t.ok(r.crashed(3).delayMs > 0, '4 crashes on 4 requests within the window');
  r.request();
  t.equal(r.crashed(5000).delayMs, 0, 'a lone crash after the window');
});

t.test('a failed restart always backs off, and is not reported as crash-looping', async (t) => {
  const r = new RestartTracker({ initialBackoffMs: 50 });
  r.request();
  t.equal(r.crashed(0).delayMs, 0);
  const d = r.crashed(1, true);
  t.equal(d.delayMs, 50);
  t.equal(r.state(false, false, 2).state, 'restarting');
});
