// Metrics over proxy_define_metric / proxy_increment_metric / proxy_record_metric /
// proxy_get_metric. The host reads a metric name of the form
//   family_name{label="value",other="x"}
// as a Prometheus family plus labels; label values are escaped the Prometheus
// way (backslash, double quote, newline). Metrics are defined lazily, on first
// use (never at module start, when the host cannot serve hostcalls yet), and
// metric ids are cached per full name for the life of the VM.

import { MetricType } from "./abi/constants";
import * as host from "./hostcalls";

const ids = new Map<string, u32>(); // key: type digit + full name

function metricId(type: MetricType, name: string): u32 {
  let key = (<i32>type).toString() + name;
  if (ids.has(key)) return ids.get(key);
  let id = host.defineMetric(type, name);
  ids.set(key, id);
  return id;
}

function validName(s: string, allowColon: bool): bool {
  let n = s.length;
  if (n == 0) return false;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    let ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c == 0x5f || (allowColon && c == 0x3a) ||
      (i > 0 && c >= 0x30 && c <= 0x39);
    if (!ok) return false;
  }
  return true;
}

/** Escapes a label value: \ -> \\, " -> \", newline -> \n. */
export function escapeLabelValue(v: string): string {
  let n = v.length;
  let plain = true;
  for (let i = 0; i < n; i++) {
    let c = v.charCodeAt(i);
    if (c == 0x5c || c == 0x22 || c == 0x0a) {
      plain = false;
      break;
    }
  }
  if (plain) return v;
  let parts: string[] = [];
  let run = 0;
  for (let i = 0; i < n; i++) {
    let c = v.charCodeAt(i);
    let esc: string | null = null;
    if (c == 0x5c) esc = "\\\\";
    else if (c == 0x22) esc = "\\\"";
    else if (c == 0x0a) esc = "\\n";
    if (esc !== null) {
      if (i > run) parts.push(v.substring(run, i));
      parts.push(esc);
      run = i + 1;
    }
  }
  if (n > run) parts.push(v.substring(run, n));
  return parts.join("");
}

/**
 * Builds `family{k1="v1",k2="v2"}` from a family and flat label pairs
 * [k1, v1, k2, v2, ...]. Aborts on an invalid family or label name (a bug in
 * the adapter, not a runtime condition). A `family` that already carries
 * labels (`family{a="b"}`) is taken as written and the new labels are appended.
 */
export function metricName(family: string, labels: string[] | null = null): string {
  let brace = family.indexOf("{");
  let base = brace < 0 ? family : family.substring(0, brace);
  if (!validName(base, true)) abort("invalid metric family name '" + base + "'");
  if (brace >= 0 && !family.endsWith("}")) abort("invalid metric name '" + family + "'");
  if (labels === null || labels.length == 0) return family;
  if (labels.length & 1) abort("metric " + base + ": labels must be name/value pairs");
  let parts: string[] = [];
  if (brace < 0) {
    parts.push(family);
    parts.push("{");
  } else {
    parts.push(family.substring(0, family.length - 1));
    if (family.length - brace > 2) parts.push(",");
  }
  for (let i = 0; i < labels.length; i += 2) {
    let k = unchecked(labels[i]);
    if (!validName(k, false) || k.startsWith("__")) abort("metric " + base + ": invalid label name '" + k + "'");
    if (i > 0) parts.push(",");
    parts.push(k);
    parts.push("=\"");
    parts.push(escapeLabelValue(unchecked(labels[i + 1])));
    parts.push("\"");
  }
  parts.push("}");
  return parts.join("");
}

/** Shared base: a full metric name, its type, its lazily defined id. */
export class Metric {
  readonly name: string;
  readonly type: MetricType;
  private _id: u32 = 0;
  private defined: bool = false;
  private childLabels: string[][] | null = null;
  private childMetrics: Metric[] | null = null;

  constructor(type: MetricType, name: string) {
    this.type = type;
    this.name = name;
  }

  /** The host's metric id (defines the metric on first call). */
  get id(): u32 {
    if (!this.defined) {
      this._id = metricId(this.type, this.name);
      this.defined = true;
    }
    return this._id;
  }

  /** Current value as the host holds it. */
  value(): u64 {
    return host.getMetric(this.id);
  }

  protected make(name: string): Metric {
    return new Metric(this.type, name);
  }

  /** This metric with extra labels appended; one object per label set, cached (no allocation on a hit). */
  protected child(labels: string[]): Metric {
    let keys = this.childLabels;
    let metrics = this.childMetrics;
    if (keys === null || metrics === null) {
      keys = [];
      metrics = [];
      this.childLabels = keys;
      this.childMetrics = metrics;
    } else {
      for (let i = 0, n = keys.length; i < n; i++) {
        if (sameLabels(unchecked(keys[i]), labels)) return unchecked(metrics[i]);
      }
    }
    let m = this.make(metricName(this.name, labels));
    keys.push(labels.slice(0));
    metrics.push(m);
    return m;
  }
}

function sameLabels(a: string[], b: string[]): bool {
  let n = a.length;
  if (n != b.length) return false;
  for (let i = 0; i < n; i++) if (unchecked(a[i]) != unchecked(b[i])) return false;
  return true;
}

/** A monotonically increasing count. */
export class Counter extends Metric {
  constructor(family: string, labels: string[] | null = null) {
    super(MetricType.Counter, metricName(family, labels));
  }

  protected make(name: string): Metric {
    return new Counter(name);
  }

  inc(delta: i64 = 1): void {
    host.incrementMetric(this.id, delta);
  }

  /** The counter with extra labels [k, v, ...] (cached: fine to call on the hot path). */
  with(labels: string[]): Counter {
    return <Counter>this.child(labels);
  }
}

/** A value that goes up and down. */
export class Gauge extends Metric {
  constructor(family: string, labels: string[] | null = null) {
    super(MetricType.Gauge, metricName(family, labels));
  }

  protected make(name: string): Metric {
    return new Gauge(name);
  }

  set(value: i64): void {
    host.recordMetric(this.id, value);
  }

  add(delta: i64): void {
    host.incrementMetric(this.id, delta);
  }

  with(labels: string[]): Gauge {
    return <Gauge>this.child(labels);
  }
}

/** Observations bucketed by the host (e.g. latencies). */
export class Histogram extends Metric {
  constructor(family: string, labels: string[] | null = null) {
    super(MetricType.Histogram, metricName(family, labels));
  }

  protected make(name: string): Metric {
    return new Histogram(name);
  }

  record(value: i64): void {
    host.recordMetric(this.id, value);
  }

  with(labels: string[]): Histogram {
    return <Histogram>this.child(labels);
  }
}
