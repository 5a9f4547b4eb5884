// One finished request as the access-log format reads it, written straight into the
// entry's buffer. Values come from the adapter's PropertySet (one host call per request)
// as UTF-8 bytes and are copied (JSON-escaped where needed) without making strings;
// strings are made only for what has to be transformed (redaction, truncation, strftime).

import { ByteBuffer, LogLevel, MapType, PropertySet, AttrSource, AttrType, attrString, isoTime, strftime, quoteJSON, raw } from "wasm-mixer/sdk";
import { Op, Redact, Segment } from "./format";
import { pathUnchanged, redactQuery } from "./redact";
import { writeIsoTime } from "./time";
import { putJson } from "./copy";

/** severity()'s words as UTF-8, written without encoding them per entry. */
const SEV_ERROR = String.UTF8.encode("error");
const SEV_WARN = String.UTF8.encode("warn");
const SEV_INFO = String.UTF8.encode("info");

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
export class Entry {
  props: PropertySet = new PropertySet();
  iTime: i32 = -1;
  iCode: i32 = -1;
  iUpstream: i32 = -1;
  redactHeaders: string[] = [];
  redactQuery: string[] = [];
  replacement: string = "[REDACTED]";

  /** How a header's value is redacted. */
  redactionOf(name: string): Redact {
    if (this.redactHeaders.includes(name)) return Redact.Value;
    return name == ":path" ? Redact.Query : Redact.None;
  }

  startTimeNs(): i64 {
    return this.props.int(this.iTime, 0);
  }

  responseCode(): i64 {
    return this.props.int(this.iCode, 0);
  }

  private redactValue(name: string, v: string | null): string | null {
    if (v === null) return null;
    if (this.redactHeaders.includes(name)) return this.replacement;
    if (name == ":path") return redactQuery(v, this.redactQuery, this.replacement);
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
      if (this.redactHeaders.includes(k)) v = this.replacement;
      else if (k == ":path") v = redactQuery(v, this.redactQuery, this.replacement);
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

  private putStr(w: ByteBuffer, v: string | null, json: bool, maxLen: i32): bool {
    if (v === null || v.length == 0) return false;
    if (maxLen > 0 && v.length > maxLen) v = v.substring(0, maxLen);
    if (json) w.jsonStr(v);
    else w.str(v);
    return true;
  }

  /** Value i of the property set, as it is (UTF-8), escaped for JSON when needed. */
  private putValue(w: ByteBuffer, i: i32, json: bool, maxLen: i32): bool {
    let ps = this.props;
    let n = ps.len(i);
    if (n <= 0) return false;
    if (maxLen > 0) return this.putStr(w, ps.str(i), json, maxLen);
    if (json) putJson(w, ps.ptr(i), n);
    else w.raw(ps.ptr(i), n);
    return true;
  }

  /** A header from the set, redacted as its name requires (see redactionOf). */
  private putHeader(w: ByteBuffer, redact: Redact, i: i32, json: bool, maxLen: i32): bool {
    let ps = this.props;
    let n = ps.len(i);
    if (n <= 0) return false;
    if (redact == Redact.Value) return this.putStr(w, this.replacement, json, maxLen);
    if (redact == Redact.Query && (maxLen > 0 || !pathUnchanged(ps.ptr(i), n, this.redactQuery))) {
      return this.putStr(w, redactQuery(ps.str(i)!, this.redactQuery, this.replacement), json, maxLen);
    }
    return this.putValue(w, i, json, maxLen);
  }

  private putHost(w: ByteBuffer, i: i32, json: bool): bool {
    let ps = this.props;
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
  private putAttr(w: ByteBuffer, seg: Segment, json: bool): bool {
    let a = seg.attr!;
    let ps = this.props;
    switch (a.source) {
      case AttrSource.Literal:
        return this.putStr(w, a.value, json, seg.maxLen);
      case AttrSource.RequestHeader:
      case AttrSource.ResponseHeader:
        return this.putHeader(w, seg.redact, seg.idx, json, seg.maxLen);
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
    if (a.name == "request.path") return this.putStr(w, redactQuery(ps.str(i)!, this.redactQuery, this.replacement), json, seg.maxLen);
    if (a.name == "request.query" && ps.len(i) > 0) return this.putStr(w, redactQuery("?" + ps.str(i)!, this.redactQuery, this.replacement).substring(1), json, seg.maxLen);
    return this.putValue(w, i, json, seg.maxLen);
  }

  /** Writes one operator's value; false (nothing written) when the request does not have it. */
  write(seg: Segment, w: ByteBuffer, json: bool): bool {
    let ps = this.props;
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
        if (this.putHeader(w, seg.redact, seg.idx, json, seg.maxLen)) return true;
        return seg.altIdx >= 0 && this.putHeader(w, seg.altRedact, seg.altIdx, json, seg.maxLen);
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
        if (ps.empty(this.iUpstream)) return false;
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
      case Op.Severity: {
        let l = this.level();
        w.bytes(l == LogLevel.Error ? SEV_ERROR : l == LogLevel.Warn ? SEV_WARN : SEV_INFO);
        return true;
      }
      default:
        return false;
    }
  }
}

