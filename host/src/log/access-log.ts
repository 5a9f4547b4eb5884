// Access-log sinks: where the entries of logging adapters go (stdout by default, a file
// with size-based rotation, OTLP logs — telemetry/otlp-logs.ts).
//
// How entries get here: the logging adapter formats an entry in proxy_on_log (after the
// response has been sent) and hands it to the host with
//   proxy_call_foreign_function("wasm_mixer.access_log", envelope)
// (telemetry/foreign.ts decodes the envelope). The router passes it to every sink whose
// logNames filter matches. Nothing here waits on I/O:
//   * write() appends the entry to the sink's in-memory buffer and returns;
//   * the buffer is flushed as one write: once per event-loop turn (setImmediate) for
//     streams, in batches of up to 256 KiB or every 100 ms for files (line-sinks.ts);
//   * a sink whose destination is slow (a full pipe, a slow disk, an OTLP collector that
//     does not answer) keeps accepting until its buffer is full, then drops new entries
//     and counts them in wasm_mixer_access_log_dropped_total{sink,reason}.
// Memory per sink is bounded by bufferBytes (stream and file sinks, line-sinks.ts) or maxQueue (OTLP).

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

/**
 * A copy of an entry that owns its line: what a sink that keeps entries gets, since an
 * entry handed to the router may borrow guest memory (telemetry/foreign.ts).
 */
export function retainEntry(e: AccessLogEntry): AccessLogEntry {
  return { adapter: e.adapter, logName: e.logName, level: e.level, format: e.format, timeNs: e.timeNs, line: e.line.slice() };
}

export type DropReason = 'buffer_full' | 'write_error' | 'export_failed' | 'closed';

/** Counters a sink reports into. */
export interface SinkStats {
  written(n: number): void;
  dropped(n: number, reason: DropReason): void;
  /** Reports a destination error (rate-limited by the caller). */
  error(message: string): void;
}

/** Counts the refusal of one entry by a sink that is closed or has no room for it; false when the sink takes it. */
export function refused(stats: SinkStats, closed: boolean, full: boolean): boolean {
  if (closed) stats.dropped(1, 'closed');
  else if (full) stats.dropped(1, 'buffer_full');
  else return false;
  return true;
}

export interface AccessLogSink {
  readonly name: string;
  /**
   * True when write() copies what it keeps of the entry before returning: the router then
   * hands it the entry as it came, whose line may borrow guest memory. Other sinks get a
   * copy (retainEntry), so a sink that keeps entries needs nothing special.
   */
  readonly borrows?: boolean;
  /** Buffers the entry; false when it was dropped (and counted). Never blocks. */
  write(entry: AccessLogEntry): boolean;
  /** Resolves when everything buffered so far has been handed to the destination. */
  flush(): Promise<void>;
  /** Flushes, then releases the destination. Later writes are dropped as "closed". */
  close(): Promise<void>;
  /** Bytes (or entries, for OTLP) waiting in the buffer. */
  readonly buffered: number;
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

  /** Hands the entry (which may be borrowed: see AccessLogSink.borrows) to every matching sink; true when at least one accepted it. */
  write(e: AccessLogEntry): boolean {
    let any = false;
    let kept: AccessLogEntry | null = null;
    for (let i = 0; i < this.routes.length; i++) {
      const r = this.routes[i]!;
      if (r.logNames !== null && !r.logNames.has(e.logName)) continue;
      if (r.sink.write(r.sink.borrows === true ? e : (kept ??= retainEntry(e)))) any = true;
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
