// The proxy's check cache (Mixer's client cache, istio/proxy@release-1.1
// src/istio/mixerclient/check_cache.cc + referenced.cc): results are stored
// under the values of the attributes they referenced; a lookup tries every
// known "shape" (set of referenced attributes) for the chain segment, computes
// the request's values for it and probes an LRU map. Entries expire after their
// valid duration or once their use count is spent. One cache per proxy process
// (Node runs the proxy on one thread, so it is shared by all requests, unlike
// Envoy's per-worker caches).

import type { HeaderPair } from '../abi/pairs.js';
import type { HttpStream } from '../stream/http-stream.js';
import { FACTS, FILTER_STATE_PREFIX, INFO_PREFIX, REQUEST_HEADERS } from './attributes.js';
import type { Outcome } from './outcome.js';
import type { Ref } from './tracker.js';

const ABSENT = '\u0000absent';
const SEP = '\u0001';

const FACT_FIELD = new Map<string, string>(FACTS.map(([field, name]) => [name, field]));

/** The value of one referenced attribute for a request, as a string (ABSENT if missing). */
export function refValue(s: HttpStream, r: Pick<Ref, 'name' | 'key'>): string {
  if (r.name === REQUEST_HEADERS) {
    const h: readonly HeaderPair[] = s.requestHeaders;
    if (r.key !== undefined) {
      for (let i = 0; i < h.length; i++) if (h[i]![0] === r.key) return h[i]![1];
      return ABSENT;
    }
    let all = '';
    for (let i = 0; i < h.length; i++) all += `${h[i]![0]}\u0002${h[i]![1]}\u0003`;
    return all;
  }
  if (r.name.startsWith(FILTER_STATE_PREFIX)) {
    const v = s.filterState.get(r.name.slice(FILTER_STATE_PREFIX.length));
    return v === undefined ? ABSENT : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1');
  }
  const info = s.info as unknown as Record<string, unknown>;
  const field = FACT_FIELD.get(r.name) ?? (r.name.startsWith(INFO_PREFIX) ? r.name.slice(INFO_PREFIX.length) : undefined);
  if (field === undefined) return ABSENT;
  const v = info[field];
  return v === undefined ? ABSENT : String(v);
}

interface Shape {
  readonly id: string;
  readonly refs: ReadonlyArray<Pick<Ref, 'name' | 'key'>>;
}

interface Entry {
  readonly outcome: Outcome;
  readonly expiresAt: number;
  uses: number;
}

function shapeOf(refs: readonly Ref[]): Shape {
  const sorted = refs.map((r) => ({ name: r.name, key: r.key })).sort((a, b) => (a.name + SEP + (a.key ?? '') < b.name + SEP + (b.key ?? '') ? -1 : 1));
  return { id: sorted.map((r) => (r.key === undefined ? r.name : `${r.name}[${r.key}]`)).join(','), refs: sorted };
}

export interface CacheStats {
  hits: number;
  misses: number;
  inserts: number;
  evictions: number;
  expirations: number;
}

export class CheckCache {
  private readonly shapes = new Map<string, Shape[]>();
  private readonly entries = new Map<string, Entry>();
  readonly stats: CacheStats = { hits: 0, misses: 0, inserts: 0, evictions: 0, expirations: 0 };

  constructor(
    readonly maxEntries: number,
    /** Shapes kept per chain segment: each costs one probe per lookup. */
    readonly maxShapes = 64,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.entries.size;
  }

  private key(group: string, shape: Shape, s: HttpStream): string {
    let k = group + SEP + shape.id;
    for (const r of shape.refs) k += SEP + refValue(s, r);
    return k;
  }

  /** A cached outcome for this request, using one of its uses; null on a miss. */
  lookup(group: string, s: HttpStream): Outcome | null {
    const shapes = this.shapes.get(group);
    if (shapes !== undefined) {
      const now = this.now();
      for (const shape of shapes) {
        const k = this.key(group, shape, s);
        const e = this.entries.get(k);
        if (e === undefined) continue;
        if (e.expiresAt <= now || e.uses <= 0) {
          this.entries.delete(k);
          this.stats.expirations++;
          continue;
        }
        e.uses--;
        // LRU: most recently used last.
        this.entries.delete(k);
        if (e.uses > 0) this.entries.set(k, e);
        this.stats.hits++;
        return e.outcome;
      }
    }
    this.stats.misses++;
    return null;
  }

  /** Stores an outcome that may be reused for `validDurationMs` and `validUseCount` further requests. */
  insert(group: string, s: HttpStream, outcome: Outcome): boolean {
    if (outcome.validDurationMs <= 0 || outcome.validUseCount <= 0 || this.maxEntries <= 0) return false;
    const shape = shapeOf(outcome.refs);
    let shapes = this.shapes.get(group);
    if (shapes === undefined) this.shapes.set(group, (shapes = []));
    let known = shapes.find((x) => x.id === shape.id);
    if (known === undefined) {
      known = shape;
      shapes.push(shape);
      if (shapes.length > this.maxShapes) shapes.shift();
    }
    const k = this.key(group, known, s);
    this.entries.delete(k);
    this.entries.set(k, { outcome, expiresAt: this.now() + outcome.validDurationMs, uses: outcome.validUseCount });
    this.stats.inserts++;
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.stats.evictions++;
    }
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.shapes.clear();
  }
}
