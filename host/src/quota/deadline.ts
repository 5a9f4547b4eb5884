// The deadline of a quota lease: how long Redis may take to answer, not how busy this
// process is. A proxy that is merely busy (a burst of requests on a cold start) must not
// take a late-read answer for a Redis outage: that marks the cluster down and applies
// on_error (fail open past the limit, or 503s) while Redis is healthy.

import { performance } from 'node:perf_hooks';

/** How late a timer may fire before the process counts as busy: max(LAG_FLOOR_MS, timeout / LAG_FRACTION). */
const LAG_FLOOR_MS = 10;
const LAG_FRACTION = 10;
/** Event-loop utilization over the wait above which the process counts as busy too (every turn short, but back to back). */
const BUSY_UTILIZATION = 0.9;
/** However busy the process, a lease fails after this many times its timeout. */
export const MAX_DEADLINE_FACTOR = 4;

/**
 * Calls `expire` when `timeoutMs` have passed without `cancel()`, with three allowances
 * for a busy event loop:
 * - the clock starts one turn later (setImmediate), when the caller's command has gone out
 *   (ioredis writes auto-pipelined commands in setImmediate, after the rest of the turn);
 * - on expiry, the verdict waits one more turn, so an answer already waiting in the socket
 *   is read first (Node runs expired timers before it reads sockets);
 * - if the timer fired late (the event loop was busy for longer than a tenth of the
 *   timeout) or the event loop was busy over 90% of the wait, Redis gets another
 *   `timeoutMs`, up to MAX_DEADLINE_FACTOR x `timeoutMs` in all.
 * A responsive process whose Redis does not answer (paused, partitioned) still fails at
 * about `timeoutMs`.
 */
export function leaseDeadline(timeoutMs: number, expire: () => void): () => void {
  const timeout = Math.max(1, timeoutMs);
  const tolerance = Math.max(LAG_FLOOR_MS, timeout / LAG_FRACTION);
  let timer: NodeJS.Timeout | undefined;
  let verdict: NodeJS.Immediate | undefined;
  let start = 0;
  let due = 0;
  const fire = () => {
    verdict = setImmediate(() => {
      const now = performance.now();
      const busy = now - due > tolerance || performance.eventLoopUtilization(elu).utilization > BUSY_UTILIZATION;
      if (busy && now + timeout - start <= MAX_DEADLINE_FACTOR * timeout) {
        due = now + timeout;
        timer = setTimeout(fire, timeout);
        return;
      }
      expire();
    });
  };
  let elu = performance.eventLoopUtilization();
  const arm = setImmediate(() => {
    elu = performance.eventLoopUtilization();
    start = performance.now();
    due = start + timeout;
    timer = setTimeout(fire, timeout);
  });
  return () => {
    clearImmediate(arm);
    if (verdict !== undefined) clearImmediate(verdict);
    clearTimeout(timer);
  };
}
