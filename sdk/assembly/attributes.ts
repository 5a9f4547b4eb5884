// Attribute expressions (used by the logging and prometheus adapters): the small subset
// of CEL that Istio's Telemetry API (tagOverrides values) and Envoy's %CEL(...)% access-log
// operator use for picking one value out of a request.
//
//   request.host                         a property (dotted Envoy attribute name)
//   request.headers['x-user']            one request header (also request.headers.x-user)
//   response.headers['content-type']     one response header; response.trailers['grpc-status']
//   filter_state['mixer.principal']      a value an earlier adapter set with setProperty
//   mixer.principal                      the same, written as a path
//   'literal'  "literal"                 a constant
//
// Values are strings: integers in decimal, durations in nanoseconds, request.time as an
// RFC 3339 timestamp, booleans as true/false, maps (request.headers) as a JSON object.
// A missing attribute is null (logging prints "-" or null; prometheus "unknown").

import { MapType } from "./abi/constants";
import * as host from "./hostcalls";
import { quoteJSON } from "./json";
import { decodePairsBuffer } from "./pairs";
import { encodePath } from "./properties";

export enum AttrSource {
  Literal = 0,
  Property = 1,
  RequestHeader = 2,
  ResponseHeader = 3,
  ResponseTrailer = 4,
}

export enum AttrType {
  String = 0,
  Int = 1,
  Duration = 2,
  Timestamp = 3,
  Bool = 4,
  Map = 5,
}

const INT_ATTRS = [
  "response.code", "request.size", "request.total_size", "response.size", "response.total_size",
  "source.port", "destination.port", "connection.id",
];
const DURATION_ATTRS = ["request.duration", "response.backend_latency"];
const TIMESTAMP_ATTRS = ["request.time"];
const BOOL_ATTRS = ["connection.mtls"];
const MAP_ATTRS = ["request.headers", "response.headers", "response.trailers"];

export class Attr {
  source: AttrSource = AttrSource.Property;
  type: AttrType = AttrType.String;
  /** The literal value, or the header name (lower case). */
  value: string = "";
  /** Property path segments. */
  path: string[] = [];
  /** The path as proxy_get_property takes it, encoded once. */
  encoded: ArrayBuffer = new ArrayBuffer(0);
  /** The dotted name (request.path), for callers that treat some attributes specially. */
  name: string = "";
  /** The expression as written. */
  text: string = "";
}

/** Why the last parseAttr returned null. */
export let attrError: string = "";

function isPathChar(c: i32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2d || c == 0x2e || c == 0x3a;
}

function unquote(s: string): string | null {
  let n = s.length;
  if (n < 2) return null;
  let q = s.charCodeAt(0);
  if ((q != 0x27 && q != 0x22) || s.charCodeAt(n - 1) != q) return null;
  let body = s.substring(1, n - 1);
  if (body.indexOf("\\") < 0) return body;
  let parts: string[] = [];
  for (let i = 0; i < body.length; i++) {
    let c = body.charCodeAt(i);
    if (c == 0x5c && i + 1 < body.length) {
      i++;
      parts.push(body.charAt(i));
    } else parts.push(body.charAt(i));
  }
  return parts.join("");
}

function typeOf(name: string): AttrType {
  if (INT_ATTRS.includes(name)) return AttrType.Int;
  if (DURATION_ATTRS.includes(name)) return AttrType.Duration;
  if (TIMESTAMP_ATTRS.includes(name)) return AttrType.Timestamp;
  if (BOOL_ATTRS.includes(name)) return AttrType.Bool;
  if (MAP_ATTRS.includes(name)) return AttrType.Map;
  return AttrType.String;
}

function header(src: AttrSource, name: string, text: string): Attr {
  let a = new Attr();
  a.source = src;
  a.value = name.toLowerCase();
  a.text = text;
  a.name = (src == AttrSource.RequestHeader ? "request.headers." : src == AttrSource.ResponseHeader ? "response.headers." : "response.trailers.") + a.value;
  return a;
}

/** Parses an attribute expression, or returns null (see attrError). */
export function parseAttr(expr: string): Attr | null {
  let s = expr.trim();
  attrError = "";
  if (s.length == 0) {
    attrError = "empty attribute expression";
    return null;
  }
  let lit = unquote(s);
  if (lit !== null) {
    let a = new Attr();
    a.source = AttrSource.Literal;
    a.value = lit;
    a.text = expr;
    return a;
  }
  let base = s;
  let key: string | null = null;
  let br = s.indexOf("[");
  if (br >= 0) {
    if (!s.endsWith("]")) {
      attrError = "'" + expr + "': a [ must be closed by ] at the end";
      return null;
    }
    key = unquote(s.substring(br + 1, s.length - 1).trim());
    if (key === null) {
      attrError = "'" + expr + "': the key in [...] must be a quoted string";
      return null;
    }
    base = s.substring(0, br).trim();
  }
  for (let i = 0; i < base.length; i++) {
    if (!isPathChar(base.charCodeAt(i))) {
      attrError = "'" + expr + "': not an attribute name, a header ('request.headers[\"x\"]') or a quoted literal";
      return null;
    }
  }
  if (base.length == 0 || base.startsWith(".") || base.endsWith(".") || base.indexOf("..") >= 0) {
    attrError = "'" + expr + "': not an attribute name";
    return null;
  }
  if (key !== null) {
    if (base == "request.headers") return header(AttrSource.RequestHeader, key, expr);
    if (base == "response.headers") return header(AttrSource.ResponseHeader, key, expr);
    if (base == "response.trailers") return header(AttrSource.ResponseTrailer, key, expr);
    let a = new Attr();
    a.text = expr;
    if (base == "filter_state") {
      a.path = [key];
      a.name = key;
    } else {
      a.path = base.split(".");
      a.path.push(key);
      a.name = base + "." + key;
    }
    return a;
  }
  if (base.startsWith("request.headers.") && base.length > 16) return header(AttrSource.RequestHeader, base.substring(16), expr);
  if (base.startsWith("response.headers.") && base.length > 17) return header(AttrSource.ResponseHeader, base.substring(17), expr);
  if (base.startsWith("response.trailers.") && base.length > 18) return header(AttrSource.ResponseTrailer, base.substring(18), expr);
  let a = new Attr();
  a.text = expr;
  a.name = base;
  a.path = base.split(".");
  a.type = typeOf(base);
  return a;
}

/** The raw bytes of a property-backed attribute (null when missing). */
function propertyBytes(a: Attr): ArrayBuffer | null {
  if (a.encoded.byteLength == 0 && a.path.length > 0) a.encoded = encodePath(a.path);
  return host.getPropertyBytes(a.encoded);
}

/** The attribute's value as a string, or null when the request does not have it. */
export function attrString(a: Attr): string | null {
  switch (a.source) {
    case AttrSource.Literal:
      return a.value;
    case AttrSource.RequestHeader:
      return host.getHeaderMapValue(MapType.HttpRequestHeaders, a.value);
    case AttrSource.ResponseHeader:
      return host.getHeaderMapValue(MapType.HttpResponseHeaders, a.value);
    case AttrSource.ResponseTrailer:
      return host.getHeaderMapValue(MapType.HttpResponseTrailers, a.value);
    default:
      break;
  }
  let b = propertyBytes(a);
  if (b === null) return null;
  switch (a.type) {
    case AttrType.Int:
    case AttrType.Duration:
      if (b.byteLength != 8) return null;
      return load<i64>(changetype<usize>(b)).toString();
    case AttrType.Timestamp:
      if (b.byteLength != 8) return null;
      return isoTime(load<i64>(changetype<usize>(b)));
    case AttrType.Bool:
      if (b.byteLength < 1) return null;
      return load<u8>(changetype<usize>(b)) != 0 ? "true" : "false";
    case AttrType.Map: {
      let h = decodePairsBuffer(b);
      let parts: string[] = ["{"];
      for (let i = 0; i < h.length; i++) {
        if (i > 0) parts.push(",");
        parts.push(quoteJSON(h.name(i)));
        parts.push(":");
        parts.push(quoteJSON(h.value(i)));
      }
      parts.push("}");
      return parts.join("");
    }
    default:
      return String.UTF8.decode(b);
  }
}

/** An integer-valued attribute (Int, Duration, Timestamp), or `missing`. */
export function attrInt(a: Attr, missing: i64): i64 {
  if (a.source != AttrSource.Property) return missing;
  let b = propertyBytes(a);
  if (b === null || b.byteLength != 8) return missing;
  return load<i64>(changetype<usize>(b));
}

function pad(v: i32, width: i32): string {
  let s = v.toString();
  while (s.length < width) s = "0" + s;
  return s;
}

/** RFC 3339 UTC with milliseconds, Envoy's default START_TIME: 2026-11-25T00:50:54.123Z */
export function isoTime(ns: i64): string {
  let ms = ns / 1_000_000;
  let d = new Date(ms);
  return pad(d.getUTCFullYear(), 4) + "-" + pad(d.getUTCMonth() + 1, 2) + "-" + pad(d.getUTCDate(), 2) + "T" +
    pad(d.getUTCHours(), 2) + ":" + pad(d.getUTCMinutes(), 2) + ":" + pad(d.getUTCSeconds(), 2) + "." + pad(d.getUTCMilliseconds(), 3) + "Z";
}

/**
 * strftime for START_TIME(fmt), the subset Envoy users reach for:
 *   %Y %m %d %H %M %S  date and time (UTC)     %z  +0000     %Z  UTC
 *   %s  seconds since the epoch                  %1f … %9f  fractional seconds, N digits
 *   %E3S (Envoy) seconds with N decimals, also %E6S %E9S     %%  a percent sign
 * Other characters are copied.
 */
export function strftime(fmt: string, ns: i64): string {
  let ms = ns / 1_000_000;
  let d = new Date(ms);
  let frac = ns % 1_000_000_000;
  if (frac < 0) frac += 1_000_000_000;
  let out: string[] = [];
  let n = fmt.length;
  for (let i = 0; i < n; i++) {
    let c = fmt.charCodeAt(i);
    if (c != 0x25 || i + 1 >= n) {
      out.push(fmt.charAt(i));
      continue;
    }
    let t = fmt.charAt(++i);
    if (t == "Y") out.push(pad(d.getUTCFullYear(), 4));
    else if (t == "m") out.push(pad(d.getUTCMonth() + 1, 2));
    else if (t == "d") out.push(pad(d.getUTCDate(), 2));
    else if (t == "H") out.push(pad(d.getUTCHours(), 2));
    else if (t == "M") out.push(pad(d.getUTCMinutes(), 2));
    else if (t == "S") out.push(pad(d.getUTCSeconds(), 2));
    else if (t == "z") out.push("+0000");
    else if (t == "Z") out.push("UTC");
    else if (t == "s") out.push((ns / 1_000_000_000).toString());
    else if (t == "%") out.push("%");
    else if (t >= "1" && t <= "9" && i + 1 < n && fmt.charAt(i + 1) == "f") {
      i++;
      out.push(pad(<i32>frac, 9).substring(0, <i32>(t.charCodeAt(0) - 0x30)));
    } else if (t == "E" && i + 2 < n && fmt.charAt(i + 2) == "S" && fmt.charAt(i + 1) >= "1" && fmt.charAt(i + 1) <= "9") {
      let digits = <i32>(fmt.charCodeAt(i + 1) - 0x30);
      i += 2;
      out.push(pad(d.getUTCSeconds(), 2) + "." + pad(<i32>frac, 9).substring(0, digits));
    } else {
      out.push("%");
      out.push(t);
    }
  }
  return out.join("");
}
