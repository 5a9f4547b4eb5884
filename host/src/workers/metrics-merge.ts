// One /metrics view of a multi-worker proxy, as a Prometheus user expects it from
// one target: counters summed over the workers, histograms merged bucket by bucket,
// gauges (memory, VM up, start time...) kept per process with a `worker` label
// ("primary" for the primary's own). A worker that exited keeps counting: its last
// counters and histograms are carried in `retired`, so sums never go down when a
// worker is replaced (no false counter reset in rate()).

import type { FamilySnapshot, SeriesSnapshot } from '../metrics/registry.js';
import { MetricsRegistry } from '../metrics/registry.js';

export interface SourceSnapshot {
  /** "1", "2"... or "primary" */
  readonly worker: string;
  readonly families: FamilySnapshot[];
  /** Gauges that describe the whole proxy (the primary's wasm_mixer_workers*): no worker label. */
  readonly proxyWide?: (family: string) => boolean;
}

const WORKER_LABEL = 'worker';

export function mergeSnapshots(sources: SourceSnapshot[]): FamilySnapshot[] {
  const out = new Map<string, FamilySnapshot>();
  const seriesIdx = new Map<string, Map<string, SeriesSnapshot>>();
  for (const src of sources) {
    for (const f of src.families) {
      let m = out.get(f.name);
      if (m === undefined) {
        m = { name: f.name, type: f.type, help: f.help, unit: f.unit, series: [] };
        out.set(f.name, m);
        seriesIdx.set(f.name, new Map());
      }
      if (m.type !== f.type) continue; // a family redefined with another type in one worker: first one wins
      const idx = seriesIdx.get(f.name)!;
      for (const s of f.series) {
        const perWorker = (f.type === 'gauge' && !src.proxyWide?.(f.name)) || (f.type === 'histogram' && !sameBounds(f, s, m, idx));
        const labels = perWorker && !(WORKER_LABEL in s.labels) ? { ...s.labels, [WORKER_LABEL]: src.worker } : s.labels;
        const key = labelKey(labels);
        const cur = idx.get(key);
        if (cur === undefined) {
          const copy: SeriesSnapshot = { ...s, labels, counts: s.counts?.slice() };
          idx.set(key, copy);
          m.series.push(copy);
        } else if (f.type === 'gauge') {
          cur.value = s.value; // same worker label twice (an adapter's own `worker` label): last wins
        } else {
          add(cur, s);
        }
      }
    }
  }
  return [...out.values()];
}

/** Adds `b` into `a` (counters and histograms of the same series). */
function add(a: SeriesSnapshot, b: SeriesSnapshot): void {
  a.value += b.value;
  a.startMs = Math.min(a.startMs, b.startMs);
  if (a.counts && b.counts && a.counts.length === b.counts.length) {
    for (let i = 0; i < a.counts.length; i++) a.counts[i]! += b.counts[i]!;
    a.sum = (a.sum ?? 0) + (b.sum ?? 0);
    a.count = (a.count ?? 0) + (b.count ?? 0);
  }
}

/** A histogram series merges with the others only when its buckets are the family's first buckets. */
function sameBounds(f: FamilySnapshot, s: SeriesSnapshot, merged: FamilySnapshot, _idx: Map<string, SeriesSnapshot>): boolean {
  const first = merged.series.find((x) => x.bounds !== undefined)?.bounds ?? f.series[0]?.bounds;
  const b = s.bounds;
  return first !== undefined && b !== undefined && first.length === b.length && first.every((v, i) => v === b[i]);
}

function labelKey(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',');
}

/** Counters and histograms of workers that exited, folded into one source. */
export class RetiredMetrics {
  private families: FamilySnapshot[] = [];

  /** A worker's last snapshot, as it exits. */
  retire(families: FamilySnapshot[]): void {
    const keep = families
      .filter((f) => f.type !== 'gauge')
      .map((f) => ({ ...f, series: f.series.map((s) => ({ ...s, labels: { ...s.labels } })) }));
    this.families = mergeSnapshots([
      { worker: 'retired', families: this.families },
      { worker: 'retired', families: keep },
    ]);
  }

  snapshot(): SourceSnapshot {
    return { worker: 'retired', families: this.families };
  }
}

/** Renders merged families with the host's exposition code (text 0.0.4 or OpenMetrics, as negotiated). */
export function mergedRegistry(families: FamilySnapshot[]): MetricsRegistry {
  const r = new MetricsRegistry();
  for (const f of families) r.restore(f);
  return r;
}
