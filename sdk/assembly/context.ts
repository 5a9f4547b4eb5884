// What adapter authors subclass and receive: Adapter (one per plugin, the
// root context), Request / Report (one per HTTP stream), Decision, and
// HttpCallResponse. The dispatcher (dispatcher.ts) drives them.

import { Action, BufferType, MapType, StreamType } from "./abi/constants";
import * as host from "./hostcalls";
import { Headers } from "./pairs";
import { ByteBuffer } from "./bytes";
import { Config } from "./config";
import { JSONResult, parseJSON, quoteJSON } from "./json";
import { encodePath } from "./properties";
import { log } from "./log";
import { registerCall } from "./calls";

// ---- decisions ---------------------------------------------------------------------------------

export enum DecisionKind {
  Allow = 0,
  Deny = 1,
  Pause = 2,
}

/** The outcome of Adapter.check (or of an HTTP call-out callback). */
export class Decision {
  kind: DecisionKind;
  status: u32 = 0;
  body: string = "";
  headers: Headers | null = null;
  /** Response code details the host may log for a denial (e.g. "header_check_missing"). */
  details: string = "";

  constructor(kind: DecisionKind) {
    this.kind = kind;
  }

  /** Let the request through. */
  static allow(): Decision {
    return ALLOW;
  }

  /** Answer the client with `status`, `body` and `headers` (proxy_send_local_response); the upstream is not called. */
  static deny(status: u32, body: string = "", headers: Headers | null = null): Decision {
    let d = new Decision(DecisionKind.Deny);
    d.status = status;
    d.body = body;
    d.headers = headers;
    return d;
  }

  /** deny() with a JSON body {"error": message} and content-type application/json. */
  static denyJSON(status: u32, message: string, headers: Headers | null = null): Decision {
    let h = headers !== null ? headers : new Headers();
    h.set("content-type", "application/json");
    return Decision.deny(status, "{\"error\":" + quoteJSON(message) + "}", h);
  }

  /**
   * Hold the request: the header callback returns PAUSE. Resume it later from
   * an HTTP call-out callback (by returning allow/deny there) or with
   * Request.resume() / Request.deny().
   */
  static pause(): Decision {
    return PAUSE;
  }

  /** Sets response code details (denials only). Returns this. */
  withDetails(details: string): Decision {
    if (this.kind == DecisionKind.Deny) this.details = details;
    return this;
  }

  get isAllow(): bool { return this.kind == DecisionKind.Allow; }
  get isDeny(): bool { return this.kind == DecisionKind.Deny; }
  get isPause(): bool { return this.kind == DecisionKind.Pause; }
}

const ALLOW = new Decision(DecisionKind.Allow);
const PAUSE = new Decision(DecisionKind.Pause);

// ---- HTTP call-outs ----------------------------------------------------------------------------

/** Callback for a call made from a request: returns what to do with that request. */
export type HttpCallback = (req: Request, resp: HttpCallResponse) => Decision;

/** Callback for a call made from the adapter itself (e.g. in onTick). */
export type AdapterHttpCallback = (adapter: Adapter, resp: HttpCallResponse) => void;

/** The answer to proxy_http_call. Headers and body are readable only inside the callback. */
export class HttpCallResponse {
  private _body: ArrayBuffer | null = null;

  constructor(
    public readonly token: u32,
    public readonly headerCount: u32,
    public readonly bodySize: u32,
    public readonly trailerCount: u32,
  ) {}

  /** The call failed (timeout, reset, unknown upstream): the host reports no headers. */
  get failed(): bool {
    return this.headerCount == 0;
  }

  /** HTTP status from ":status", or 0 when the call failed. */
  get status(): i32 {
    if (this.failed) return 0;
    let s = host.getHeaderMapValue(MapType.HttpCallResponseHeaders, ":status");
    if (s === null) return 0;
    return I32.parseInt(s, 10);
  }

  header(name: string): string | null {
    if (this.failed) return null;
    return host.getHeaderMapValue(MapType.HttpCallResponseHeaders, name);
  }

  headers(): Headers {
    if (this.failed) return new Headers();
    return host.getHeaderMapPairs(MapType.HttpCallResponseHeaders);
  }

  /** The response body (empty when none). */
  body(): ArrayBuffer {
    let b = this._body;
    if (b === null) {
      b = this.bodySize == 0 ? null : host.getBufferBytes(BufferType.HttpCallResponseBody, 0, this.bodySize);
      if (b === null) b = new ArrayBuffer(0);
      this._body = b;
    }
    return b;
  }

  /** The body decoded as UTF-8. */
  text(): string {
    return String.UTF8.decode(this.body());
  }

  /** The body parsed as JSON. */
  json(): JSONResult {
    return parseJSON(this.text());
  }
}

// ---- properties with caching -------------------------------------------------------------------

// Encoded two-segment paths of the well-known properties, built once: the
// attribute getters run on every request and should not allocate a path each time.
const pathA: string[] = [];
const pathB: string[] = [];
const pathBuf: ArrayBuffer[] = [];

function path2(a: string, b: string): ArrayBuffer {
  for (let i = 0, n = pathA.length; i < n; i++) {
    if (unchecked(pathA[i]) == a && unchecked(pathB[i]) == b) return unchecked(pathBuf[i]);
  }
  let buf = encodePath([a, b]);
  pathA.push(a);
  pathB.push(b);
  pathBuf.push(buf);
  return buf;
}

function strProp(a: string, b: string): string {
  let s = host.getPropertyString(path2(a, b));
  return s === null ? "" : s;
}

function intProp(a: string, b: string): i64 {
  let buf = host.getPropertyBytes(path2(a, b));
  if (buf === null || buf.byteLength != 8) return 0;
  return load<i64>(changetype<usize>(buf));
}

// Response-header operations queued by Request.addResponseHeader/setResponseHeader.
const OP_ADD: u8 = 0;
const OP_SET: u8 = 1;
const OP_REMOVE: u8 = 2;

// ---- requests ----------------------------------------------------------------------------------

/**
 * One HTTP request (a Proxy-Wasm stream context). Attributes come from host
 * properties and are cached once read. Header names are lower case.
 */
export class Request {
  /** @internal true while the request is held after Decision.pause(). */
  paused: bool = false;
  /** @internal a local response was sent. */
  denied: bool = false;
  /** @internal outstanding HTTP calls made from this request. */
  pendingCalls: i32 = 0;

  private _method: string | null = null;
  private _path: string | null = null;
  private _host: string | null = null;
  private _scheme: string | null = null;
  private _id: string | null = null;
  private _source: string | null = null;
  private respOps: u8[] | null = null;
  private respNames: string[] | null = null;
  private respValues: string[] | null = null;
  private locals: Map<string, string> | null = null;
  private _contextId: u32;
  private _adapter: Adapter;
  /**
   * @internal The adapter may hold this object past the request's end (it paused the
   * request or made a call-out for it): the dispatcher then never reuses it for another.
   */
  retained: bool = false;
  /** @internal next free object in the dispatcher's pool. */
  nextFree: Request | null = null;

  constructor(contextId: u32, adapter: Adapter) {
    this._contextId = contextId;
    this._adapter = adapter;
  }

  /** Proxy-Wasm context id of this stream. */
  get contextId(): u32 {
    return this._contextId;
  }

  /** The adapter instance (root context) handling this request. */
  get adapter(): Adapter {
    return this._adapter;
  }

  /**
   * @internal Clears an ended request for reuse: every per-request field as the constructor
   * leaves it, so nothing of it shows in the next request (sdk/test: "a reused context is
   * fresh"). A field added to Request must be reset here too.
   */
  reset(): void {
    this.paused = false;
    this.denied = false;
    this.pendingCalls = 0;
    this.retained = false;
    // References cleared with plain stores: `this.f = null` calls the GC's write barrier
    // (__link) for each, which has nothing to do for a null.
    let p = changetype<usize>(this);
    store<usize>(p + offsetof<Request>("_method"), 0);
    store<usize>(p + offsetof<Request>("_path"), 0);
    store<usize>(p + offsetof<Request>("_host"), 0);
    store<usize>(p + offsetof<Request>("_scheme"), 0);
    store<usize>(p + offsetof<Request>("_id"), 0);
    store<usize>(p + offsetof<Request>("_source"), 0);
    store<usize>(p + offsetof<Request>("respOps"), 0);
    store<usize>(p + offsetof<Request>("respNames"), 0);
    store<usize>(p + offsetof<Request>("respValues"), 0);
    store<usize>(p + offsetof<Request>("locals"), 0);
    store<usize>(p + offsetof<Request>("nextFree"), 0);
  }

  /** @internal Gives a reset() object to a new request. */
  reuse(contextId: u32, adapter: Adapter): void {
    this._contextId = contextId;
    this._adapter = adapter;
    this.nextFree = null;
  }

  // -- attributes (request.*, source.*, destination.*, connection.*) --

  /** request.method, e.g. "GET". */
  get method(): string {
    let v = this._method;
    if (v === null) this._method = v = strProp("request", "method");
    return v;
  }

  /** request.path: path and query, e.g. "/a/b?x=1". */
  get path(): string {
    let v = this._path;
    if (v === null) this._path = v = strProp("request", "path");
    return v;
  }

  /** request.url_path: the path without the query. */
  get urlPath(): string {
    return strProp("request", "url_path");
  }

  /** request.query: the query string without "?". */
  get query(): string {
    return strProp("request", "query");
  }

  /** request.host (the :authority / Host header). */
  get host(): string {
    let v = this._host;
    if (v === null) this._host = v = strProp("request", "host");
    return v;
  }

  /** request.scheme, "http" or "https". */
  get scheme(): string {
    let v = this._scheme;
    if (v === null) this._scheme = v = strProp("request", "scheme");
    return v;
  }

  /** request.protocol, e.g. "HTTP/1.1". */
  get protocol(): string {
    return strProp("request", "protocol");
  }

  /** request.referer. */
  get referer(): string {
    return strProp("request", "referer");
  }

  /** request.useragent. */
  get userAgent(): string {
    return strProp("request", "useragent");
  }

  /** request.id (x-request-id). */
  get id(): string {
    let v = this._id;
    if (v === null) this._id = v = strProp("request", "id");
    return v;
  }

  /** request.time: when the request started, nanoseconds since the epoch. */
  get time(): i64 {
    return intProp("request", "time");
  }

  /** source.address, "ip:port". */
  get sourceAddress(): string {
    let v = this._source;
    if (v === null) this._source = v = strProp("source", "address");
    return v;
  }

  /** The IP part of source.address (IPv6 without brackets). */
  get sourceIp(): string {
    return hostPart(this.sourceAddress);
  }

  /** source.port. */
  get sourcePort(): i64 {
    return intProp("source", "port");
  }

  /** destination.address, "ip:port". */
  get destinationAddress(): string {
    return strProp("destination", "address");
  }

  /** destination.port. */
  get destinationPort(): i64 {
    return intProp("destination", "port");
  }

  /** connection.id. */
  get connectionId(): i64 {
    return intProp("connection", "id");
  }

  // -- request headers --

  /** First value of a request header (lower-case name; ":method", ":path", ":authority", ":scheme" too), or null. */
  header(name: string): string | null {
    return host.getHeaderMapValue(MapType.HttpRequestHeaders, name);
  }

  /** Whether the request has the header (no string is made for its value). */
  hasHeader(name: string): bool {
    return host.hasHeaderMapValue(MapType.HttpRequestHeaders, name);
  }

  /** First value of a request header as UTF-8 bytes into `out` (reused, no allocation); false when absent. */
  headerInto(name: string, out: ByteBuffer): bool {
    return host.getHeaderMapValueInto(MapType.HttpRequestHeaders, name, out);
  }

  /** All request headers, in order. */
  headers(): Headers {
    return host.getHeaderMapPairs(MapType.HttpRequestHeaders);
  }

  /** Sets a header on the request sent upstream (replacing existing values). */
  setHeader(name: string, value: string): void {
    host.replaceHeaderMapValue(MapType.HttpRequestHeaders, name, value);
  }

  /** Adds a header value on the request sent upstream. */
  addHeader(name: string, value: string): void {
    host.addHeaderMapValue(MapType.HttpRequestHeaders, name, value);
  }

  /** Removes a header from the request sent upstream. */
  removeHeader(name: string): void {
    host.removeHeaderMapValue(MapType.HttpRequestHeaders, name);
  }

  // -- response headers (applied when the upstream response headers arrive) --

  private queueResponseOp(op: u8, name: string, value: string): void {
    let ops = this.respOps;
    if (ops === null) {
      this.respOps = ops = [];
      this.respNames = [];
      this.respValues = [];
    }
    ops.push(op);
    this.respNames!.push(name);
    this.respValues!.push(value);
  }

  /** Adds a header to the response sent to the client. */
  addResponseHeader(name: string, value: string): void {
    this.queueResponseOp(OP_ADD, name, value);
  }

  /** Sets (replaces) a header on the response sent to the client. */
  setResponseHeader(name: string, value: string): void {
    this.queueResponseOp(OP_SET, name, value);
  }

  /** Removes a header from the response sent to the client. */
  removeResponseHeader(name: string): void {
    this.queueResponseOp(OP_REMOVE, name, "");
  }

  /** @internal Applies queued response-header operations (in on_response_headers). */
  applyResponseHeaders(): void {
    let ops = this.respOps;
    if (ops === null) return;
    let names = this.respNames!;
    let values = this.respValues!;
    for (let i = 0; i < ops.length; i++) {
      let op = unchecked(ops[i]);
      if (op == OP_ADD) host.addHeaderMapValue(MapType.HttpResponseHeaders, unchecked(names[i]), unchecked(values[i]));
      else if (op == OP_SET) host.replaceHeaderMapValue(MapType.HttpResponseHeaders, unchecked(names[i]), unchecked(values[i]));
      else host.removeHeaderMapValue(MapType.HttpResponseHeaders, unchecked(names[i]));
    }
    this.respOps = null;
    this.respNames = null;
    this.respValues = null;
  }

  // -- per-request scratch space, private to this adapter --

  setLocal(key: string, value: string): void {
    let m = this.locals;
    if (m === null) this.locals = m = new Map<string, string>();
    m.set(key, value);
  }

  getLocal(key: string): string | null {
    let m = this.locals;
    if (m === null || !m.has(key)) return null;
    return m.get(key);
  }

  // -- asynchronous work --

  /**
   * Calls `upstream` (a cluster name the host knows). `headers` must include
   * :method, :path and :authority. When the answer arrives `cb(req, resp)`
   * runs with this request as the effective context, and the Decision it
   * returns is applied to the request (allow resumes a paused request, deny
   * sends a local response, pause keeps waiting). Returns false (and logs)
   * when the host refuses the call.
   */
  httpCall(upstream: string, headers: Headers, body: ArrayBuffer | null, timeoutMs: u32, cb: HttpCallback): bool {
    let token = host.httpCall(upstream, headers, body, null, timeoutMs);
    if (token < 0) {
      log.warn("http call to '" + upstream + "' refused by the host (status " + host.lastCallStatus.toString() + ")");
      return false;
    }
    registerCall(<u32>token, this.contextId, this.adapter.contextId, cb, null);
    this.pendingCalls++;
    this.retained = true;
    return true;
  }

  /** Resumes a request held by Decision.pause() (proxy_continue_stream). */
  resume(): void {
    applyDecision(this, Decision.allow(), true);
  }

  /** Denies a held request (proxy_send_local_response). */
  deny(status: u32, body: string = "", headers: Headers | null = null): void {
    applyDecision(this, Decision.deny(status, body, headers), true);
  }
}

/**
 * Everything a Request has, plus what is known once the response is done:
 * passed to Adapter.report (from proxy_on_log) and Adapter.onResponse.
 */
export class Report extends Request {
  /** response.code, the HTTP status sent to the client (0 if none). */
  get responseCode(): i32 {
    return <i32>intProp("response", "code");
  }

  /** response.code_details. */
  get responseCodeDetails(): string {
    return strProp("response", "code_details");
  }

  /** response.flags, Envoy-style short flags (e.g. "UH", "UF"; "" when none). */
  get responseFlags(): string {
    return strProp("response", "flags");
  }

  /** request.size: request body bytes. */
  get requestSize(): i64 {
    return intProp("request", "size");
  }

  /** request.total_size: request bytes including headers. */
  get requestTotalSize(): i64 {
    return intProp("request", "total_size");
  }

  /** response.size: response body bytes. */
  get responseSize(): i64 {
    return intProp("response", "size");
  }

  /** response.total_size: response bytes including headers. */
  get responseTotalSize(): i64 {
    return intProp("response", "total_size");
  }

  /** request.duration: nanoseconds from the first request byte to the end of the response. */
  get duration(): i64 {
    return intProp("request", "duration");
  }

  /** upstream.address, "ip:port" of the upstream host that served the request ("" if none). */
  get upstreamAddress(): string {
    return strProp("upstream", "address");
  }

  /** First value of a response header (":status" too), or null. */
  responseHeader(name: string): string | null {
    return host.getHeaderMapValue(MapType.HttpResponseHeaders, name);
  }

  /** First value of a response header as UTF-8 bytes into `out` (reused); false when absent. */
  responseHeaderInto(name: string, out: ByteBuffer): bool {
    return host.getHeaderMapValueInto(MapType.HttpResponseHeaders, name, out);
  }

  /** All response headers. */
  responseHeaders(): Headers {
    return host.getHeaderMapPairs(MapType.HttpResponseHeaders);
  }
}

/** "1.2.3.4:80" -> "1.2.3.4", "[::1]:80" -> "::1", "1.2.3.4" -> "1.2.3.4". */
export function hostPart(address: string): string {
  if (address.startsWith("[")) {
    let end = address.indexOf("]");
    return end > 0 ? address.substring(1, end) : address;
  }
  let colon = address.lastIndexOf(":");
  if (colon < 0 || address.indexOf(":") != colon) return address; // no port, or bare IPv6
  return address.substring(0, colon);
}

// ---- applying decisions ------------------------------------------------------------------------

/**
 * Applies a decision to a request. In the header callback (async=false) the
 * return value is the callback's action; from a call-out callback
 * (async=true) a held request is resumed or answered.
 */
export function applyDecision(req: Request, d: Decision, later: bool): u32 {
  if (d.kind == DecisionKind.Allow) {
    if (later && req.paused) {
      req.paused = false;
      host.continueStream(StreamType.HttpRequest);
    }
    return Action.Continue;
  }
  if (d.kind == DecisionKind.Deny) {
    if (req.denied) return Action.Pause;
    if (later && !req.paused) {
      log.warn("deny ignored: the request was already allowed to continue");
      return Action.Continue;
    }
    req.paused = false;
    req.denied = true;
    let body = d.body.length > 0 ? String.UTF8.encode(d.body) : null;
    host.sendLocalResponse(d.status, d.details, body, d.headers, -1);
    return Action.Pause;
  }
  req.paused = true;
  req.retained = true; // whoever resumes it later holds it
  return Action.Pause;
}

// ---- the adapter -------------------------------------------------------------------------------

/**
 * Base class of every adapter. One instance per plugin (root context) in the
 * VM. Override what you need; every method has a harmless default.
 */
export class Adapter {
  /** Proxy-Wasm root context id. */
  contextId: u32 = 0;
  /**
   * Token of the last call started by httpCall (0 if none yet). The callback's
   * HttpCallResponse.token carries the same value, so an adapter with several
   * calls in flight can tell which one answered (callbacks cannot capture).
   */
  lastCallToken: u32 = 0;

  /**
   * Receives the plugin configuration (JSON). Return null to accept it, or an
   * error message to refuse it: proxy_on_configure then fails and the message
   * is logged at error level. Config getters collect errors, so `return c.error`
   * is a fine last line.
   */
  configure(config: Config): string | null {
    return null;
  }

  /** Decides on a request (from proxy_on_request_headers). */
  check(req: Request): Decision {
    return Decision.allow();
  }

  /** Sees the upstream response headers (from proxy_on_response_headers); response headers queued here or earlier are applied right after. */
  onResponse(r: Report): void {}

  /** Reports a finished request with its full attribute set (from proxy_on_log). */
  report(r: Report): void {}

  /**
   * The request's context is being deleted (proxy_on_delete, after report): drop what the
   * adapter keeps about it outside the Request. proxy_on_delete is always exported, so an
   * adapter whose report would only clean up can do it here and leave proxy_on_log out
   * (a guest call fewer per request). The request's attributes are no longer readable.
   */
  onEnd(r: Report): void {}

  /** Periodic work; enable with setTickPeriod(ms). */
  onTick(): void {}

  /** An item arrived on a queue this VM registered. */
  onQueueReady(queueId: u32): void {}

  /** Starts (ms > 0) or stops (0) the periodic onTick. */
  setTickPeriod(ms: u32): void {
    host.setTickPeriod(ms);
  }

  /** plugin_name of this plugin ("" if the host does not say). */
  get pluginName(): string {
    let s = host.getPropertyString(encodePath(["plugin_name"]));
    return s === null ? "" : s;
  }

  /**
   * An HTTP call not tied to a request (e.g. refreshing a cache in onTick).
   * `cb(adapter, resp)` runs when the answer arrives. false when the host refuses.
   */
  httpCall(upstream: string, headers: Headers, body: ArrayBuffer | null, timeoutMs: u32, cb: AdapterHttpCallback): bool {
    let token = host.httpCall(upstream, headers, body, null, timeoutMs);
    if (token < 0) {
      log.warn("http call to '" + upstream + "' refused by the host (status " + host.lastCallStatus.toString() + ")");
      return false;
    }
    this.lastCallToken = <u32>token;
    registerCall(<u32>token, 0, this.contextId, null, cb);
    return true;
  }
}
