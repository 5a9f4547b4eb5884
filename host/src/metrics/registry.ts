// The metrics store behind proxy_define_metric / increment / record / get, shared by
// every adapter and by the host's own metrics, rendered in the Prometheus text format.
//
// Adapters encode labels in the metric name, Prometheus style:
//   istio_requests_total{response_code="200",reporter="destination"}
// The host splits that into a family and a label set; a name without braces is a
// family with no labels. Label values use Prometheus escaping (\\, \", \n).

import { MetricType, Status } from '../abi/constants.js';

export const DEFAULT_MS_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
export const DEFAULT_BYTES_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000];
export const DEFAULT_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const TYPE_NAMES = ['counter', 'gauge', 'histogram'] as const;

interface Series {
  readonly id: number;
  readonly family: Family;
  /** Rendered `{a="b"}` or '' */
  readonly labels: string;
  value: number;
  // histogram only
  readonly bounds: number[] | null;
  readonly counts: Float64Array | null;
  sum: number;
  count: number;
}

interface Family {
  readonly name: string;
  readonly type: MetricType;
  help: string;
  readonly series: Map<string, Series>;
}

export type BucketResolver = (family: string) => number[];

export const defaultBuckets: BucketResolver = (family) => {
  if (family.endsWith('_bytes')) return DEFAULT_BYTES_BUCKETS;
  if (family.endsWith('_seconds')) return DEFAULT_SECONDS_BUCKETS;
  return DEFAULT_MS_BUCKETS;
};

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly byId: Series[] = [];
  private readonly byFullName = new Map<string, number>();

  constructor(private readonly buckets: BucketResolver = defaultBuckets) {}

  /** Defines (or finds) a series; returns its id, or null for a malformed name or a type clash. */
  define(type: MetricType, fullName: string, owner = 'host', help?: string): number | null {
    const key = `${type}\0${fullName}`;
    const existing = this.byFullName.get(key);
    if (existing !== undefined) return existing;
    const parsed = parseMetricName(fullName);
    if (parsed === null) return null;
    let family = this.families.get(parsed.family);
    if (family === undefined) {
      family = { name: parsed.family, type, help: help ?? `Metric defined by ${owner}.`, series: new Map() };
      this.families.set(parsed.family, family);
    } else if (family.type !== type) {
      return null;
    }
    let series = family.series.get(parsed.labels);
    if (series === undefined) {
      const bounds = type === MetricType.Histogram ? this.buckets(parsed.family) : null;
      series = {
        id: this.byId.length + 1,
        family,
        labels: parsed.labels,
        value: 0,
        bounds,
        counts: bounds ? new Float64Array(bounds.length) : null,
        sum: 0,
        count: 0,
      };
      this.byId.push(series);
      family.series.set(parsed.labels, series);
    }
    this.byFullName.set(key, series.id);
    return series.id;
  }

  increment(id: number, delta: number): Status {
    const s = this.byId[id - 1];
    if (s === undefined) return Status.NotFound;
    if (s.family.type === MetricType.Histogram) return Status.BadArgument;
    if (s.family.type === MetricType.Counter && delta < 0) return Status.BadArgument;
    s.value += delta;
    return Status.Ok;
  }

  record(id: number, value: number): Status {
    const s = this.byId[id - 1];
    if (s === undefined) return Status.NotFound;
    switch (s.family.type) {
      case MetricType.Gauge:
        s.value = value;
        return Status.Ok;
      case MetricType.Counter:
        if (value < s.value) return Status.BadArgument;
        s.value = value;
        return Status.Ok;
      default:
        this.observe(s, value);
        return Status.Ok;
    }
  }

  /** A counter's or gauge's value, a histogram's sample count; null for an unknown id. */
  get(id: number): number | null {
    const s = this.byId[id - 1];
    if (s === undefined) return null;
    if (s.family.type === MetricType.Histogram) return s.count;
    return s.value;
  }

  private observe(s: Series, value: number): void {
    const bounds = s.bounds!;
    const counts = s.counts!;
    for (let i = 0; i < bounds.length; i++) if (value <= bounds[i]!) counts[i]!++;
    s.sum += value;
    s.count++;
  }

  // --- host-side convenience --------------------------------------------------
  counter(name: string, help: string, labels: Record<string, string> = {}): (delta?: number) => void {
    const id = this.mustDefine(MetricType.Counter, name, help, labels);
    return (delta = 1) => void this.increment(id, delta);
  }

  gauge(name: string, help: string, labels: Record<string, string> = {}): (value: number) => void {
    const id = this.mustDefine(MetricType.Gauge, name, help, labels);
    return (value) => void this.record(id, value);
  }

  histogram(name: string, help: string, labels: Record<string, string> = {}): (value: number) => void {
    const id = this.mustDefine(MetricType.Histogram, name, help, labels);
    const s = this.byId[id - 1]!;
    return (value) => this.observe(s, value);
  }

  private mustDefine(type: MetricType, name: string, help: string, labels: Record<string, string>): number {
    const id = this.define(type, name + renderLabels(Object.entries(labels)), 'host', help);
    if (id === null) throw new Error(`metric ${name} is malformed or already defined with another type`);
    this.families.get(name)!.help = help;
    return id;
  }

  /** Value of one series by family and labels, for tests and the admin API. */
  value(family: string, labels: Record<string, string> = {}): number | undefined {
    const s = this.families.get(family)?.series.get(renderLabels(Object.entries(labels)));
    if (s === undefined) return undefined;
    return s.family.type === MetricType.Histogram ? s.count : s.value;
  }

  /** Prometheus text format 0.0.4, or OpenMetrics 1.0 text when `openMetrics` is set. */
  render(openMetrics = false): string {
    const out: string[] = [];
    const families = [...this.families.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const f of families) {
      if (f.series.size === 0) continue;
      const type = TYPE_NAMES[f.type];
      let famName = f.name;
      let sampleName = f.name;
      if (openMetrics && f.type === MetricType.Counter) {
        famName = f.name.endsWith('_total') ? f.name.slice(0, -6) : f.name;
        sampleName = `${famName}_total`;
      }
      out.push(`# HELP ${famName} ${escapeHelp(f.help)}`);
      out.push(`# TYPE ${famName} ${type}`);
      for (const s of f.series.values()) {
        if (f.type !== MetricType.Histogram) {
          out.push(`${sampleName}${s.labels} ${formatNumber(s.value)}`);
          continue;
        }
        const base = s.labels === '' ? '' : s.labels.slice(1, -1) + ',';
        for (let i = 0; i < s.bounds!.length; i++) {
          out.push(`${f.name}_bucket{${base}le="${formatNumber(s.bounds![i]!)}"} ${s.counts![i]}`);
        }
        out.push(`${f.name}_bucket{${base}le="+Inf"} ${s.count}`);
        out.push(`${f.name}_sum${s.labels} ${formatNumber(s.sum)}`);
        out.push(`${f.name}_count${s.labels} ${s.count}`);
      }
    }
    if (openMetrics) out.push('# EOF');
    return out.join('\n') + '\n';
  }
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Splits `family{a="b",c="d"}` into a sanitized family name and a canonical label string. */
export function parseMetricName(full: string): { family: string; labels: string } | null {
  const brace = full.indexOf('{');
  const rawFamily = brace < 0 ? full : full.slice(0, brace);
  const family = sanitizeName(rawFamily);
  if (family === '') return null;
  if (brace < 0) return { family, labels: '' };
  if (!full.endsWith('}')) return null;
  const body = full.slice(brace + 1, -1);
  const pairs: Array<[string, string]> = [];
  let i = 0;
  while (i < body.length) {
    const eq = body.indexOf('=', i);
    if (eq < 0) return null;
    const name = body.slice(i, eq).trim();
    if (!LABEL_RE.test(name) || name.startsWith('__')) return null;
    if (body[eq + 1] !== '"') return null;
    let j = eq + 2;
    let value = '';
    for (;;) {
      if (j >= body.length) return null;
      const c = body[j]!;
      if (c === '\\') {
        const n = body[j + 1];
        if (n === 'n') value += '\n';
        else if (n === '\\' || n === '"') value += n;
        else return null;
        j += 2;
      } else if (c === '"') {
        j++;
        break;
      } else {
        value += c;
        j++;
      }
    }
    pairs.push([name, value]);
    if (j < body.length) {
      if (body[j] !== ',') return null;
      j++;
    }
    i = j;
  }
  if (new Set(pairs.map((p) => p[0])).size !== pairs.length) return null;
  return { family, labels: renderLabels(pairs) };
}

export function renderLabels(pairs: Array<[string, string]>): string {
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function sanitizeName(name: string): string {
  if (NAME_RE.test(name)) return name;
  const s = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}
