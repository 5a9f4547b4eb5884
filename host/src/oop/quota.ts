// Quota prefetch for quota adapters run out of process (Mixer's algorithm,
// istio/proxy@release-1.1 src/istio/prefetch/quota_prefetch.cc and README):
//
// * per quota key (the attributes the quota adapter read, e.g. the client's API
//   key) the proxy keeps a pool of units granted by the adapter server;
// * a request that finds a unit in its pool proceeds at once, without a call;
// * the pool asks for more (best effort, in the background) when it falls below
//   half of the desired amount; desired = max(minPrefetch, requests seen in the
//   last predict window);
// * a refused or partial allocation closes the pool for closeWaitMs: no prefetch,
//   and requests that find the pool empty get the server's last denial locally
//   (like envoyproxy/ratelimit's local over-limit cache) instead of a call;
// * granted units expire after the allocation's valid duration.
//
// Cost of this, stated plainly: units granted to one proxy are not available to
// another until they expire, so with N proxies and a limit L per window a key can
// see up to N × (desired - 1) requests refused early; and units that expire unused
// are lost for the window. The adapter's own metrics count allocations, not requests.

import type { HttpStream } from '../stream/http-stream.js';
import { refValue } from './cache.js';
import type { Outcome } from './outcome.js';
import type { Ref } from './tracker.js';

export interface PrefetchSettings {
  minPrefetch: number;
  predictWindowMs: number;
  closeWaitMs: number;
  maxPools: number;
}

export class Pool {
  tokens = 0;
  expiresAt = 0;
  /** No prefetch (and local denials when empty) until this time. */
  closedUntil = 0;
  /** The allocation's request-phase result, applied to every request that uses a unit. */
  allow: Outcome | null = null;
  deny: Outcome | null = null;
  inflight = false;
  windowStart = 0;
  windowCount = 0;
  lastWindowCount = 0;

  constructor(readonly key: string) {}

  /** Counts a request in the predict window; returns the desired pool size. */
  observe(now: number, s: PrefetchSettings): number {
    if (now - this.windowStart >= s.predictWindowMs) {
      this.lastWindowCount = now - this.windowStart < 2 * s.predictWindowMs ? this.windowCount : 0;
      this.windowStart = now;
      this.windowCount = 0;
    }
    this.windowCount++;
    return Math.max(s.minPrefetch, this.lastWindowCount, this.windowCount);
  }
}

interface Shape {
  readonly id: string;
  readonly refs: ReadonlyArray<Pick<Ref, 'name' | 'key'>>;
}

export type QuotaDecision =
  | { kind: 'grant'; outcome: Outcome; pool: Pool; desired: number }
  | { kind: 'deny'; outcome: Outcome; pool: Pool }
  | { kind: 'call'; pool: Pool | null; desired: number; allocate: boolean };

export interface QuotaStats {
  localGrants: number;
  localDenials: number;
  calls: number;
}

/** The pools of one quota adapter. */
export class QuotaPools {
  private readonly shapes: Shape[] = [];
  private readonly pools = new Map<string, Pool>();
  readonly stats: QuotaStats = { localGrants: 0, localDenials: 0, calls: 0 };

  constructor(
    readonly settings: PrefetchSettings,
    private readonly now: () => number = () => performance.now(),
  ) {}

  private keyFor(shape: Shape, s: HttpStream): string {
    let k = shape.id;
    for (const r of shape.refs) k += '\u0001' + refValue(s, r);
    return k;
  }

  private find(s: HttpStream): Pool | null {
    for (const shape of this.shapes) {
      const p = this.pools.get(this.keyFor(shape, s));
      if (p !== undefined) return p;
    }
    return null;
  }

  /** What to do with a request: use a unit, deny locally during close-wait, or call the server. */
  decide(s: HttpStream): QuotaDecision {
    const now = this.now();
    const pool = this.find(s);
    if (pool === null) {
      this.stats.calls++;
      return { kind: 'call', pool: null, desired: this.settings.minPrefetch, allocate: true };
    }
    const desired = pool.observe(now, this.settings);
    if (pool.tokens > 0 && now < pool.expiresAt && pool.allow !== null) {
      pool.tokens--;
      this.stats.localGrants++;
      return { kind: 'grant', outcome: pool.allow, pool, desired };
    }
    if (now >= pool.expiresAt) pool.tokens = 0;
    if (now < pool.closedUntil && pool.deny !== null) {
      this.stats.localDenials++;
      return { kind: 'deny', outcome: pool.deny, pool };
    }
    this.stats.calls++;
    return { kind: 'call', pool, desired, allocate: now >= pool.closedUntil };
  }

  /** True when the pool should be topped up now (below half of desired, not closed, nothing in flight). */
  wantsPrefetch(pool: Pool, desired: number): boolean {
    return !pool.inflight && pool.tokens * 2 < desired && this.now() >= pool.closedUntil;
  }

  /** The pool for a request, created from the quota result's referenced attributes. */
  poolFor(s: HttpStream, refs: readonly Ref[]): Pool {
    const sorted = refs.map((r) => ({ name: r.name, key: r.key })).sort((a, b) => (`${a.name}\u0001${a.key ?? ''}` < `${b.name}\u0001${b.key ?? ''}` ? -1 : 1));
    const id = sorted.map((r) => (r.key === undefined ? r.name : `${r.name}[${r.key}]`)).join(',');
    let shape = this.shapes.find((x) => x.id === id);
    if (shape === undefined) {
      shape = { id, refs: sorted };
      this.shapes.push(shape);
      if (this.shapes.length > 64) this.shapes.shift();
    }
    const key = this.keyFor(shape, s);
    let pool = this.pools.get(key);
    if (pool === undefined) {
      pool = new Pool(key);
      this.pools.set(key, pool);
      while (this.pools.size > this.settings.maxPools) this.pools.delete(this.pools.keys().next().value as string);
    }
    return pool;
  }

  /** Records an allocation: `granted` of `asked` units, valid for `validMs`. */
  granted(pool: Pool, asked: number, granted: number, validMs: number, allow: Outcome | null, deny: Outcome | null): void {
    const now = this.now();
    if (now >= pool.expiresAt) pool.tokens = 0;
    pool.tokens += Math.max(0, granted);
    if (granted > 0) pool.expiresAt = now + (validMs > 0 ? validMs : 60_000);
    if (allow !== null) pool.allow = allow;
    if (granted < asked) {
      pool.closedUntil = now + this.settings.closeWaitMs;
      if (deny !== null) pool.deny = deny;
    }
  }

  /** A synchronous check was denied: deny locally for close-wait while the pool is empty. */
  denied(pool: Pool, deny: Outcome): void {
    pool.deny = deny;
    pool.closedUntil = this.now() + this.settings.closeWaitMs;
  }

  get size(): number {
    return this.pools.size;
  }

  tokensFor(s: HttpStream): number {
    return this.find(s)?.tokens ?? 0;
  }
}
