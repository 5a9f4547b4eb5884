// Access-log sinks: where the entries of logging adapters go (stdout by default, a file
// with size-based rotation, OTLP logs — telemetry/otlp-logs.ts).
//
// How entries get here: the logging adapter formats an entry in proxy_on_log (after the
// response has been sent) and hands it to the host with
//   proxy_call_foreign_function("wasm_mixer.access_log", envelope)
// (telemetry/foreign.ts decodes the envelope). The router passes it to every sink whose
// logNames filter matches. Nothing here waits on I/O:
//   * write() appends the entry to the sink's in-memory buffer and returns;
//   * the buffer is flushed once per event-loop turn (setImmediate), as one write;
//   * a sink whose destination is slow (a full pipe, a slow disk, an OTLP collector that
//     does not answer) keeps accepting until its buffer is full, then drops new entries
//     and counts them in wasm_mixer_access_log_dropped_total{sink,reason}.
// Memory per sink is bounded by bufferBytes (stream and file sinks) or maxQueue (OTLP).

import { open, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { LogLevel } from '../abi/constants.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import type { HostLogger } from './logger.js';

/** One access-log entry as the adapter formatted it. */
export interface AccessLogEntry {
  /** The adapter that wrote it. */
  readonly adapter: string;
  /** The log name from the adapter's config ("access" by default); sinks can filter on it. */
  readonly logName: string;
  /** Severity the adapter derived (from the response status). */
  readonly level: LogLevel;
  readonly format: 'json' | 'text';
  /** Request start, nanoseconds since the epoch (0: unknown). */
  readonly timeNs: bigint;
  /** The formatted entry, UTF-8, without the trailing newline. */
  readonly line: Uint8Array;
}

export type DropReason = 'buffer_full' | 'write_error' | 'export_failed' | 'closed';

/** Counters a sink reports into. */
export interface SinkStats {
  written(n: number): void;
  dropped(n: number, reason: DropReason): void;
  /** Reports a destination error (rate-limited by the caller). */
  error(message: string): void;
}

export interface AccessLogSink {
  readonly name: string;
  /** Buffers the entry; false when it was dropped (and counted). Never blocks. */
  write(entry: AccessLogEntry): boolean;
  /** Resolves when everything buffered so far has been handed to the destination. */
  flush(): Promise<void>;
  /** Flushes, then releases the destination. Later writes are dropped as "closed". */
  close(): Promise<void>;
  /** Bytes (or entries, for OTLP) waiting in the buffer. */
  readonly buffered: number;
}

export const DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024;
export const DEFAULT_MAX_FILES = 5;
/** Largest single write; rotation is checked before each. */
const MAX_WRITE_BYTES = 256 * 1024;
const NL = Buffer.from('\n');

/** A bounded queue of lines waiting for one batched write. */
class LineBuffer {
  private lines: Uint8Array[] = [];
  bytes = 0;

  constructor(readonly limit: number) {}

  get length(): number {
    return this.lines.length;
  }

  /** false when the line does not fit. */
  push(line: Uint8Array): boolean {
    const n = line.length + 1;
    if (this.bytes + n > this.limit) return false;
    this.lines.push(line);
    this.bytes += n;
    return true;
  }

  /** Takes up to `maxBytes` worth of lines (at least one) as one newline-joined buffer. */
  take(maxBytes = Infinity): { data: Buffer; count: number } {
    let size = 0;
    let count = 0;
    const lines = this.lines;
    while (count < lines.length) {
      const n = lines[count]!.length + 1;
      if (count > 0 && size + n > maxBytes) break;
      size += n;
      count++;
    }
    const parts: Uint8Array[] = new Array(count * 2);
    for (let i = 0; i < count; i++) {
      parts[2 * i] = lines[i]!;
      parts[2 * i + 1] = NL;
    }
    this.lines = count === lines.length ? [] : lines.slice(count);
    this.bytes -= size;
    return { data: Buffer.concat(parts, size), count };
  }
}

const guarded = new WeakSet<Writable>();

/** stdout, stderr or any Writable: one write per event-loop turn, honouring backpressure. */
export class StreamSink implements AccessLogSink {
  private readonly buf: LineBuffer;
  private scheduled = false;
  /** Waiting for 'drain'. */
  private blocked = false;
  private closed = false;
  private inflight = 0;
  private idle: Array<() => void> = [];

  constructor(
    readonly name: string,
    private readonly stream: Writable,
    private readonly stats: SinkStats,
    bufferBytes = DEFAULT_BUFFER_BYTES,
  ) {
    this.buf = new LineBuffer(bufferBytes);
    // A closed pipe (EPIPE) must cost dropped entries, not the process: without a listener
    // an 'error' on stdout is thrown. The failed write's callback counts and reports the drop.
    if (!guarded.has(stream)) {
      guarded.add(stream);
      stream.on('error', () => {});
    }
  }

  get buffered(): number {
    return this.buf.bytes;
  }

  write(e: AccessLogEntry): boolean {
    if (this.closed) {
      this.stats.dropped(1, 'closed');
      return false;
    }
    if (!this.buf.push(e.line)) {
      this.stats.dropped(1, 'buffer_full');
      return false;
    }
    if (!this.scheduled && !this.blocked) {
      this.scheduled = true;
      setImmediate(() => this.pump());
    }
    return true;
  }

  private pump(): void {
    this.scheduled = false;
    if (this.blocked || this.buf.length === 0) return this.settle();
    const { data, count } = this.buf.take();
    this.inflight++;
    let ok: boolean;
    try {
      ok = this.stream.write(data, (err) => {
        this.inflight--;
        if (err) {
          this.stats.dropped(count, 'write_error');
          this.stats.error(err.message);
        } else this.stats.written(count);
        this.settle();
      });
    } catch (err) {
      this.inflight--;
      this.stats.dropped(count, 'write_error');
      this.stats.error((err as Error).message);
      ok = true;
    }
    if (!ok) {
      this.blocked = true;
      this.stream.once('drain', () => {
        this.blocked = false;
        if (this.buf.length > 0 && !this.scheduled) {
          this.scheduled = true;
          setImmediate(() => this.pump());
        }
      });
    }
  }

  private settle(): void {
    if (this.inflight === 0 && this.buf.length === 0 && !this.scheduled) {
      const waiters = this.idle;
      this.idle = [];
      for (const w of waiters) w();
    }
  }

  flush(): Promise<void> {
    if (this.buf.length > 0 && !this.scheduled && !this.blocked) {
      this.scheduled = true;
      setImmediate(() => this.pump());
    }
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
}

/**
 * Appends to a file with async writes (the libuv thread pool), one batch in flight at a
 * time. Size-based rotation, logrotate style: PATH → PATH.1 → PATH.2 … up to maxFiles.
 * A write error drops that batch (counted) and the file is reopened for the next one.
 */
export class FileSink implements AccessLogSink {
  private readonly buf: LineBuffer;
  private fh: FileHandle | null = null;
  private size = 0;
  private running = false;
  private closed = false;
  private idle: Array<() => void> = [];
  readonly path: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
  rotations = 0;

  constructor(
    readonly name: string,
    opts: FileSinkOptions,
    private readonly stats: SinkStats & { rotated?(): void },
  ) {
    this.path = opts.path;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.maxFiles = opts.maxFiles ?? DEFAULT_MAX_FILES;
    this.buf = new LineBuffer(opts.bufferBytes ?? DEFAULT_BUFFER_BYTES);
    mkdirSync(dirname(this.path), { recursive: true });
  }

  get buffered(): number {
    return this.buf.bytes;
  }

  write(e: AccessLogEntry): boolean {
    if (this.closed) {
      this.stats.dropped(1, 'closed');
      return false;
    }
    if (!this.buf.push(e.line)) {
      this.stats.dropped(1, 'buffer_full');
      return false;
    }
    if (!this.running) {
      this.running = true;
      setImmediate(() => void this.drain());
    }
    return true;
  }

  private async drain(): Promise<void> {
    while (this.buf.length > 0) {
      const { data, count } = this.buf.take(Math.min(MAX_WRITE_BYTES, this.maxBytes));
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
      }
    }
    this.running = false;
    const waiters = this.idle;
    this.idle = [];
    for (const w of waiters) w();
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
    if (!this.running) {
      this.running = true;
      setImmediate(() => void this.drain());
    }
    return new Promise((resolve) => this.idle.push(resolve));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.race([this.flush(), new Promise<void>((r) => setTimeout(r, 5000).unref())]);
    this.closed = true;
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => {});
  }
}

/** A sink plus the log names it takes (all when null). */
interface Route {
  readonly sink: AccessLogSink;
  readonly logNames: ReadonlySet<string> | null;
}

/**
 * Fans entries out to the sinks and keeps the access-log metrics:
 *   wasm_mixer_access_log_entries_total{sink}          entries handed to the destination
 *   wasm_mixer_access_log_dropped_total{sink,reason}   entries lost (buffer_full, write_error, export_failed, closed)
 *   wasm_mixer_access_log_buffered_bytes{sink}         waiting in memory (entries, for OTLP sinks)
 *   wasm_mixer_access_log_rotations_total{sink}        file rotations
 */
export class AccessLogRouter {
  private readonly routes: Route[] = [];
  private readonly lastError = new Map<string, number>();

  constructor(
    private readonly metrics: MetricsRegistry,
    private readonly logger: HostLogger,
  ) {
    metrics.addCollector(() => {
      for (const r of this.routes) {
        this.metrics.gauge('wasm_mixer_access_log_buffered_bytes', 'Access-log data waiting in memory for its sink (entries, for OTLP sinks).', { sink: r.sink.name })(r.sink.buffered);
      }
    });
  }

  /** Counters for a sink named `name`; pass them to the sink's constructor. */
  statsFor(name: string): SinkStats & { rotated(): void } {
    const written = this.metrics.counter('wasm_mixer_access_log_entries_total', 'Access-log entries handed to their sink destination.', { sink: name });
    const dropped = new Map<DropReason, (n?: number) => void>();
    const drop = (reason: DropReason) => {
      let f = dropped.get(reason);
      if (f === undefined) {
        f = this.metrics.counter('wasm_mixer_access_log_dropped_total', 'Access-log entries dropped, by reason: buffer_full (the sink cannot keep up), write_error, export_failed, closed.', { sink: name, reason });
        dropped.set(reason, f);
      }
      return f;
    };
    drop('buffer_full'); // exposed at 0 from the start, so rate() and alerts work before the first drop
    let rotations: ((n?: number) => void) | null = null;
    return {
      written: (n) => written(n),
      dropped: (n, reason) => drop(reason)(n),
      error: (message) => {
        const now = Date.now();
        if (now - (this.lastError.get(name) ?? 0) < 10_000) return;
        this.lastError.set(name, now);
        this.logger.log(LogLevel.Error, 'access-log', `access-log sink ${name}: ${message}`, { code: 'ACCESS_LOG_SINK_ERROR' });
      },
      rotated: () => {
        rotations ??= this.metrics.counter('wasm_mixer_access_log_rotations_total', 'Access-log file rotations.', { sink: name });
        rotations();
      },
    };
  }

  add(sink: AccessLogSink, logNames?: readonly string[]): void {
    this.routes.push({ sink, logNames: logNames && logNames.length > 0 ? new Set(logNames) : null });
  }

  get sinks(): readonly AccessLogSink[] {
    return this.routes.map((r) => r.sink);
  }

  /** Hands the entry to every matching sink; true when at least one accepted it. */
  write(e: AccessLogEntry): boolean {
    let any = false;
    for (let i = 0; i < this.routes.length; i++) {
      const r = this.routes[i]!;
      if (r.logNames !== null && !r.logNames.has(e.logName)) continue;
      if (r.sink.write(e)) any = true;
    }
    return any;
  }

  async flush(): Promise<void> {
    await Promise.all(this.routes.map((r) => r.sink.flush()));
  }

  async close(): Promise<void> {
    await Promise.all(this.routes.map((r) => r.sink.close()));
  }
}
