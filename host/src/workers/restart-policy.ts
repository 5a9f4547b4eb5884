// When to replace a worker process that died: the same crash-rate limit and backoff
// as an adapter VM's (docs/operating.md "When an adapter crashes"). The first death
// in a window is replaced at once; later ones back off, doubling; past maxRestarts
// within windowMs the worker stays down until the window has passed, so a worker that
// dies on start (a bad host, a module that crashes the process) cannot fork-loop.

export interface WorkerRestartPolicy {
  maxRestarts?: number;
  windowMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export const WORKER_RESTART_DEFAULTS = { maxRestarts: 10, windowMs: 60_000, initialBackoffMs: 100, maxBackoffMs: 30_000 };

export class RestartLimiter {
  private readonly p: Required<WorkerRestartPolicy>;
  private readonly times: number[] = [];

  constructor(policy: WorkerRestartPolicy = {}, private readonly now: () => number = Date.now) {
    this.p = { ...WORKER_RESTART_DEFAULTS, ...policy };
  }

  /** Records a death; returns how long to wait before the replacement starts. */
  next(): number {
    if (this.p.maxRestarts === 0) return Infinity; // never replaced
    const t = this.now();
    while (this.times.length > 0 && this.times[0]! <= t - this.p.windowMs) this.times.shift();
    if (this.times.length >= this.p.maxRestarts) {
      // Over the rate: down until the oldest restart leaves the window.
      const wait = this.times[0]! + this.p.windowMs - t;
      this.times.push(t + wait);
      this.times.shift();
      return wait;
    }
    const k = this.times.length;
    this.times.push(t);
    if (k === 0) return 0;
    return Math.min(this.p.maxBackoffMs, this.p.initialBackoffMs * 2 ** (k - 1));
  }
}
