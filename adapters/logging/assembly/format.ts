// Envoy access-log format strings: "%OPERATOR%" / "%OPERATOR(arg)%" / "%REQ(X?Y):N%"
// (https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage),
// the subset that has a meaning in this host, parsed once at configure time and evaluated
// per entry by the adapter's Entry, which writes each value straight into the output.

import { Attr, AttrSource, AttrType, parseAttr, attrError } from "wasm-mixer/sdk";

export enum Op {
  Literal = 0,
  StartTime,
  Req,
  Resp,
  Trailer,
  ResponseCode,
  ResponseCodeDetails,
  ResponseFlags,
  BytesReceived,
  BytesSent,
  Duration,
  ResponseDuration,
  Protocol,
  UpstreamHost,
  UpstreamCluster,
  DownstreamRemoteAddress,
  DownstreamRemoteAddressWithoutPort,
  DownstreamLocalAddress,
  DownstreamLocalAddressWithoutPort,
  RouteName,
  ConnectionId,
  FilterState,
  Cel,
  Severity,
  RequestedServerName,
  Hostname,
}

/** Redaction of a header value, decided once per header name at configure time. */
export enum Redact {
  None = 0,
  /** A sensitive header: the value is replaced. */
  Value = 1,
  /** :path: sensitive query parameters are replaced. */
  Query = 2,
}

/** What an operator evaluates to, for typed JSON output. */
export enum Kind {
  String = 0,
  Number = 1,
}

export class Segment {
  op: Op = Op.Literal;
  /** Literal text, or the first header name (lower case), or START_TIME's format. */
  text: string = "";
  /** REQ/RESP/TRAILER: the alternative header after '?'. */
  alt: string = "";
  /** Truncation length from ":N" (0: none). */
  maxLen: i32 = 0;
  attr: Attr | null = null;
  /** Where the adapter's PropertySet holds this operator's value (and the '?' alternative's). */
  idx: i32 = -1;
  altIdx: i32 = -1;
  /** How the adapter redacts the header this operator reads (and the '?' alternative): see Redact. */
  redact: Redact = Redact.None;
  altRedact: Redact = Redact.None;

  get kind(): Kind {
    let o = this.op;
    if (o == Op.Cel || o == Op.FilterState) {
      let a = this.attr!;
      return a.source == AttrSource.Property && (a.type == AttrType.Int || a.type == AttrType.Duration) ? Kind.Number : Kind.String;
    }
    return o == Op.ResponseCode || o == Op.BytesReceived || o == Op.BytesSent || o == Op.Duration ||
      o == Op.ResponseDuration || o == Op.ConnectionId ? Kind.Number : Kind.String;
  }
}

export class Format {
  segments: Segment[] = [];
  source: string = "";

  /** A single operator and nothing else: JSON output keeps its type (number or null). */
  get single(): Segment | null {
    return this.segments.length == 1 && this.segments[0].op != Op.Literal ? this.segments[0] : null;
  }
}

/** Why the last parseFormat returned null. */
export let formatError: string = "";

const NAMES: string[] = [
  "START_TIME", "REQ", "RESP", "TRAILER", "RESPONSE_CODE", "RESPONSE_CODE_DETAILS", "RESPONSE_FLAGS",
  "BYTES_RECEIVED", "BYTES_SENT", "DURATION", "RESPONSE_DURATION", "PROTOCOL", "UPSTREAM_HOST", "UPSTREAM_CLUSTER",
  "DOWNSTREAM_REMOTE_ADDRESS", "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", "DOWNSTREAM_LOCAL_ADDRESS",
  "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", "ROUTE_NAME", "CONNECTION_ID", "FILTER_STATE", "CEL", "SEVERITY",
  "REQUESTED_SERVER_NAME", "HOSTNAME",
];
const OPS: Op[] = [
  Op.StartTime, Op.Req, Op.Resp, Op.Trailer, Op.ResponseCode, Op.ResponseCodeDetails, Op.ResponseFlags,
  Op.BytesReceived, Op.BytesSent, Op.Duration, Op.ResponseDuration, Op.Protocol, Op.UpstreamHost, Op.UpstreamCluster,
  Op.DownstreamRemoteAddress, Op.DownstreamRemoteAddressWithoutPort, Op.DownstreamLocalAddress,
  Op.DownstreamLocalAddressWithoutPort, Op.RouteName, Op.ConnectionId, Op.FilterState, Op.Cel, Op.Severity,
  Op.RequestedServerName, Op.Hostname,
];
/** Operators that take "(...)": required (1), optional (2), none (0). */
function argMode(op: Op): i32 {
  if (op == Op.Req || op == Op.Resp || op == Op.Trailer || op == Op.FilterState || op == Op.Cel) return 1;
  if (op == Op.StartTime) return 2;
  return 0;
}

function literal(text: string): Segment {
  let s = new Segment();
  s.text = text;
  return s;
}

/** Parses an Envoy format string, or returns null (see formatError). */
export function parseFormat(src: string): Format | null {
  formatError = "";
  let f = new Format();
  f.source = src;
  let buf: string[] = [];
  let i = 0;
  let n = src.length;
  while (i < n) {
    let c = src.charCodeAt(i);
    if (c != 0x25) {
      buf.push(src.charAt(i));
      i++;
      continue;
    }
    if (i + 1 < n && src.charCodeAt(i + 1) == 0x25) {
      buf.push("%");
      i += 2;
      continue;
    }
    // operator name: upper case letters and _
    let j = i + 1;
    while (j < n) {
      let d = src.charCodeAt(j);
      if (!((d >= 0x41 && d <= 0x5a) || d == 0x5f)) break;
      j++;
    }
    let name = src.substring(i + 1, j);
    let idx = NAMES.indexOf(name);
    if (name.length == 0 || idx < 0) {
      formatError = "unknown command operator %" + name + (j < n ? src.charAt(j) : "") + "... at position " + i.toString() +
        " (write %% for a literal %)";
      return null;
    }
    let seg = new Segment();
    seg.op = OPS[idx];
    let mode = argMode(seg.op);
    let arg = "";
    let hasArg = false;
    if (j < n && src.charCodeAt(j) == 0x28) {
      // find the matching ')' followed by '%' or ':'
      let close = src.indexOf(")", j);
      if (seg.op == Op.StartTime || seg.op == Op.Cel) {
        // the argument may itself contain ')' (strftime, CEL): take the last ')' before the closing '%'
        let end = src.indexOf(")%", j);
        let endLen = src.indexOf("):", j);
        if (end < 0 || (endLen >= 0 && endLen < end)) end = endLen;
        close = end;
      }
      if (close < 0) {
        formatError = "%" + name + "( is not closed by )";
        return null;
      }
      arg = src.substring(j + 1, close);
      hasArg = true;
      j = close + 1;
    }
    if (mode == 1 && !hasArg) {
      formatError = "%" + name + "% needs an argument: %" + name + "(...)%";
      return null;
    }
    if (mode == 0 && hasArg) {
      formatError = "%" + name + "% takes no argument";
      return null;
    }
    if (j < n && src.charCodeAt(j) == 0x3a) {
      // :N truncation
      let k = j + 1;
      while (k < n && src.charCodeAt(k) >= 0x30 && src.charCodeAt(k) <= 0x39) k++;
      if (k == j + 1) {
        formatError = "%" + name + ": expects a length, e.g. %" + name + "(...):10%";
        return null;
      }
      seg.maxLen = I32.parseInt(src.substring(j + 1, k));
      j = k;
    }
    if (j >= n || src.charCodeAt(j) != 0x25) {
      formatError = "%" + name + " is not closed by %";
      return null;
    }
    i = j + 1;
    if (seg.op == Op.Req || seg.op == Op.Resp || seg.op == Op.Trailer) {
      let q = arg.indexOf("?");
      seg.text = (q < 0 ? arg : arg.substring(0, q)).trim().toLowerCase();
      seg.alt = q < 0 ? "" : arg.substring(q + 1).trim().toLowerCase();
      if (seg.text.length == 0) {
        formatError = "%" + name + "()% needs a header name";
        return null;
      }
    } else if (seg.op == Op.StartTime) {
      seg.text = arg;
    } else if (seg.op == Op.FilterState) {
      let a = parseAttr("filter_state['" + arg.trim() + "']");
      if (a === null) {
        formatError = "%FILTER_STATE(" + arg + ")%: " + attrError;
        return null;
      }
      seg.attr = a;
    } else if (seg.op == Op.Cel) {
      let a = parseAttr(arg);
      if (a === null) {
        formatError = "%CEL(" + arg + ")%: " + attrError;
        return null;
      }
      seg.attr = a;
    }
    if (buf.length > 0) {
      f.segments.push(literal(buf.join("")));
      buf = [];
    }
    f.segments.push(seg);
  }
  if (buf.length > 0) f.segments.push(literal(buf.join("")));
  return f;
}
