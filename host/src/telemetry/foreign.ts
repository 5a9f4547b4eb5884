// Foreign functions for telemetry adapters (proxy_call_foreign_function). Envoy does not
// know these names and answers NOT_FOUND; our adapters then fall back to what Envoy has
// (proxy_log for entries, integer units for histograms), so they load in both.
//
// wasm_mixer.access_log — hand one formatted access-log entry to the host's sinks.
//   args (little-endian):
//     0   u8   envelope version, 1
//     1   u8   severity, a Proxy-Wasm log level (0 trace … 5 critical)
//     2   u8   format: 0 text, 1 JSON
//     3   u8   reserved, 0
//     4   i64  request start, ns since the epoch (0: unknown)
//     12  u16  length L of the log name
//     14  L    log name, UTF-8
//     14+L …   the entry, UTF-8, without a trailing newline
//   result: one byte, 0 = taken by at least one sink, 1 = dropped (every sink full, or none matched).
//   BAD_ARGUMENT for a malformed envelope.
//
// wasm_mixer.describe_metric — describe a metric family before its first series.
//   args: JSON {"name": "...", "type": "counter"|"gauge"|"histogram", "help"?: "...",
//               "unit"?: "seconds", "buckets"?: [..], "scale"?: 1e-6, "max_series"?: 1000}
//   result: JSON {"ok": true} or {"ok": false, "error": "..."} (the adapter decides what to do).
//   Operator bucket overrides (metrics.histogramBuckets) win over described buckets.

import { MetricType, Status } from '../abi/constants.js';
import type { AccessLogEntry } from '../log/access-log.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import type { ForeignFunction } from '../plugin/foreign-functions.js';

export const ACCESS_LOG_FUNCTION = 'wasm_mixer.access_log';
export const DESCRIBE_METRIC_FUNCTION = 'wasm_mixer.describe_metric';

const ACCEPTED = new Uint8Array([0]);
const DROPPED = new Uint8Array([1]);
const HEADER = 14;
const decoder = new TextDecoder();

/** Decodes an access-log envelope, or null when malformed. */
export function decodeAccessLogEnvelope(args: Uint8Array, adapter: string): AccessLogEntry | null {
  if (args.length < HEADER || args[0] !== 1) return null;
  const level = args[1]!;
  const format = args[2]!;
  if (level > 5 || format > 1) return null;
  const dv = new DataView(args.buffer, args.byteOffset, args.byteLength);
  const timeNs = dv.getBigInt64(4, true);
  const nameLen = dv.getUint16(12, true);
  if (HEADER + nameLen > args.length) return null;
  return {
    adapter,
    logName: nameLen === 0 ? 'access' : decoder.decode(args.subarray(HEADER, HEADER + nameLen)),
    level,
    format: format === 1 ? 'json' : 'text',
    timeNs,
    line: args.subarray(HEADER + nameLen),
  };
}

export function accessLogFunction(write: (e: AccessLogEntry) => boolean): ForeignFunction {
  return (args, caller) => {
    const e = decodeAccessLogEnvelope(args, caller.adapter);
    if (e === null) return Status.BadArgument;
    return write(e) ? ACCEPTED : DROPPED;
  };
}

const TYPES: Record<string, MetricType> = { counter: MetricType.Counter, gauge: MetricType.Gauge, histogram: MetricType.Histogram };
const encoder = new TextEncoder();

export function describeMetricFunction(metrics: MetricsRegistry, warn: (adapter: string, message: string) => void): ForeignFunction {
  const answer = (o: object) => encoder.encode(JSON.stringify(o));
  return (args, caller) => {
    let d: Record<string, unknown>;
    try {
      d = JSON.parse(decoder.decode(args)) as Record<string, unknown>;
    } catch {
      return Status.BadArgument;
    }
    if (typeof d !== 'object' || d === null) return Status.BadArgument;
    const type = TYPES[String(d.type)];
    if (typeof d.name !== 'string' || type === undefined) return answer({ ok: false, error: 'name (a string) and type (counter, gauge or histogram) are required' });
    const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
    const err = metrics.describe(type, d.name, {
      help: typeof d.help === 'string' ? d.help : undefined,
      unit: typeof d.unit === 'string' ? d.unit : undefined,
      buckets: Array.isArray(d.buckets) ? (d.buckets as number[]) : undefined,
      scale: num(d.scale),
      maxSeries: num(d.max_series),
    });
    if (err !== null) {
      warn(caller.adapter, `describe_metric ${d.name}: ${err}`);
      return answer({ ok: false, error: err });
    }
    return answer({ ok: true });
  };
}
