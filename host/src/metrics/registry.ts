// The metrics store behind proxy_define_metric / increment / record / get, shared by
// every adapter and by the host's own metrics. Rendered as Prometheus text 0.0.4 or
// OpenMetrics 1.0 (exposition.ts picks one per scrape), and read by the OTLP exporter
// (telemetry/otlp-metrics.ts) through collect().
// About 610 lines, one file: families, series, ownership, caps and histogram buckets
// are one store; rendering is in exposition.ts.
//
// Adapters encode labels in the metric name, Prometheus style:
//   istio_requests_total{response_code="200",reporter="destination"}
// The host splits that into a family and a label set; a name without braces is a
// family with no labels. Label values use Prometheus escaping (\\, \", \n).
//
// Guarantees the exposition relies on:
//   * one family per name, one type per family; a family whose sample names would
//     clash with another family's (`x` histogram vs `x_count` counter, `x_total`
//     counter vs `x` gauge in OpenMetrics) is refused at definition, like a type clash;
//   * one series per label set, whatever order the labels were written in;
//   * `le` is never an adapter label on a histogram;
//   * at most maxSeries label sets per family. Further label sets are folded into one
//     overflow series whose label values are all OVERFLOW_VALUE, and each fold is
//     counted in wasm_mixer_metric_series_overflow_total{metric}.
//
// The hot path (increment/record by id) is an array index and an add; histogram
// observations increment one bucket (cumulative counts are computed when rendering).

import { MetricType, Status } from '../abi/constants.js';

/** Envoy's default histogram buckets, which Istio's standard metrics use (durations in ms, sizes in bytes). */
export const DEFAULT_MS_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
export const DEFAULT_BYTES_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000];
/** Prometheus client defaults (and Istio 1.1 Mixer's istio_request_duration_seconds). */
export const DEFAULT_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** For in-process guest calls measured in seconds: 2 µs to 100 ms. */
export const CALL_SECONDS_BUCKETS = [0.000002, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1];

/** Label value of the series that absorbs label sets beyond a family's cap. */
export const OVERFLOW_VALUE = '__overflow__';
/** Default cap on label sets per family (OpenTelemetry's default cardinality limit). */
export const DEFAULT_MAX_SERIES = 2000;
export const OVERFLOW_METRIC = 'wasm_mixer_metric_series_overflow_total';

const TYPE_NAMES = ['counter', 'gauge', 'histogram'] as const;
export type MetricTypeName = (typeof TYPE_NAMES)[number];

interface Series {
  readonly id: number;
  readonly family: Family;
  /** Rendered `{a="b"}` in the order first seen, or ''. */
  readonly labels: string;
  readonly pairs: ReadonlyArray<readonly [string, string]>;
  readonly createdMs: number;
  value: number;
  /** Histogram only: per-bucket (non-cumulative) counts, the last one is (bounds[n-1], +Inf]. */
  readonly counts: Float64Array | null;
  sum: number;
  count: number;
}

interface Family {
  readonly name: string;
  readonly type: MetricType;
  help: string;
  unit: string;
  /** Who defined it: 'host', 'worker' or an adapter's name; the host claims a family an adapter defined first. */
  owner: string;
  /** HOST_OWNERS.has(owner), kept with it: adapterMayUse asks on every metric call. */
  hostOwned: boolean;
  bounds: number[] | null;
  /** Multiplies values recorded through the ABI (histograms only). */
  scale: number;
  maxSeries: number;
  /** Keyed by the canonical (sorted) label string. */
  readonly series: Map<string, Series>;
  overflow: Series | null;
}

/** How a family is described before (or when) its first series is defined. */
export interface FamilyOptions {
  help?: string;
  /** OpenMetrics UNIT; only emitted when the family name ends with `_<unit>`. */
  unit?: string;
  /** Histogram bucket upper bounds, strictly increasing, finite. */
  buckets?: number[];
  /** Histograms: values recorded through the ABI are multiplied by this (e.g. 1e-6 to record ns as ms). */
  scale?: number;
  /** Cap on label sets for this family. */
  maxSeries?: number;
}

export type BucketResolver = (family: string) => number[];

export const defaultBuckets: BucketResolver = (family) => {
  if (family.endsWith('_bytes')) return DEFAULT_BYTES_BUCKETS;
  if (family.endsWith('_seconds')) return DEFAULT_SECONDS_BUCKETS;
  return DEFAULT_MS_BUCKETS;
};

export interface RegistryOptions {
  /** Operator bucket overrides by family name; they win over what adapters describe. */
  buckets?: Record<string, number[]>;
  /** Buckets for histograms nobody described. */
  resolver?: BucketResolver;
  /** Default cap on label sets per family. */
  maxSeriesPerMetric?: number;
}

/** A family as the OTLP exporter and tests read it. */
export interface FamilySnapshot {
  name: string;
  type: MetricTypeName;
  help: string;
  unit: string;
  series: SeriesSnapshot[];
}

export interface SeriesSnapshot {
  labels: Record<string, string>;
  startMs: number;
  /** Counter and gauge value. */
  value: number;
  /** Histogram: finite upper bounds, per-bucket counts (bounds.length + 1 of them), sum, count. */
  bounds?: number[];
  counts?: number[];
  sum?: number;
  count?: number;
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly byId: Series[] = [];
  private readonly byFullName = new Map<string, number>();
  /** Sample and OpenMetrics family names in use → owning family, for clash checks. */
  private readonly names = new Map<string, string>();
  /** Descriptions given before the family exists. */
  private readonly pending = new Map<string, { type: MetricType; opts: FamilyOptions }>();
  private readonly collectors: Array<() => void> = [];
  private readonly overrides: Record<string, number[]>;
  private readonly resolver: BucketResolver;
  readonly maxSeriesPerMetric: number;
  private countOverflow: Map<string, (d?: number) => void> = new Map();

  constructor(options: RegistryOptions | BucketResolver = {}) {
    const o: RegistryOptions = typeof options === 'function' ? { resolver: options } : options;
    this.overrides = o.buckets ?? {};
    this.resolver = o.resolver ?? defaultBuckets;
    this.maxSeriesPerMetric = o.maxSeriesPerMetric ?? DEFAULT_MAX_SERIES;
    for (const [name, b] of Object.entries(this.overrides)) {
      const err = checkBuckets(b);
      if (err !== null) throw new Error(`metrics.histogramBuckets.${name}: ${err}`);
    }
  }

  /**
   * Describes a family: help, unit, buckets, scale, cap. Before the first series it
   * sets everything; afterwards help and unit change, and buckets/scale must match.
   * Returns null when accepted, or why not.
   */
  describe(type: MetricType, family: string, opts: FamilyOptions): string | null {
    if (!NAME_RE.test(family)) return `invalid metric family name "${family}"`;
    if (opts.buckets !== undefined) {
      if (type !== MetricType.Histogram) return 'buckets apply to histograms only';
      const err = checkBuckets(opts.buckets);
      if (err !== null) return err;
    }
    if (opts.scale !== undefined && (!Number.isFinite(opts.scale) || opts.scale <= 0)) return 'scale must be a positive number';
    if (opts.maxSeries !== undefined && (!Number.isInteger(opts.maxSeries) || opts.maxSeries < 1)) return 'maxSeries must be a positive integer';
    const f = this.families.get(family);
    if (f === undefined) {
      const clash = this.clashOf(family, type);
      if (clash !== null) return clash;
      this.pending.set(family, { type, opts: { ...this.pending.get(family)?.opts, ...opts } });
      return null;
    }
    if (f.type !== type) return `${family} is already a ${TYPE_NAMES[f.type]}`;
    if (f.series.size > 0 || f.overflow !== null) {
      if (opts.buckets !== undefined && this.overrides[family] === undefined && !sameNumbers(opts.buckets, f.bounds!)) return `${family} already has series with other buckets`;
      if (opts.scale !== undefined && opts.scale !== f.scale) return `${family} already has series with another scale`;
    } else {
      if (opts.buckets !== undefined && this.overrides[family] === undefined) f.bounds = opts.buckets.slice();
      if (opts.scale !== undefined) f.scale = opts.scale;
    }
    if (opts.help !== undefined) f.help = opts.help;
    if (opts.unit !== undefined) f.unit = opts.unit;
    if (opts.maxSeries !== undefined) f.maxSeries = opts.maxSeries;
    return null;
  }

  /** Defines (or finds) a series; returns its id, or null for a malformed name, a type clash, a name clash, or an adapter reaching a host family. */
  define(type: MetricType, fullName: string, owner = 'host', help?: string): number | null {
    const key = `${type}\0${fullName}`;
    const existing = this.byFullName.get(key);
    if (existing !== undefined) {
      const family = this.byId[existing - 1]!.family;
      if (HOST_OWNERS.has(owner) && !HOST_OWNERS.has(family.owner)) claim(family, owner); // as below
      return mayUse(family.owner, owner) ? existing : null;
    }
    const parsed = parseMetricName(fullName);
    if (parsed === null) return null;
    if (type === MetricType.Histogram && parsed.pairs.some(([k]) => k === 'le')) return null;
    const family = this.familyFor(type, parsed.family, owner, help);
    if (family === null || !mayUse(family.owner, owner)) return null;
    // A host family the host creates lazily (on the first crash, say) may already have been
    // defined by an adapter under the same name: the host claims it, and the adapter loses it.
    if (HOST_OWNERS.has(owner) && !HOST_OWNERS.has(family.owner)) claim(family, owner);
    const canon = canonicalKey(parsed.pairs);
    let series = family.series.get(canon);
    if (series === undefined) {
      if (family.series.size >= family.maxSeries) return this.fold(family, parsed.pairs);
      series = this.newSeries(family, parsed.pairs);
      family.series.set(canon, series);
    }
    this.byFullName.set(key, series.id);
    return series.id;
  }

  private familyFor(type: MetricType, name: string, owner: string, help: string | undefined): Family | null {
    const f = this.families.get(name);
    if (f !== undefined) return f.type === type ? f : null;
    if (this.clashOf(name, type) !== null) return null;
    const described = this.pending.get(name);
    const opts = described !== undefined && described.type === type ? described.opts : {};
    this.pending.delete(name);
    const family: Family = {
      name,
      type,
      help: opts.help ?? help ?? `Metric defined by ${owner}.`,
      unit: opts.unit ?? '',
      owner,
      hostOwned: HOST_OWNERS.has(owner),
      bounds: type === MetricType.Histogram ? (this.overrides[name] ?? opts.buckets ?? this.resolver(name)).slice() : null,
      scale: opts.scale ?? 1,
      maxSeries: opts.maxSeries ?? this.maxSeriesPerMetric,
      series: new Map(),
      overflow: null,
    };
    this.families.set(name, family);
    for (const n of sampleNames(name, type)) this.names.set(n, name);
    return family;
  }

  /** Why a new family `name` of `type` cannot coexist with the existing ones, or null. */
  private clashOf(name: string, type: MetricType): string | null {
    for (const n of sampleNames(name, type)) {
      const other = this.names.get(n);
      if (other !== undefined && other !== name) return `${name} would clash with ${other} (both expose "${n}")`;
    }
    return null;
  }

  private newSeries(family: Family, pairs: ReadonlyArray<readonly [string, string]>): Series {
    const n = family.bounds?.length ?? 0;
    const s: Series = {
      id: this.byId.length + 1,
      family,
      labels: renderLabels(pairs),
      pairs,
      createdMs: Date.now(),
      value: 0,
      counts: family.bounds ? new Float64Array(n + 1) : null,
      sum: 0,
      count: 0,
    };
    this.byId.push(s);
    return s;
  }

  /** A label set beyond the cap: the family's overflow series (not cached by name, so memory stays bounded). */
  private fold(family: Family, pairs: ReadonlyArray<readonly [string, string]>): number {
    if (family.overflow === null) family.overflow = this.newSeries(family, pairs.map(([k]) => [k, OVERFLOW_VALUE] as const));
    if (family.name !== OVERFLOW_METRIC) {
      let c = this.countOverflow.get(family.name);
      if (c === undefined) {
        c = this.counter(OVERFLOW_METRIC, 'Label sets folded into the overflow series because the metric reached its series cap (metrics.maxSeriesPerMetric).', { metric: family.name });
        this.countOverflow.set(family.name, c);
      }
      c();
    }
    return family.overflow.id;
  }

  /** Whether an adapter may write or read series `id` (false for the host's own families and unknown ids). */
  adapterMayUse(id: number): boolean {
    const s = this.byId[id - 1];
    return s !== undefined && !s.family.hostOwned;
  }

  increment(id: number, delta: number): Status {
    const s = this.byId[id - 1];
    if (s === undefined) return Status.NotFound;
    const t = s.family.type;
    if (t === MetricType.Histogram) return Status.BadArgument;
    if (t === MetricType.Counter && delta < 0) return Status.BadArgument;
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
        observe(s, value * s.family.scale);
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

  // --- host-side convenience --------------------------------------------------
  counter(name: string, help: string, labels: Record<string, string> = {}, opts: FamilyOptions = {}): (delta?: number) => void {
    const s = this.hostSeries(MetricType.Counter, name, help, labels, opts);
    return (delta = 1) => void (s.value += delta);
  }

  gauge(name: string, help: string, labels: Record<string, string> = {}, opts: FamilyOptions = {}): (value: number) => void {
    const s = this.hostSeries(MetricType.Gauge, name, help, labels, opts);
    return (value) => void (s.value = value);
  }

  /** A histogram series; values are observed as given (no scale), `times` times (default once). */
  histogram(name: string, help: string, labels: Record<string, string> = {}, opts: FamilyOptions = {}): (value: number, times?: number) => void {
    const s = this.hostSeries(MetricType.Histogram, name, help, labels, opts);
    return (value, times = 1) => observe(s, value, times);
  }

  private hostSeries(type: MetricType, name: string, help: string, labels: Record<string, string>, opts: FamilyOptions): Series {
    const err = this.describe(type, name, { ...opts, help });
    if (err !== null) throw new Error(`metric ${name}: ${err}`);
    const id = this.define(type, name + renderLabels(Object.entries(labels)), 'host', help);
    if (id === null) throw new Error(`metric ${name} is malformed or already defined with another type`);
    return this.byId[id - 1]!;
  }

  /** Runs `fn` before every render and collect (to refresh gauges such as process memory); the result removes it. */
  addCollector(fn: () => void): () => void {
    this.collectors.push(fn);
    return () => {
      const i = this.collectors.indexOf(fn);
      if (i >= 0) this.collectors.splice(i, 1);
    };
  }

  private runCollectors(): void {
    for (const c of this.collectors) {
      try {
        c();
      } catch {
        // a failing collector must not break the scrape
      }
    }
  }

  /** Value of one series by family and labels (a histogram's sample count), for tests and the admin API. */
  value(family: string, labels: Record<string, string> = {}): number | undefined {
    const s = this.findSeries(family, labels);
    if (s === undefined) return undefined;
    return s.family.type === MetricType.Histogram ? s.count : s.value;
  }

  /** A histogram series' sum and count (undefined when absent). */
  histogramValue(family: string, labels: Record<string, string> = {}): { sum: number; count: number; buckets: Record<string, number> } | undefined {
    const s = this.findSeries(family, labels);
    if (s === undefined || s.counts === null) return undefined;
    const buckets: Record<string, number> = {};
    let acc = 0;
    const bounds = s.family.bounds!;
    for (let i = 0; i < bounds.length; i++) buckets[formatNumber(bounds[i]!)] = acc += s.counts[i]!;
    buckets['+Inf'] = s.count;
    return { sum: s.sum, count: s.count, buckets };
  }

  private findSeries(family: string, labels: Record<string, string>): Series | undefined {
    const f = this.families.get(family);
    if (f === undefined) return undefined;
    const key = canonicalKey(Object.entries(labels));
    const s = f.series.get(key);
    if (s !== undefined) return s;
    if (f.overflow !== null && canonicalKey(f.overflow.pairs) === key) return f.overflow;
    return undefined;
  }

  /** Names of the families defined so far. */
  familyNames(): string[] {
    return [...this.families.keys()].sort();
  }

  /** Every family with its series, for exporters. */
  collect(): FamilySnapshot[] {
    this.runCollectors();
    const out: FamilySnapshot[] = [];
    for (const f of this.sortedFamilies()) {
      const series: SeriesSnapshot[] = [];
      for (const s of this.seriesOf(f)) {
        const snap: SeriesSnapshot = { labels: Object.fromEntries(s.pairs), startMs: s.createdMs, value: s.value };
        if (s.counts !== null) {
          snap.bounds = f.bounds!;
          snap.counts = Array.from(s.counts);
          snap.sum = s.sum;
          snap.count = s.count;
        }
        series.push(snap);
      }
      out.push({ name: f.name, type: TYPE_NAMES[f.type], help: f.help, unit: f.unit, series });
    }
    return out;
  }

  /**
   * Sets series from a snapshot taken by collect() in another process (the workers'
   * /metrics merged by the primary, host/src/workers/metrics-merge.ts). The family takes
   * the snapshot's buckets and no series cap: the merge already bounded it.
   */
  restore(f: FamilySnapshot): void {
    const type = TYPE_NAMES.indexOf(f.type) as MetricType;
    const err = this.describe(type, f.name, { help: f.help, unit: f.unit || undefined, buckets: f.series[0]?.bounds, maxSeries: Number.MAX_SAFE_INTEGER });
    if (err !== null) return;
    for (const snap of f.series) {
      const id = this.define(type, f.name + renderLabels(Object.entries(snap.labels)), 'worker', f.help);
      if (id === null) continue;
      const s = this.byId[id - 1]!;
      s.value = snap.value;
      if (s.counts !== null && snap.counts !== undefined && snap.counts.length === s.counts.length) {
        s.counts.set(snap.counts);
        s.sum = snap.sum ?? 0;
        s.count = snap.count ?? 0;
      }
    }
  }

  private sortedFamilies(): Family[] {
    return [...this.families.values()].filter((f) => f.series.size > 0 || f.overflow !== null).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private *seriesOf(f: Family): Iterable<Series> {
    yield* f.series.values();
    if (f.overflow !== null) yield f.overflow;
  }

  /**
   * Prometheus text format 0.0.4, or OpenMetrics 1.0 text when `openMetrics` is set.
   * Families in name order, series in definition order.
   */
  render(openMetrics: boolean | 'openmetrics' | 'text' = false): string {
    const om = openMetrics === true || openMetrics === 'openmetrics';
    this.runCollectors();
    const out: string[] = [];
    for (const f of this.sortedFamilies()) {
      const type = TYPE_NAMES[f.type];
      let famName = f.name;
      let sampleName = f.name;
      if (om && f.type === MetricType.Counter) {
        famName = f.name.endsWith('_total') ? f.name.slice(0, -6) : f.name;
        sampleName = `${famName}_total`;
      }
      out.push(`# HELP ${famName} ${om ? escapeHelpOM(f.help) : escapeHelp(f.help)}`);
      out.push(`# TYPE ${famName} ${type}`);
      if (om && f.unit !== '' && famName.endsWith(`_${f.unit}`)) out.push(`# UNIT ${famName} ${f.unit}`);
      for (const s of this.seriesOf(f)) {
        if (s.counts === null) {
          out.push(`${sampleName}${s.labels} ${formatNumber(s.value)}`);
          continue;
        }
        const bounds = f.bounds!;
        const base = s.labels === '' ? '' : s.labels.slice(1, -1) + ',';
        let acc = 0;
        for (let i = 0; i < bounds.length; i++) {
          acc += s.counts[i]!;
          out.push(`${f.name}_bucket{${base}le="${om ? formatFloatOM(bounds[i]!) : formatNumber(bounds[i]!)}"} ${acc}`);
        }
        out.push(`${f.name}_bucket{${base}le="+Inf"} ${s.count}`);
        out.push(`${f.name}_sum${s.labels} ${formatNumber(s.sum)}`);
        out.push(`${f.name}_count${s.labels} ${s.count}`);
      }
    }
    if (om) out.push('# EOF');
    return out.length === 0 ? '' : out.join('\n') + '\n';
  }
}

function observe(s: Series, value: number, times = 1): void {
  const bounds = s.family.bounds!;
  const counts = s.counts!;
  let i = 0;
  const n = bounds.length;
  while (i < n && value > bounds[i]!) i++;
  counts[i]! += times;
  s.sum += value * times;
  s.count += times;
}

/** Every sample name a family exposes in either format, plus its OpenMetrics family name. */
function sampleNames(name: string, type: MetricType): string[] {
  if (type === MetricType.Histogram) return [name, `${name}_bucket`, `${name}_sum`, `${name}_count`];
  if (type === MetricType.Counter) {
    const base = name.endsWith('_total') ? name.slice(0, -6) : name;
    return [name, base, `${base}_total`];
  }
  return [name];
}

function checkBuckets(b: unknown): string | null {
  if (!Array.isArray(b) || b.length === 0) return 'buckets must be a non-empty array of numbers';
  for (let i = 0; i < b.length; i++) {
    const v = b[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) return 'buckets must be finite numbers (+Inf is implicit)';
    if (i > 0 && v <= (b[i - 1] as number)) return 'buckets must be strictly increasing';
  }
  return null;
}

function sameNumbers(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Splits `family{a="b",c="d"}` into a sanitized family name, its label pairs and their rendering. */
export function parseMetricName(full: string): { family: string; labels: string; pairs: Array<[string, string]> } | null {
  const brace = full.indexOf('{');
  const rawFamily = brace < 0 ? full : full.slice(0, brace);
  const family = sanitizeName(rawFamily);
  if (family === '') return null;
  if (brace < 0) return { family, labels: '', pairs: [] };
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
  return { family, labels: renderLabels(pairs), pairs };
}

export function renderLabels(pairs: ReadonlyArray<readonly [string, string]>): string {
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/** The label set in name order: two orders of the same labels are one series. */
function canonicalKey(pairs: ReadonlyArray<readonly [string, string]>): string {
  if (pairs.length <= 1) return renderLabels(pairs);
  return renderLabels([...pairs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeHelpOM(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function sanitizeName(name: string): string {
  if (NAME_RE.test(name)) return name;
  const s = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

export function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

/** OpenMetrics canonical float for `le`: integers get ".0" (as client_golang writes them). */
function formatFloatOM(n: number): string {
  const s = formatNumber(n);
  return Number.isInteger(n) && !s.includes('e') ? `${s}.0` : s;
}

/** The host's own families (and those merged from workers) are out of adapters' reach; adapters share theirs by name, as Envoy's stats do. */
const HOST_OWNERS = new Set(['host', 'worker']);
/** The host takes over a family an adapter defined first. */
function claim(family: Family, owner: string): void {
  family.owner = owner;
  family.hostOwned = true;
}

function mayUse(familyOwner: string, owner: string): boolean {
  return HOST_OWNERS.has(owner) || !HOST_OWNERS.has(familyOwner);
}
