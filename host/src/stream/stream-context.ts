// Per-request, per-adapter state shared by in-process VMs and remote adapters:
// the context id, the stream, and the pause/resume handshake with the chain.

import type { HttpStream } from './http-stream.js';

export type Direction = 'request' | 'response';

/** Result of one stream callback. */
export const enum CallResult {
  Continue = 0,
  Stop = 1,
  Failed = 2,
}

interface Waiter {
  /** The paused direction; continuing the other direction does not resume it (as in Envoy). */
  direction: Direction;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** One request's context inside one VM. */
export class StreamContext {
  /** proxy_continue_stream arrived for a direction that was not (yet) paused: two fields, not a record, as one is made per adapter and request. */
  private resumeRequest = false;
  private resumeResponse = false;
  waiter: Waiter | null = null;
  donePending = false;
  onDone: (() => void) | null = null;
  constructor(
    readonly id: number,
    readonly stream: HttpStream,
    /** The VM generation (in-process) the context belongs to; a restart makes it dead. */
    readonly generation: number,
  ) {}

  /** Resolves when the adapter resumes the paused direction or replies locally. */
  waitForResume(direction: Direction): Promise<void> {
    const requested = direction === 'request' ? this.resumeRequest : this.resumeResponse;
    if (requested || this.stream.localResponse !== null || this.stream.reset) {
      if (direction === 'request') this.resumeRequest = false;
      else this.resumeResponse = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.waiter = { direction, resolve, reject };
    });
  }

  /** Resumes `direction` (proxy_continue_stream), or whatever is paused (null: a local reply or a reset). */
  wake(direction: Direction | null): void {
    const w = this.waiter;
    if (w === null || (direction !== null && w.direction !== direction)) {
      if (direction === 'request') this.resumeRequest = true;
      else if (direction === 'response') this.resumeResponse = true;
      return;
    }
    this.waiter = null;
    w.resolve();
  }

  fail(err: Error): void {
    const w = this.waiter;
    this.waiter = null;
    w?.reject(err);
  }
}

