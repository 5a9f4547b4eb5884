// Pushes the host's metrics (every adapter's and the host's own) over OTLP/HTTP with
// OpenTelemetry JS: a PeriodicExportingMetricReader whose MetricProducer reads our
// MetricsRegistry. The per-request path never touches OpenTelemetry: adapters and the
// host keep writing to the registry (an array index and an add), and the conversion to
// OTLP data points happens once per export interval.
//
// Mapping: counter → monotonic cumulative Sum; gauge → Gauge; histogram → explicit-bucket
// Histogram (cumulative), with the same bounds as the Prometheus exposition. Names stay
// the Prometheus family names (istio_requests_total), labels become attributes, the
// family's HELP is the description, the start time is when the series was first defined.

import { ValueType, type HrTime } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type CollectionResult,
  type MetricData,
  type MetricProducer,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import type { MetricsRegistry } from '../metrics/registry.js';

export interface OtlpMetricsOptions {
  /** Full URL of the metrics endpoint, e.g. http://127.0.0.1:4318/v1/metrics */
  url: string;
  headers?: Record<string, string>;
  intervalMs?: number;
  timeoutMs?: number;
  resource: Resource;
  /** For tests: replaces the OTLP/HTTP exporter. */
  exporter?: PushMetricExporter;
}

const hr = (ms: number): HrTime => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];

/** Reads a MetricsRegistry as one OpenTelemetry instrumentation scope. */
export class RegistryMetricProducer implements MetricProducer {
  constructor(
    private readonly registry: MetricsRegistry,
    private readonly resource: Resource,
  ) {}

  async collect(): Promise<CollectionResult> {
    const end = hr(Date.now());
    const metrics: MetricData[] = [];
    for (const f of this.registry.collect()) {
      const descriptor = { name: f.name, description: f.help, unit: f.unit, valueType: ValueType.DOUBLE };
      if (f.type === 'histogram') {
        metrics.push({
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.HISTOGRAM,
          dataPoints: f.series.map((s) => ({
            startTime: hr(s.startMs),
            endTime: end,
            attributes: s.labels,
            value: { buckets: { boundaries: s.bounds!, counts: s.counts! }, sum: s.sum, count: s.count! },
          })),
        });
      } else if (f.type === 'counter') {
        metrics.push({
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.SUM,
          isMonotonic: true,
          dataPoints: f.series.map((s) => ({ startTime: hr(s.startMs), endTime: end, attributes: s.labels, value: s.value })),
        });
      } else {
        metrics.push({
          descriptor,
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.GAUGE,
          dataPoints: f.series.map((s) => ({ startTime: hr(s.startMs), endTime: end, attributes: s.labels, value: s.value })),
        });
      }
    }
    return {
      resourceMetrics: { resource: this.resource, scopeMetrics: [{ scope: { name: 'wasm-mixer' }, metrics }] },
      errors: [],
    };
  }
}

/** Starts periodic OTLP export of `registry`; shutdown() does a last export. */
export function startOtlpMetrics(registry: MetricsRegistry, opts: OtlpMetricsOptions): { provider: MeterProvider; reader: PeriodicExportingMetricReader } {
  const exporter = opts.exporter ?? new OTLPMetricExporter({ url: opts.url, headers: opts.headers, timeoutMillis: opts.timeoutMs ?? 10_000 });
  const intervalMs = opts.intervalMs ?? 60_000;
  const reader = new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: intervalMs,
    exportTimeoutMillis: Math.min(opts.timeoutMs ?? 10_000, intervalMs),
    metricProducers: [new RegistryMetricProducer(registry, opts.resource)],
  });
  const provider = new MeterProvider({ resource: opts.resource, readers: [reader] });
  return { provider, reader };
}
