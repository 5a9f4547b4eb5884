// quota: rate limits for wasm-mixer (fixed window, sliding window, token bucket),
// local to one proxy (exact, in host shared data) or global across proxies
// (token leases from Redis through the host's call-out transport).
// See adapters/quota/README.md for the configuration and the design.

import {
  Adapter, Config, Decision, Headers, HttpCallResponse, IdTable, Report, Request, SharedData,
  getStringProperty, log, now, quoteJSON, raw, register, setProperty,
} from "wasm-mixer/sdk";
import { Algo, HeaderStyle, LimitSpec, OnError, Params, QuotaSpec, Source, Src, algoName, leaseLocalLimits, parseSpec } from "./spec";
import { Out, Slot, commit, decideLocal, readRec, refund } from "./local";
import { Rec, headerSeconds, keyPart, pathSegments, stripPort, urlPath } from "./util";
import { Bytes, readProperty, viewLen, viewPtr } from "wasm-mixer/sdk/assembly/hostbytes";
import * as hb from "wasm-mixer/sdk/assembly/hostbytes";
import { DIMS_MISSING, DIMS_READ, KeyCaches, KeyEntry, findKey, keepKey, readDimensionBytes } from "./keys";
import { PendingMap } from "./ratelimit-headers";
// Every ABI callback but proxy_on_done, which the SDK answers "done" without running adapter
// code, and proxy_on_log: this adapter records nothing in the log phase, and a request's
// cleanup runs in onEnd (from proxy_on_delete). A host skips a callback the module does not
// export (Envoy, and this host), so each costs no guest call per request.
export {
  proxy_abi_version_0_2_1, proxy_on_memory_allocate, malloc, proxy_on_context_create, proxy_on_vm_start, proxy_on_configure,
  proxy_on_tick, proxy_on_queue_ready, proxy_on_foreign_function, proxy_on_delete, proxy_on_request_headers,
  proxy_on_response_headers, proxy_on_http_call_response, proxy_on_grpc_receive_initial_metadata, proxy_on_grpc_receive,
  proxy_on_grpc_receive_trailing_metadata, proxy_on_grpc_close,
} from "wasm-mixer/sdk/exports";

// Pool record (global limits), one per key in shared data: tokens leased from
// Redis and not yet spent by this proxy, and what the last lease said.
const P_PERIOD = 0; // window (fixed) or bucket (sliding) index the tokens belong to
const P_TOKENS = 1;
const P_EXPIRES = 2; // ms: tokens are void from then on
const P_EXHAUSTED = 3; // ms: the shared budget is spent until then (local over-limit cache)
const P_LIMIT = 4; // the limit the exhaustion was observed under
const P_REMAINING = 5; // budget left in Redis after the last lease
const P_SIZE = 6; // adaptive lease size
const P_LAST = 7; // ms of the last lease
const P_INFLIGHT = 8; // ms: some VM has a lease in flight until then
const POOL_SLOTS = 9;

// Circuit record per cluster: [downUntil ms, consecutive failures].
const CIRCUIT_SLOTS = 2;

const LEASE_PATH = "/quota/v1/lease";
/** Filter state set by Envoy's rate limit filter and by the adapter server (ShouldRateLimit, quota allocation). */
const P_HITS_ADDEND = new Bytes("envoy.ratelimit.hits_addend");
/** Filter state the adapter server sets to the RateLimitRequest's domain. */
const RLS_DOMAIN: string[] = ["ratelimit.domain"];
/** Hits per request are capped so cost x hits stays far from overflowing. */
const MAX_HITS: i64 = 1000000000;
/** Startup probe of a lease cluster (host/src/quota/lease.ts answers it). */
const PROBE_PATH = "/quota/v1/ready";
const PROBE_TIMEOUT_MS: u32 = 5000;
const MAX_COMMIT_ATTEMPTS = 4;

function nowMs(): i64 {
  return now() / 1000000;
}

/** A lease in flight (by call token). */
class LeaseCtx {
  constructor(
    public poolKey: string,
    public slot: Slot,
    public period: i64,
    public end: i64,
    public want: i64,
    public need: i64,
  ) {}
}

/** Per-VM bookkeeping for one pool key. */
class PoolLocal {
  inflight: bool = false;
  waiters: u32[] = [];
  /** Sum of the costs of the requests in `waiters`: the next lease asks for at least this. */
  demand: i64 = 0;
}

/** A request held until a lease answers. */
class Waiter {
  /** Counted once in quota_errors_total{reason="deadline"} when it waits past its deadline. */
  late: bool = false;
  constructor(public req: Request, public slots: Slot[], public deadline: i64) {}
}

function onLease(a: Adapter, resp: HttpCallResponse): void {
  (<Quota>a).leaseAnswered(resp);
}

class Quota extends Adapter {
  spec: QuotaSpec = new QuotaSpec();
  /** Keys by dimension value bytes, one cache per limit (keys.ts); rebuilt by configure. */
  keyCaches: KeyCaches = new KeyCaches(0, 0);
  /** RateLimit headers of admitted requests, until their response headers arrive. */
  pendingHeaders: PendingMap = new PendingMap();
  leases: Map<u32, LeaseCtx> = new Map<u32, LeaseCtx>();
  /** Startup probes in flight (by call token): cluster name. */
  probes: Map<u32, string> = new Map<u32, string>();
  pools: Map<string, PoolLocal> = new Map<string, PoolLocal>();
  waiters: IdTable<Waiter> = new IdTable<Waiter>();
  lastWarn: i64 = 0;
  lastOpenWarn: i64 = 0;
  /** The pool whose waiters are being decided again; its next lease is sent once, after. */
  draining: string = "";
  /**
   * Every limit is local: a request is decided within its callback and nothing keeps its
   * slots, so one list and one Slot per limit serve every request (no garbage per request).
   * With a global limit a held request keeps its own (Waiter).
   */
  reuseSlots: bool = false;
  planned: Slot[] = [];
  slotOf: Array<Slot | null> = [];

  configure(c: Config): string | null {
    this.spec = parseSpec(c);
    this.keyCaches = new KeyCaches(this.spec.limits.length, <u32>now());
    let err = c.error;
    if (err !== null) return err;
    // In a worker of a multi-worker proxy, local limits lease from the primary (spec.ts leaseLocalLimits).
    let workers = getStringProperty(["wasm_mixer", "worker_quota_cluster"]);
    if (workers !== null && workers.length > 0) leaseLocalLimits(this.spec, workers);
    let limits = this.spec.limits;
    this.reuseSlots = true;
    for (let i = 0; i < limits.length; i++) if (limits[i].global !== null) this.reuseSlots = false;
    this.slotOf = new Array<Slot | null>(limits.length);
    return this.probeClusters();
  }

  /**
   * One call per cluster of the global limits when the configuration loads. A cluster the
   * host refuses (not in the proxy's clusters, or not granted to this plugin) would make every
   * global limit apply its on_error policy forever, so the configuration is refused, as the
   * auth adapter refuses a remote JWKS cluster it may not call. The call also warms the host's
   * connection to Redis (and its scripts) before the first request needs a lease.
   */
  probeClusters(): string | null {
    let seen: string[] = [];
    let limits = this.spec.limits;
    for (let i = 0; i < limits.length; i++) {
      let g = unchecked(limits[i]).global;
      if (g === null || seen.includes(g.cluster)) continue;
      seen.push(g.cluster);
      let h = new Headers();
      h.add(":method", "GET");
      h.add(":path", PROBE_PATH);
      h.add(":authority", g.cluster);
      if (!this.httpCall(g.cluster, h, null, PROBE_TIMEOUT_MS, onLease)) {
        return "config \"limits[" + i.toString() + "]\": global limit " + unchecked(limits[i]).name + " needs cluster \"" + g.cluster +
          "\", and the host refused a call to it: define it under the proxy's \"clusters\" (url redis://host:port) and grant it to this plugin " +
          "(plugins[].clusters: [\"" + g.cluster + "\"])";
      }
      this.probes.set(this.lastCallToken, g.cluster);
    }
    return null;
  }

  check(req: Request): Decision {
    let slots = this.plan(req);
    if (slots.length == 0) return Decision.allow();
    return this.evaluate(req, slots, nowMs(), null);
  }

  onEnd(r: Report): void {
    // A request that ended (e.g. the client went away) while it waited for a lease, or
    // without response headers.
    this.waiters.delete(r.contextId);
    this.pendingHeaders.drop(r.contextId);
  }

  onResponse(r: Report): void {
    this.pendingHeaders.flush(r.contextId);
  }

  // ---- which limits apply, with which key, parameters and cost ---------------------------------

  /** A Slot for limit i: the limit's own one when slots are reused, else a new one. */
  slot(i: i32, l: LimitSpec, params: Params, dimKey: string, cost: i64): Slot {
    if (!this.reuseSlots) return new Slot(l, params, dimKey, cost);
    let s = unchecked(this.slotOf[i]);
    if (s === null) {
      s = new Slot(l, params, dimKey, cost);
      unchecked((this.slotOf[i] = s));
      return s;
    }
    s.init(l, params, dimKey, cost);
    return s;
  }

  plan(req: Request): Slot[] {
    let out: Slot[];
    if (this.reuseSlots) {
      out = this.planned;
      out.length = 0;
    } else {
      out = [];
    }
    let limits = this.spec.limits;
    let hits: i64 = -1; // read once, when the first limit applies
    let ns = this.spec.domain;
    for (let i = 0, n = limits.length; i < n; i++) {
      let l = unchecked(limits[i]);
      if (!this.matches(l, req)) continue;
      if (hits < 0) {
        hits = 1;
        // Envoy's rate limit service (and the adapter server's quota allocation) sets the request's
        // hits as filter state envoy.ratelimit.hits_addend: charge cost x hits (0: check only).
        if (readProperty(P_HITS_ADDEND)) {
          let h = viewLen == 0 ? "" : String.UTF8.decodeUnsafe(viewPtr, viewLen);
          let v = parseNonNegative(h);
          if (v >= 0) hits = min<i64>(v, MAX_HITS);
          // An Envoy rate limit domain has its own counters (envoyproxy/ratelimit keys by domain too).
          let d = getStringProperty(RLS_DOMAIN);
          if (d !== null && d.length > 0) ns = this.spec.domain + "@" + keyPart(d);
        }
      }
      // A value set seen before: its key, values and parameters from the cache (keys.ts).
      let cache = unchecked(this.keyCaches.caches[i]);
      let read = ns == this.spec.domain ? readDimensionBytes(l) : -1;
      if (read == DIMS_MISSING && !l.missingShared) {
        // what the string path below would find: a value missing, the limit skipped
        l.m.unkeyed.inc();
        continue;
      }
      let cacheable = read == DIMS_READ;
      let entry: KeyEntry | null = cacheable ? findKey(cache) : null;
      if (entry !== null) {
        let e = entry;
        if (e.params.unlimited) continue;
        let cost = costOf(l, req);
        if (cost <= 0) continue;
        let charged = hits <= 1 || cost <= MAX_HITS / hits ? cost * hits : MAX_HITS;
        let slot = this.slot(i, l, e.params, e.dimKey, charged);
        slot.localKey = e.localKey;
        out.push(slot);
        continue;
      }
      let key = ns + ":" + l.name;
      let values: string[] = [];
      let skip = false;
      for (let j = 0, d = l.dims.length; j < d; j++) {
        let v = dimension(req, unchecked(l.dims[j]));
        if (v === null || v.length == 0) {
          if (!l.missingShared) {
            skip = true;
            break;
          }
          values.push("");
          key += ":%"; // cannot collide: keyPart encodes a real "%" as %25
        } else {
          values.push(v);
          key += ":" + keyPart(v);
        }
      }
      if (skip) {
        l.m.unkeyed.inc();
        continue;
      }
      let params = effectiveParams(l, values);
      let localKey: Bytes | null = null;
      if (cacheable) {
        // every value was non-empty (readDimensionBytes), as the string path just read them
        localKey = new Bytes("l:" + key);
        keepKey(cache, new KeyEntry(values, key, localKey, params));
      }
      if (params.unlimited) continue;
      let cost = costOf(l, req);
      if (cost <= 0) continue;
      // Weighted hits, saturated (a cost above the limit is denied anyway).
      let charged = hits <= 1 || cost <= MAX_HITS / hits ? cost * hits : MAX_HITS;
      let slot = this.slot(i, l, params, key, charged);
      slot.localKey = localKey;
      out.push(slot);
    }
    return out;
  }

  matches(l: LimitSpec, req: Request): bool {
    if (l.matchMethods.length > 0 && !l.matchMethods.includes(req.method)) return false;
    if (l.matchPrefixes.length > 0) {
      let p = urlPath(req.path);
      let any = false;
      for (let i = 0; i < l.matchPrefixes.length; i++) {
        if (p.startsWith(unchecked(l.matchPrefixes[i]))) {
          any = true;
          break;
        }
      }
      if (!any) return false;
    }
    if (l.matchHosts.length > 0) {
      let h = stripPort(req.host);
      let any = false;
      for (let i = 0; i < l.matchHosts.length; i++) {
        let m = unchecked(l.matchHosts[i]);
        if (m == h || m == "*" || (m.startsWith("*.") && h.endsWith(m.substring(1)))) {
          any = true;
          break;
        }
      }
      if (!any) return false;
    }
    return true;
  }

  // ---- the decision -----------------------------------------------------------------------------

  /**
   * Decides every limit for a request, then charges all of them or none: a
   * request denied by one limit is not counted against the others. Returns
   * allow, deny, or pause (waiting for a lease; resumed from leaseAnswered).
   */
  evaluate(req: Request, slots: Slot[], t: i64, waiter: Waiter | null): Decision {
    let fresh = waiter === null;
    for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
      for (let i = 0; i < slots.length; i++) {
        let s = unchecked(slots[i]);
        s.reset();
        this.decide(s, t, waiter);
      }

      // 1. over limit: deny with the headers of the limit that denies longest
      let denier: Slot | null = null;
      for (let i = 0; i < slots.length; i++) {
        let s = unchecked(slots[i]);
        if (s.out != Out.Over) continue;
        if (s.spec.shadow) continue;
        if (denier === null || s.retryMs > denier.retryMs) denier = s;
      }
      if (denier !== null) {
        for (let i = 0; i < slots.length; i++) {
          let s = unchecked(slots[i]);
          if (s.out != Out.Over) continue;
          if (s.spec.shadow) s.spec.m.shadowOver.inc();
          else {
            s.spec.m.over.inc();
            if (s.cached) s.spec.m.cachedOver.inc();
            if (s.viaFallback) s.spec.m.fallback.inc();
          }
        }
        this.forget(req, waiter);
        markDecision(D_OVER);
        return this.denyOver(denier);
      }

      // 2. backend down and the limit fails closed
      for (let i = 0; i < slots.length; i++) {
        let s = unchecked(slots[i]);
        if (s.out == Out.FailClosed && !s.spec.shadow) {
          s.spec.m.failedClosed.inc();
          this.forget(req, waiter);
          markDecision(D_UNAVAILABLE);
          let h = new Headers();
          h.add("content-type", "application/json");
          if (s.retryMs > 0) h.add("retry-after", headerSeconds(s.retryMs));
          return Decision.deny(s.spec.global!.errorStatus,
            "{\"error\":\"rate limit service unavailable\",\"limit\":" + quoteJSON(s.spec.name) + "}", h)
            .withDetails("quota_backend_unavailable");
        }
      }

      // 3. a global limit needs a lease: hold the request (shadow limits never hold it)
      let waiting = false;
      let refused = false;
      for (let i = 0; i < slots.length; i++) {
        let s = unchecked(slots[i]);
        if (s.out != Out.Wait) continue;
        if (!s.spec.shadow) {
          if (waiter === null) {
            waiter = new Waiter(req, slots, t + this.deadlineFor(slots));
            this.waiters.set(req.contextId, waiter);
          }
          let pl = this.poolLocal("g:" + s.dimKey);
          if (!pl.waiters.includes(req.contextId)) {
            pl.waiters.push(req.contextId);
            pl.demand += s.cost;
          }
          if (fresh) s.spec.m.waits.inc();
        }
        if (!this.ensureLease(s, t)) {
          refused = true;
          continue;
        }
        if (!s.spec.shadow) waiting = true;
      }
      if (refused && !waiting) {
        // The host refused the call-out (cluster not granted): the circuit is now
        // open, so deciding again takes each limit's error policy.
        continue;
      }
      if (waiting) return Decision.pause();

      // 4. charge every admitted limit; on a CAS race give back what was charged and decide again
      let raced = -1;
      for (let i = 0; i < slots.length; i++) {
        let s = unchecked(slots[i]);
        if (s.out != Out.Ok || s.storeError) continue;
        if (!commit(s)) {
          raced = i;
          break;
        }
      }
      if (raced >= 0) {
        for (let i = 0; i < raced; i++) {
          let s = unchecked(slots[i]);
          if (s.out == Out.Ok && !s.storeError) refund(s);
        }
        continue;
      }
      this.forget(req, waiter);
      let shadowOver = false;
      for (let i = 0; i < slots.length; i++) if (unchecked(slots[i]).out == Out.Over) shadowOver = true;
      markDecision(shadowOver ? D_SHADOW_OVER : D_OK);
      return this.admit(req, slots, t);
    }
    // Could not commit after several attempts: the store refuses writes (full) or
    // constant contention. Admit, and count it.
    for (let i = 0; i < slots.length; i++) unchecked(slots[i]).spec.m.errStore.inc();
    this.warn("quota: shared data refused the counter update " + MAX_COMMIT_ATTEMPTS.toString() + " times; request admitted");
    this.forget(req, waiter);
    markDecision(D_OK);
    return Decision.allow();
  }

  decide(s: Slot, t: i64, waiter: Waiter | null): void {
    let g = s.spec.global;
    if (g === null) {
      let lk = s.localKey;
      decideLocal(s, lk !== null ? lk : new Bytes("l:" + s.dimKey), s.params.limit, s.params.windowMs, s.params.burst, t);
      return;
    }
    let l = s.spec;
    if (s.params.limit == 0 && (l.algo != Algo.Token || s.params.burst == 0)) {
      // Blocked outright (e.g. an override with limit 0): no need to ask Redis.
      s.out = Out.Over;
      s.remaining = 0;
      s.retryMs = s.params.windowMs;
      s.resetMs = s.retryMs;
      return;
    }
    let poolKey = "g:" + s.dimKey;
    let rec = new Rec(POOL_SLOTS);
    let cas = readRec(poolKey, rec);
    if (cas == 0) {
      s.storeError = true;
      this.policy(s, t, false);
      return;
    }
    let w = s.params.windowMs;
    let period: i64 = 0;
    let end: i64 = 0;
    if (l.algo == Algo.Fixed) {
      period = t / w;
      end = (period + 1) * w;
    } else if (l.algo == Algo.Sliding) {
      let b = w / l.buckets;
      period = t / b;
      end = (period + 1) * b;
    }
    let tokens = rec.get(P_TOKENS);
    if ((l.algo != Algo.Token && rec.get(P_PERIOD) != period) || t >= rec.get(P_EXPIRES)) tokens = 0;
    let c = s.cost;
    if (tokens < c && rec.get(P_EXHAUSTED) > t && rec.get(P_LIMIT) == s.params.limit) {
      // The shared budget is spent (the last lease said so): deny without asking Redis.
      s.out = Out.Over;
      s.cached = true;
      s.remaining = 0;
      s.retryMs = rec.get(P_EXHAUSTED) - t;
      s.resetMs = l.algo == Algo.Fixed ? end - t : s.retryMs;
      return;
    }
    if (tokens >= c) {
      let left = tokens - c;
      rec.set(P_PERIOD, l.algo == Algo.Token ? rec.get(P_PERIOD) : period);
      rec.set(P_TOKENS, left);
      s.rec = rec;
      s.sdKey = poolKey;
      s.cas = cas;
      s.pool = true;
      s.period = rec.get(P_PERIOD);
      s.out = Out.Ok;
      s.remaining = max<i64>(0, rec.get(P_REMAINING)) + left;
      if (l.algo == Algo.Fixed) s.resetMs = end - t;
      else if (l.algo == Algo.Sliding) s.resetMs = (period + l.buckets) * (w / l.buckets) - t;
      else s.resetMs = <i64>Math.ceil(<f64>max<i64>(0, s.params.burst - s.remaining) * <f64>w / <f64>max<i64>(1, s.params.limit));
      let size = max<i64>(1, rec.get(P_SIZE));
      s.prefetch = left * 2 < size && rec.get(P_INFLIGHT) <= t;
      return;
    }
    if (this.circuitDown(g.cluster, t)) {
      this.policy(s, t, true);
      return;
    }
    // Redis answers (the last lease did not fail): a request past its deadline keeps waiting
    // for the next lease instead of taking on_error. It got here because this proxy was busy
    // (its turn came after others spent the tokens), and a busy proxy is not Redis being down.
    // Every lease has its own deadline, so a Redis that stops answering still fails it.
    if (waiter !== null && t >= waiter.deadline && !waiter.late) {
      waiter.late = true;
      s.spec.m.errDeadline.inc();
    }
    s.out = Out.Wait;
  }

  /** What a global limit does when Redis cannot answer: its on_error policy. */
  policy(s: Slot, t: i64, backend: bool): void {
    let g = s.spec.global!;
    s.rec = null;
    s.pool = false;
    if (g.onError == OnError.Open) {
      s.out = Out.FailOpen;
    } else if (g.onError == OnError.Closed) {
      s.out = Out.FailClosed;
      s.retryMs = max<i64>(1000, this.circuitUntil(g.cluster) - t);
    } else {
      // The key's own limit (override included) unless fallback_limit caps it per proxy.
      s.viaFallback = true;
      let fl = g.fallbackLimit >= 0 ? g.fallbackLimit : s.params.limit;
      let fb = g.fallbackLimit >= 0 ? max<i64>(1, fl) : s.params.burst;
      decideLocal(s, new Bytes("f:" + s.dimKey), fl, s.params.windowMs, fb, t);
    }
  }

  deadlineFor(slots: Slot[]): i64 {
    let d: i64 = 0;
    for (let i = 0; i < slots.length; i++) {
      let g = unchecked(slots[i]).spec.global;
      if (g !== null && <i64>g.timeoutMs > d) d = <i64>g.timeoutMs;
    }
    return d;
  }

  forget(req: Request, waiter: Waiter | null): void {
    if (waiter !== null && this.waiters.has(req.contextId)) this.waiters.delete(req.contextId);
  }

  // ---- admitted / denied --------------------------------------------------------------------------

  admit(req: Request, slots: Slot[], t: i64): Decision {
    let best: Slot | null = null;
    let bestRatio: f64 = 2;
    let ratio = this.spec.nearRatio;
    for (let i = 0; i < slots.length; i++) {
      let s = unchecked(slots[i]);
      let m = s.spec.m;
      if (s.out == Out.FailOpen) {
        m.failedOpen.inc();
        this.warnOpen(s);
        continue;
      }
      if (s.out == Out.Over) {
        m.shadowOver.inc(); // only shadow limits get here over their limit
        continue;
      }
      if (s.out == Out.Wait) {
        m.allowed.inc(); // a shadow global limit still waiting for its first lease
        continue;
      }
      if (s.storeError) {
        m.errStore.inc();
        continue;
      }
      m.allowed.inc();
      m.hits.inc(s.cost);
      if (s.viaFallback) m.fallback.inc();
      let lim = s.reportedLimit;
      if (lim > 0 && <f64>(lim - s.remaining) >= Math.floor(<f64>lim * ratio)) m.near.inc();
      // Prefetch: top the pool up in the background (not while the cluster is down).
      if (s.prefetch && !this.circuitDown(s.spec.global!.cluster, t)) this.ensureLease(s, t);
      if (s.spec.shadow) continue;
      let r = lim > 0 ? <f64>s.remaining / <f64>lim : 0;
      if (best === null || r < bestRatio) {
        best = s;
        bestRatio = r;
      }
    }
    if (best !== null && this.spec.headersOnAllowed) {
      // Limit, Remaining, Reset and the policy (window and name: Envoy's rate limit service reports
      // them as current_limit on every answer, and X-RateLimit-Limit carries them too).
      // Written in the response phase (onResponse, ratelimit-headers.ts).
      let style = this.spec.headerStyle;
      if (style == HeaderStyle.Draft || style == HeaderStyle.XRateLimit) {
        let ph = this.pendingHeaders.take(req.contextId);
        ph.style = style;
        ph.remaining = best.remaining;
        ph.resetMs = best.resetMs;
        if (style == HeaderStyle.Draft) {
          ph.limit = this.limitBytes(best);
          ph.policy = this.policyBytes(best);
        } else {
          ph.limit = this.xLimitBytes(best);
        }
      }
    }
    return Decision.allow();
  }

  limitStr(s: Slot): string {
    if (s.viaFallback) return s.reportedLimit.toString();
    let p = s.params;
    let v = p.limitStr;
    if (v === null) p.limitStr = v = s.reportedLimit.toString();
    return v;
  }

  limitBytes(s: Slot): Bytes {
    if (s.viaFallback) return new Bytes(this.limitStr(s));
    let p = s.params;
    let v = p.limitBytes;
    if (v === null) p.limitBytes = v = new Bytes(this.limitStr(s));
    return v;
  }

  policyBytes(s: Slot): Bytes {
    if (s.viaFallback) return new Bytes(this.policyStr(s));
    let p = s.params;
    let v = p.policyBytes;
    if (v === null) p.policyBytes = v = new Bytes(this.policyStr(s));
    return v;
  }

  xLimitBytes(s: Slot): Bytes {
    if (s.viaFallback) return new Bytes(this.limitStr(s) + ", " + this.policyStr(s));
    let p = s.params;
    let v = p.xLimitBytes;
    if (v === null) p.xLimitBytes = v = new Bytes(this.limitStr(s) + ", " + this.policyStr(s));
    return v;
  }

  /** `limit;w=seconds;name="..."`, as RateLimit-Policy and Envoy's X-RateLimit-Limit write a quota policy. */
  policyStr(s: Slot): string {
    let p = s.params;
    if (s.viaFallback) return this.limitStr(s) + ";w=" + headerSeconds(p.windowMs) + ";name=" + quoteJSON(p.name);
    let v = p.policyStr;
    if (v === null) p.policyStr = v = this.limitStr(s) + ";w=" + headerSeconds(p.windowMs) + ";name=" + quoteJSON(p.name);
    return v;
  }

  denyOver(s: Slot): Decision {
    let h = new Headers();
    this.rateHeaders(s, h);
    h.add("retry-after", headerSeconds(s.retryMs));
    let body = this.spec.denyBody;
    if (body.length == 0) {
      h.add("content-type", "application/json");
      body = "{\"error\":\"rate limit exceeded\",\"limit\":" + quoteJSON(s.params.name) +
        ",\"retry_after\":" + headerSeconds(s.retryMs) + "}";
    } else {
      h.add("content-type", "text/plain; charset=utf-8");
    }
    return Decision.deny(this.spec.denyStatus, body, h).withDetails("quota_exceeded");
  }

  rateHeaders(s: Slot, h: Headers): void {
    let style = this.spec.headerStyle;
    if (style == HeaderStyle.None) return;
    let rem = max<i64>(0, s.remaining).toString();
    let reset = headerSeconds(s.out == Out.Over ? s.retryMs : s.resetMs);
    if (style == HeaderStyle.Draft) {
      h.add("ratelimit-limit", this.limitStr(s));
      h.add("ratelimit-remaining", rem);
      h.add("ratelimit-reset", reset);
      h.add("ratelimit-policy", this.policyStr(s));
    } else {
      h.add("x-ratelimit-limit", this.limitStr(s) + ", " + this.policyStr(s));
      h.add("x-ratelimit-remaining", rem);
      h.add("x-ratelimit-reset", reset);
    }
  }

  // ---- leases -------------------------------------------------------------------------------------

  poolLocal(key: string): PoolLocal {
    if (this.pools.has(key)) return this.pools.get(key);
    let p = new PoolLocal();
    this.pools.set(key, p);
    return p;
  }

  /** Makes sure this VM has a lease in flight for the slot's pool. false when the host refuses the call. */
  ensureLease(s: Slot, t: i64): bool {
    let poolKey = "g:" + s.dimKey;
    if (poolKey == this.draining) return true; // sent once after the drain, for everyone still waiting
    let pl = this.poolLocal(poolKey);
    if (pl.inflight) return true;
    let g = s.spec.global!;
    let l = s.spec;
    let rec = new Rec(POOL_SLOTS);
    let cas = readRec(poolKey, rec);
    // Adaptive size: double while leases last under a second, halve when one lasts over five.
    let size = max<i64>(1, rec.get(P_SIZE));
    let last = rec.get(P_LAST);
    if (last > 0) {
      if (t - last < 1000) size = min<i64>(g.leaseMax, size * 2);
      else if (t - last > 5000) size = max<i64>(1, size / 2);
    }
    if (pl.demand > size) size = pl.demand;
    size = min<i64>(size, g.leaseMax);
    let w = s.params.windowMs;
    let period: i64 = 0;
    let end: i64 = 0;
    if (l.algo == Algo.Fixed) period = t / w;
    else if (l.algo == Algo.Sliding) period = t / (w / l.buckets);
    // Top the pool up to `size`, or to what the requests waiting here need (they spend
    // it at once): a proxy never holds more than max(lease, cost) unspent tokens, which
    // bounds the fleet's overshoot, and one lease serves everyone waiting.
    let left = rec.get(P_TOKENS);
    if ((l.algo != Algo.Token && rec.get(P_PERIOD) != period) || t >= rec.get(P_EXPIRES)) left = 0;
    let want = max<i64>(1, max<i64>(max<i64>(size, s.cost), pl.demand) - left);
    let body = "{\"algorithm\":\"" + algoName(l.algo) + "\",\"key\":" + quoteJSON(g.keyPrefix + s.dimKey) +
      ",\"limit\":" + s.params.limit.toString() + ",\"want\":" + want.toString() + ",\"need\":" + s.cost.toString() +
      ",\"window_ms\":" + w.toString();
    if (l.algo == Algo.Fixed) {
      end = (period + 1) * w;
      body += ",\"window_start\":" + (period * w).toString();
    } else if (l.algo == Algo.Sliding) {
      let b = w / l.buckets;
      end = (period + 1) * b;
      body += ",\"bucket\":" + period.toString() + ",\"buckets\":" + l.buckets.toString() + ",\"bucket_ms\":" + b.toString();
    } else {
      let rate = <f64>s.params.limit / <f64>w;
      body += ",\"burst\":" + s.params.burst.toString() + ",\"rate_per_ms\":" + (rate > 0 ? rate.toString() : "1e-12");
      end = t + g.leaseTtlMs;
    }
    body += "}";
    let h = new Headers();
    h.add(":method", "POST");
    h.add(":path", LEASE_PATH);
    h.add(":authority", g.cluster);
    h.add("content-type", "application/json");
    if (!this.httpCall(g.cluster, h, String.UTF8.encode(body), g.timeoutMs, onLease)) {
      l.m.leaseFailed.inc();
      l.m.errBackend.inc();
      this.markDown(g.cluster, g.downMs, t);
      return false;
    }
    pl.inflight = true;
    this.leases.set(this.lastCallToken, new LeaseCtx(poolKey, s, period, end, want, s.cost));
    if (cas != 0) {
      rec.set(P_INFLIGHT, t + <i64>g.timeoutMs);
      rec.set(P_SIZE, size);
      rec.set(P_LAST, t);
      SharedData_set(poolKey, rec, cas);
    }
    return true;
  }

  leaseAnswered(resp: HttpCallResponse): void {
    let token = resp.token;
    if (this.probes.has(token)) {
      let cluster = this.probes.get(token);
      this.probes.delete(token);
      if (resp.failed || resp.status != 200) {
        log.warn("quota: cluster " + cluster + " did not answer the startup probe (" +
          (resp.failed ? "no answer within " + PROBE_TIMEOUT_MS.toString() + " ms" : "status " + resp.status.toString() + ": " + resp.text()) +
          "); global limits apply their on_error policy while it cannot be reached");
      }
      return;
    }
    if (!this.leases.has(token)) return;
    let ctx = this.leases.get(token);
    this.leases.delete(token);
    let t = nowMs();
    let s = ctx.slot;
    let l = s.spec;
    let g = l.global!;
    let m = l.m;
    let pl = this.poolLocal(ctx.poolKey);
    pl.inflight = false;

    let ok = false;
    let granted: i64 = 0;
    let remaining: i64 = 0;
    let retryMs: i64 = 0;
    let retryBuckets: i64 = 0;
    let why = "";
    if (resp.failed) {
      why = "no answer within " + g.timeoutMs.toString() + " ms (or the connection failed)";
    } else if (resp.status != 200) {
      why = "status " + resp.status.toString() + ": " + resp.text();
    } else {
      let j = resp.json();
      if (!j.ok || !j.value!.isObject) {
        why = "the answer is not a JSON object";
      } else {
        let v = j.value!;
        let gv = v.get("granted");
        if (gv === null || !gv.isNumber) {
          why = "the answer has no \"granted\"";
        } else {
          ok = true;
          granted = max<i64>(0, min<i64>(ctx.want, <i64>gv.numValue));
          let rv = v.get("remaining");
          remaining = rv !== null && rv.isNumber ? <i64>rv.numValue : 0;
          let tv = v.get("retry_ms");
          retryMs = tv !== null && tv.isNumber ? <i64>tv.numValue : 0;
          let bv = v.get("retry_buckets");
          retryBuckets = bv !== null && bv.isNumber ? <i64>bv.numValue : 0;
        }
      }
    }

    if (!ok) {
      m.leaseFailed.inc();
      m.errBackend.inc();
      this.markDown(g.cluster, g.downMs, t);
      this.warn("quota: lease for limit " + l.name + " from cluster " + g.cluster + " failed: " + why +
        "; applying on_error for " + g.downMs.toString() + " ms");
      this.clearInflight(ctx.poolKey);
    } else {
      if (granted == ctx.want) m.leaseGranted.inc();
      else if (granted > 0) m.leasePartial.inc();
      else m.leaseExhausted.inc();
      m.leaseTokens.inc(granted);
      this.markUp(g.cluster);
      this.addTokens(ctx, t, granted, remaining, retryMs, retryBuckets);
    }
    this.drain(ctx.poolKey, pl, t);
  }

  addTokens(ctx: LeaseCtx, t: i64, granted: i64, remaining: i64, retryMs: i64, retryBuckets: i64): void {
    let s = ctx.slot;
    let l = s.spec;
    let g = l.global!;
    for (let attempt = 0; attempt < 8; attempt++) {
      let rec = new Rec(POOL_SLOTS);
      let cas = readRec(ctx.poolKey, rec);
      if (cas == 0) return;
      let w = s.params.windowMs;
      let period: i64 = 0;
      if (l.algo == Algo.Fixed) period = t / w;
      else if (l.algo == Algo.Sliding) period = t / (w / l.buckets);
      if (l.algo != Algo.Token && period != ctx.period) {
        // The window (bucket) ended while the lease was in flight: those tokens were
        // counted in Redis for a period that is over, so they are simply not used.
        granted = 0;
      }
      let tokens = rec.get(P_TOKENS);
      let stale = (l.algo != Algo.Token && rec.get(P_PERIOD) != period) || t >= rec.get(P_EXPIRES);
      if (stale) tokens = 0;
      rec.set(P_TOKENS, tokens + granted);
      rec.set(P_PERIOD, period);
      if (l.algo == Algo.Token) rec.set(P_EXPIRES, t + g.leaseTtlMs);
      else rec.set(P_EXPIRES, l.algo == Algo.Fixed ? (period + 1) * w : (period + 1) * (w / l.buckets));
      rec.set(P_REMAINING, remaining);
      rec.set(P_LIMIT, s.params.limit);
      if (remaining < ctx.need) {
        let until: i64;
        if (l.algo == Algo.Fixed) until = ctx.end;
        else if (l.algo == Algo.Sliding) until = (ctx.period + max<i64>(1, retryBuckets)) * (w / l.buckets);
        else until = t + max<i64>(1, retryMs);
        rec.set(P_EXHAUSTED, until);
      } else {
        rec.set(P_EXHAUSTED, 0);
      }
      rec.set(P_INFLIGHT, 0);
      if (SharedData_set(ctx.poolKey, rec, cas)) return;
    }
  }

  clearInflight(poolKey: string): void {
    let rec = new Rec(POOL_SLOTS);
    let cas = readRec(poolKey, rec);
    if (cas == 0) return;
    rec.set(P_INFLIGHT, 0);
    SharedData_set(poolKey, rec, cas);
  }

  /** Decides again for every request waiting on this pool, and resumes or denies it. */
  drain(poolKey: string, pl: PoolLocal, t: i64): void {
    let ids = pl.waiters;
    pl.waiters = [];
    pl.demand = 0;
    this.draining = poolKey;
    for (let i = 0; i < ids.length; i++) {
      let id = unchecked(ids[i]);
      if (!this.waiters.has(id)) continue;
      let w = this.waiters.get(id);
      if (!raw.setEffectiveContext(id)) {
        this.waiters.delete(id);
        continue;
      }
      let d = this.evaluate(w.req, w.slots, t, w);
      if (d.isAllow) {
        w.req.resume();
      } else if (d.isDeny) {
        w.req.deny(d.status, d.body, d.headers);
      }
    }
    this.draining = "";
    // One lease for every request still waiting on this pool.
    let first: Waiter | null = null;
    for (let i = 0; i < pl.waiters.length && first === null; i++) {
      let id = unchecked(pl.waiters[i]);
      if (this.waiters.has(id)) first = this.waiters.get(id);
    }
    if (first !== null && !pl.inflight) {
      let w = first;
      for (let i = 0; i < w.slots.length; i++) {
        let s = unchecked(w.slots[i]);
        if ("g:" + s.dimKey == poolKey) {
          if (!this.ensureLease(s, t)) {
            // Refused by the host: everyone waiting here takes the error policy now.
            this.drain(poolKey, pl, t);
            return;
          }
          break;
        }
      }
    }
    if (!pl.inflight && pl.waiters.length == 0) this.pools.delete(poolKey);
  }

  // ---- circuit breaker per cluster ------------------------------------------------------------

  circuitUntil(cluster: string): i64 {
    let v = SharedData_get("c:" + cluster, CIRCUIT_SLOTS);
    return v === null ? 0 : v.get(0);
  }

  circuitDown(cluster: string, t: i64): bool {
    return this.circuitUntil(cluster) > t;
  }

  markDown(cluster: string, downMs: i64, t: i64): void {
    let key = "c:" + cluster;
    let rec = new Rec(CIRCUIT_SLOTS);
    let cas = readRec(key, rec);
    if (cas == 0) return;
    rec.set(0, t + downMs);
    rec.set(1, rec.get(1) + 1);
    SharedData_set(key, rec, cas);
  }

  markUp(cluster: string): void {
    let key = "c:" + cluster;
    let v = SharedData_get(key, CIRCUIT_SLOTS);
    if (v === null || (v.get(0) == 0 && v.get(1) == 0)) return;
    let rec = new Rec(CIRCUIT_SLOTS);
    let cas = readRec(key, rec);
    if (cas == 0) return;
    if (rec.get(1) > 0) log.info("quota: cluster " + cluster + " answers leases again after " + rec.get(1).toString() + " failures");
    rec.set(0, 0);
    rec.set(1, 0);
    SharedData_set(key, rec, cas);
  }

  /**
   * A request admitted without a lease (on_error open) is past the limit's bound: say so, at
   * most once a second per VM, with the count so far (quota_requests_total{result="failed_open"}).
   */
  warnOpen(s: Slot): void {
    let t = nowMs();
    if (t - this.lastOpenWarn < 1000) return;
    this.lastOpenWarn = t;
    let g = s.spec.global!;
    log.warn("quota: limit " + s.spec.name + " admitted requests without a Redis lease (on_error \"open\"): cluster " + g.cluster +
      " failed or missed a lease deadline (" + g.timeoutMs.toString() + " ms) and is treated as down for " + g.downMs.toString() +
      " ms; " + s.spec.m.failedOpen.value().toString() + " admitted this way so far");
  }

  /** Warnings at most once a second per VM, so a Redis outage does not flood the log. */
  warn(msg: string): void {
    let t = nowMs();
    if (t - this.lastWarn < 1000) return;
    this.lastWarn = t;
    log.warn(msg);
  }
}

// ---- request attributes ---------------------------------------------------------------------

function dimension(req: Request, s: Source): string | null {
  switch (s.kind) {
    case Src.SourceIp: return req.sourceIp;
    case Src.SourceAddress: return req.sourceAddress;
    case Src.Method: return req.method;
    case Src.Host: return stripPort(req.host);
    case Src.Path: return urlPath(req.path);
    case Src.PathPrefix: return pathSegments(req.path, s.n);
    case Src.Header: return req.header(s.arg);
    case Src.Property: return getStringProperty(s.path);
    case Src.Scheme: return req.scheme;
  }
  return null;
}

function effectiveParams(l: LimitSpec, values: string[]): Params {
  let ovs = l.overrides;
  for (let i = 0, n = ovs.length; i < n; i++) {
    let o = unchecked(ovs[i]);
    let all = true;
    for (let j = 0, k = o.names.length; j < k; j++) {
      let idx = l.dimNames.indexOf(unchecked(o.names[j]));
      let v = unchecked(values[idx]);
      if (v.length == 0 || !unchecked(o.values[j]).includes(v)) {
        all = false;
        break;
      }
    }
    if (all) return o.params;
  }
  return l.base;
}

function costOf(l: LimitSpec, req: Request): i64 {
  let c = l.cost;
  if (c.fixed > 0) return c.fixed;
  let v = req.header(c.header);
  let n: i64 = -1;
  if (v !== null) n = parseNonNegative(v);
  let cost = n < 0 ? c.dflt : (n + c.unit - 1) / c.unit;
  if (cost < c.min) cost = c.min;
  if (c.max > 0 && cost > c.max) cost = c.max;
  return cost;
}

function parseNonNegative(s: string): i64 {
  let n = s.length;
  if (n == 0 || n > 18) return -1;
  let v: i64 = 0;
  for (let i = 0; i < n; i++) {
    let ch = s.charCodeAt(i);
    if (ch < 0x30 || ch > 0x39) return -1;
    v = v * 10 + <i64>(ch - 0x30);
  }
  return v;
}

// ---- shared-data helpers for fixed records ------------------------------------------------------

function SharedData_set(key: string, rec: Rec, cas: u32): bool {
  return SharedData.set<ArrayBuffer>(key, rec.buf, cas);
}

function SharedData_get(key: string, slots: i32): Rec | null {
  let v = SharedData.get(key);
  if (v === null) return null;
  let rec = new Rec(slots);
  if (!rec.load(v.value)) return null;
  return rec;
}

register<Quota>();

/**
 * The decision as the request attribute `mixer.quota` (ok, over_limit, shadow_over_limit,
 * unavailable), for later adapters and the access log.
 */
function markDecision(v: Bytes): void {
  hb.setProperty(P_QUOTA, v);
}

const P_QUOTA = Bytes.path("mixer", "quota");
const D_OK = new Bytes("ok");
const D_OVER = new Bytes("over_limit");
const D_SHADOW_OVER = new Bytes("shadow_over_limit");
const D_UNAVAILABLE = new Bytes("unavailable");
