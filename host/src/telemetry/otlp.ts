// OpenTelemetry JS is imported only by hosts whose config exports over OTLP (an `otlp` block or
// an `otlp` access-log sink): importing it cost every other start tens of ms (README "Design notes").

import type { Resource } from '@opentelemetry/resources';
import type { MixerConfig } from '../config/schema.js';
import type { OtlpLogSink } from './otlp-logs.js';
import type { startOtlpMetrics } from './otlp-metrics.js';

/** What the telemetry needs of OpenTelemetry, once imported. */
export interface Otlp {
  OtlpLogSink: typeof OtlpLogSink;
  startOtlpMetrics: typeof startOtlpMetrics;
  /** service.name=wasm-mixer plus otlp.resource, on OpenTelemetry's default resource. */
  resource: Resource;
}

export function usesOtlp(config: MixerConfig): boolean {
  return config.otlp !== undefined || (config.accessLog?.sinks ?? []).some((s) => s.type === 'otlp');
}

export async function loadOtlp(config: MixerConfig): Promise<Otlp> {
  const [{ OtlpLogSink }, { startOtlpMetrics }, { defaultResource, resourceFromAttributes }] = await Promise.all([
    import('./otlp-logs.js'),
    import('./otlp-metrics.js'),
    import('@opentelemetry/resources'),
  ]);
  const resource = defaultResource().merge(resourceFromAttributes({ 'service.name': 'wasm-mixer', ...(config.otlp?.resource ?? {}) }));
  return { OtlpLogSink, startOtlpMetrics, resource };
}
