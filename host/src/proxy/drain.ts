// In-flight accounting for a graceful shutdown: once draining, responses ask
// clients to close, and close() waits for the last one (or drainMs).

import type { ServerResponse } from 'node:http';

export class Drain {
  private inFlight = 0;
  private draining = false;
  private drained: (() => void) | null = null;

  get active(): boolean {
    return this.draining;
  }

  /** Counts a response until it closes; once draining, it carries Connection: close. */
  track(res: ServerResponse): void {
    this.inFlight++;
    res.on('close', this.closed);
    if (this.draining) res.setHeader('connection', 'close');
  }

  /** One listener for every response (no closure per request). */
  private readonly closed = (): void => {
    this.inFlight--;
    if (this.draining && this.inFlight === 0) this.drained?.();
  };

  start(): void {
    this.draining = true;
  }

  /** Resolves when no request is in flight, or after `ms`. */
  async wait(ms: number): Promise<void> {
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => {
      this.drained = resolve;
      setTimeout(resolve, ms).unref();
    });
  }
}
