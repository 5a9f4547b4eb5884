// The host's telemetry plumbing, built once per WasmHost from the config:
//   * the access-log router and its sinks (stdout by default; file; OTLP logs),
//   * the foreign functions telemetry adapters call (foreign.ts),
//   * OTLP metrics export of the registry (when `otlp` is configured),
//   * the per-adapter guest-call latency histogram and process metrics.

import type { MeterProvider } from '@opentelemetry/sdk-metrics';
import { resolve } from 'node:path';
import { LogLevel } from '../abi/constants.js';
import type { AccessLogSinkConfig, MixerConfig } from '../config/schema.js';
import { AccessLogRouter, type AccessLogSink } from '../log/access-log.js';
import { FileSink, StreamSink } from '../log/line-sinks.js';
import type { HostLogger } from '../log/logger.js';
import { registerProcessMetrics } from '../metrics/process.js';
import { CALL_SECONDS_BUCKETS, type MetricsRegistry } from '../metrics/registry.js';
import { defaultForeignFunctions, ForeignFunctionRegistry } from '../plugin/foreign-functions.js';
import {
  accessLogFunction, describeMetricFunction, getPropertySetFunction, propertySetFunction, setPropertySetFunction, PropertySets,
  ACCESS_LOG_FUNCTION, DESCRIBE_METRIC_FUNCTION, GET_PROPERTY_SET_FUNCTION, PROPERTY_SET_FUNCTION, SET_PROPERTIES_FUNCTION,
} from './foreign.js';
import type { Otlp } from './otlp.js';

export { ACCESS_LOG_FUNCTION, DESCRIBE_METRIC_FUNCTION, GET_PROPERTY_SET_FUNCTION, PROPERTY_SET_FUNCTION, SET_PROPERTIES_FUNCTION } from './foreign.js';

export const DEFAULT_OTLP_ENDPOINT = 'http://127.0.0.1:4318';

export interface TelemetryOptions {
  /** Folder relative file-sink paths are resolved against. */
  baseDir?: string;
  /** Replaces the configured access-log sinks (tests, embedders). */
  accessLogSinks?: AccessLogSink[];
  /** OpenTelemetry, imported by the caller (otlp.ts loadOtlp) when the config uses OTLP (usesOtlp). */
  otlp?: Otlp;
}

/** Gives the observer of one callback's wall time in seconds, seen `times` calls (PluginVm asks once per callback). */
export type CallObserver = (callback: string) => (seconds: number, times?: number) => void;

export class Telemetry {
  readonly accessLog: AccessLogRouter;
  readonly foreign: ForeignFunctionRegistry;
  private readonly meterProvider: MeterProvider | null = null;
  private defaultSinkPending: boolean;

  constructor(
    private readonly config: MixerConfig,
    private readonly metrics: MetricsRegistry,
    private readonly logger: HostLogger,
    private readonly options: TelemetryOptions = {},
  ) {
    const otlp = config.otlp;
    this.accessLog = new AccessLogRouter(metrics, logger);
    this.defaultSinkPending = false;
    if (options.accessLogSinks !== undefined) {
      for (const s of options.accessLogSinks) this.accessLog.add(s);
    } else if (config.accessLog?.sinks !== undefined && config.accessLog.sinks.length > 0) {
      const used = new Set<string>();
      for (const sc of config.accessLog.sinks) {
        let name = sc.name ?? sc.type;
        for (let i = 2; used.has(name); i++) name = `${sc.name ?? sc.type}-${i}`;
        used.add(name);
        this.accessLog.add(this.createSink(name, sc), sc.logNames);
      }
    } else {
      // stdout, created on the first entry so hosts without a logging adapter expose no access-log series
      this.defaultSinkPending = true;
    }

    this.foreign = new ForeignFunctionRegistry();
    for (const name of defaultForeignFunctions.names()) this.foreign.register(name, (args, caller) => defaultForeignFunctions.call(caller, name, args));
    this.foreign.register(ACCESS_LOG_FUNCTION, accessLogFunction((e) => {
      if (this.defaultSinkPending) {
        this.defaultSinkPending = false;
        this.accessLog.add(new StreamSink('stdout', process.stdout, this.accessLog.statsFor('stdout')));
      }
      return this.accessLog.write(e);
    }));
    const sets = new PropertySets();
    this.foreign.register(PROPERTY_SET_FUNCTION, propertySetFunction(sets));
    this.foreign.register(GET_PROPERTY_SET_FUNCTION, getPropertySetFunction(sets));
    this.foreign.register(SET_PROPERTIES_FUNCTION, setPropertySetFunction(sets));
    this.foreign.register(DESCRIBE_METRIC_FUNCTION, describeMetricFunction(metrics, (adapter, msg) => logger.log(LogLevel.Warn, adapter, msg, { code: 'BAD_ARGUMENT' })));

    if (otlp !== undefined && otlp.metrics?.enabled !== false) {
      const { provider } = this.otlp().startOtlpMetrics(metrics, {
        url: otlpUrl(otlp.endpoint, 'metrics'),
        headers: otlp.headers,
        timeoutMs: otlp.timeoutMs,
        intervalMs: otlp.metrics?.intervalMs,
        resource: this.otlp().resource,
      });
      this.meterProvider = provider;
    }
    registerProcessMetrics(metrics);
  }

  private createSink(name: string, sc: AccessLogSinkConfig): AccessLogSink {
    const stats = this.accessLog.statsFor(name);
    switch (sc.type) {
      case 'stdout':
        return new StreamSink(name, process.stdout, stats, sc.bufferBytes);
      case 'stderr':
        return new StreamSink(name, process.stderr, stats, sc.bufferBytes);
      case 'file':
        return new FileSink(name, { path: resolve(this.options.baseDir ?? process.cwd(), sc.path!), maxBytes: sc.maxBytes, maxFiles: sc.maxFiles, bufferBytes: sc.bufferBytes }, stats);
      case 'otlp': {
        const otlp = this.config.otlp;
        const { OtlpLogSink, resource } = this.otlp();
        return new OtlpLogSink(name, {
          url: sc.endpoint ?? otlpUrl(otlp?.endpoint, 'logs'),
          headers: otlp?.headers,
          timeoutMs: otlp?.timeoutMs,
          intervalMs: sc.intervalMs,
          maxBatch: sc.maxBatch,
          maxQueue: sc.maxQueue,
          resource,
        }, stats);
      }
    }
  }

  private otlp(): Otlp {
    if (this.options.otlp === undefined) throw new Error('the config exports over OTLP: pass options.otlp from loadOtlp(config)');
    return this.options.otlp;
  }

  /**
   * The timing hook for one adapter's VM: wasm_mixer_adapter_call_duration_seconds{adapter,callback}.
   * Cost: two performance.now() calls and a bucket increment per guest callback (bench/telemetry).
   */
  callObserver(adapter: string): CallObserver {
    return (callback) => this.metrics.histogram('wasm_mixer_adapter_call_duration_seconds', 'Wall time of calls into adapter VMs, by adapter and Proxy-Wasm callback.', { adapter, callback }, { buckets: CALL_SECONDS_BUCKETS, unit: 'seconds' });
  }

  /** Flushes and closes the access-log sinks and does a last OTLP metrics export. */
  async close(): Promise<void> {
    // The last OTLP metrics export gets 3 s: a collector that hangs must not hold shutdown.
    const lastExport = this.meterProvider?.shutdown().catch(() => {});
    const bounded = lastExport && Promise.race([lastExport, new Promise<void>((r) => setTimeout(r, 3000).unref())]);
    await Promise.all([this.accessLog.close(), bounded]);
  }
}

/** OTLP/HTTP signal URL from a base endpoint, as the OTel spec builds it from OTEL_EXPORTER_OTLP_ENDPOINT. */
export function otlpUrl(endpoint: string | undefined, signal: 'metrics' | 'logs'): string {
  const base = (endpoint ?? DEFAULT_OTLP_ENDPOINT).replace(/\/+$/, '');
  return `${base}/v1/${signal}`;
}
