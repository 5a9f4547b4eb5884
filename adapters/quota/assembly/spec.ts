// The quota adapter's configuration model and its validation. Every problem is
// reported at configure time with the key path, and the plugin is refused.

import { Config, Counter } from "wasm-mixer/sdk";
import { parseDurationMs, formatDurationMs, MAX_KEY_PART } from "./util";
import { Bytes } from "wasm-mixer/sdk/assembly/hostbytes";

export const enum Algo {
  Fixed = 0,
  Sliding = 1,
  Token = 2,
}

export function algoName(a: Algo): string {
  return a == Algo.Fixed ? "fixed_window" : a == Algo.Sliding ? "sliding_window" : "token_bucket";
}

export const enum Src {
  SourceIp = 0,
  SourceAddress = 1,
  Method = 2,
  Host = 3,
  Path = 4,
  PathPrefix = 5,
  Header = 6,
  Property = 7,
  Scheme = 8,
}

/** Where a dimension's value comes from. */
export class Source {
  private _nameBytes: Bytes | null = null;
  constructor(public kind: Src, public arg: string = "", public n: i32 = 0, public path: string[] = []) {}

  /** A header dimension's name as UTF-8, encoded once. */
  get nameBytes(): Bytes {
    let b = this._nameBytes;
    if (b === null) this._nameBytes = b = new Bytes(this.arg);
    return b;
  }
}

export const enum OnError {
  Open = 0,
  Closed = 1,
  Local = 2,
}

export const enum HeaderStyle {
  Draft = 0,
  XRateLimit = 1,
  None = 2,
}

export class GlobalSpec {
  cluster: string = "";
  /** Most tokens one lease asks for (the adaptive size grows up to this). */
  leaseMax: i64 = 0;
  timeoutMs: u32 = 100;
  onError: OnError = OnError.Open;
  fallbackLimit: i64 = -1;
  errorStatus: u32 = 503;
  downMs: i64 = 1000;
  keyPrefix: string = "wasm-mixer:quota:";
  leaseTtlMs: i64 = 1000;

  copy(): GlobalSpec {
    let g = new GlobalSpec();
    g.cluster = this.cluster;
    g.leaseMax = this.leaseMax;
    g.timeoutMs = this.timeoutMs;
    g.onError = this.onError;
    g.fallbackLimit = this.fallbackLimit;
    g.errorStatus = this.errorStatus;
    g.downMs = this.downMs;
    g.keyPrefix = this.keyPrefix;
    g.leaseTtlMs = this.leaseTtlMs;
    return g;
  }
}

export class CostSpec {
  fixed: i64 = 1;
  header: string = "";
  unit: i64 = 1;
  dflt: i64 = 1;
  min: i64 = 1;
  max: i64 = 0; // 0 = no cap
}

/** Effective parameters of a limit for one key (the limit itself, or an override). */
export class Params {
  limit: i64 = 0;
  windowMs: i64 = 0;
  burst: i64 = 0;
  unlimited: bool = false;
  name: string = "";
  // Header values that never change, built on first use.
  limitStr: string | null = null;
  policyStr: string | null = null;
  // The same as UTF-8 (ratelimit-headers.ts); xLimit is "limit, policy" for X-RateLimit-Limit.
  limitBytes: Bytes | null = null;
  policyBytes: Bytes | null = null;
  xLimitBytes: Bytes | null = null;
}

export class Override {
  names: string[] = [];
  /** One list of accepted values per name. */
  values: Array<string[]> = [];
  params: Params = new Params();
}

/** Per-limit metric series, created once at configure time (no per-request allocation). */
export class LimitMetrics {
  allowed: Counter;
  over: Counter;
  shadowOver: Counter;
  failedOpen: Counter;
  failedClosed: Counter;
  near: Counter;
  hits: Counter;
  unkeyed: Counter;
  cachedOver: Counter;
  fallback: Counter;
  waits: Counter;
  errBackend: Counter;
  errStore: Counter;
  errDeadline: Counter;
  leaseGranted: Counter;
  leasePartial: Counter;
  leaseExhausted: Counter;
  leaseFailed: Counter;
  leaseTokens: Counter;

  constructor(name: string) {
    let req = new Counter("quota_requests_total");
    this.allowed = req.with(["limit", name, "result", "allowed"]);
    this.over = req.with(["limit", name, "result", "over_limit"]);
    this.shadowOver = req.with(["limit", name, "result", "shadow_over_limit"]);
    this.failedOpen = req.with(["limit", name, "result", "failed_open"]);
    this.failedClosed = req.with(["limit", name, "result", "failed_closed"]);
    this.near = new Counter("quota_near_limit_total").with(["limit", name]);
    this.hits = new Counter("quota_hits_total").with(["limit", name]);
    this.unkeyed = new Counter("quota_unkeyed_total").with(["limit", name]);
    this.cachedOver = new Counter("quota_over_limit_cached_total").with(["limit", name]);
    this.fallback = new Counter("quota_fallback_total").with(["limit", name]);
    this.waits = new Counter("quota_lease_waits_total").with(["limit", name]);
    let err = new Counter("quota_errors_total");
    this.errBackend = err.with(["limit", name, "reason", "backend"]);
    this.errStore = err.with(["limit", name, "reason", "store"]);
    this.errDeadline = err.with(["limit", name, "reason", "deadline"]);
    let lease = new Counter("quota_leases_total");
    this.leaseGranted = lease.with(["limit", name, "result", "granted"]);
    this.leasePartial = lease.with(["limit", name, "result", "partial"]);
    this.leaseExhausted = lease.with(["limit", name, "result", "exhausted"]);
    this.leaseFailed = lease.with(["limit", name, "result", "failed"]);
    this.leaseTokens = new Counter("quota_lease_tokens_total").with(["limit", name]);
  }
}

export class LimitSpec {
  name: string = "";
  algo: Algo = Algo.Fixed;
  base: Params = new Params();
  buckets: i64 = 10;
  dimNames: string[] = [];
  dims: Source[] = [];
  missingShared: bool = false;
  overrides: Override[] = [];
  cost: CostSpec = new CostSpec();
  shadow: bool = false;
  global: GlobalSpec | null = null;
  matchPrefixes: string[] = [];
  matchMethods: string[] = [];
  matchHosts: string[] = [];
  metrics: LimitMetrics | null = null;

  get m(): LimitMetrics {
    return this.metrics!;
  }
}

export class QuotaSpec {
  domain: string = "default";
  limits: LimitSpec[] = [];
  headerStyle: HeaderStyle = HeaderStyle.Draft;
  headersOnAllowed: bool = true;
  denyStatus: u32 = 429;
  denyBody: string = "";
  nearRatio: f64 = 0.8;
}

// ---- parsing -----------------------------------------------------------------------------------

function checkKeys(c: Config, allowed: string[]): void {
  let keys = c.keys();
  for (let i = 0; i < keys.length; i++) {
    let k = unchecked(keys[i]);
    if (!allowed.includes(k)) c.fail(k, "unknown key (expected one of: " + allowed.join(", ") + ")");
  }
}

function validName(s: string): bool {
  if (s.length == 0 || s.length > 64) return false;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    let ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2d || c == 0x2e;
    if (!ok) return false;
  }
  return true;
}

function duration(c: Config, key: string, dflt: i64): i64 {
  if (!c.has(key)) return dflt;
  let s = c.getString(key);
  if (s.length == 0) return dflt;
  let ms = parseDurationMs(s);
  if (ms < 0) c.fail(key, "bad duration \"" + s + "\" (use e.g. \"500ms\", \"1s\", \"1m\", \"1h\", \"1d\", \"1m30s\")");
  return ms;
}

function nonNegative(c: Config, key: string, dflt: i64): i64 {
  let v = c.getInt(key, dflt);
  if (v < 0) {
    c.fail(key, "must not be negative, got " + v.toString());
    return dflt;
  }
  return v;
}

export function parseSource(c: Config, key: string, s: string): Source | null {
  if (s == "source.ip") return new Source(Src.SourceIp);
  if (s == "source.address") return new Source(Src.SourceAddress);
  if (s == "request.method") return new Source(Src.Method);
  if (s == "request.host" || s == "destination.host") return new Source(Src.Host);
  if (s == "request.path") return new Source(Src.Path);
  if (s == "request.scheme") return new Source(Src.Scheme);
  if (s.startsWith("request.path_prefix:")) {
    let n = I32.parseInt(s.substring(20), 10);
    if (isNaN<f64>(<f64>n) || n < 1 || n > 32 || n.toString() != s.substring(20)) {
      c.fail(key, "\"" + s + "\": the segment count after request.path_prefix: must be 1 to 32");
      return null;
    }
    return new Source(Src.PathPrefix, "", n);
  }
  if (s.startsWith("header:")) {
    let h = s.substring(7).toLowerCase();
    if (h.length == 0) {
      c.fail(key, "\"header:\" needs a header name, e.g. \"header:x-api-key\"");
      return null;
    }
    return new Source(Src.Header, h);
  }
  if (s.startsWith("property:")) {
    let p = s.substring(9);
    if (p.length == 0) {
      c.fail(key, "\"property:\" needs a property path, e.g. \"property:auth.sub\"");
      return null;
    }
    return new Source(Src.Property, p, 0, p.split("."));
  }
  c.fail(key, "unknown dimension source \"" + s + "\" (use source.ip, source.address, request.method, request.host, " +
    "request.path, request.path_prefix:N, request.scheme, header:NAME or property:PATH)");
  return null;
}

function parseAlgo(c: Config, s: string): Algo {
  if (s == "fixed_window" || s == "fixed") return Algo.Fixed;
  if (s == "sliding_window" || s == "rolling_window" || s == "sliding" || s == "rolling") return Algo.Sliding;
  if (s == "token_bucket") return Algo.Token;
  c.fail("algorithm", "unknown algorithm \"" + s + "\" (use fixed_window, sliding_window or token_bucket)");
  return Algo.Fixed;
}

const GLOBAL_KEYS = ["cluster", "lease", "timeout_ms", "on_error", "fallback_limit", "error_status", "down_for", "key_prefix", "lease_ttl"];

function parseGlobal(c: Config, into: GlobalSpec): void {
  checkKeys(c, GLOBAL_KEYS);
  if (c.has("cluster")) into.cluster = c.getString("cluster");
  if (c.has("lease")) {
    let l = c.getInt("lease", 0);
    if (l < 1) c.fail("lease", "must be at least 1 token, got " + l.toString());
    else into.leaseMax = l;
  }
  if (c.has("timeout_ms")) {
    let t = c.getInt("timeout_ms", 100);
    if (t < 1 || t > 60000) c.fail("timeout_ms", "must be 1 to 60000, got " + t.toString());
    else into.timeoutMs = <u32>t;
  }
  if (c.has("on_error")) {
    let e = c.getString("on_error");
    if (e == "open" || e == "allow") into.onError = OnError.Open;
    else if (e == "closed" || e == "deny") into.onError = OnError.Closed;
    else if (e == "local") into.onError = OnError.Local;
    else c.fail("on_error", "must be \"open\", \"closed\" or \"local\", got \"" + e + "\"");
  }
  if (c.has("fallback_limit")) into.fallbackLimit = nonNegative(c, "fallback_limit", -1);
  if (c.has("error_status")) {
    let s = c.getInt("error_status", 503);
    if (s < 400 || s > 599) c.fail("error_status", "must be a 4xx or 5xx status, got " + s.toString());
    else into.errorStatus = <u32>s;
  }
  if (c.has("down_for")) into.downMs = duration(c, "down_for", 1000);
  if (c.has("key_prefix")) into.keyPrefix = c.getString("key_prefix");
  if (c.has("lease_ttl")) into.leaseTtlMs = duration(c, "lease_ttl", 1000);
}

function parseParams(c: Config, into: Params, algo: Algo, requireAll: bool, base: Params | null): void {
  if (c.has("unlimited")) into.unlimited = c.getBool("unlimited");
  if (c.has("limit")) {
    let l = c.getInt("limit", 0);
    if (l < 0) c.fail("limit", "must not be negative, got " + l.toString() + " (use 0 to block, or \"unlimited\": true)");
    else into.limit = l;
  } else if (requireAll && !into.unlimited) {
    c.fail("limit", "is required (requests per window; 0 blocks everything)");
  } else if (base !== null) {
    into.limit = base.limit;
  }
  if (c.has("window")) into.windowMs = duration(c, "window", 0);
  else if (requireAll && !into.unlimited) c.fail("window", "is required (a duration such as \"1s\", \"1m\", \"1h\")");
  else if (base !== null) into.windowMs = base.windowMs;
  if (c.has("burst")) {
    if (algo != Algo.Token) c.fail("burst", "only applies to token_bucket limits");
    let b = c.getInt("burst", 0);
    if (b < 1) c.fail("burst", "must be at least 1, got " + b.toString());
    else into.burst = b;
  } else if (base !== null && !c.has("limit")) {
    into.burst = base.burst;
  } else {
    into.burst = into.limit; // burst defaults to the limit
  }
}

const LIMIT_KEYS = ["name", "algorithm", "limit", "window", "burst", "buckets", "dimensions", "missing", "overrides", "cost",
  "shadow", "match", "mode", "global", "unlimited"];

function parseLimit(c: Config, i: i32, dflt: GlobalSpec, names: string[]): LimitSpec {
  let l = new LimitSpec();
  checkKeys(c, LIMIT_KEYS);
  l.name = c.requireString("name");
  if (l.name.length > 0 && !validName(l.name)) c.fail("name", "must be 1-64 letters, digits, '_', '-' or '.'");
  if (names.includes(l.name)) c.fail("name", "duplicate limit name \"" + l.name + "\"");
  names.push(l.name);
  l.algo = parseAlgo(c, c.getString("algorithm", "fixed_window"));
  parseParams(c, l.base, l.algo, true, null);
  l.base.name = l.name;
  if (c.has("buckets")) {
    if (l.algo != Algo.Sliding) c.fail("buckets", "only applies to sliding_window limits");
    l.buckets = c.getInt("buckets", 10);
    if (l.buckets < 2 || l.buckets > 60) c.fail("buckets", "must be 2 to 60, got " + l.buckets.toString());
  }
  checkWindow(c, l, l.base);

  // dimensions
  let key = c.getObject("dimensions");
  let dimNames = key.keys();
  for (let j = 0; j < dimNames.length; j++) {
    let dn = unchecked(dimNames[j]);
    if (!validName(dn)) key.fail(dn, "dimension names must be 1-64 letters, digits, '_', '-' or '.'");
    let src = parseSource(key, dn, key.getString(dn));
    if (src !== null) {
      l.dimNames.push(dn);
      l.dims.push(src);
    }
  }
  let missing = c.getString("missing", "skip");
  if (missing == "shared") l.missingShared = true;
  else if (missing != "skip") c.fail("missing", "must be \"skip\" (the limit does not apply) or \"shared\" (one counter for all requests without the value)");

  // overrides: first match wins
  let ovs = c.getArray("overrides");
  for (let j = 0; j < ovs.length; j++) {
    let oc = unchecked(ovs[j]);
    checkKeys(oc, ["match", "limit", "window", "burst", "unlimited", "name"]);
    let o = new Override();
    let m = oc.getObject("match");
    let mk = m.keys();
    if (mk.length == 0) oc.fail("match", "is required: an object of dimension name -> value (or list of values)");
    for (let k = 0; k < mk.length; k++) {
      let dn = unchecked(mk[k]);
      if (!l.dimNames.includes(dn)) {
        m.fail(dn, "is not one of this limit's \"dimensions\" (" + (l.dimNames.length > 0 ? l.dimNames.join(", ") : "none") + ")");
        continue;
      }
      let vals: string[] = [];
      let v = m.value.get(dn)!;
      if (v.isString) vals.push(v.strValue);
      else if (v.isArray) vals = m.getStrings(dn);
      else m.fail(dn, "must be a string or an array of strings, got " + v.kindName);
      o.names.push(dn);
      o.values.push(vals);
    }
    parseParams(oc, o.params, l.algo, false, l.base);
    if (!o.params.unlimited && o.params.windowMs == 0) oc.fail("window", "is required: the limit itself has none (it is unlimited)");
    if (!o.params.unlimited && !oc.has("limit") && l.base.unlimited) oc.fail("limit", "is required: the limit itself has none (it is unlimited)");
    o.params.name = oc.getString("name", l.name);
    checkWindow(oc, l, o.params);
    l.overrides.push(o);
  }

  // cost
  if (c.has("cost")) {
    let v = c.value.get("cost")!;
    if (v.isNumber) {
      let n = c.getInt("cost", 1);
      if (n < 1) c.fail("cost", "must be at least 1, got " + n.toString());
      else l.cost.fixed = n;
    } else {
      let cc = c.getObject("cost");
      checkKeys(cc, ["header", "unit", "default", "min", "max"]);
      l.cost.fixed = 0;
      l.cost.header = cc.requireString("header").toLowerCase();
      l.cost.unit = cc.getInt("unit", 1);
      if (l.cost.unit < 1) cc.fail("unit", "must be at least 1");
      l.cost.dflt = nonNegative(cc, "default", 1);
      l.cost.min = nonNegative(cc, "min", 1);
      l.cost.max = nonNegative(cc, "max", 0);
      if (l.cost.max > 0 && l.cost.max < l.cost.min) cc.fail("max", "must be at least min");
    }
  }

  l.shadow = c.getBool("shadow", false);

  // which requests the limit applies to
  let m = c.getObject("match");
  checkKeys(m, ["path_prefix", "methods", "hosts"]);
  if (m.has("path_prefix")) {
    let pv = m.value.get("path_prefix")!;
    l.matchPrefixes = pv.isString ? [pv.strValue] : m.getStrings("path_prefix");
    for (let k = 0; k < l.matchPrefixes.length; k++) {
      if (!unchecked(l.matchPrefixes[k]).startsWith("/")) m.fail("path_prefix", "must start with \"/\"");
    }
  }
  let methods = m.getStrings("methods");
  for (let k = 0; k < methods.length; k++) l.matchMethods.push(unchecked(methods[k]).toUpperCase());
  let hosts = m.getStrings("hosts");
  for (let k = 0; k < hosts.length; k++) l.matchHosts.push(unchecked(hosts[k]).toLowerCase());

  // mode
  let mode = c.getString("mode", c.has("global") ? "global" : "local");
  if (mode == "global") {
    let g = dflt.copy();
    if (c.has("global")) parseGlobal(c.getObject("global"), g);
    if (g.cluster.length == 0) c.fail("global", "a global limit needs \"cluster\" (here or in the top-level \"global\"): a cluster whose url is redis://host:port");
    if (g.leaseMax == 0) {
      // Default batch: 1/20 of the limit, 1..500 tokens (see README "Global mode" for the trade-off).
      let n = l.algo == Algo.Token ? l.base.burst : l.base.limit;
      g.leaseMax = max<i64>(1, min<i64>(500, n / 20));
    }
    l.global = g;
  } else if (mode != "local") {
    c.fail("mode", "must be \"local\" or \"global\", got \"" + mode + "\"");
  } else if (c.has("global")) {
    c.fail("global", "is set but mode is \"local\"");
  }
  l.metrics = new LimitMetrics(l.name);
  return l;
}

function checkWindow(c: Config, l: LimitSpec, p: Params): void {
  if (p.unlimited || p.windowMs <= 0) return;
  if (l.algo == Algo.Sliding && p.windowMs % l.buckets != 0) {
    c.fail("window", formatDurationMs(p.windowMs) + " does not divide into " + l.buckets.toString() +
      " buckets of whole milliseconds; change \"window\" or \"buckets\"");
  }
  if (l.algo == Algo.Sliding && p.windowMs < l.buckets) c.fail("window", "is shorter than its bucket count in milliseconds");
}

const TOP_KEYS = ["domain", "limits", "headers", "headers_on_allowed", "deny_status", "deny_body", "near_limit_ratio", "global", "shadow"];

export function parseSpec(c: Config): QuotaSpec {
  let s = new QuotaSpec();
  checkKeys(c, TOP_KEYS);
  s.domain = c.getString("domain", "default");
  if (!validName(s.domain)) c.fail("domain", "must be 1-64 letters, digits, '_', '-' or '.'");
  let style = c.getString("headers", "draft");
  if (style == "draft" || style == "ietf") s.headerStyle = HeaderStyle.Draft;
  else if (style == "x-ratelimit" || style == "envoy") s.headerStyle = HeaderStyle.XRateLimit;
  else if (style == "none") s.headerStyle = HeaderStyle.None;
  else c.fail("headers", "must be \"draft\" (RateLimit-*), \"x-ratelimit\" (X-RateLimit-*, as Envoy) or \"none\", got \"" + style + "\"");
  s.headersOnAllowed = c.getBool("headers_on_allowed", true);
  let st = c.getInt("deny_status", 429);
  if (st < 400 || st > 599) c.fail("deny_status", "must be a 4xx or 5xx status, got " + st.toString());
  else s.denyStatus = <u32>st;
  s.denyBody = c.getString("deny_body", "");
  s.nearRatio = c.getNumber("near_limit_ratio", 0.8);
  if (!(s.nearRatio > 0 && s.nearRatio <= 1)) c.fail("near_limit_ratio", "must be in (0, 1]");

  let dflt = new GlobalSpec();
  if (c.has("global")) parseGlobal(c.getObject("global"), dflt);

  if (!c.has("limits")) c.fail("limits", "is required: a list of limits, e.g. [{\"name\": \"per_ip\", \"limit\": 100, \"window\": \"1m\", \"dimensions\": {\"ip\": \"source.ip\"}}]");
  let arr = c.getArray("limits");
  if (c.has("limits") && arr.length == 0 && c.value.get("limits")!.isArray) c.fail("limits", "is empty");
  let names: string[] = [];
  for (let i = 0; i < arr.length; i++) s.limits.push(parseLimit(unchecked(arr[i]), i, dflt, names));
  // A top-level "global" only holds defaults for global limits; it does not make a limit global.
  // Without any global limit it would silently do nothing, so it is refused.
  if (c.has("global") && arr.length > 0) {
    let anyGlobal = false;
    for (let i = 0; i < s.limits.length; i++) if (unchecked(s.limits[i]).global !== null) anyGlobal = true;
    if (!anyGlobal) {
      c.fail("global", "is set but no limit is global, so every limit is local to this proxy: add \"mode\": \"global\" " +
        "to the limits Redis should share across proxies, or remove \"global\"");
    }
  }
  // Top-level shadow: every limit counts and reports but none denies (a dry run of the whole config).
  if (c.getBool("shadow", false)) for (let i = 0; i < s.limits.length; i++) unchecked(s.limits[i]).shadow = true;
  return s;
}

/**
 * In a worker of a multi-worker wasm-mixer proxy (the host sets the property
 * wasm_mixer.worker_quota_cluster), a local limit must stay exact for the whole proxy,
 * not per worker: it leases its tokens from the proxy's primary process the way a
 * global limit leases from Redis. The primary is on the same machine, so the lease
 * deadline is generous, and a lease that still fails denies (never admits past the limit).
 */
export function leaseLocalLimits(s: QuotaSpec, cluster: string): void {
  for (let i = 0; i < s.limits.length; i++) {
    let l = unchecked(s.limits[i]);
    if (l.global !== null) continue;
    let g = new GlobalSpec();
    g.cluster = cluster;
    g.timeoutMs = 1000;
    g.onError = OnError.Closed;
    g.keyPrefix = "local:";
    let n = l.algo == Algo.Token ? l.base.burst : l.base.limit;
    g.leaseMax = max<i64>(1, min<i64>(500, n / 20));
    l.global = g;
  }
}

export { MAX_KEY_PART };
