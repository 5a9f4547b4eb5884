// The stream (stdout, stderr) and file access-log sinks: entries wait in a bounded
// buffer of lines and go out as one batched write (access-log.ts says how entries
// get here, and what a full buffer costs).

import { open, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { refused, type AccessLogEntry, type AccessLogSink, type SinkStats } from './access-log.js';

export const DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024;
export const DEFAULT_MAX_FILES = 5;
export const DEFAULT_FILE_BATCH_BYTES = 256 * 1024;
export const DEFAULT_FILE_FLUSH_INTERVAL_MS = 100;
/** Largest single write; rotation is checked before each. */
const MAX_WRITE_BYTES = 256 * 1024;
/** Lines are copied into chunks of this size as they arrive (a longer line gets its own). */
const CHUNK_BYTES = 256 * 1024;
/** Written-out chunks kept for reuse: a fresh one costs page faults on every first touch. */
const FREE_CHUNKS = 2;

interface Chunk {
  readonly data: Buffer;
  /** Bytes before this were taken (and may still be being written: never overwritten until released). */
  start: number;
  used: number;
  /** End offset of each line after `start`, from index `head`. */
  ends: number[];
  head: number;
  /** Takes of this chunk not released yet. */
  lent: number;
}

/**
 * A bounded queue of lines waiting for one batched write. Each line is copied, newline
 * included, into the chunk being filled as it arrives, so the entry's own bytes die young
 * (lines wait up to a flush interval: kept as they came, each would hold its Buffer-pool
 * slab through a scavenge), and a batch is a view of one chunk, not a concatenation. A
 * chunk is reused once it is used up and every batch taken from it has been released.
 */
class LineBuffer {
  private chunks: Chunk[] = [];
  /** Used up, with batches still being written. */
  private retired: Chunk[] = [];
  private free: Buffer[] = [];
  private lines = 0;
  bytes = 0;

  constructor(readonly limit: number) {}

  get length(): number {
    return this.lines;
  }

  fits(line: Uint8Array): boolean {
    return this.bytes + line.length + 1 <= this.limit;
  }

  /** false when the line does not fit. */
  push(line: Uint8Array): boolean {
    const n = line.length + 1;
    if (this.bytes + n > this.limit) return false;
    let c = this.chunks[this.chunks.length - 1];
    if (c === undefined || c.used + n > c.data.length) {
      const data = n <= CHUNK_BYTES ? (this.free.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES)) : Buffer.allocUnsafeSlow(n);
      c = { data, start: 0, used: 0, ends: [], head: 0, lent: 0 };
      this.chunks.push(c);
    }
    c.data.set(line, c.used);
    c.data[c.used + line.length] = 0x0a;
    c.used += n;
    c.ends.push(c.used);
    this.bytes += n;
    this.lines++;
    return true;
  }

  /**
   * Takes up to `maxBytes` worth of lines (at least one) from the oldest chunk, as one
   * newline-joined view of it (call again for the rest); release() it once written.
   */
  take(maxBytes = Infinity): { data: Buffer; count: number } {
    let c = this.chunks[0]!;
    while (c.head === c.ends.length && this.chunks.length > 1) {
      this.retire(this.chunks.shift()!);
      c = this.chunks[0]!;
    }
    let size = 0;
    let count = 0;
    let end = c.start;
    let k = c.head;
    while (k < c.ends.length) {
      const n = c.ends[k]! - end;
      if (count > 0 && size + n > maxBytes) break;
      size += n;
      count++;
      end = c.ends[k++]!;
    }
    const data = c.data.subarray(c.start, end);
    c.start = end;
    c.head = k;
    c.lent++;
    if (k === c.ends.length) {
      if (this.chunks.length > 1) this.retire(this.chunks.shift()!);
      else {
        c.ends = []; // the last chunk keeps filling after `used`
        c.head = 0;
      }
    }
    this.bytes -= size;
    this.lines -= count;
    return { data, count };
  }

  /** A batch from take() has been written (or failed): its chunk may be reused. */
  release(data: Buffer): void {
    const at = this.retired.findIndex((c) => c.data.buffer === data.buffer);
    if (at >= 0) {
      const c = this.retired[at]!;
      if (--c.lent === 0) {
        this.retired.splice(at, 1);
        this.recycle(c);
      }
      return;
    }
    const live = this.chunks.find((c) => c.data.buffer === data.buffer);
    if (live !== undefined) live.lent--;
  }

  private retire(c: Chunk): void {
    if (c.lent === 0) this.recycle(c);
    else this.retired.push(c);
  }

  private recycle(c: Chunk): void {
    if (c.data.length === CHUNK_BYTES && this.free.length < FREE_CHUNKS) this.free.push(c.data);
  }
}

/**
 * What both sinks share: entries go into a bounded line buffer (a full buffer or a
 * closed sink drops the entry and counts it, as refused() does for every sink); the sink
 * writes the buffer out its own way.
 */
abstract class BufferedSink<S extends SinkStats = SinkStats> implements AccessLogSink {
  /** write() copies the line into the buffer: the entry may be borrowed. */
  readonly borrows = true;
  protected readonly buf: LineBuffer;
  protected closed = false;
  /** Resolvers of flush() calls waiting for the buffer to empty. */
  protected idle: Array<() => void> = [];

  constructor(
    readonly name: string,
    protected readonly stats: S,
    bufferBytes: number,
  ) {
    this.buf = new LineBuffer(bufferBytes);
  }

  get buffered(): number {
    return this.buf.bytes;
  }

  write(e: AccessLogEntry): boolean {
    if (refused(this.stats, this.closed, !this.buf.fits(e.line))) return false;
    this.buf.push(e.line);
    this.kick();
    return true;
  }

  /** Starts writing the buffer out on a later turn, unless that is already under way (or waiting for the destination). */
  protected abstract kick(): void;

  protected wakeFlushers(): void {
    const waiters = this.idle;
    this.idle = [];
    for (const w of waiters) w();
  }

  abstract flush(): Promise<void>;
  abstract close(): Promise<void>;
}

const guarded = new WeakSet<Writable>();

/** stdout, stderr or any Writable: one write per event-loop turn, honouring backpressure. */
export class StreamSink extends BufferedSink {
  private scheduled = false;
  /** Waiting for 'drain'. */
  private blocked = false;
  private inflight = 0;

  constructor(
    name: string,
    private readonly stream: Writable,
    stats: SinkStats,
    bufferBytes = DEFAULT_BUFFER_BYTES,
  ) {
    super(name, stats, bufferBytes);
    // A closed pipe (EPIPE) must cost dropped entries, not the process: without a listener
    // an 'error' on stdout is thrown. The failed write's callback counts and reports the drop.
    if (!guarded.has(stream)) {
      guarded.add(stream);
      stream.on('error', () => {});
    }
  }

  protected kick(): void {
    if (!this.scheduled && !this.blocked) {
      this.scheduled = true;
      setImmediate(() => this.pump());
    }
  }

  private pump(): void {
    this.scheduled = false;
    if (this.blocked || this.buf.length === 0) return this.settle();
    let ok = true;
    // Usually one write; two when the waiting lines straddle two chunks.
    while (ok && this.buf.length > 0) ok = this.writeOne();
    if (!ok) {
      this.blocked = true;
      this.stream.once('drain', () => {
        this.blocked = false;
        if (this.buf.length > 0) this.kick();
      });
    }
  }

  /** Writes one batch; false when the stream asks to wait for 'drain'. */
  private writeOne(): boolean {
    const { data, count } = this.buf.take();
    this.inflight++;
    try {
      return this.stream.write(data, (err) => {
        this.inflight--;
        this.buf.release(data);
        if (err) {
          this.stats.dropped(count, 'write_error');
          this.stats.error(err.message);
        } else this.stats.written(count);
        this.settle();
      });
    } catch (err) {
      this.inflight--;
      this.buf.release(data);
      this.stats.dropped(count, 'write_error');
      this.stats.error((err as Error).message);
      return true;
    }
  }

  private settle(): void {
    if (this.inflight === 0 && this.buf.length === 0 && !this.scheduled) this.wakeFlushers();
  }

  flush(): Promise<void> {
    if (this.buf.length > 0) this.kick();
    if (this.inflight === 0 && this.buf.length === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.race([this.flush(), new Promise<void>((r) => setTimeout(r, 2000).unref())]);
    this.closed = true;
  }
}

export interface FileSinkOptions {
  path: string;
  /** Rotate before a write would take the file past this size. */
  maxBytes?: number;
  /** Rotated files kept: PATH.1 (newest) … PATH.N. */
  maxFiles?: number;
  bufferBytes?: number;
  /** Write once this much is waiting (at most 256 KiB, the default). */
  batchBytes?: number;
  /** …or this long after the first entry waiting. */
  flushIntervalMs?: number;
}

/**
 * Appends to a file with async writes (the libuv thread pool), one batch in flight at a
 * time. Size-based rotation, logrotate style: PATH → PATH.1 → PATH.2 … up to maxFiles.
 * A write error drops that batch (counted) and the file is reopened for the next one.
 *
 * Batches are written when they reach batchBytes, else flushIntervalMs after the first
 * entry waiting (as Envoy's access-log flush interval and buffer size): a write through the
 * thread pool costs about the same CPU for 1 KiB as for 256 KiB (~45 µs here), so one write
 * per event-loop turn cost more than formatting the entries did. flush() and close() write
 * everything at once.
 */
export class FileSink extends BufferedSink<SinkStats & { rotated?(): void }> {
  private fh: FileHandle | null = null;
  private size = 0;
  private running = false;
  /** Lines written however few (flush() or the interval asked for what was waiting then). */
  private due = 0;
  private timer: NodeJS.Timeout | null = null;
  readonly path: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
  readonly batchBytes: number;
  readonly flushIntervalMs: number;
  rotations = 0;

  constructor(name: string, opts: FileSinkOptions, stats: SinkStats & { rotated?(): void }) {
    super(name, stats, opts.bufferBytes ?? DEFAULT_BUFFER_BYTES);
    this.path = opts.path;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.maxFiles = opts.maxFiles ?? DEFAULT_MAX_FILES;
    this.batchBytes = Math.min(opts.batchBytes ?? DEFAULT_FILE_BATCH_BYTES, MAX_WRITE_BYTES);
    this.flushIntervalMs = opts.flushIntervalMs ?? DEFAULT_FILE_FLUSH_INTERVAL_MS;
    mkdirSync(dirname(this.path), { recursive: true });
  }

  protected kick(): void {
    if (this.running) return;
    if (this.due > 0 || this.buf.bytes >= this.batchBytes) {
      this.running = true;
      setImmediate(() => void this.drain());
    } else if (this.timer === null && this.buf.length > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.due = this.buf.length;
        this.kick();
      }, this.flushIntervalMs);
    }
  }

  private async drain(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.buf.length > 0 && (this.due > 0 || this.buf.bytes >= this.batchBytes)) {
      const { data, count } = this.buf.take(Math.min(MAX_WRITE_BYTES, this.maxBytes));
      this.due = Math.max(0, this.due - count);
      try {
        if (this.fh === null) {
          this.fh = await open(this.path, 'a');
          this.size = (await this.fh.stat()).size;
        }
        if (this.size > 0 && this.size + data.length > this.maxBytes) await this.rotate();
        let off = 0;
        while (off < data.length) {
          const { bytesWritten } = await this.fh!.write(data, off, data.length - off);
          off += bytesWritten;
        }
        this.size += data.length;
        this.stats.written(count);
      } catch (err) {
        this.stats.dropped(count, 'write_error');
        this.stats.error(`${this.path}: ${(err as Error).message}`);
        const fh = this.fh;
        this.fh = null;
        await fh?.close().catch(() => {});
      } finally {
        this.buf.release(data);
      }
    }
    this.running = false;
    if (this.due === 0) this.wakeFlushers();
    this.kick(); // what is left is less than a batch: wait for more, or for the interval
  }

  private async rotate(): Promise<void> {
    await this.fh!.close();
    this.fh = null;
    for (let i = this.maxFiles - 1; i >= 1; i--) {
      await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(() => {});
    }
    if (this.maxFiles >= 1) await rename(this.path, `${this.path}.1`);
    this.fh = await open(this.path, this.maxFiles >= 1 ? 'a' : 'w');
    this.size = 0;
    this.rotations++;
    this.stats.rotated?.();
  }

  flush(): Promise<void> {
    if (!this.running && this.buf.length === 0) return Promise.resolve();
    this.due = this.buf.length; // what is waiting now, not what comes while it is written
    this.kick();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.race([this.flush(), new Promise<void>((r) => setTimeout(r, 5000).unref())]);
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.closed = true;
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => {});
  }
}
