// logging: one access-log entry per request, Envoy/Istio style, written in the log phase
// (proxy_on_log, after the response has been sent), so it never adds latency to a response.
//
// Entries are JSON lines by default (Istio's JSON access-log keys) or text from an Envoy
// format string, with severity derived from the status, sampling (errors always kept),
// and redaction of credentials in headers and query strings. The entry is handed to the
// host's access-log sinks with the wasm_mixer.access_log foreign function; a host without
// it (Envoy) gets the entry through proxy_log at info. See README.md for the config.

import {
  Adapter, AttrSource, AttrType, ByteBuffer, Config, LogLevel, PathFilter, PropertySet, Report, Status, callForeignFunctionInto, log,
  quoteJSON, register,
} from "wasm-mixer/sdk";
import { Entry } from "./entry";
import { putJson } from "./copy";
import { Format, Kind, Op, Redact, Segment, formatError, parseFormat } from "./format";
// The ABI callbacks by name rather than `export *`: this adapter works only in the log phase
// (report; no check, no onResponse, no response headers queued), and a host skips a callback
// the module does not export, so leaving out proxy_on_request_headers and
// proxy_on_response_headers saves two guest calls per request. Export them again if the
// adapter starts to check requests or touch responses.
export {
  proxy_abi_version_0_2_1, proxy_on_memory_allocate, malloc, proxy_on_context_create, proxy_on_vm_start, proxy_on_configure,
  proxy_on_tick, proxy_on_queue_ready, proxy_on_foreign_function, proxy_on_log, proxy_on_delete,
  proxy_on_http_call_response, proxy_on_grpc_receive_initial_metadata, proxy_on_grpc_receive,
  proxy_on_grpc_receive_trailing_metadata, proxy_on_grpc_close,
} from "wasm-mixer/sdk/exports";

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

/** How formatJSON writes a field whose value is one attribute of the property set, as it is. */
enum Direct {
  /** Through Entry.write. */
  No = 0,
  /** The value's bytes, JSON-escaped; missing or empty: null. */
  Str = 1,
  /** An int64, always present (0 when missing), as Entry.write writes RESPONSE_CODE and the byte counts. */
  Int = 2,
}

/** "null" as one little-endian word. */
const NULL_WORD: u32 = 0x6c6c756e;

/**
 * Copies a field prefix, in whole words: the prefix's buffer has a word of room past it (Field),
 * and the bytes written past n land where the value goes next (formatJSON reserves n + 8).
 */
// @ts-ignore: decorator
@inline function copyPrefix(dst: usize, src: usize, n: usize): void {
  for (let i: usize = 0; i < n; i += 8) store<u64>(dst + i, load<u64>(src + i));
}

class Field {
  /** `,"key":` (and `"` when the value is a JSON string) as UTF-8: the comma is skipped for the first field written. */
  prefix: ArrayBuffer;
  prefixPtr: usize;
  prefixLen: i32;
  /** See Direct; `idx` is the attribute's place in the property set. */
  direct: Direct = Direct.No;
  idx: i32 = -1;
  /** The one operator of a single-operator format (typed: a number or null), else null. */
  single: Segment | null;
  /** The value is a JSON string (so the prefix ends with its opening quote). */
  quoted: bool;
  constructor(public key: string, public format: Format) {
    let single = format.single;
    let quoted = single === null || single.kind != Kind.Number;
    let utf8 = String.UTF8.encode("," + quoteJSON(key) + ":" + (quoted ? "\"" : ""));
    // with a word of room past it, for copyPrefix's whole words
    this.prefix = new ArrayBuffer(utf8.byteLength + 8);
    memory.copy(changetype<usize>(this.prefix), changetype<usize>(utf8), <usize>utf8.byteLength);
    this.prefixPtr = changetype<usize>(this.prefix);
    this.prefixLen = utf8.byteLength;
    this.single = single;
    this.quoted = quoted;
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
  exclude: PathFilter = new PathFilter();
  /** The host has no wasm_mixer.access_log: entries go to proxy_log. */
  fallback: bool = false;
  /** Reused for every entry: the envelope and the formatted line, handed to the host in one call. */
  out: ByteBuffer = new ByteBuffer(2048);
  answer: ByteBuffer = new ByteBuffer(8);
  /** The entry's attributes (one host call per request) and redaction settings. */
  entry: Entry = new Entry();
  iPath: i32 = -1;
  /** With sampling: the few attributes the keep-or-skip decision needs, fetched first. */
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

    this.exclude = PathFilter.fromConfig(c, "exclude_paths");

    let e = new Entry();
    this.entry = e;
    let r = c.getObject("redact");
    let useDefaults = r.getBool("defaults", true);
    e.redactHeaders = useDefaults ? DEFAULT_REDACT_HEADERS.slice(0) : [];
    e.redactQuery = useDefaults ? DEFAULT_REDACT_QUERY.slice(0) : [];
    let hs = r.getStrings("headers");
    for (let i = 0; i < hs.length; i++) e.redactHeaders.push(hs[i].toLowerCase());
    let qs = r.getStrings("query_params");
    for (let i = 0; i < qs.length; i++) e.redactQuery.push(qs[i].toLowerCase());
    e.replacement = r.getString("replacement", "[REDACTED]");
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
    let e = this.entry;
    let ps = new PropertySet();
    e.props = ps;
    e.iTime = ps.add(["request", "time"]);
    e.iCode = ps.add(["response", "code"]);
    e.iUpstream = ps.add(["upstream", "address"]);
    this.iPath = ps.add(["request", "headers", ":path"]);
    this.decide = null;
    if (this.sampleRatio < 1) {
      // a request that sampling skips should cost one small read, not the whole entry's
      let d = new PropertySet();
      this.dCode = d.add(["response", "code"]);
      this.dFlags = d.add(["response", "flags"]);
      this.dRequestId = d.add(["request", "headers", "x-request-id"]);
      this.dPath = d.add(["request", "headers", ":path"]);
      d.register();
      this.decide = d;
    }
    if (this.text !== null) for (let i = 0; i < this.text!.segments.length; i++) planSegment(e, this.text!.segments[i]);
    for (let i = 0; i < this.fields.length; i++) {
      let f = this.fields[i];
      let segs = f.format.segments;
      for (let k = 0; k < segs.length; k++) planSegment(e, segs[k]);
      let single = f.single;
      if (single !== null) {
        f.direct = directOf(single);
        f.idx = single.idx;
      }
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
    e.props.reset();
    let d = this.decide;
    if (d !== null) {
      d.reset();
      if (!this.exclude.isEmpty && d.len(this.dPath) >= 0 && this.exclude.matchesBytes(d.ptr(this.dPath), d.len(this.dPath))) return;
      if (!this.sampled(d)) return;
    } else if (!this.exclude.isEmpty) {
      let ps = e.props;
      let n = ps.len(this.iPath);
      if (n >= 0 && this.exclude.matchesBytes(ps.ptr(this.iPath), n)) return;
    }
    let w = this.out;
    // envelope header (see host/src/telemetry/foreign.ts), then the entry
    w.len = 0;
    w.reserve(14);
    let p = w.ptr;
    store<u8>(p, 1);
    store<u8>(p + 1, <u8>e.level());
    store<u8>(p + 2, this.json ? 1 : 0);
    store<u8>(p + 3, 1); // flags: answer only a drop (no result, so no allocation, for a taken entry)
    store<i64>(p + 4, e.startTimeNs());
    store<u16>(p + 12, <u16>this.logNameBytes.byteLength);
    w.len = 14;
    w.bytes(this.logNameBytes);
    let start = w.len;
    if (this.json) this.formatJSON(e, w);
    else this.formatText(e, w);
    this.emit(w, start);
  }

  private formatText(e: Entry, w: ByteBuffer): void {
    let segs = this.text!.segments;
    for (let i = 0, n = segs.length; i < n; i++) {
      if (!e.write(unchecked(segs[i]), w, false)) w.byte(0x2d); // "-"
    }
  }

  private formatJSON(e: Entry, w: ByteBuffer): void {
    w.byte(0x7b); // {
    let first = true;
    let fields = this.fields;
    for (let i = 0, n = fields.length; i < n; i++) {
      let f = unchecked(fields[i]);
      let mark = w.len;
      // the prefix (`,"key":"`, a few dozen bytes): copied here, without a call per field
      let pn = f.prefixLen;
      let pp = f.prefixPtr;
      if (first) {
        pp++;
        pn--;
      }
      w.reserve(pn + 8);
      copyPrefix(w.ptr + <usize>w.len, pp, <usize>pn);
      w.len += pn;
      let valueAt = f.quoted ? w.len - 1 : w.len;
      let single = f.single;
      let present = true;
      let direct = f.direct;
      if (direct == Direct.Str) {
        let ps = e.props;
        let n = ps.len(f.idx);
        if (n > 0) {
          putJson(w, ps.ptr(f.idx), n);
          w.byte(0x22);
        } else present = false;
      } else if (direct == Direct.Int) {
        w.int(e.props.int(f.idx, 0));
      } else if (single !== null) {
        present = e.write(single, w, true);
        if (present && f.quoted) w.byte(0x22);
      } else {
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
        w.reserve(4);
        store<u32>(w.ptr + <usize>w.len, NULL_WORD); // null
        w.len += 4;
      }
      first = false;
    }
    w.byte(0x7d); // }
  }

  private emit(w: ByteBuffer, start: i32): void {
    if (!this.fallback) {
      let status = callForeignFunctionInto(ACCESS_LOG_FUNCTION, w.ptr, w.len, this.answer);
      if (status == Status.Ok) return;
      // not our host (e.g. Envoy), or the function is not granted: use the proxy log from now on
      this.fallback = true;
      log.warn("wasm_mixer.access_log is not available in this host (status " + status.toString() + "); access-log entries go to the proxy log");
    }
    log.write(LogLevel.Info, String.UTF8.decodeUnsafe(w.ptr + <usize>start, <usize>(w.len - start)));
  }
}

/**
 * Whether formatJSON may write the segment's value itself, as Entry.write would in JSON:
 * one attribute, written as it is (no redaction, truncation, '?' alternative or conversion).
 */
function directOf(seg: Segment): Direct {
  if (seg.idx < 0 || seg.maxLen > 0) return Direct.No;
  switch (seg.op) {
    case Op.Req:
    case Op.Resp:
      return seg.redact == Redact.None && seg.altIdx < 0 ? Direct.Str : Direct.No;
    case Op.ResponseCodeDetails:
    case Op.ResponseFlags:
    case Op.Protocol:
    case Op.UpstreamHost:
    case Op.DownstreamRemoteAddress:
    case Op.DownstreamLocalAddress:
    case Op.RouteName:
      return Direct.Str;
    case Op.ResponseCode:
    case Op.BytesReceived:
    case Op.BytesSent:
    case Op.ConnectionId:
      return Direct.Int;
    case Op.Cel:
    case Op.FilterState: {
      let a = seg.attr!;
      if (a.source == AttrSource.RequestHeader || a.source == AttrSource.ResponseHeader) return seg.redact == Redact.None ? Direct.Str : Direct.No;
      if (a.source == AttrSource.Property && a.type == AttrType.String && a.name != "request.path" && a.name != "request.query") return Direct.Str;
      return Direct.No;
    }
    default:
      return Direct.No;
  }
}

/** Where a segment's values live in the property set. */
function planSegment(e: Entry, seg: Segment): void {
  let ps = e.props;
  switch (seg.op) {
    case Op.StartTime: seg.idx = ps.add(["request", "time"]); break;
    case Op.Req:
      seg.idx = ps.add(["request", "headers", seg.text]);
      if (seg.alt.length > 0) seg.altIdx = ps.add(["request", "headers", seg.alt]);
      seg.redact = e.redactionOf(seg.text);
      seg.altRedact = e.redactionOf(seg.alt);
      break;
    case Op.Resp:
      seg.idx = ps.add(["response", "headers", seg.text]);
      if (seg.alt.length > 0) seg.altIdx = ps.add(["response", "headers", seg.alt]);
      seg.redact = e.redactionOf(seg.text);
      seg.altRedact = e.redactionOf(seg.alt);
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
      if (a.source == AttrSource.RequestHeader || a.source == AttrSource.ResponseHeader) seg.redact = e.redactionOf(a.value);
      if (a.source == AttrSource.RequestHeader) seg.idx = ps.add(["request", "headers", a.value]);
      else if (a.source == AttrSource.ResponseHeader) seg.idx = ps.add(["response", "headers", a.value]);
      else if (a.source == AttrSource.Property && a.type != AttrType.Map) seg.idx = ps.add(a.path);
      break;
    }
    default:
      break;
  }
}

register<Logging>();
