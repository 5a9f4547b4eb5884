// logging: one access-log entry per request, Envoy/Istio style, written in the log phase
// (proxy_on_log, after the response has been sent), so it never adds latency to a response.
//
// Entries are JSON lines by default (Istio's JSON access-log keys) or text from an Envoy
// format string, with severity derived from the status, sampling (errors always kept),
// and redaction of credentials in headers and query strings. The entry is handed to the
// host's access-log sinks with the wasm_mixer.access_log foreign function; a host without
// it (Envoy) gets the entry through proxy_log at info. See README.md for the config.

import { Adapter, Config, LogLevel, MapType, Report, callForeignFunction, getProperty, log, quoteJSON, raw, register } from "wasm-mixer/sdk";
import { Attr, AttrSource, attrString } from "./attributes";
import { Format, Kind, Source, evalSegment, evalText, formatError, parseFormat } from "./format";
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
  "path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
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
  constructor(public key: string, public quotedKey: string, public format: Format) {}
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
    return c.error;
  }

  private addField(c: Config, where: string, key: string, src: string): void {
    let f = parseFormat(src);
    if (f === null) {
      c.fail(where + "." + key, formatError);
      return;
    }
    this.fields.push(new Field(key, quoteJSON(key), f));
  }

  private excluded(path: string): bool {
    let q = path.indexOf("?");
    let p = q < 0 ? path : path.substring(0, q);
    if (this.excludeExact.includes(p)) return true;
    for (let i = 0; i < this.excludePrefix.length; i++) if (p.startsWith(this.excludePrefix[i])) return true;
    return false;
  }

  /** Sampling: errors (status >= always_log_status, no status, or any response flag) are always kept. */
  private sampled(e: Entry): bool {
    if (this.sampleRatio >= 1) return true;
    let code = e.responseCode();
    if (code == 0 || code >= this.alwaysLogStatus) return true;
    if (e.responseFlags() !== null) return true;
    if (this.sampleRatio <= 0) return false;
    let id = e.requestHeader("x-request-id");
    let u: f64 = id !== null && id.length > 0 ? <f64>fnv1a(id) / 4294967296.0 : Math.random();
    return u < this.sampleRatio;
  }

  report(r: Report): void {
    let e = new Entry(r, this);
    let path = e.requestHeader(":path");
    if (path !== null && (this.excludeExact.length > 0 || this.excludePrefix.length > 0) && this.excluded(path)) return;
    if (!this.sampled(e)) return;
    let line = this.json ? this.formatJSON(e) : this.formatText(e);
    this.emit(e, line);
  }

  private formatText(e: Entry): string {
    let parts: string[] = [];
    evalText(this.text!, e, parts);
    return parts.join("");
  }

  private formatJSON(e: Entry): string {
    let parts: string[] = ["{"];
    let first = true;
    let fields = this.fields;
    for (let i = 0, n = fields.length; i < n; i++) {
      let f = unchecked(fields[i]);
      let single = f.format.single;
      let value: string | null;
      let quoted = true;
      if (single !== null) {
        value = evalSegment(single, e);
        quoted = single.kind == Kind.String;
      } else {
        let segs: string[] = [];
        evalText(f.format, e, segs);
        value = segs.join("");
      }
      if (value === null && this.omitEmpty) continue;
      if (!first) parts.push(",");
      first = false;
      parts.push(f.quotedKey);
      parts.push(":");
      if (value === null) parts.push("null");
      else parts.push(quoted ? quoteJSON(value) : value);
    }
    parts.push("}");
    return parts.join("");
  }

  private emit(e: Entry, line: string): void {
    let level = e.level();
    if (!this.fallback) {
      let nameLen = this.logNameBytes.byteLength;
      let lineLen = String.UTF8.byteLength(line);
      let env = new ArrayBuffer(14 + nameLen + lineLen);
      let p = changetype<usize>(env);
      store<u8>(p, 1);
      store<u8>(p + 1, <u8>level);
      store<u8>(p + 2, this.json ? 1 : 0);
      store<u8>(p + 3, 0);
      store<i64>(p + 4, e.startTimeNs());
      store<u16>(p + 12, <u16>nameLen);
      memory.copy(p + 14, changetype<usize>(this.logNameBytes), nameLen);
      String.UTF8.encodeUnsafe(changetype<usize>(line), line.length, p + 14 + nameLen);
      if (callForeignFunction(ACCESS_LOG_FUNCTION, env) !== null) return;
      this.fallback = true; // not our host (e.g. Envoy): use the log from now on
      log.info("wasm_mixer.access_log is not available in this host; access-log entries go to the proxy log");
    }
    log.write(LogLevel.Info, line);
  }
}

/**
 * One finished request as the format reads it. Values are fetched from the host on first
 * use and cached, so a field used twice (or by severity and a field) costs one host call.
 */
class Entry extends Source {
  private _code: i64 = -1;
  private _flags: string | null = null;
  private _flagsRead: bool = false;

  constructor(private r: Report, private cfg: Logging) {
    super();
  }

  startTimeNs(): i64 {
    return this.r.time;
  }

  private redactHeader(name: string, v: string | null): string | null {
    if (v === null) return null;
    if (this.cfg.redactHeaders.includes(name)) return this.cfg.replacement;
    if (name == ":path") return redactQuery(v, this.cfg.redactQuery, this.cfg.replacement);
    return v;
  }

  requestHeader(name: string): string | null {
    return this.redactHeader(name, raw.getHeader(MapType.HttpRequestHeaders, name));
  }

  responseHeader(name: string): string | null {
    if (this.cfg.redactHeaders.includes(name)) {
      let v = raw.getHeader(MapType.HttpResponseHeaders, name);
      return v === null ? null : this.cfg.replacement;
    }
    return raw.getHeader(MapType.HttpResponseHeaders, name);
  }

  responseTrailer(name: string): string | null {
    let v = raw.getHeader(MapType.HttpResponseTrailers, name);
    if (v !== null && this.cfg.redactHeaders.includes(name)) return this.cfg.replacement;
    return v;
  }

  responseCode(): i64 {
    if (this._code < 0) this._code = this.r.responseCode;
    return this._code;
  }

  responseCodeDetails(): string | null {
    let v = this.r.responseCodeDetails;
    return v.length == 0 ? null : v;
  }

  responseFlags(): string | null {
    if (!this._flagsRead) {
      let v = this.r.responseFlags;
      this._flags = v.length == 0 ? null : v;
      this._flagsRead = true;
    }
    return this._flags;
  }

  bytesReceived(): i64 {
    return this.r.requestSize;
  }

  bytesSent(): i64 {
    return this.r.responseSize;
  }

  durationMs(): i64 {
    let d = this.r.duration;
    return d < 0 ? -1 : d / 1_000_000;
  }

  responseDurationMs(): i64 {
    let b = raw_int(BACKEND_LATENCY);
    return b < 0 ? -1 : b / 1_000_000;
  }

  protocol(): string | null {
    return nonEmpty(this.r.protocol);
  }

  upstreamHost(): string | null {
    return nonEmpty(this.r.upstreamAddress);
  }

  upstreamCluster(): string | null {
    return attrString(CLUSTER_NAME);
  }

  downstreamRemoteAddress(): string | null {
    return nonEmpty(this.r.sourceAddress);
  }

  downstreamLocalAddress(): string | null {
    return nonEmpty(this.r.destinationAddress);
  }

  routeName(): string | null {
    return attrString(ROUTE_NAME);
  }

  connectionId(): i64 {
    return this.r.connectionId;
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

  attr(a: Attr): string | null {
    if (a.name == "request.headers") return this.headersJSON(MapType.HttpRequestHeaders);
    if (a.name == "response.headers") return this.headersJSON(MapType.HttpResponseHeaders);
    if (a.name == "response.trailers") return this.headersJSON(MapType.HttpResponseTrailers);
    if (a.source == AttrSource.RequestHeader) return this.requestHeader(a.value);
    if (a.source == AttrSource.ResponseHeader) return this.responseHeader(a.value);
    if (a.source == AttrSource.ResponseTrailer) return this.responseTrailer(a.value);
    let v = attrString(a);
    if (v === null) return null;
    if (a.name == "request.path") return redactQuery(v, this.cfg.redactQuery, this.cfg.replacement);
    if (a.name == "request.query") return redactQuery("?" + v, this.cfg.redactQuery, this.cfg.replacement).substring(1);
    return v;
  }
}

function nonEmpty(s: string): string | null {
  return s.length == 0 ? null : s;
}

const BACKEND_LATENCY = attrOf("response.backend_latency");
const CLUSTER_NAME = attrOf("cluster_name");
const ROUTE_NAME = attrOf("route_name");

function attrOf(name: string): Attr {
  let a = new Attr();
  a.name = name;
  a.path = name.split(".");
  return a;
}

function raw_int(a: Attr): i64 {
  let b = attrBytes(a);
  if (b === null || b.byteLength != 8) return -1;
  return load<i64>(changetype<usize>(b));
}

function attrBytes(a: Attr): ArrayBuffer | null {
  return getProperty(a.path);
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
