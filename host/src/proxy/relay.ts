// Copying a body nobody in the chain looks at from one side of the proxy to the other.

import type { Readable, Writable } from 'node:stream';

/**
 * Writes `src`'s chunks to `dst` as they arrive, pausing `src` while `dst` is full, and
 * calls `end` when `src` ends (`dst` stays open: the caller adds trailers and ends it).
 * What `src.pipe(dst, { end: false })` does for us, with one 'data' listener instead of
 * the half-dozen listeners pipe() adds to both streams and removes again on every
 * request. A destroyed `dst` refuses writes: `src` then stays paused (as after unpipe),
 * and whoever destroyed `dst` destroys or drains `src`.
 */
export function relay(src: Readable, dst: Writable, onChunk: ((bytes: number) => void) | null, end: () => void): void {
  let waiting = false;
  const resume = () => {
    waiting = false;
    src.resume();
  };
  src.on('data', (chunk: Buffer) => {
    onChunk?.(chunk.length);
    if (!dst.write(chunk) && !waiting) {
      waiting = true;
      src.pause();
      dst.once('drain', resume);
    }
  });
  src.once('end', end);
  src.resume();
}
