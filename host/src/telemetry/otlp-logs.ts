// Access-log sink that exports OpenTelemetry log records over OTLP/HTTP (JSON), with
// OpenTelemetry JS (sdk-logs 0.223.0, exporter-logs-otlp-http 0.223.0: the Node 20 line).
//
// write() only appends the raw entry to a bounded queue (maxQueue entries); converting to
// log records and exporting happens off the request path, every intervalMs or as soon as
// a full batch (maxBatch) is waiting, one export in flight at a time. We batch ourselves
// instead of using BatchLogRecordProcessor so that drops (queue full, export failed) are
// counted in our own metrics.
//
// Mapping (as Envoy's OpenTelemetry access logger does it):
//   timestamp        request start (the envelope's time), observed timestamp = now
//   severity         from the adapter (derived from the status): INFO 9, WARN 13, ERROR 17
//   body             a JSON entry becomes a map (kvlist) of its fields; a text entry a string
//   attributes       log_name, and the adapter name as wasm_mixer.adapter
//   resource         service.name=wasm-mixer plus otlp.resource from the config
//   scope            wasm-mixer/access-log

import { SeverityNumber, type AnyValue } from '@opentelemetry/api-logs';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import type { Resource } from '@opentelemetry/resources';
import { LoggerProvider, type LogRecordExporter, type LogRecordProcessor, type ReadableLogRecord, type SdkLogRecord } from '@opentelemetry/sdk-logs';
import { LogLevel } from '../abi/constants.js';
import { refused, type AccessLogEntry, type AccessLogSink, type SinkStats } from '../log/access-log.js';

export interface OtlpLogSinkOptions {
  /** Full URL of the logs endpoint, e.g. http://127.0.0.1:4318/v1/logs */
  url: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** How often queued entries are exported. */
  intervalMs?: number;
  /** Entries per export request. */
  maxBatch?: number;
  /** Entries kept while the collector is slow or down; more are dropped. */
  maxQueue?: number;
  resource: Resource;
  /** For tests: replaces the OTLP/HTTP exporter. */
  exporter?: LogRecordExporter;
}

const SEVERITY: Record<number, [SeverityNumber, string]> = {
  [LogLevel.Trace]: [SeverityNumber.TRACE, 'TRACE'],
  [LogLevel.Debug]: [SeverityNumber.DEBUG, 'DEBUG'],
  [LogLevel.Info]: [SeverityNumber.INFO, 'INFO'],
  [LogLevel.Warn]: [SeverityNumber.WARN, 'WARN'],
  [LogLevel.Error]: [SeverityNumber.ERROR, 'ERROR'],
  [LogLevel.Critical]: [SeverityNumber.FATAL, 'FATAL'],
};

/** Collects what Logger.emit produces during one synchronous conversion pass. */
class Collector implements LogRecordProcessor {
  batch: SdkLogRecord[] | null = null;
  onEmit(r: SdkLogRecord): void {
    this.batch?.push(r);
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const decoder = new TextDecoder();

export class OtlpLogSink implements AccessLogSink {
  private queue: AccessLogEntry[] = [];
  private readonly collector = new Collector();
  private readonly provider: LoggerProvider;
  private readonly exporter: LogRecordExporter;
  private readonly timer: NodeJS.Timeout;
  private exporting = false;
  private soon = false;
  private closed = false;
  private idle: Array<() => void> = [];
  readonly maxBatch: number;
  readonly maxQueue: number;

  constructor(
    readonly name: string,
    opts: OtlpLogSinkOptions,
    private readonly stats: SinkStats,
  ) {
    this.maxBatch = opts.maxBatch ?? 512;
    this.maxQueue = opts.maxQueue ?? 8192;
    this.exporter = opts.exporter ?? new OTLPLogExporter({ url: opts.url, headers: opts.headers, timeoutMillis: opts.timeoutMs ?? 10_000 });
    this.provider = new LoggerProvider({ resource: opts.resource, processors: [this.collector] });
    this.timer = setInterval(() => this.exportBatch(), opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  get buffered(): number {
    return this.queue.length;
  }

  write(e: AccessLogEntry): boolean {
    if (refused(this.stats, this.closed, this.queue.length >= this.maxQueue)) return false;
    this.queue.push(e);
    if (this.queue.length >= this.maxBatch && !this.soon) {
      this.soon = true;
      setImmediate(() => {
        this.soon = false;
        this.exportBatch();
      });
    }
    return true;
  }

  private toRecords(entries: AccessLogEntry[]): SdkLogRecord[] {
    const now = Date.now();
    this.collector.batch = [];
    const logger = this.provider.getLogger('wasm-mixer/access-log');
    for (const e of entries) {
      const text = decoder.decode(e.line);
      let body: AnyValue = text;
      if (e.format === 'json') {
        try {
          body = JSON.parse(text) as AnyValue;
        } catch {
          body = text;
        }
      }
      const [severityNumber, severityText] = SEVERITY[e.level] ?? SEVERITY[LogLevel.Info]!;
      logger.emit({
        timestamp: e.timeNs > 0n ? [Number(e.timeNs / 1_000_000_000n), Number(e.timeNs % 1_000_000_000n)] : now,
        observedTimestamp: now,
        severityNumber,
        severityText,
        body,
        attributes: { log_name: e.logName, 'wasm_mixer.adapter': e.adapter },
      });
    }
    const out = this.collector.batch;
    this.collector.batch = null;
    return out;
  }

  private exportBatch(): void {
    if (this.exporting || this.queue.length === 0) return this.settle();
    const entries = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = entries === this.queue ? [] : this.queue.slice(this.maxBatch);
    this.exporting = true;
    let records: ReadableLogRecord[];
    try {
      records = this.toRecords(entries);
    } catch (err) {
      this.exporting = false;
      this.stats.dropped(entries.length, 'export_failed');
      this.stats.error((err as Error).message);
      return this.settle();
    }
    this.exporter.export(records, (r: ExportResult) => {
      this.exporting = false;
      if (r.code === ExportResultCode.SUCCESS) this.stats.written(entries.length);
      else {
        this.stats.dropped(entries.length, 'export_failed');
        this.stats.error(`OTLP logs export failed: ${r.error?.message ?? 'unknown error'}`);
      }
      if (this.queue.length >= this.maxBatch || (this.idle.length > 0 && this.queue.length > 0)) setImmediate(() => this.exportBatch());
      else this.settle();
    });
  }

  private settle(): void {
    if (this.exporting || this.queue.length > 0) return;
    const waiters = this.idle;
    this.idle = [];
    for (const w of waiters) w();
  }

  flush(): Promise<void> {
    if (!this.exporting && this.queue.length === 0) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.idle.push(resolve));
    this.exportBatch();
    return p;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    await Promise.race([this.flush(), new Promise<void>((r) => setTimeout(r, 5000).unref())]);
    this.closed = true;
    await this.exporter.shutdown().catch(() => {});
    await this.provider.shutdown().catch(() => {});
  }
}
