// Reads files into one reusable buffer. Fresh memory is dear on the VM kind the benchmarks run
// on (a Firecracker guest): the first touch of each 4 KiB page costs ~13 µs, against well under
// 1 µs on bare metal. Reading the four benchmark adapters' modules and instrumented-cache
// entries into a new buffer each faulted in ~310 pages, about 4 ms of their start-up; through
// two ScratchReaders (modules, cache entries) they fault in the largest of each once.
//
// The bytes returned are a view of the buffer: valid until the next read through the same reader.
//
// The config validator reads its generated code and V8 code cache (~340 kB) through two readers
// and hands them back (handBack); WasmHost.create then reads the modules through the same two
// (warmReader), so those pages fault once per process start, not twice (~85 faults, ~1 ms).

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** The smallest buffer a reader allocates: the benchmark's adapters are 120–230 kB. */
const MIN_BYTES = 256 * 1024;

export class ScratchReader {
  private buf: Buffer | null = null;

  /** The whole file (it may grow while read); throws the fs error (ENOENT, EISDIR, ...). */
  read(path: string): Buffer {
    const fd = openSync(path, 'r');
    try {
      let buf = this.room(fstatSync(fd).size + 1, 0); // +1: EOF is seen without growing
      let n = 0;
      for (;;) {
        if (n === buf.length) buf = this.room(buf.length * 2, n);
        const got = readSync(fd, buf, n, buf.length - n, null);
        if (got === 0) return buf.subarray(0, n);
        n += got;
      }
    } finally {
      closeSync(fd);
    }
  }

  /** The buffer, at least `size` bytes, keeping its first `keep` bytes. */
  private room(size: number, keep: number): Buffer {
    const old = this.buf;
    if (old !== null && old.length >= size) return old;
    const buf = Buffer.allocUnsafeSlow(Math.max(size, MIN_BYTES, old === null ? 0 : old.length * 2));
    if (keep > 0) old!.copy(buf, 0, 0, keep);
    this.buf = buf;
    return buf;
  }
}

/** Readers handed back after use, whose buffers are already faulted in; at most two are kept. */
const spare: ScratchReader[] = [];

/** A reader handed back earlier (its pages already touched), else a new one. Not handed back, it is freed with its user. */
export function warmReader(): ScratchReader {
  return spare.pop() ?? new ScratchReader();
}

/** Keeps `reader` for the next warmReader(); its bytes must no longer be in use. */
export function handBack(reader: ScratchReader): void {
  if (spare.length < 2 && !spare.includes(reader)) spare.push(reader);
}
