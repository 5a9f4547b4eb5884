// The bytes an adapter holds while it returns StopIterationAndBuffer. Each chunk is
// appended into a buffer whose capacity doubles, so buffering n bytes costs O(n) copies
// in total; concatenating every chunk onto the whole buffer (as before) cost O(n²).

import { EMPTY } from '../stream/http-stream.js';

export class BodyAccumulator {
  private buf: Uint8Array;
  private len: number;
  private last: Uint8Array;

  /** Starts from `bytes` without copying them (they are only read). */
  constructor(bytes: Uint8Array = EMPTY) {
    this.buf = bytes;
    this.len = bytes.length;
    this.last = bytes;
  }

  get length(): number {
    return this.len;
  }

  /** Everything held so far. The same object until the next append. */
  view(): Uint8Array {
    return this.last;
  }

  /** Appends `data` and returns a view of everything held. */
  append(data: Uint8Array): Uint8Array {
    if (data.length === 0) return this.last;
    const need = this.len + data.length;
    // Bytes we started from fill their array exactly, so they are never written into.
    if (need > this.buf.length) {
      const next = new Uint8Array(Math.max(need, this.buf.length * 2, 64 * 1024));
      next.set(this.buf.subarray(0, this.len), 0);
      this.buf = next;
    }
    this.buf.set(data, this.len);
    this.len = need;
    this.last = this.buf.subarray(0, this.len);
    return this.last;
  }
}
