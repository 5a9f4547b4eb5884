// The primary's quota budget for local limits when the proxy runs several workers.
//
// A local limit must stay exact for the whole proxy, but each worker is a separate
// process with its own VMs and shared data. So the quota adapter, in a worker, treats
// its local limits like global ones and leases batches of tokens from the primary over
// IPC (lease-client.ts), exactly as it leases from Redis in global mode; this store
// answers those leases with the same algorithms as the Lua scripts in
// host/src/quota/lease.ts, in memory. Node runs it on one thread, so every lease is
// atomic. Keys expire when they no longer matter, and their number is bounded.

import type { LeaseRequest, LeaseResponse } from '../quota/lease-protocol.js';

/** Extra time before a key is dropped (as the Redis implementation's expiry slack). */
const EXPIRY_SLACK_MS = 1000;
export const DEFAULT_MAX_LEASE_KEYS = 1_000_000;

interface Entry {
  expiresAt: number;
  /** fixed window: used; token bucket: tokens */
  n: number;
  /** token bucket: last refill (ms) */
  ts: number;
  /** sliding window: bucket index → tokens */
  buckets: Map<number, number> | null;
}

export class LeaseStore {
  private readonly keys = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;
  /** Leases answered without a counter because the store was full (admitted, as local mode admits when shared data is full). */
  fullGrants = 0;

  constructor(
    private readonly maxKeys = DEFAULT_MAX_LEASE_KEYS,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 10_000);
    this.sweeper.unref();
  }

  get size(): number {
    return this.keys.size;
  }

  lease(l: LeaseRequest): LeaseResponse {
    if (l.algorithm === 'fixed_window') return this.fixed(l);
    if (l.algorithm === 'sliding_window') return this.sliding(l);
    return this.token(l);
  }

  close(): void {
    clearInterval(this.sweeper);
    this.keys.clear();
  }

  private entry(key: string, ttlMs: number, init: () => Entry): Entry | null {
    const now = this.now();
    let e = this.keys.get(key);
    if (e !== undefined && e.expiresAt <= now) {
      this.keys.delete(key);
      e = undefined;
    }
    if (e === undefined) {
      if (this.keys.size >= this.maxKeys) this.sweep();
      if (this.keys.size >= this.maxKeys) return null;
      e = init();
      this.keys.set(key, e);
    }
    e.expiresAt = now + ttlMs;
    return e;
  }

  private full(l: LeaseRequest): LeaseResponse {
    this.fullGrants++;
    return { granted: l.want, used: 0, remaining: l.limit, retry_ms: 0, retry_buckets: 0 };
  }

  private fixed(l: LeaseRequest): LeaseResponse {
    const e = this.entry(`${l.key}:${l.window_start}`, l.window_ms + EXPIRY_SLACK_MS, () => ({ expiresAt: 0, n: 0, ts: 0, buckets: null }));
    if (e === null) return this.full(l);
    const grant = Math.max(0, Math.min(l.limit - e.n, l.want));
    e.n += grant;
    return { granted: grant, used: e.n, remaining: Math.max(0, l.limit - e.n), retry_ms: 0, retry_buckets: 0 };
  }

  private sliding(l: LeaseRequest): LeaseResponse {
    const cur = l.bucket!;
    const n = l.buckets!;
    const e = this.entry(`${l.key}:sw`, l.window_ms + l.bucket_ms! + EXPIRY_SLACK_MS, () => ({ expiresAt: 0, n: 0, ts: 0, buckets: new Map() }));
    if (e === null) return this.full(l);
    const b = e.buckets!;
    let used = 0;
    for (const [i, c] of b) {
      if (i <= cur - n) b.delete(i);
      else used += c;
    }
    const grant = Math.max(0, Math.min(l.limit - used, l.want));
    if (grant > 0) {
      b.set(cur, (b.get(cur) ?? 0) + grant);
      used += grant;
    }
    let retry = 0;
    if (used + l.need > l.limit) {
      retry = n;
      let u = used;
      for (const i of [...b.keys()].sort((x, y) => x - y)) {
        u -= b.get(i)!;
        if (u + l.need <= l.limit) {
          retry = i + n - cur;
          break;
        }
      }
    }
    return { granted: grant, used, remaining: Math.max(0, l.limit - used), retry_ms: 0, retry_buckets: retry };
  }

  private token(l: LeaseRequest): LeaseResponse {
    const burst = l.burst!;
    const rate = l.rate_per_ms!;
    const now = this.now();
    const ttl = Math.min(Math.ceil(burst / rate) + EXPIRY_SLACK_MS, 2 ** 31 - 1);
    const e = this.entry(`${l.key}:tb`, ttl, () => ({ expiresAt: 0, n: burst, ts: now, buckets: null }));
    if (e === null) return this.full(l);
    let tokens = e.n;
    if (now > e.ts) tokens += (now - e.ts) * rate;
    if (tokens > burst) tokens = burst;
    const grant = Math.max(0, Math.min(Math.floor(tokens + 1e-9), l.want));
    tokens = Math.max(0, tokens - grant);
    e.n = tokens;
    e.ts = now;
    const retry = tokens + 1e-9 < l.need ? Math.ceil((l.need - tokens) / rate) : 0;
    return { granted: grant, used: Math.max(0, Math.round(burst - tokens)), remaining: Math.floor(tokens + 1e-9), retry_ms: retry, retry_buckets: 0 };
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, e] of this.keys) if (e.expiresAt <= now) this.keys.delete(k);
  }
}
