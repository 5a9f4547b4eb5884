// undici's dispatch handler for one forwarded request: its callbacks feed the
// ResponseRelay directly (no Readable, no promise per response) and report failures.
// It implements the callbacks undici's client calls itself (onConnect/onHeaders/…):
// the newer controller-style ones are adapted to these by undici on every request.

import type { HeaderPair } from '../abi/pairs.js';
import type { ResponseRelay } from './upstream-response.js';

const ABANDONED = new Error('request abandoned by the proxy');

function strings(raw: ArrayLike<Buffer | string>): string[] {
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const x = raw[i]!;
    out[i] = typeof x === 'string' ? x : x.toString('latin1');
  }
  return out;
}

export class DispatchHandler {
  private abort: ((err?: Error) => void) | null = null;
  private abandoned = false;

  constructor(
    private readonly relay: ResponseRelay,
    private readonly failed: (err: Error) => void,
  ) {}

  /** The proxy ends the request itself (a local reply, a reset, the client left): not an upstream failure. */
  abandon(): void {
    if (this.abandoned) return;
    this.abandoned = true;
    this.abort?.(ABANDONED);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.abandoned) abort(ABANDONED);
    else this.abort = abort;
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    this.relay.resume = resume;
    return this.relay.headers(status, strings(raw));
  }

  onData(chunk: Buffer): boolean {
    return this.relay.data(chunk);
  }

  onComplete(trailers: ArrayLike<Buffer | string> | null): void {
    const t: HeaderPair[] = [];
    if (trailers !== null) {
      const s = strings(trailers);
      for (let i = 0; i < s.length; i += 2) t.push([s[i]!.toLowerCase(), s[i + 1]!]);
    }
    this.relay.end(t);
  }

  onError(err: Error): void {
    if (!this.abandoned) this.failed(err);
  }
}
