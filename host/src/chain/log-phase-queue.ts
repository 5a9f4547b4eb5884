// The proxy's log phase, batched. A request's proxy_on_log does not change its response,
// so the proxy does not run it the moment the response ends: streams that end during one
// turn of the event loop are queued, and their log phase runs once I/O is done for that
// turn (setImmediate), adapter by adapter (HostStream.logPhase). At saturation many
// requests end per turn; running one adapter's log code for all of them back to back
// finds it in the CPU's caches instead of evicted by the proxy's HTTP work in between.
//
// Bound: at most MAX_QUEUED_LOG_PHASES streams wait (limits.ts); the one that reaches it
// runs the queue at once. Each stream's end time is taken when it ends, not when it is
// logged, so durations in logs and metrics do not include the wait. close() runs what is
// queued (the host calls it before stopping its adapters).

import { MAX_QUEUED_LOG_PHASES } from '../limits.js';
import { HostStream } from './chain.js';

export class LogPhaseQueue {
  private queued: HostStream[] = [];
  private scheduled = false;
  private readonly run = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /** Ends `stream` now and runs its log phase with the others that end in this turn. */
  add(stream: HostStream): void {
    if (!stream.end()) return;
    const q = this.queued;
    q.push(stream);
    if (q.length >= MAX_QUEUED_LOG_PHASES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  /** Streams waiting for their log phase. */
  get size(): number {
    return this.queued.length;
  }

  /** Runs the log phase of every queued stream now. */
  flush(): void {
    const q = this.queued;
    if (q.length === 0) return;
    this.queued = [];
    HostStream.logPhase(q);
  }
}
