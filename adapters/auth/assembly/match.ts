// What rules, route requirements and API-key restrictions match on: the
// request's attributes (read lazily, once per request), path patterns, value
// globs, header and claim conditions, and CIDR ranges.

import { Config, JSONValue, Request, getStringProperty, getIntProperty } from "wasm-mixer/sdk";
import { Cidr, Ip, anyContains, parseCidr, parseIp } from "./ip";
import { VerifiedToken, claimByPath } from "./jwt";
import { Bytes, sameBytes } from "wasm-mixer/sdk/assembly/hostbytes";
import { A_METHOD, A_PATH, A_SOURCE, readAttr, readLen, readPtr, resetReads } from "./reads";
import { ByteCache } from "wasm-mixer/sdk/assembly/bytecache";


/** Parsed peer addresses by their text (a pure function: connections repeat a few peers). */
const ipCache = new ByteCache<Ip>(0, 64);

const NO_TOKENS: VerifiedToken[] = [];
const NO_SOURCES: i32[] = [];


// The usual methods, matched on the bytes the host wrote (no string made for them).
const METHODS: string[] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"];
const METHOD_BYTES: ArrayBuffer[] = METHODS.map<ArrayBuffer>((m: string) => String.UTF8.encode(m));

/** request.method upper-cased ("" when the host does not know it). */
function readMethod(): string {
  if (!readAttr(A_METHOD)) return "";
  let p = readPtr;
  let n = readLen;
  for (let i = 0, k = METHODS.length; i < k; i++) if (sameBytes(p, n, unchecked(METHOD_BYTES[i]))) return unchecked(METHODS[i]);
  return upper(n == 0 ? "" : String.UTF8.decodeUnsafe(p, n));
}

/** Normalized paths by the raw request.path (a pure function; clients repeat paths). */
const pathCache = new ByteCache<string>(0, 64, 256);

/** request.path [p, p+n) normalized for matching. */
function pathOf(p: usize, n: usize): string {
  let v = pathCache.get(0, p, n);
  if (v === null) {
    v = normalizePath(n == 0 ? "" : String.UTF8.decodeUnsafe(p, n));
    pathCache.put(0, p, n, v);
  }
  return v;
}

/** s upper-cased; s itself when it has nothing to change (the common case: methods arrive upper case). */
function upper(s: string): string {
  for (let i = 0, n = s.length; i < n; i++) {
    let c = s.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || c >= 0x80) return s.toUpperCase();
  }
  return s;
}

/** The number of decimal digits of v >= 0. */
function digits(v: i64): i32 {
  let n = 1;
  while (v >= 10) {
    v /= 10;
    n++;
  }
  return n;
}

/**
 * The port written in "a.b.c.d:port" or "[v6]:port", or -1 for any other form. Envoy and
 * this host write source.address from the same port as source.port, so for these forms
 * the property need not be read.
 */
function textPort(p: usize, n: usize): i64 {
  let colon: isize = -1;
  let colons = 0;
  for (let i: usize = 0; i < n; i++) {
    if (load<u8>(p + i) == 0x3a) {
      colons++;
      colon = <isize>i;
    }
  }
  if (colon < 0) return -1;
  let bracketed = load<u8>(p) == 0x5b && colon > 0 && load<u8>(p + <usize>colon - 1) == 0x5d;
  if (colons != 1 && !bracketed) return -1;
  let d = n - <usize>colon - 1;
  if (d == 0 || d > 5) return -1;
  let v: i64 = 0;
  for (let i = <usize>colon + 1; i < n; i++) {
    let c = load<u8>(p + i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + <i64>(c - 0x30);
  }
  return v;
}

/** The peer address from its text when the port must come from source.port (unbracketed IPv6, no port). */
function parseWithPort(a: string): Ip | null {
  let port = getIntProperty(["source", "port"], -1);
  let s = a;
  if (port >= 0) {
    let suffix = ":" + port.toString();
    if (s.endsWith(suffix)) s = s.substring(0, s.length - suffix.length);
  }
  if (s.startsWith("[") && s.endsWith("]")) s = s.substring(1, s.length - 1);
  return parseIp(s);
}

/** Whether [p, p+n) ends with ":" and the decimal digits of port (>= 0). */
function endsWithPort(p: usize, n: usize, port: i64): bool {
  let d = <usize>digits(port);
  if (n < d + 1) return false;
  let q = p + n - 1;
  let v = port;
  for (let i: usize = 0; i < d; i++) {
    if (<i64>load<u8>(q - i) != 0x30 + v % 10) return false;
    v /= 10;
  }
  return load<u8>(q - d) == 0x3a;
}

// ---- request attributes ------------------------------------------------------------------------

/** One request as the auth adapter sees it. Attributes are read from the host on first use. */
export class Attrs {
  private _method: string | null = null;
  private _path: string | null = null;
  private _rawPathRead: bool = false;
  private _rawPathKnown: bool = false;
  /** request.path as the host wrote it (after readRawPath() returned true; valid during the callback). */
  rawPathPtr: usize = 0;
  rawPathLen: usize = 0;
  /** The headers the adapter owns were removed from the request already. */
  ownedStripped: bool = false;
  private _host: string | null = null;
  private _route: string | null = null;
  private _sourceDone: bool = false;
  private _source: Ip | null = null;
  private _remoteDone: bool = false;
  private _remote: Ip | null = null;

  // set by authentication
  authenticated: bool = false;
  principal: string = "";
  tenant: string = "";
  /** principal / tenant as UTF-8 when they came from configuration (an API key), else null. */
  principalBytes: Bytes | null = null;
  tenantBytes: Bytes | null = null;
  issuer: string = "";
  viaJwt: bool = false;
  viaApiKey: bool = false;
  claims: JSONValue | null = null;
  /** Verified tokens, and the source index each came from (shared empty lists until the first token). */
  tokens: VerifiedToken[] = NO_TOKENS;
  tokenSources: i32[] = NO_SOURCES;
  /** The lists addToken fills, kept (emptied by reset) so a decision with a token allocates none. */
  private ownTokens: VerifiedToken[] = [];
  private ownSources: i32[] = [];
  /** Index of the API-key source used, or -1. */
  apiKeySource: i32 = -1;

  constructor(public req: Request, public xffTrustedHops: i32) {
    resetReads();
  }

  /**
   * Makes this what `new Attrs(req, xffTrustedHops)` is: every field above back to its
   * initial value (the auth adapter reuses one Attrs for every decision: no allocation per
   * request). A field added to this class must be reset here too.
   */
  reset(req: Request, xffTrustedHops: i32): void {
    this.req = req;
    this.xffTrustedHops = xffTrustedHops;
    resetReads();
    this._method = null;
    this._path = null;
    this._rawPathRead = false;
    this._rawPathKnown = false;
    this.rawPathPtr = 0;
    this.rawPathLen = 0;
    this.ownedStripped = false;
    this._host = null;
    this._route = null;
    this._sourceDone = false;
    this._source = null;
    this._remoteDone = false;
    this._remote = null;
    this.authenticated = false;
    this.principal = "";
    this.tenant = "";
    this.principalBytes = null;
    this.tenantBytes = null;
    this.issuer = "";
    this.viaJwt = false;
    this.viaApiKey = false;
    this.claims = null;
    if (this.tokens !== NO_TOKENS) {
      this.ownTokens.length = 0;
      this.ownSources.length = 0;
    }
    this.tokens = NO_TOKENS;
    this.tokenSources = NO_SOURCES;
    this.apiKeySource = -1;
  }

  addToken(t: VerifiedToken, source: i32): void {
    if (this.tokens === NO_TOKENS) {
      this.tokens = this.ownTokens;
      this.tokenSources = this.ownSources;
    }
    this.tokens.push(t);
    this.tokenSources.push(source);
  }

  get method(): string {
    let v = this._method;
    if (v === null) this._method = v = readMethod();
    return v;
  }

  get principalUtf8(): Bytes {
    let b = this.principalBytes;
    return b !== null ? b : new Bytes(this.principal);
  }

  get tenantUtf8(): Bytes {
    let b = this.tenantBytes;
    return b !== null ? b : new Bytes(this.tenant);
  }

  /** Reads request.path's bytes once (rawPathPtr, rawPathLen); false when the host does not know it. */
  readRawPath(): bool {
    if (!this._rawPathRead) {
      this._rawPathRead = true;
      if (readAttr(A_PATH)) {
        this._rawPathKnown = true;
        this.rawPathPtr = readPtr;
        this.rawPathLen = readLen;
      }
    }
    return this._rawPathKnown;
  }

  /** The URL path without query, normalized (see normalizePath); "" normalized when the host does not know it. */
  get path(): string {
    let v = this._path;
    if (v === null) {
      let p = this.readRawPath() ? pathOf(this.rawPathPtr, this.rawPathLen) : normalizePath("");
      this._path = p;
      return p;
    }
    return v;
  }

  /** The host without port, lower case. */
  get host(): string {
    let v = this._host;
    if (v === null) this._host = v = stripPort(this.req.host).toLowerCase();
    return v;
  }

  get routeName(): string {
    let v = this._route;
    if (v !== null) return v;
    let s = getStringProperty(["route_name"]);
    let r = s !== null ? s : "";
    this._route = r;
    return r;
  }

  /** The peer's address (source.address), or null when unknown or unparseable. */
  get sourceIp(): Ip | null {
    if (!this._sourceDone) {
      this._sourceDone = true;
      if (readAttr(A_SOURCE)) {
        // "ip:port", "[v6]:port", or (some hosts) "v6:port" unbracketed: strip the port we know.
        // Done on the bytes the host wrote; the text is decoded only for an address not seen before.
        let p = readPtr;
        let n = readLen;
        let port = textPort(p, n);
        if (port < 0) {
          // another form: source.port says what to strip (read after the text is decoded,
          // so no view is held across a host call)
          this._source = parseWithPort(n == 0 ? "" : String.UTF8.decodeUnsafe(p, n));
          return this._source;
        }
        if (endsWithPort(p, n, port)) n -= <usize>digits(port) + 1;
        if (n >= 2 && load<u8>(p) == 0x5b && load<u8>(p + n - 1) == 0x5d) {
          p++;
          n -= 2;
        }
        let ip = ipCache.get(0, p, n);
        if (ip === null) {
          ip = parseIp(n == 0 ? "" : String.UTF8.decodeUnsafe(p, n));
          if (ip !== null) ipCache.put(0, p, n, ip);
        }
        this._source = ip;
      }
    }
    return this._source;
  }

  /**
   * The client address: with xff_trusted_hops = 0 the peer; with N > 0, the
   * address N hops from the right of x-forwarded-for plus the peer (Envoy's
   * xff_num_trusted_hops). Falls back to the peer when the list is too short.
   */
  get remoteIp(): Ip | null {
    if (!this._remoteDone) {
      this._remoteDone = true;
      let n = this.xffTrustedHops;
      this._remote = this.sourceIp;
      if (n > 0) {
        let xff = this.req.header("x-forwarded-for");
        if (xff !== null) {
          let parts = xff.split(",");
          // full list = parts + [peer]; the client is at index len(full) - 1 - n
          let idx = parts.length - n;
          if (idx >= 0 && idx < parts.length) this._remote = parseIp(unchecked(parts[idx]).trim());
        }
      }
    }
    return this._remote;
  }

  /** A claim of the (first) verified token by name or dotted path, or null. */
  claim(name: string): JSONValue | null {
    let c = this.claims;
    return c === null ? null : claimByPath(c, name);
  }
}

export function stripPort(authority: string): string {
  if (authority.startsWith("[")) {
    let end = authority.indexOf("]");
    return end > 0 ? authority.substring(1, end) : authority;
  }
  let c = authority.lastIndexOf(":");
  if (c < 0 || authority.indexOf(":") != c) return authority;
  return authority.substring(0, c);
}

// ---- paths -------------------------------------------------------------------------------------

function isUnreserved(c: i32): bool {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
    c == 0x2d || c == 0x2e || c == 0x5f || c == 0x7e;
}

function hexDigit(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  let l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/**
 * The path rules match against: no query or fragment; percent-encoded
 * unreserved characters decoded ("%61" is "a"; "%2F" stays encoded, upper
 * case); "." and ".." segments resolved; repeated slashes merged. So
 * "/public/..//admin" is "/admin" for matching, and a DENY on /admin/** holds.
 */
export function normalizePath(raw: string): string {
  let end = raw.length;
  let q = raw.indexOf("?");
  if (q >= 0) end = q;
  let h = raw.indexOf("#");
  if (h >= 0 && h < end) end = h;
  // percent-decoding of unreserved characters
  let parts: string[] = [];
  let run = 0;
  let changed = false;
  for (let i = 0; i < end; i++) {
    if (raw.charCodeAt(i) != 0x25) continue;
    if (i + 2 >= end) continue;
    let a = hexDigit(raw.charCodeAt(i + 1));
    let b = hexDigit(raw.charCodeAt(i + 2));
    if (a < 0 || b < 0) continue;
    let c = (a << 4) | b;
    if (i > run) parts.push(raw.substring(run, i));
    if (isUnreserved(c)) parts.push(String.fromCharCode(c));
    else parts.push("%" + raw.charAt(i + 1).toUpperCase() + raw.charAt(i + 2).toUpperCase());
    run = i + 3;
    i += 2;
    changed = true;
  }
  let p: string;
  if (changed) {
    if (end > run) parts.push(raw.substring(run, end));
    p = parts.join("");
  } else {
    p = end == raw.length ? raw : raw.substring(0, end);
  }
  // fast path: nothing to resolve
  if (p.indexOf("//") < 0 && p.indexOf("/.") < 0 && p.startsWith("/")) return p;
  let segs = p.split("/");
  let out: string[] = [];
  let trailing = false;
  for (let i = 0; i < segs.length; i++) {
    let s = unchecked(segs[i]);
    trailing = false;
    if (s.length == 0) {
      trailing = i == segs.length - 1 && i > 0;
      continue;
    }
    if (s == ".") {
      trailing = true;
      continue;
    }
    if (s == "..") {
      if (out.length > 0) out.pop();
      trailing = true;
      continue;
    }
    out.push(s);
  }
  let r = "/" + out.join("/");
  if (trailing && out.length > 0) r += "/";
  return r;
}

const TOK_LIT: u8 = 0;
const TOK_STAR: u8 = 1; // within a segment (paths), or anything (values)
const TOK_DSTAR: u8 = 2; // anything, across segments

/** A compiled glob: literals and stars. */
export class Glob {
  kinds: u8[] = [];
  lits: string[] = [];
  constructor(public text: string, public segmentAware: bool) {
    let run = 0;
    let s = text;
    let i = 0;
    while (i < s.length) {
      if (s.charCodeAt(i) != 0x2a) {
        i++;
        continue;
      }
      if (i > run) {
        this.kinds.push(TOK_LIT);
        this.lits.push(s.substring(run, i));
      }
      let dbl = i + 1 < s.length && s.charCodeAt(i + 1) == 0x2a;
      let kind = dbl || !segmentAware ? TOK_DSTAR : TOK_STAR;
      // collapse runs of stars
      let last = this.kinds.length - 1;
      if (last >= 0 && this.kinds[last] != TOK_LIT) {
        if (kind == TOK_DSTAR) this.kinds[last] = TOK_DSTAR;
      } else {
        this.kinds.push(kind);
        this.lits.push("");
      }
      i += dbl ? 2 : 1;
      while (i < s.length && s.charCodeAt(i) == 0x2a) i++;
      run = i;
    }
    if (run < s.length) {
      this.kinds.push(TOK_LIT);
      this.lits.push(s.substring(run));
    }
  }

  get hasStar(): bool {
    for (let i = 0; i < this.kinds.length; i++) if (this.kinds[i] != TOK_LIT) return true;
    return false;
  }

  matches(s: string): bool {
    let n = s.length;
    let k = this.kinds.length;
    if (k == 0) return n == 0;
    if (k == 1 && this.kinds[0] == TOK_LIT) return s == this.lits[0];
    // position sets, one token at a time: O(tokens * length)
    let cur = new StaticArray<bool>(n + 1);
    let next = new StaticArray<bool>(n + 1);
    unchecked((cur[0] = true));
    for (let t = 0; t < k; t++) {
      let kind = unchecked(this.kinds[t]);
      for (let j = 0; j <= n; j++) unchecked((next[j] = false));
      let any = false;
      if (kind == TOK_LIT) {
        let lit = unchecked(this.lits[t]);
        let ll = lit.length;
        for (let j = 0; j + ll <= n; j++) {
          if (unchecked(cur[j]) && startsAt(s, lit, j)) {
            unchecked((next[j + ll] = true));
            any = true;
          }
        }
      } else {
        let carry = false;
        for (let j = 0; j <= n; j++) {
          if (unchecked(cur[j])) carry = true;
          if (carry) {
            unchecked((next[j] = true));
            any = true;
          }
          if (j < n && kind == TOK_STAR && s.charCodeAt(j) == 0x2f) carry = false;
        }
      }
      if (!any) return false;
      let tmp = cur;
      cur = next;
      next = tmp;
    }
    return unchecked(cur[n]);
  }
}

function startsAt(s: string, lit: string, at: i32): bool {
  let n = lit.length;
  for (let i = 0; i < n; i++) if (s.charCodeAt(at + i) != lit.charCodeAt(i)) return false;
  return true;
}

const PATH_EXACT: i32 = 0;
const PATH_PREFIX: i32 = 1;
const PATH_GLOB: i32 = 2;
const PATH_SUBTREE: i32 = 3; // "/a/**": "/a/" and below

/** A path pattern: {"exact"}, {"prefix"}, {"glob"}, or a string (glob; no "*" means exact). */
export class PathMatcher {
  kind: i32 = PATH_EXACT;
  value: string = "";
  glob: Glob | null = null;

  static parse(c: Config, key: string, v: JSONValue): PathMatcher | null {
    let m = new PathMatcher();
    let text = "";
    if (v.isString) {
      text = v.strValue;
      m.kind = PATH_GLOB;
    } else if (v.isObject && v.length == 1) {
      let k = v.keys![0];
      let val = v.values![0];
      if (!val.isString) {
        c.fail(key, "must be a string or an object with one of exact, prefix, glob");
        return null;
      }
      text = val.strValue;
      if (k == "exact") m.kind = PATH_EXACT;
      else if (k == "prefix") m.kind = PATH_PREFIX;
      else if (k == "glob") m.kind = PATH_GLOB;
      else {
        c.fail(key, "unknown path matcher \"" + k + "\" (use exact, prefix or glob)");
        return null;
      }
    } else {
      c.fail(key, "must be a string or an object with one of exact, prefix, glob");
      return null;
    }
    if (!text.startsWith("/") && !(m.kind == PATH_GLOB && text.startsWith("*"))) {
      c.fail(key, "a path pattern must start with '/'");
      return null;
    }
    m.value = text;
    if (m.kind == PATH_GLOB) {
      let g = new Glob(text, true);
      if (!g.hasStar) {
        m.kind = PATH_EXACT;
      } else if (text.endsWith("/**") && text.indexOf("*") == text.length - 2) {
        m.kind = PATH_SUBTREE;
        m.value = text.substring(0, text.length - 2); // keeps the trailing '/'
      } else {
        m.glob = g;
      }
    }
    return m;
  }

  matches(path: string): bool {
    switch (this.kind) {
      case PATH_EXACT: return path == this.value;
      case PATH_PREFIX: return path.startsWith(this.value);
      case PATH_SUBTREE: return path.startsWith(this.value);
    }
    return this.glob!.matches(path);
  }
}

export function parsePaths(c: Config, key: string): PathMatcher[] {
  let out: PathMatcher[] = [];
  if (!c.has(key)) return out;
  let v = c.value.get(key)!;
  if (!v.isArray) {
    c.fail(key, "must be an array of path patterns");
    return out;
  }
  let items = v.items!;
  for (let i = 0; i < items.length; i++) {
    let m = PathMatcher.parse(c, key + "[" + i.toString() + "]", unchecked(items[i]));
    if (m !== null) out.push(m);
  }
  return out;
}

export function anyPath(ms: PathMatcher[], path: string): bool {
  for (let i = 0; i < ms.length; i++) if (unchecked(ms[i]).matches(path)) return true;
  return false;
}

/** Value globs ("*" matches anything): principals, tenants, hosts. */
export function parseGlobs(c: Config, key: string, lower: bool): Glob[] {
  let strs = c.getStrings(key);
  let out: Glob[] = [];
  for (let i = 0; i < strs.length; i++) out.push(new Glob(lower ? strs[i].toLowerCase() : strs[i], false));
  return out;
}

export function anyGlob(gs: Glob[], s: string): bool {
  for (let i = 0; i < gs.length; i++) if (unchecked(gs[i]).matches(s)) return true;
  return false;
}

// ---- headers and claims ------------------------------------------------------------------------

/** Refuses members a section does not know: a typo in security config must not pass silently. */
export function onlyKeys(c: Config, known: string[]): void {
  // the object's own key list, read in place (Config.keys() copies it: one array per call)
  let v = c.value;
  if (!v.isObject) return;
  let keys = v.keys!;
  for (let i = 0; i < keys.length; i++) {
    if (!known.includes(keys[i])) c.fail(keys[i], "unknown setting (known: " + known.join(", ") + ")");
  }
}

const H_PRESENT: i32 = 0;
const H_EXACT: i32 = 1;
const H_PREFIX: i32 = 2;
const H_SUFFIX: i32 = 3;
const H_CONTAINS: i32 = 4;
const H_ABSENT: i32 = 5;

/** {"name", one of "exact" | "prefix" | "suffix" | "contains" | "present": bool, "invert"?: bool}. */
export class HeaderMatcher {
  name: string = "";
  kind: i32 = H_PRESENT;
  value: string = "";
  invert: bool = false;

  static parse(c: Config): HeaderMatcher {
    let m = new HeaderMatcher();
    onlyKeys(c, ["name", "exact", "prefix", "suffix", "contains", "present", "invert"]);
    m.name = c.requireString("name").toLowerCase();
    m.invert = c.getBool("invert", false);
    let n = 0;
    if (c.has("exact")) { m.kind = H_EXACT; m.value = c.getString("exact"); n++; }
    if (c.has("prefix")) { m.kind = H_PREFIX; m.value = c.getString("prefix"); n++; }
    if (c.has("suffix")) { m.kind = H_SUFFIX; m.value = c.getString("suffix"); n++; }
    if (c.has("contains")) { m.kind = H_CONTAINS; m.value = c.getString("contains"); n++; }
    if (c.has("present")) { m.kind = c.getBool("present", true) ? H_PRESENT : H_ABSENT; n++; }
    if (n > 1) c.fail("", "use one of exact, prefix, suffix, contains, present");
    return m;
  }

  matches(req: Request): bool {
    let v = req.header(this.name);
    let r: bool;
    if (v === null) r = this.kind == H_ABSENT;
    else {
      switch (this.kind) {
        case H_EXACT: r = v == this.value; break;
        case H_PREFIX: r = v.startsWith(this.value); break;
        case H_SUFFIX: r = v.endsWith(this.value); break;
        case H_CONTAINS: r = v.indexOf(this.value) >= 0; break;
        case H_ABSENT: r = false; break;
        default: r = true;
      }
    }
    return this.invert ? !r : r;
  }
}

/**
 * {"claim": "groups", "values": ["admin"]} matches when the claim equals one of
 * the values, or (an array claim) has an element equal to one, or (a string
 * claim with spaces, like "scope") has one as a space-separated word.
 * {"claim": "x", "present": true|false} tests presence.
 */
export class ClaimMatcher {
  claim: string = "";
  values: string[] = [];
  presence: i32 = -1; // -1: values test; 0: must be absent; 1: must be present

  static parse(c: Config): ClaimMatcher {
    let m = new ClaimMatcher();
    onlyKeys(c, ["claim", "values", "present"]);
    m.claim = c.requireString("claim");
    if (c.has("present")) m.presence = c.getBool("present", true) ? 1 : 0;
    if (c.has("values")) {
      let v = c.value.get("values")!;
      if (!v.isArray) c.fail("values", "must be an array of strings, numbers or booleans");
      else {
        let items = v.items!;
        for (let i = 0; i < items.length; i++) {
          let it = unchecked(items[i]);
          if (it.isString) m.values.push(it.strValue);
          else if (it.isNumber || it.isBool) m.values.push(it.toString());
          else c.fail("values[" + i.toString() + "]", "must be a string, number or boolean");
        }
      }
    }
    if (m.presence < 0 && m.values.length == 0) c.fail("", "a claim condition needs \"values\" or \"present\"");
    return m;
  }

  matches(a: Attrs): bool {
    let v = a.claim(this.claim);
    if (this.presence >= 0) return (v !== null) == (this.presence == 1);
    if (v === null) return false;
    if (v.isArray) {
      let items = v.items!;
      for (let i = 0; i < items.length; i++) if (this.valueMatches(unchecked(items[i]), false)) return true;
      return false;
    }
    return this.valueMatches(v, true);
  }

  private valueMatches(v: JSONValue, splitWords: bool): bool {
    let s: string;
    if (v.isString) s = v.strValue;
    else if (v.isNumber || v.isBool) s = v.toString();
    else return false;
    for (let i = 0; i < this.values.length; i++) {
      let want = unchecked(this.values[i]);
      if (s == want) return true;
      if (splitWords && v.isString && s.indexOf(" ") >= 0) {
        let words = s.split(" ");
        if (words.includes(want)) return true;
      }
    }
    return false;
  }
}

// ---- a match: every given field must hold (lists are any-of) --------------------------------

export class Match {
  principals: Glob[] = [];
  tenants: Glob[] = [];
  issuers: string[] = [];
  authenticated: i32 = -1; // -1 any, 0 anonymous only, 1 authenticated only
  authMethods: string[] = [];
  methods: string[] = [];
  paths: PathMatcher[] = [];
  hosts: Glob[] = [];
  routeNames: string[] = [];
  headers: HeaderMatcher[] = [];
  claims: ClaimMatcher[] = [];
  sourceIps: Cidr[] = [];
  remoteIps: Cidr[] = [];
  /** No fields: matches every request. */
  empty: bool = true;

  static parse(c: Config): Match {
    let m = new Match();
    let known = [
      "principals", "tenants", "issuers", "authenticated", "auth_methods", "methods", "paths", "hosts",
      "route_names", "headers", "claims", "source_ips", "remote_ips",
    ];
    let keys = c.keys();
    for (let i = 0; i < keys.length; i++) {
      if (!known.includes(keys[i])) c.fail(keys[i], "unknown match field (known: " + known.join(", ") + ")");
    }
    m.principals = parseGlobs(c, "principals", false);
    m.tenants = parseGlobs(c, "tenants", false);
    m.issuers = c.getStrings("issuers");
    if (c.has("authenticated")) m.authenticated = c.getBool("authenticated", true) ? 1 : 0;
    m.authMethods = c.getStrings("auth_methods");
    for (let i = 0; i < m.authMethods.length; i++) {
      let am = m.authMethods[i];
      if (am != "jwt" && am != "api_key") c.fail("auth_methods[" + i.toString() + "]", "must be \"jwt\" or \"api_key\"");
    }
    let methods = c.getStrings("methods");
    for (let i = 0; i < methods.length; i++) m.methods.push(methods[i].toUpperCase());
    m.paths = parsePaths(c, "paths");
    m.hosts = parseGlobs(c, "hosts", true);
    m.routeNames = c.getStrings("route_names");
    let hs = c.getArray("headers");
    for (let i = 0; i < hs.length; i++) m.headers.push(HeaderMatcher.parse(hs[i]));
    let cs = c.getArray("claims");
    for (let i = 0; i < cs.length; i++) m.claims.push(ClaimMatcher.parse(cs[i]));
    m.sourceIps = parseCidrs(c, "source_ips");
    m.remoteIps = parseCidrs(c, "remote_ips");
    m.empty = keys.length == 0;
    return m;
  }

  matches(a: Attrs): bool {
    if (this.authenticated >= 0 && a.authenticated != (this.authenticated == 1)) return false;
    if (this.principals.length > 0 && (!a.authenticated || !anyGlob(this.principals, a.principal))) return false;
    if (this.tenants.length > 0 && (a.tenant.length == 0 || !anyGlob(this.tenants, a.tenant))) return false;
    if (this.issuers.length > 0 && (!a.viaJwt || !this.issuers.includes(a.issuer))) return false;
    if (this.authMethods.length > 0) {
      let ok = (a.viaJwt && this.authMethods.includes("jwt")) || (a.viaApiKey && this.authMethods.includes("api_key"));
      if (!ok) return false;
    }
    if (this.methods.length > 0 && !this.methods.includes(a.method)) return false;
    if (this.paths.length > 0 && !anyPath(this.paths, a.path)) return false;
    if (this.hosts.length > 0 && !anyGlob(this.hosts, a.host)) return false;
    if (this.routeNames.length > 0 && !this.routeNames.includes(a.routeName)) return false;
    for (let i = 0; i < this.headers.length; i++) if (!unchecked(this.headers[i]).matches(a.req)) return false;
    for (let i = 0; i < this.claims.length; i++) if (!unchecked(this.claims[i]).matches(a)) return false;
    if (this.sourceIps.length > 0) {
      let ip = a.sourceIp;
      if (ip === null || !anyContains(this.sourceIps, ip)) return false;
    }
    if (this.remoteIps.length > 0) {
      let ip = a.remoteIp;
      if (ip === null || !anyContains(this.remoteIps, ip)) return false;
    }
    return true;
  }
}

export function parseCidrs(c: Config, key: string): Cidr[] {
  let strs = c.getStrings(key);
  let out: Cidr[] = [];
  for (let i = 0; i < strs.length; i++) {
    let r = parseCidr(strs[i]);
    if (r === null) c.fail(key + "[" + i.toString() + "]", "\"" + strs[i] + "\" is not an IPv4/IPv6 address or CIDR range");
    else out.push(r);
  }
  return out;
}
