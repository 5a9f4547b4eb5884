// logging: one access-log entry per request, Envoy/Istio style, written in the log phase
// (proxy_on_log, after the response has been sent), so it never adds latency to a response.
//
// Entries are JSON lines by default (Istio's JSON access-log keys) or text from an Envoy
// format string, with severity derived from the status, sampling (errors always kept),
// and redaction of credentials in headers and query strings. The entry is handed to the
// host's access-log sinks with the wasm_mixer.access_log foreign function; a host without
// it (Envoy) gets the entry through proxy_log at info. See README.md for the config.

import { Adapter, Config, LogLevel, MapType, Report, Status, callForeignFunctionStatus, encodePath, log, quoteJSON, raw, register } from "wasm-mixer/sdk";
import { Attr, AttrSource, AttrType, attrString, isoTime, strftime } from "./attributes";
import { Format, Kind, Op, Segment, formatError, parseFormat } from "./format";
import { PropertySet } from "./propset";
import { Writer, writeIsoTime } from "./writer";
export * from "wasm-mixer/sdk/exports";

const ACCESS_LOG_FUNCTION = "wasm_mixer.access_log";

/** Envoy's default access-log format (without its trailing newline). */
export const ENVOY_DEFAULT_FORMAT =
  "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% " +
  "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" " +
  "\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"";

/** The default JSON fields: Istio's JSON access-log keys, plus level, principal and quota. */
const DEFAULT_FIELDS: string[] = [
  "start_time", "%START_TIME%",
  "level", "%SEVERITY%",
  "method", "%REQ(:METHOD)%",
  "path", "%REQ(:PATH)%",
  "protocol", "%PROTOCOL%",
  "response_code", "%RESPONSE_CODE%",
  "response_flags", "%RESPONSE_FLAGS%",
  "response_code_details", "%RESPONSE_CODE_DETAILS%",
  "bytes_received", "%BYTES_RECEIVED%",
  "bytes_sent", "%BYTES_SENT%",
  "duration", "%DURATION%",
  "upstream_service_time", "%RESPONSE_DURATION%",
  "x_forwarded_for", "%REQ(X-FORWARDED-FOR)%",
  "user_agent", "%REQ(USER-AGENT)%",
  "request_id", "%REQ(X-REQUEST-ID)%",
  "authority", "%REQ(:AUTHORITY)%",
  "upstream_host", "%UPSTREAM_HOST%",
  "upstream_cluster", "%UPSTREAM_CLUSTER%",
  "downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%",
  "downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%",
  "route_name", "%ROUTE_NAME%",
  "principal", "%CEL(mixer.principal)%",
  "quota", "%CEL(mixer.quota)%",
];

const DEFAULT_REDACT_HEADERS = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"];
const DEFAULT_REDACT_QUERY = ["api_key", "apikey", "access_token", "id_token", "token", "password", "secret"];

class Field {
  /** `"key":` as UTF-8, written before the value. */
  prefix: ArrayBuffer;
  constructor(public key: string, public format: Format) {
    this.prefix = String.UTF8.encode(quoteJSON(key) + ":");
  }
}

/** FNV-1a, 32 bits: a request id hashes to the same sampling decision on every proxy. */
function fnv1a(s: string): u32 {
  let h: u32 = 0x811c9dc5;
  for (let i = 0, n = s.length; i < n; i++) {
    let c = <u32>s.charCodeAt(i);
    h ^= c & 0xff;
    h *= 0x01000193;
    if (c > 0xff) {
      h ^= c >> 8;
      h *= 0x01000193;
    }
  }
  return h;
}

class Logging extends Adapter {
  json: bool = true;
  text: Format | null = null;
  fields: Field[] = [];
  omitEmpty: bool = false;
  logName: string = "access";
  logNameBytes: ArrayBuffer = new ArrayBuffer(0);
  sampleRatio: f64 = 1.0;
  alwaysLogStatus: i64 = 400;
  excludeExact: string[] = [];
  excludePrefix: string[] = [];
  redactHeaders: string[] = [];
  redactQuery: string[] = [];
  replacement: string = "[REDACTED]";
  /** The host has no wasm_mixer.access_log: entries go to proxy_log. */
  fallback: bool = false;
  /** Reused for every entry: the envelope and the formatted line. */
  out: Writer = new Writer();
  entry: Entry = new Entry(this);
  /** Every attribute an entry reads, fetched in one host call per request. */
  props: PropertySet = new PropertySet();
  iTime: i32 = -1;
  iCode: i32 = -1;
  iFlags: i32 = -1;
  iUpstream: i32 = -1;
  /** With sampling or exclusions: the few attributes the keep-or-skip decision needs, fetched first. */
  decide: PropertySet | null = null;
  dCode: i32 = -1;
  dFlags: i32 = -1;
  dRequestId: i32 = -1;
  dPath: i32 = -1;

  configure(c: Config): string | null {
    let known = ["format", "text_format", "json_format", "add_fields", "remove_fields", "omit_empty_values", "log_name",
      "sample_ratio", "always_log_status", "exclude_paths", "redact"];
    let keys = c.keys();
    for (let i = 0; i < keys.length; i++) if (!known.includes(keys[i])) c.fail(keys[i], "unknown key; known keys: " + known.join(", "));

    let format = c.getString("format", "json");
    if (format != "json" && format != "text") c.fail("format", "must be \"json\" or \"text\"");
    this.json = format == "json";
    if (!this.json) {
      let src = c.getString("text_format", ENVOY_DEFAULT_FORMAT);
      while (src.endsWith("\n")) src = src.substring(0, src.length - 1);
      let f = parseFormat(src);
      if (f === null) c.fail("text_format", formatError);
      this.text = f;
    } else if (c.has("text_format")) {
      c.fail("text_format", "applies to format \"text\" only");
    }

    // JSON fields: json_format replaces the defaults (as Envoy's json_format); add_fields/remove_fields edit them.
    let pairs: string[] = [];
    if (c.has("json_format")) {
      let jf = c.getObject("json_format");
      let ks = jf.keys();
      for (let i = 0; i < ks.length; i++) {
        pairs.push(ks[i]);
        pairs.push(jf.getString(ks[i]));
      }
    } else {
      pairs = DEFAULT_FIELDS.slice(0);
    }
    let remove = c.getStrings("remove_fields");
    let add = c.getObject("add_fields");
    let addKeys = add.keys();
    this.fields = [];
    for (let i = 0; i < pairs.length; i += 2) {
      let k = pairs[i];
      if (remove.includes(k) || addKeys.includes(k)) continue;
      this.addField(c, "json_format", k, pairs[i + 1]);
    }
    for (let i = 0; i < addKeys.length; i++) this.addField(c, "add_fields", addKeys[i], add.getString(addKeys[i]));
    this.omitEmpty = c.getBool("omit_empty_values", false);

    this.logName = c.getString("log_name", "access");
    if (this.logName.length == 0 || this.logName.length > 200) c.fail("log_name", "must be 1 to 200 characters");
    this.logNameBytes = String.UTF8.encode(this.logName);

    this.sampleRatio = c.getNumber("sample_ratio", 1.0);
    if (this.sampleRatio < 0 || this.sampleRatio > 1) c.fail("sample_ratio", "must be between 0 and 1");
    this.alwaysLogStatus = c.getInt("always_log_status", 400);

    let ex = c.getStrings("exclude_paths");
    this.excludeExact = [];
    this.excludePrefix = [];
    for (let i = 0; i < ex.length; i++) {
      let p = ex[i];
      if (!p.startsWith("/")) c.fail("exclude_paths[" + i.toString() + "]", "must start with /");
      if (p.endsWith("*")) this.excludePrefix.push(p.substring(0, p.length - 1));
      else this.excludeExact.push(p);
    }

    let r = c.getObject("redact");
    let useDefaults = r.getBool("defaults", true);
    this.redactHeaders = useDefaults ? DEFAULT_REDACT_HEADERS.slice(0) : [];
    this.redactQuery = useDefaults ? DEFAULT_REDACT_QUERY.slice(0) : [];
    let hs = r.getStrings("headers");
    for (let i = 0; i < hs.length; i++) this.redactHeaders.push(hs[i].toLowerCase());
    let qs = r.getStrings("query_params");
    for (let i = 0; i < qs.length; i++) this.redactQuery.push(qs[i].toLowerCase());
    this.replacement = r.getString("replacement", "[REDACTED]");
    let rk = r.keys();
    for (let i = 0; i < rk.length; i++) {
      let k = rk[i];
      if (k != "defaults" && k != "headers" && k != "query_params" && k != "replacement") r.fail(k, "unknown key; known keys: defaults, headers, query_params, replacement");
    }
    if (c.error !== null) return c.error;
    this.plan();
    return null;
  }

  /** Lists every attribute the formats read, so one host call per request fetches them all. */
  private plan(): void {
    let ps = new PropertySet();
    this.props = ps;
    this.iTime = ps.add(["request", "time"]);
    this.iCode = ps.add(["response", "code"]);
    this.iFlags = ps.add(["response", "flags"]);
    this.iUpstream = ps.add(["upstream", "address"]);
    this.decide = null;
    if (this.sampleRatio < 1 || this.excludeExact.length > 0 || this.excludePrefix.length > 0) {
      // a request that is skipped should cost one small read, not the whole entry's
      let d = new PropertySet();
      this.dCode = d.add(["response", "code"]);
      this.dFlags = d.add(["response", "flags"]);
      this.dRequestId = d.add(["request", "headers", "x-request-id"]);
      this.dPath = d.add(["request", "headers", ":path"]);
      d.register();
      this.decide = d;
    }
    if (this.text !== null) for (let i = 0; i < this.text!.segments.length; i++) planSegment(ps, this.text!.segments[i]);
    for (let i = 0; i < this.fields.length; i++) {
      let segs = this.fields[i].format.segments;
      for (let k = 0; k < segs.length; k++) planSegment(ps, segs[k]);
    }
    ps.register();
  }

  private addField(c: Config, where: string, key: string, src: string): void {
    let f = parseFormat(src);
    if (f === null) {
      c.fail(where + "." + key, formatError);
      return;
    }
    this.fields.push(new Field(key, f));
  }

  private excluded(path: string): bool {
    let q = path.indexOf("?");
    let p = q < 0 ? path : path.substring(0, q);
    if (this.excludeExact.includes(p)) return true;
    for (let i = 0; i < this.excludePrefix.length; i++) if (p.startsWith(this.excludePrefix[i])) return true;
    return false;
  }

  /** Sampling: errors (status >= always_log_status, no status, or any response flag) are always kept. */
  private sampled(d: PropertySet): bool {
    if (this.sampleRatio >= 1) return true;
    let code = d.int(this.dCode, 0);
    if (code == 0 || code >= this.alwaysLogStatus) return true;
    if (!d.empty(this.dFlags)) return true;
    if (this.sampleRatio <= 0) return false;
    let id = d.str(this.dRequestId);
    let u: f64 = id !== null && id.length > 0 ? <f64>fnv1a(id) / 4294967296.0 : Math.random();
    return u < this.sampleRatio;
  }

  report(r: Report): void {
    let e = this.entry;
    e.reset();
    this.props.reset();
    let d = this.decide;
    if (d !== null) {
      d.reset();
      if (this.excludeExact.length > 0 || this.excludePrefix.length > 0) {
        let path = d.str(this.dPath);
        if (path !== null && this.excluded(path)) return;
      }
      if (!this.sampled(d)) return;
    }
    let w = this.out;
    // envelope header (see host/src/telemetry/foreign.ts), then the entry
    w.len = 0;
    w.reserve(14);
    let p = changetype<usize>(w.buf);
    store<u8>(p, 1);
    store<u8>(p + 1, <u8>e.level());
    store<u8>(p + 2, this.json ? 1 : 0);
    store<u8>(p + 3, 0);
    store<i64>(p + 4, e.startTimeNs());
    store<u16>(p + 12, <u16>this.logNameBytes.byteLength);
    w.len = 14;
    w.bytes(this.logNameBytes);
    let start = w.len;
    if (this.json) this.formatJSON(e, w);
    else this.formatText(e, w);
    this.emit(w, start);
  }

  private formatText(e: Entry, w: Writer): void {
    let segs = this.text!.segments;
    for (let i = 0, n = segs.length; i < n; i++) {
      if (!e.write(unchecked(segs[i]), w, false)) w.byte(0x2d); // "-"
    }
  }

  private formatJSON(e: Entry, w: Writer): void {
    w.byte(0x7b); // {
    let first = true;
    let fields = this.fields;
    for (let i = 0, n = fields.length; i < n; i++) {
      let f = unchecked(fields[i]);
      let mark = w.len;
      if (!first) w.byte(0x2c);
      w.bytes(f.prefix);
      let valueAt = w.len;
      let single = f.format.single;
      let present = true;
      if (single !== null) {
        if (single.kind == Kind.Number) {
          present = e.write(single, w, true);
        } else {
          w.byte(0x22);
          present = e.write(single, w, true);
          if (present) w.byte(0x22);
        }
      } else {
        w.byte(0x22);
        let segs = f.format.segments;
        for (let k = 0, m = segs.length; k < m; k++) if (!e.write(unchecked(segs[k]), w, true)) w.byte(0x2d);
        w.byte(0x22);
      }
      if (!present) {
        if (this.omitEmpty) {
          w.len = mark;
          continue;
        }
        w.len = valueAt;
        w.str("null");
      }
      first = false;
    }
    w.byte(0x7d); // }
  }

  private emit(w: Writer, start: i32): void {
    if (!this.fallback) {
      let r = callForeignFunctionStatus(ACCESS_LOG_FUNCTION, w.slice(0));
      if (r.status == Status.Ok) return;
      // not our host (e.g. Envoy), or the function is not granted: use the proxy log from now on
      this.fallback = true;
      log.warn("wasm_mixer.access_log is not available in this host (status " + r.status.toString() + "); access-log entries go to the proxy log");
    }
    log.write(LogLevel.Info, String.UTF8.decode(w.slice(start)));
  }
}

/** Where a segment's values live in the property set. */
function planSegment(ps: PropertySet, seg: Segment): void {
  switch (seg.op) {
    case Op.StartTime: seg.idx = ps.add(["request", "time"]); break;
    case Op.Req:
      seg.idx = ps.add(["request", "headers", seg.text]);
      if (seg.alt.length > 0) seg.altIdx = ps.add(["request", "headers", seg.alt]);
      break;
    case Op.Resp:
      seg.idx = ps.add(["response", "headers", seg.text]);
      if (seg.alt.length > 0) seg.altIdx = ps.add(["response", "headers", seg.alt]);
      break;
    case Op.ResponseCode: seg.idx = ps.add(["response", "code"]); break;
    case Op.ResponseCodeDetails: seg.idx = ps.add(["response", "code_details"]); break;
    case Op.ResponseFlags: seg.idx = ps.add(["response", "flags"]); break;
    case Op.BytesReceived: seg.idx = ps.add(["request", "size"]); break;
    case Op.BytesSent: seg.idx = ps.add(["response", "size"]); break;
    case Op.Duration: seg.idx = ps.add(["request", "duration"]); break;
    case Op.ResponseDuration: seg.idx = ps.add(["response", "backend_latency"]); break;
    case Op.Protocol: seg.idx = ps.add(["request", "protocol"]); break;
    case Op.UpstreamHost: seg.idx = ps.add(["upstream", "address"]); break;
    case Op.UpstreamCluster: seg.idx = ps.add(["cluster_name"]); break;
    case Op.DownstreamRemoteAddress:
    case Op.DownstreamRemoteAddressWithoutPort: seg.idx = ps.add(["source", "address"]); break;
    case Op.DownstreamLocalAddress:
    case Op.DownstreamLocalAddressWithoutPort: seg.idx = ps.add(["destination", "address"]); break;
    case Op.RouteName: seg.idx = ps.add(["route_name"]); break;
    case Op.ConnectionId: seg.idx = ps.add(["connection", "id"]); break;
    case Op.Cel:
    case Op.FilterState: {
      let a = seg.attr!;
      if (a.source == AttrSource.RequestHeader) seg.idx = ps.add(["request", "headers", a.value]);
      else if (a.source == AttrSource.ResponseHeader) seg.idx = ps.add(["response", "headers", a.value]);
      else if (a.source == AttrSource.Property && a.type != AttrType.Map) seg.idx = ps.add(a.path);
      break;
    }
    default:
      break;
  }
}

/** "1.2.3.4:80" -> "1.2.3.4" (the end of the host part), -1 for "[v6]:port" (handled by the caller). */
function hostEnd(p: usize, n: i32): i32 {
  if (n > 0 && load<u8>(p) == 0x5b) return -1;
  let colon = -1;
  for (let i = 0; i < n; i++) {
    if (load<u8>(p + <usize>i) == 0x3a) {
      if (colon >= 0) return n; // bare IPv6: no port
      colon = i;
    }
  }
  return colon < 0 ? n : colon;
}

/**
 * One finished request as the format reads it, written straight into the output. The
 * attributes come from the adapter's PropertySet (one host call per request).
 */
class Entry {
  constructor(private cfg: Logging) {}

  reset(): void {}

  startTimeNs(): i64 {
    return this.cfg.props.int(this.cfg.iTime, 0);
  }

  responseCode(): i64 {
    return this.cfg.props.int(this.cfg.iCode, 0);
  }

  private redactValue(name: string, v: string | null): string | null {
    if (v === null) return null;
    if (this.cfg.redactHeaders.includes(name)) return this.cfg.replacement;
    if (name == ":path") return redactQuery(v, this.cfg.redactQuery, this.cfg.replacement);
    return v;
  }

  level(): LogLevel {
    let code = this.responseCode();
    if (code >= 500) return LogLevel.Error;
    if (code >= 400 || code == 0) return LogLevel.Warn;
    return LogLevel.Info;
  }

  severity(): string {
    let l = this.level();
    return l == LogLevel.Error ? "error" : l == LogLevel.Warn ? "warn" : "info";
  }

  /** A header map as a JSON object, with sensitive values (and :path's query) redacted. */
  private headersJSON(map: MapType): string {
    let h = raw.getHeaders(map);
    let parts: string[] = ["{"];
    for (let i = 0; i < h.length; i++) {
      let k = h.name(i);
      let v = h.value(i);
      if (this.cfg.redactHeaders.includes(k)) v = this.cfg.replacement;
      else if (k == ":path") v = redactQuery(v, this.cfg.redactQuery, this.cfg.replacement);
      if (i > 0) parts.push(",");
      parts.push(quoteJSON(k));
      parts.push(":");
      parts.push(quoteJSON(v));
    }
    parts.push("}");
    return parts.join("");
  }

  private trailer(name: string): string | null {
    return this.redactValue(name, raw.getHeader(MapType.HttpResponseTrailers, name));
  }

  private putStr(w: Writer, v: string | null, json: bool, maxLen: i32): bool {
    if (v === null || v.length == 0) return false;
    if (maxLen > 0 && v.length > maxLen) v = v.substring(0, maxLen);
    if (json) w.jsonStr(v);
    else w.str(v);
    return true;
  }

  /** Value i of the property set, as it is (UTF-8), escaped for JSON when needed. */
  private putValue(w: Writer, i: i32, json: bool, maxLen: i32): bool {
    let ps = this.cfg.props;
    let n = ps.len(i);
    if (n <= 0) return false;
    if (maxLen > 0) return this.putStr(w, ps.str(i), json, maxLen);
    if (json) w.jsonRaw(ps.ptr(i), n);
    else w.raw(ps.ptr(i), n);
    return true;
  }

  /** A header from the set, redacted when its name is sensitive. */
  private putHeader(w: Writer, name: string, i: i32, json: bool, maxLen: i32): bool {
    let ps = this.cfg.props;
    if (ps.len(i) <= 0) return false;
    if (this.cfg.redactHeaders.includes(name) || name == ":path") return this.putStr(w, this.redactValue(name, ps.str(i)), json, maxLen);
    return this.putValue(w, i, json, maxLen);
  }

  private putHost(w: Writer, i: i32, json: bool): bool {
    let ps = this.cfg.props;
    let n = ps.len(i);
    if (n <= 0) return false;
    let p = ps.ptr(i);
    let end = hostEnd(p, n);
    if (end < 0) {
      let close = 1;
      while (close < n && load<u8>(p + <usize>close) != 0x5d) close++;
      w.raw(p + 1, close - 1);
      return true;
    }
    w.raw(p, end);
    return true;
  }

  /** An attribute (CEL or FILTER_STATE), redacted as configured. */
  private putAttr(w: Writer, seg: Segment, json: bool): bool {
    let a = seg.attr!;
    let ps = this.cfg.props;
    switch (a.source) {
      case AttrSource.Literal:
        return this.putStr(w, a.value, json, seg.maxLen);
      case AttrSource.RequestHeader:
      case AttrSource.ResponseHeader:
        return this.putHeader(w, a.value, seg.idx, json, seg.maxLen);
      case AttrSource.ResponseTrailer:
        return this.putStr(w, this.trailer(a.value), json, seg.maxLen);
      default:
        break;
    }
    if (a.name == "request.headers") return this.putStr(w, this.headersJSON(MapType.HttpRequestHeaders), json, seg.maxLen);
    if (a.name == "response.headers") return this.putStr(w, this.headersJSON(MapType.HttpResponseHeaders), json, seg.maxLen);
    if (a.name == "response.trailers") return this.putStr(w, this.headersJSON(MapType.HttpResponseTrailers), json, seg.maxLen);
    let i = seg.idx;
    if (i < 0) return this.putStr(w, attrString(a), json, seg.maxLen);
    switch (a.type) {
      case AttrType.Int:
      case AttrType.Duration: {
        if (ps.len(i) != 8) return false;
        w.int(ps.int(i, 0));
        return true;
      }
      case AttrType.Timestamp: {
        if (ps.len(i) != 8) return false;
        return this.putStr(w, isoTime(ps.int(i, 0)), json, seg.maxLen);
      }
      case AttrType.Bool: {
        if (ps.len(i) < 1) return false;
        w.str(load<u8>(ps.ptr(i)) != 0 ? "true" : "false");
        return true;
      }
      default:
        break;
    }
    if (a.name == "request.path") return this.putStr(w, redactQuery(ps.str(i)!, this.cfg.redactQuery, this.cfg.replacement), json, seg.maxLen);
    if (a.name == "request.query" && ps.len(i) > 0) return this.putStr(w, redactQuery("?" + ps.str(i)!, this.cfg.redactQuery, this.cfg.replacement).substring(1), json, seg.maxLen);
    return this.putValue(w, i, json, seg.maxLen);
  }

  /** Writes one operator's value; false (nothing written) when the request does not have it. */
  write(seg: Segment, w: Writer, json: bool): bool {
    let ps = this.cfg.props;
    switch (seg.op) {
      case Op.Literal:
        if (json) w.jsonStr(seg.text);
        else w.str(seg.text);
        return true;
      case Op.StartTime: {
        let t = ps.int(seg.idx, 0);
        if (t <= 0) return false;
        if (seg.text.length == 0) writeIsoTime(w, t);
        else return this.putStr(w, strftime(seg.text, t), json, seg.maxLen);
        return true;
      }
      case Op.Req:
      case Op.Resp:
        if (this.putHeader(w, seg.text, seg.idx, json, seg.maxLen)) return true;
        return seg.altIdx >= 0 && this.putHeader(w, seg.alt, seg.altIdx, json, seg.maxLen);
      case Op.Trailer: {
        let v = this.trailer(seg.text);
        if (v === null && seg.alt.length > 0) v = this.trailer(seg.alt);
        return this.putStr(w, v, json, seg.maxLen);
      }
      case Op.ResponseCode:
      case Op.BytesReceived:
      case Op.BytesSent:
      case Op.ConnectionId:
        w.int(ps.int(seg.idx, 0));
        return true;
      case Op.Duration:
      case Op.ResponseDuration: {
        let d = ps.int(seg.idx, -1);
        if (d < 0) return false;
        w.int(d / 1_000_000);
        return true;
      }
      case Op.UpstreamCluster:
        // As Envoy's %UPSTREAM_CLUSTER%: only once an upstream was chosen. cluster_name alone is
        // the route's cluster, known for local replies too (401, 403, 429), which reached none.
        if (ps.empty(this.cfg.iUpstream)) return false;
        return this.putValue(w, seg.idx, json, seg.maxLen);
      case Op.ResponseCodeDetails:
      case Op.ResponseFlags:
      case Op.Protocol:
      case Op.UpstreamHost:
      case Op.DownstreamRemoteAddress:
      case Op.DownstreamLocalAddress:
      case Op.RouteName:
        return this.putValue(w, seg.idx, json, seg.maxLen);
      case Op.DownstreamRemoteAddressWithoutPort:
      case Op.DownstreamLocalAddressWithoutPort:
        return this.putHost(w, seg.idx, json);
      case Op.FilterState:
      case Op.Cel:
        return this.putAttr(w, seg, json);
      case Op.Severity:
        w.str(this.severity());
        return true;
      default:
        return false;
    }
  }
}

/** Replaces the values of sensitive query parameters: /p?api_key=abc&x=1 -> /p?api_key=[REDACTED]&x=1 */
export function redactQuery(path: string, names: string[], replacement: string): string {
  let q = path.indexOf("?");
  if (q < 0 || names.length == 0) return path;
  let query = path.substring(q + 1);
  let hash = query.indexOf("#");
  let frag = "";
  if (hash >= 0) {
    frag = query.substring(hash);
    query = query.substring(0, hash);
  }
  let params = query.split("&");
  let changed = false;
  for (let i = 0; i < params.length; i++) {
    let p = params[i];
    let eq = p.indexOf("=");
    let k = (eq < 0 ? p : p.substring(0, eq)).toLowerCase();
    if (names.includes(k) || names.includes(decodeKey(k))) {
      params[i] = (eq < 0 ? p : p.substring(0, eq)) + "=" + replacement;
      changed = true;
    }
  }
  if (!changed) return path;
  return path.substring(0, q + 1) + params.join("&") + frag;
}

/** Percent-decodes the few characters parameter names use (a%5Fkey -> a_key). */
function decodeKey(k: string): string {
  if (k.indexOf("%") < 0) return k;
  let out: string[] = [];
  for (let i = 0; i < k.length; i++) {
    let c = k.charCodeAt(i);
    if (c == 0x25 && i + 2 < k.length) {
      let v = I32.parseInt(k.substring(i + 1, i + 3), 16);
      if (v > 0) {
        out.push(String.fromCharCode(v));
        i += 2;
        continue;
      }
    }
    out.push(k.charAt(i));
  }
  return out.join("").toLowerCase();
}

register<Logging>();
