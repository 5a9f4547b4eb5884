// The three algorithms over records in host shared data, and the Slot: one limit
// applied to one request (its key, parameters, cost, and the decision taken).
//
// Each decision is a read of the record (proxy_get_shared_data, with its CAS
// token) and, when the request is admitted, a compare-and-swap write. The host
// runs every callback to completion, so the read and the write of one request
// are never interleaved with another's; on a host with several worker threads a
// CAS mismatch makes the adapter re-read and decide again, so the limit stays exact.

import { SharedData } from "wasm-mixer/sdk";
import { Algo, LimitSpec, Params } from "./spec";
import { Rec } from "./util";
import { Bytes, readShared, sharedCas, viewLen, viewPtr, writeShared } from "wasm-mixer/sdk/assembly/hostbytes";

export const enum Out {
  Ok = 0,
  Over = 1,
  Wait = 2,
  FailOpen = 3,
  FailClosed = 4,
}

export class Slot {
  spec: LimitSpec;
  params: Params;
  /** domain:limit:dimension values (encoded); the base of the shared-data and Redis keys. */
  dimKey: string;
  cost: i64;

  out: Out = Out.Ok;
  remaining: i64 = 0;
  resetMs: i64 = 0;
  retryMs: i64 = 0;
  viaFallback: bool = false;
  cached: bool = false;
  prefetch: bool = false;
  storeError: bool = false;

  // what to write on commit
  sdKey: string = "";
  /** The local counter's key as UTF-8 (local decisions); null: sdKey is a pool record's. */
  sdKeyBytes: Bytes | null = null;
  /** "l:" + dimKey encoded, when the key came from the key cache (keys.ts). */
  localKey: Bytes | null = null;
  rec: Rec | null = null;
  cas: u32 = 0;
  /** Global: the pool record was read (its decision depends on the pool). */
  pool: bool = false;
  /** Period (window / bucket index) the charge went to, for refunds. */
  period: i64 = 0;
  /** Limit and token bucket capacity the decision used (the fallback limit's, in fallback). */
  limitUsed: i64 = 0;
  burstUsed: i64 = 0;

  /** The record local decisions read into (kept with a reused slot, so it is made once). */
  localRec: Rec | null = null;

  constructor(spec: LimitSpec, params: Params, dimKey: string, cost: i64) {
    this.spec = spec;
    this.params = params;
    this.dimKey = dimKey;
    this.cost = cost;
  }

  /** Makes a reused slot what `new Slot(spec, params, dimKey, cost)` is. */
  init(spec: LimitSpec, params: Params, dimKey: string, cost: i64): void {
    this.spec = spec;
    this.params = params;
    this.dimKey = dimKey;
    this.cost = cost;
    this.reset();
    this.sdKey = "";
    this.localKey = null;
    this.period = 0;
    this.limitUsed = 0;
    this.burstUsed = 0;
  }

  reset(): void {
    this.out = Out.Ok;
    this.remaining = 0;
    this.resetMs = 0;
    this.retryMs = 0;
    this.viaFallback = false;
    this.cached = false;
    this.prefetch = false;
    this.storeError = false;
    this.rec = null;
    this.sdKeyBytes = null;
    this.cas = 0;
    this.pool = false;
    this.limitUsed = this.params.limit;
    this.burstUsed = this.params.burst;
  }

  /** The limit value the headers report (the bucket size for a token bucket). */
  get reportedLimit(): i64 {
    return this.spec.algo == Algo.Token ? this.burstUsed : this.limitUsed;
  }
}

// ---- shared-data access ---------------------------------------------------------------------

/**
 * Reads `key` into `rec`; returns the CAS token. A missing key is first created
 * (zeroed) so that the later write can be a real compare-and-swap: with CAS 0 a
 * write is unconditional and two first writers could both succeed.
 * Returns 0 when the host refuses to store the key (shared data full).
 */
export function readRec(key: string, rec: Rec): u32 {
  let v = SharedData.get(key);
  if (v === null || v.cas == 0) {
    rec.clear();
    SharedData.set<ArrayBuffer>(key, rec.buf, 0);
    v = SharedData.get(key);
    if (v === null) return 0;
  }
  if (!rec.load(v.value)) rec.clear();
  return v.cas;
}

/** readRec for a key encoded once (the local counters on the request path). */
export function readRecBytes(key: Bytes, rec: Rec): u32 {
  if (!readShared(key) || sharedCas == 0) {
    rec.clear();
    writeShared(key, rec.buf, 0);
    if (!readShared(key)) return 0;
  }
  if (!rec.copyFrom(viewPtr, viewLen)) rec.clear();
  return sharedCas;
}

export function recSlots(algo: Algo, buckets: i64): i32 {
  return algo == Algo.Sliding ? 1 + <i32>buckets : 2;
}

// ---- decisions ------------------------------------------------------------------------------

/**
 * Decides `s` with algorithm `algo` and parameters `limit`/`window`/`burst` on the
 * record under `key`. Fills s.out (Ok/Over), remaining, resetMs, retryMs, and on
 * Ok the record to write (s.rec, s.cas, s.sdKey).
 */
export function decideLocal(s: Slot, key: Bytes, limit: i64, windowMs: i64, burst: i64, now: i64): void {
  let algo = s.spec.algo;
  let want = recSlots(algo, s.spec.buckets);
  let rec = s.localRec;
  if (rec === null || rec.slots != want) s.localRec = rec = new Rec(want);
  let cas = readRecBytes(key, rec);
  if (cas == 0) {
    s.storeError = true;
    s.out = Out.Ok;
    return;
  }
  s.sdKey = key.text;
  s.sdKeyBytes = key;
  s.cas = cas;
  s.limitUsed = limit;
  s.burstUsed = burst;
  let c = s.cost;
  if (algo == Algo.Fixed) {
    let idx = now / windowMs;
    let end = (idx + 1) * windowMs;
    let count = rec.get(0) == idx ? rec.get(1) : 0;
    s.resetMs = end - now;
    if (count + c > limit) {
      s.out = Out.Over;
      s.remaining = max<i64>(0, limit - count);
      s.retryMs = end - now;
      return;
    }
    rec.set(0, idx);
    rec.set(1, count + c);
    s.period = idx;
    s.remaining = limit - count - c;
  } else if (algo == Algo.Sliding) {
    let n = <i32>s.spec.buckets;
    let b = windowMs / <i64>n;
    let cur = now / b;
    let last = rec.get(0);
    if (last > cur) cur = last; // the clock went back: stay in the newer bucket
    if (cur - last >= <i64>n || last == 0) {
      for (let i = 0; i < n; i++) rec.set(1 + i, 0);
    } else {
      for (let i = last + 1; i <= cur; i++) rec.set(1 + <i32>(i % <i64>n), 0);
    }
    rec.set(0, cur);
    let sum: i64 = 0;
    for (let i = 0; i < n; i++) sum += rec.get(1 + i);
    if (sum + c > limit) {
      s.out = Out.Over;
      s.remaining = max<i64>(0, limit - sum);
      // When will `c` fit? Bucket cur-n+k leaves the window when cur+k begins.
      let retry = windowMs;
      let dropped: i64 = 0;
      for (let k = 1; k <= n; k++) {
        dropped += rec.get(1 + <i32>((cur - <i64>n + <i64>k) % <i64>n));
        if (sum - dropped + c <= limit) {
          retry = (cur + <i64>k) * b - now;
          break;
        }
      }
      s.retryMs = retry;
      s.resetMs = retry;
      return;
    }
    let slot = 1 + <i32>(cur % <i64>n);
    rec.set(slot, rec.get(slot) + c);
    s.period = cur;
    s.remaining = limit - sum - c;
    // Reset: when the oldest non-empty bucket leaves the window.
    let reset = b;
    for (let k = 1; k <= n; k++) {
      if (rec.get(1 + <i32>((cur - <i64>n + <i64>k) % <i64>n)) > 0) {
        reset = (cur + <i64>k) * b - now;
        break;
      }
    }
    s.resetMs = reset;
  } else {
    let cap = <f64>burst;
    let rate = <f64>limit / <f64>windowMs; // tokens per ms
    let fresh = rec.get(1) == 0;
    let tokens = fresh ? cap : rec.getF(0);
    let last = fresh ? now : rec.get(1);
    if (now > last) {
      tokens += <f64>(now - last) * rate;
      last = now;
    }
    if (tokens > cap) tokens = cap;
    let cf = <f64>c;
    if (tokens + 1e-9 < cf) {
      s.out = Out.Over;
      s.remaining = <i64>Math.floor(tokens + 1e-9);
      s.retryMs = rate <= 0 || cf > cap ? windowMs : <i64>Math.ceil((cf - tokens) / rate);
      s.resetMs = s.retryMs;
      return;
    }
    tokens -= cf;
    if (tokens < 0) tokens = 0;
    rec.setF(0, tokens);
    rec.set(1, last);
    s.remaining = <i64>Math.floor(tokens + 1e-9);
    s.resetMs = rate <= 0 ? windowMs : <i64>Math.ceil((cap - tokens) / rate);
  }
  s.out = Out.Ok;
  s.rec = rec;
}

/** Writes a decided slot; false on a CAS mismatch (or a full store). */
export function commit(s: Slot): bool {
  let rec = s.rec;
  if (rec === null) return true;
  let kb = s.sdKeyBytes;
  if (kb !== null) return writeShared(kb, rec.buf, s.cas);
  return SharedData.set<ArrayBuffer>(s.sdKey, rec.buf, s.cas);
}

/** Gives back what a committed slot charged (when a later slot of the same request failed to commit). */
export function refund(s: Slot): void {
  if (s.rec === null) return;
  let algo = s.spec.algo;
  for (let attempt = 0; attempt < 8; attempt++) {
    let rec = new Rec(s.rec!.slots);
    let kb = s.sdKeyBytes;
    let cas = kb !== null ? readRecBytes(kb, rec) : readRec(s.sdKey, rec);
    if (cas == 0) return;
    if (s.pool) {
      // pool record: slot 0 period, slot 1 tokens
      if (rec.get(0) != s.period) return;
      rec.set(1, rec.get(1) + s.cost);
    } else if (algo == Algo.Fixed) {
      if (rec.get(0) != s.period) return;
      rec.set(1, max<i64>(0, rec.get(1) - s.cost));
    } else if (algo == Algo.Sliding) {
      let n = <i64>s.spec.buckets;
      if (s.period <= rec.get(0) - n) return;
      let slot = 1 + <i32>(s.period % n);
      rec.set(slot, max<i64>(0, rec.get(slot) - s.cost));
    } else {
      let t = rec.getF(0) + <f64>s.cost;
      let cap = <f64>s.burstUsed;
      rec.setF(0, t > cap ? cap : t);
    }
    if (kb !== null ? writeShared(kb, rec.buf, cas) : SharedData.set<ArrayBuffer>(s.sdKey, rec.buf, cas)) return;
  }
}
