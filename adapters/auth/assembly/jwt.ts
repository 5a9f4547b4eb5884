// JWT (RFC 7519) in JWS compact form: providers, token sources, verification,
// and the cache of verified tokens.

import { Config, JSONValue, Request, parseJSON } from "wasm-mixer/sdk";
import { decodeBase64Url } from "./base64";
import { curveSize, ecdsaToDer } from "./der";
import { ALG_NONE, Jwk, algFromName, algHashName, hmacMinBytes, isEc, isHmac, isRsa } from "./jwks";
import { constantTimeEqual } from "./sha2";
import { VERIFY_BAD_KEY, VERIFY_OK, VERIFY_UNAVAILABLE, hostVerify } from "./verify";
import { Bytes } from "wasm-mixer/sdk/assembly/hostbytes";
import { readLen, readPtr, readRequestHeader } from "./reads";
import { CRED_TEXT, asciiLower, credentialFromHeader, credentialFromQuery } from "./credential";
import { TokenCache } from "./token-cache";

// ---- where credentials come from ---------------------------------------------------------------

export const SRC_HEADER: i32 = 0;
export const SRC_QUERY: i32 = 1;
export const SRC_COOKIE: i32 = 2;

/** {"header": "authorization", "prefix": "Bearer "} | {"query": "access_token"} | {"cookie": "session"}. */
export class Source {
  kind: i32 = SRC_HEADER;
  name: string = "";
  prefix: string = "";

  static header(name: string, prefix: string): Source {
    let s = new Source();
    s.kind = SRC_HEADER;
    s.name = name;
    s.prefix = prefix;
    return s;
  }

  static query(name: string): Source {
    let s = new Source();
    s.kind = SRC_QUERY;
    s.name = name;
    return s;
  }

  static parse(c: Config): Source | null {
    let keys = c.keys();
    for (let i = 0; i < keys.length; i++) {
      let k = keys[i];
      if (k != "header" && k != "prefix" && k != "query" && k != "cookie") c.fail(k, "unknown setting (known: header, prefix, query, cookie)");
    }
    let n = (c.has("header") ? 1 : 0) + (c.has("query") ? 1 : 0) + (c.has("cookie") ? 1 : 0);
    if (n != 1) {
      c.fail("", "a source is one of {\"header\": name, \"prefix\"?: text}, {\"query\": name}, {\"cookie\": name}");
      return null;
    }
    let s = new Source();
    if (c.has("header")) {
      s.kind = SRC_HEADER;
      s.name = c.getString("header").toLowerCase();
      s.prefix = c.getString("prefix", "");
    } else if (c.has("query")) {
      s.kind = SRC_QUERY;
      s.name = c.getString("query");
    } else {
      s.kind = SRC_COOKIE;
      s.name = c.getString("cookie");
    }
    if (s.name.length == 0) c.fail("", "a source needs a non-empty name");
    if (s.kind != SRC_HEADER && c.has("prefix")) c.fail("prefix", "only header sources have a prefix");
    return s;
  }

  same(o: Source): bool {
    return this.kind == o.kind && this.name == o.name && this.prefix.toLowerCase() == o.prefix.toLowerCase();
  }

  describe(): string {
    if (this.kind == SRC_HEADER) return "header " + this.name;
    if (this.kind == SRC_QUERY) return "query parameter " + this.name;
    return "cookie " + this.name;
  }

  private _nameBytes: Bytes | null = null;

  /** The header name as UTF-8, encoded once. */
  get nameBytes(): Bytes {
    let b = this._nameBytes;
    if (b === null) this._nameBytes = b = new Bytes(this.name);
    return b;
  }

  /**
   * A header source: reads the header into reads.ts' view, readPtr/readLen (false when
   * absent). The view is the raw value; fromHeader() turns it into the credential.
   */
  readRaw(): bool {
    return readRequestHeader(this.name, this.nameBytes);
  }

  private _prefixLower: ArrayBuffer | null = null;
  private _nameAscii: ArrayBuffer | null = null;
  private _bytesChecked: bool = false;

  /** Whether the prefix (header) or name (query) is ASCII, so the credential can be found in bytes. */
  private get bytesOk(): bool {
    if (!this._bytesChecked) {
      this._bytesChecked = true;
      this._prefixLower = asciiLower(this.prefix);
      let n = asciiLower(this.name);
      // the name is compared exactly: only when lower-casing changed nothing
      this._nameAscii = n !== null && String.UTF8.decode(n) == this.name ? n : null;
    }
    return this.kind == SRC_HEADER ? this._prefixLower !== null : this.kind == SRC_QUERY && this._nameAscii !== null;
  }

  /** A header source's credential in the header's bytes [p, p+n) (credential.ts: CRED_*). */
  findInHeader(p: usize, n: usize): i32 {
    return this.bytesOk ? credentialFromHeader(this._prefixLower!, p, n) : CRED_TEXT;
  }

  /** A query source's credential in request.path's bytes [p, p+n) (credential.ts: CRED_*). */
  findInPath(p: usize, n: usize): i32 {
    return this.bytesOk ? credentialFromQuery(this._nameAscii!, p, n) : CRED_TEXT;
  }

  /** The credential in this source, or null. Header prefixes compare case-insensitively (RFC 7235 schemes). */
  read(req: Request): string | null {
    if (this.kind == SRC_HEADER) {
      if (!this.readRaw()) return null;
      return this.fromHeader(readLen == 0 ? "" : String.UTF8.decodeUnsafe(readPtr, readLen));
    }
    if (this.kind == SRC_QUERY) return queryParam(req.path, this.name);
    let cookie = req.header("cookie");
    return cookie === null ? null : cookieValue(cookie, this.name);
  }

  /** A header value as the credential: prefix checked and removed, trimmed; null when none. */
  fromHeader(value: string): string | null {
    let v = value;
    let p = this.prefix;
    if (p.length > 0) {
      if (v.length < p.length || v.substring(0, p.length).toLowerCase() != p.toLowerCase()) return null;
      v = v.substring(p.length);
    }
    v = v.trim();
    return v.length > 0 ? v : null;
  }

  /** Removes this credential from the request sent upstream. */
  strip(req: Request): void {
    if (this.kind == SRC_HEADER) {
      req.removeHeader(this.name);
    } else if (this.kind == SRC_QUERY) {
      let p = req.path;
      let stripped = removeQueryParam(p, this.name);
      if (stripped != p) req.setHeader(":path", stripped);
    } else {
      let cookie = req.header("cookie");
      if (cookie === null) return;
      let rest = removeCookie(cookie, this.name);
      if (rest.length == 0) req.removeHeader("cookie");
      else if (rest != cookie) req.setHeader("cookie", rest);
    }
  }
}

function percentDecode(s: string): string {
  if (s.indexOf("%") < 0) return s;
  let bytes = String.UTF8.encode(s);
  let p = changetype<usize>(bytes);
  let n = bytes.byteLength;
  let out = new ArrayBuffer(n);
  let o = changetype<usize>(out);
  let w = 0;
  for (let i = 0; i < n; i++) {
    let c = <i32>load<u8>(p + <usize>i);
    if (c == 0x25 && i + 2 < n) {
      let a = hexv(<i32>load<u8>(p + <usize>(i + 1)));
      let b = hexv(<i32>load<u8>(p + <usize>(i + 2)));
      if (a >= 0 && b >= 0) {
        store<u8>(o + <usize>w, <u8>((a << 4) | b));
        w++;
        i += 2;
        continue;
      }
    }
    store<u8>(o + <usize>w, <u8>c);
    w++;
  }
  return String.UTF8.decodeUnsafe(o, <usize>w);
}

function hexv(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  let l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** First value of a query parameter in a path ("/a?x=1&y=2"), percent-decoded; null when absent or empty. */
export function queryParam(path: string, name: string): string | null {
  let q = path.indexOf("?");
  if (q < 0) return null;
  let end = path.indexOf("#", q);
  if (end < 0) end = path.length;
  let i = q + 1;
  while (i < end) {
    let amp = path.indexOf("&", i);
    if (amp < 0 || amp > end) amp = end;
    let eq = path.indexOf("=", i);
    let keyEnd = eq >= 0 && eq < amp ? eq : amp;
    if (percentDecode(path.substring(i, keyEnd)) == name) {
      if (keyEnd == amp) return null;
      let v = percentDecode(path.substring(keyEnd + 1, amp));
      return v.length > 0 ? v : null;
    }
    i = amp + 1;
  }
  return null;
}

/** The path without every `name=...` parameter (and without "?" when nothing is left). */
export function removeQueryParam(path: string, name: string): string {
  let q = path.indexOf("?");
  if (q < 0) return path;
  let frag = path.indexOf("#", q);
  let end = frag < 0 ? path.length : frag;
  let kept: string[] = [];
  let parts = path.substring(q + 1, end).split("&");
  let removed = false;
  for (let i = 0; i < parts.length; i++) {
    let part = unchecked(parts[i]);
    let eq = part.indexOf("=");
    let key = percentDecode(eq < 0 ? part : part.substring(0, eq));
    if (key == name) removed = true;
    else kept.push(part);
  }
  if (!removed) return path;
  let out = path.substring(0, q);
  if (kept.length > 0) out += "?" + kept.join("&");
  if (frag >= 0) out += path.substring(frag);
  return out;
}

export function cookieValue(header: string, name: string): string | null {
  let parts = header.split(";");
  for (let i = 0; i < parts.length; i++) {
    let p = unchecked(parts[i]).trim();
    let eq = p.indexOf("=");
    if (eq < 0) continue;
    if (p.substring(0, eq).trim() == name) {
      let v = p.substring(eq + 1).trim();
      if (v.length >= 2 && v.startsWith("\"") && v.endsWith("\"")) v = v.substring(1, v.length - 1);
      return v.length > 0 ? v : null;
    }
  }
  return null;
}

function removeCookie(header: string, name: string): string {
  let parts = header.split(";");
  let kept: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    let p = unchecked(parts[i]).trim();
    if (p.length == 0) continue;
    let eq = p.indexOf("=");
    if (eq >= 0 && p.substring(0, eq).trim() == name) continue;
    kept.push(p);
  }
  return kept.join("; ");
}

// ---- providers ---------------------------------------------------------------------------------

export class ClaimHeader {
  /** The header name as UTF-8. */
  headerBytes: Bytes;
  /** Bit of this header in the adapter's owned headers (index.ts). */
  ownedBit: u64 = 0;
  constructor(public claim: string, public header: string) {
    this.headerBytes = new Bytes(header);
  }
}

/** A remote JWKS and its fetch state. */
export class RemoteJwks {
  cluster: string = "";
  path: string = "/";
  authority: string = "";
  timeoutMs: u32 = 3000;
  cacheDurationMs: f64 = 600000;
  minRefetchMs: f64 = 30000;
  retryMs: f64 = 1000;

  inFlight: bool = false;
  token: u32 = 0;
  /** When the last fetch started (ms), for the unknown-kid rate limit. */
  lastStartMs: f64 = -1e18;
  nextRefreshMs: f64 = 0;
  failures: i32 = 0;
  /** At least one good key set has been loaded. */
  loaded: bool = false;
  lastBody: string = "";
  /** Requests paused until this fetch answers. */
  waiting: Request[] = [];
}

export class Provider {
  name: string = "";
  issuer: string = "";
  audiences: string[] = [];
  /** allowed[alg]: the algorithms this provider accepts. */
  allowed: StaticArray<bool> = new StaticArray<bool>(10);
  /** Indexes into the adapter's list of distinct token sources. */
  sources: i32[] = [];
  keys: Jwk[] = [];
  /** Bumped whenever the keys change; cached tokens from an older generation are verified again. */
  keysGen: i32 = 0;
  remote: RemoteJwks | null = null;
  clockSkewS: f64 = 60;
  requireExpiration: bool = true;
  maxLifetimeS: f64 = 0;
  requiredClaims: string[] = [];
  tenantClaim: string = "";
  claimHeaders: ClaimHeader[] = [];
  payloadHeader: string = "";
  /** Keep the token in the request sent upstream (Envoy's `forward`; default false strips it). */
  forward: bool = false;
  /** Bit of payloadHeader in the adapter's owned headers (index.ts). */
  payloadOwnedBit: u64 = 0;

  private _nameBytes: Bytes | null = null;
  private _payloadHeaderBytes: Bytes | null = null;

  /** The name as UTF-8 (the mixer.jwt_provider property). */
  get nameBytes(): Bytes {
    let b = this._nameBytes;
    if (b === null) this._nameBytes = b = new Bytes(this.name);
    return b;
  }

  get payloadHeaderBytes(): Bytes {
    let b = this._payloadHeaderBytes;
    if (b === null) this._payloadHeaderBytes = b = new Bytes(this.payloadHeader);
    return b;
  }
}

/** What an allowed request with a token gets, as UTF-8: made once per verified token (index.ts). */
export class TokenOutputs {
  constructor(
    public subject: Bytes,
    public tenant: Bytes,
    public issuer: Bytes,
    /** claim_to_headers values, by the provider's claimHeaders index; null: not forwarded. */
    public claimValues: Array<Bytes | null>,
    /** The payload segment, when the provider forwards it. */
    public payloadSegment: Bytes | null,
  ) {}
}

// ---- verification ------------------------------------------------------------------------------

/** A verified token: what the cache keeps and requests use. */
export class VerifiedToken {
  provider: Provider;
  keysGen: i32;
  exp: f64 = 0;
  hasExp: bool = false;
  nbf: f64 = 0;
  hasNbf: bool = false;
  subject: string = "";
  issuer: string = "";
  tenant: string = "";
  claims: JSONValue;
  /** The payload segment as sent (base64url), for forward_payload_header. */
  payloadSegment: string;
  /** The decoded payload JSON as UTF-8 (half the memory of a string), for the mixer.jwt_payload property. */
  payloadJson: ArrayBuffer;
  /** Filled on the token's first allowed request (index.ts). */
  outputs: TokenOutputs | null = null;

  constructor(provider: Provider, claims: JSONValue, payloadSegment: string, payloadJson: ArrayBuffer) {
    this.provider = provider;
    this.keysGen = provider.keysGen;
    this.claims = claims;
    this.payloadSegment = payloadSegment;
    this.payloadJson = payloadJson;
  }
}

export const R_OK: i32 = 0;
// failures (401 unless noted); reason strings are stable (metrics labels, logs)
export const REASONS: string[] = [
  "ok",
  "token_malformed",
  "token_too_large",
  "alg_not_allowed",
  "unknown_issuer",
  "audience_mismatch",
  "token_expired",
  "token_not_yet_valid",
  "missing_exp",
  "lifetime_too_long",
  "missing_claim",
  "unknown_kid",
  "key_mismatch",
  "bad_signature",
  "no_keys", // the provider has no keys (yet): may pause for a fetch
  "verify_unavailable", // the host could not verify: 503
  "key_too_short", // every key that fits is an HMAC secret shorter than the algorithm's hash (RFC 7518 §3.2)
];
export const R_MALFORMED: i32 = 1;
export const R_TOO_LARGE: i32 = 2;
export const R_ALG: i32 = 3;
export const R_ISSUER: i32 = 4;
export const R_AUDIENCE: i32 = 5;
export const R_EXPIRED: i32 = 6;
export const R_NOT_YET_VALID: i32 = 7;
export const R_MISSING_EXP: i32 = 8;
export const R_LIFETIME: i32 = 9;
export const R_MISSING_CLAIM: i32 = 10;
export const R_UNKNOWN_KID: i32 = 11;
export const R_KEY_MISMATCH: i32 = 12;
export const R_BAD_SIGNATURE: i32 = 13;
export const R_NO_KEYS: i32 = 14;
export const R_VERIFY_UNAVAILABLE: i32 = 15;
export const R_KEY_TOO_SHORT: i32 = 16;

export class VerifyResult {
  reason: i32 = R_OK;
  token: VerifiedToken | null = null;
  /** The provider the token was matched to (for a fetch on unknown kid / no keys). */
  provider: Provider | null = null;
  cached: bool = false;
  /** The host said a key was unusable (counted as an error). */
  badKey: bool = false;
}

function fail(r: VerifyResult, reason: i32, p: Provider | null): VerifyResult {
  r.reason = reason;
  r.provider = p;
  return r;
}

/** Decodes a segment into a JSON object with unique member names, or null. */
function decodeObject(token: string, start: i32, end: i32, raw: ArrayBuffer[]): JSONValue | null {
  let bytes = decodeBase64Url(token, start, end, true);
  if (bytes === null) return null;
  let s = String.UTF8.decode(bytes);
  let parsed = parseJSON(s);
  if (!parsed.ok) return null;
  let v = parsed.value!;
  if (!v.isObject) return null;
  // RFC 7515 §4 / RFC 7519 §4: refuse duplicate member names
  let keys = v.keys!;
  let n = keys.length;
  if (n > 1) {
    if (n <= 16) {
      for (let i = 1; i < n; i++) for (let j = 0; j < i; j++) if (unchecked(keys[i]) == unchecked(keys[j])) return null;
    } else {
      let seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        if (seen.has(unchecked(keys[i]))) return null;
        seen.add(unchecked(keys[i]));
      }
    }
  }
  raw.push(bytes);
  return v;
}

/** Seconds from a NumericDate claim; NaN when absent, -Infinity when present but not a number. */
function numericDate(o: JSONValue, name: string): f64 {
  let v = o.get(name);
  if (v === null || v.isNull) return NaN;
  if (!v.isNumber) return -Infinity;
  return v.numValue;
}

/** A claim by name; "a.b" walks into objects when no top-level claim has the full name. */
export function claimByPath(o: JSONValue, name: string): JSONValue | null {
  let v = o.get(name);
  if (v !== null) return v;
  if (name.indexOf(".") < 0) return null;
  let parts = name.split(".");
  let cur: JSONValue | null = o;
  for (let i = 0; i < parts.length && cur !== null; i++) cur = cur.get(unchecked(parts[i]));
  return cur;
}

export class Verifier {
  providers: Provider[] = [];
  /** Distinct token sources across providers. */
  sources: Source[] = [];
  maxTokenBytes: i32 = 8192;
  cache: TokenCache<VerifiedToken> = new TokenCache<VerifiedToken>(1000, 4096);
  /** What cached() returns (one object, reused: read it before the next lookup). */
  private hit: VerifyResult = new VerifyResult();

  /**
   * The cache's answer for the token [p, p+n) found in source `si` at `nowS` (seconds): a
   * result (the token, or why a cached token no longer holds: expired, not yet valid), or
   * null when the token must go through verify().
   */
  cached(p: usize, n: usize, si: i32, nowS: f64): VerifyResult | null {
    let t = this.cache.get(p, n);
    if (t === null || t.keysGen != t.provider.keysGen || !t.provider.sources.includes(si)) return null;
    let r = this.hit;
    r.token = null;
    r.cached = false;
    r.badKey = false;
    let skew = t.provider.clockSkewS;
    if (t.hasExp && nowS > t.exp + skew) {
      this.cache.remove(p, n);
      return fail(r, R_EXPIRED, t.provider);
    }
    if (t.hasNbf && nowS + skew < t.nbf) return fail(r, R_NOT_YET_VALID, t.provider);
    r.reason = R_OK;
    r.token = t;
    r.provider = t.provider;
    r.cached = true;
    return r;
  }

  /**
   * Verifies `token` found in source `si` at time `nowS` (seconds). Checks
   * the cache first (unless the caller just did: cached()); then the header,
   * the claims (cheap, so an expired or misaddressed token never costs a
   * signature check), then the signature.
   */
  verify(token: string, si: i32, nowS: f64, cacheChecked: bool = false): VerifyResult {
    let r = new VerifyResult();
    if (token.length > this.maxTokenBytes) return fail(r, R_TOO_LARGE, null);
    if (!cacheChecked && this.cache.size > 0) {
      let b = String.UTF8.encode(token);
      let c = this.cached(changetype<usize>(b), <usize>b.byteLength, si, nowS);
      if (c !== null) {
        // a result of its own: the caller may keep it past the next lookup
        r.reason = c.reason;
        r.token = c.token;
        r.provider = c.provider;
        r.cached = c.cached;
        return r;
      }
    }
    // structure: three segments, the last (signature) non-empty
    let d1 = token.indexOf(".");
    let d2 = d1 < 0 ? -1 : token.indexOf(".", d1 + 1);
    if (d1 <= 0 || d2 <= d1 + 1 || d2 == token.length - 1 || token.indexOf(".", d2 + 1) >= 0) return fail(r, R_MALFORMED, null);
    let texts: ArrayBuffer[] = [];
    let header = decodeObject(token, 0, d1, texts);
    if (header === null) return fail(r, R_MALFORMED, null);
    let payload = decodeObject(token, d1 + 1, d2, texts);
    if (payload === null) return fail(r, R_MALFORMED, null);

    // header: alg, kid, crit
    let algV = header.get("alg");
    if (algV === null || !algV.isString) return fail(r, R_MALFORMED, null);
    let alg = algFromName(algV.strValue); // "none" and anything unknown: ALG_NONE
    if (header.has("crit")) return fail(r, R_MALFORMED, null); // no extensions are understood
    let kidV = header.get("kid");
    if (kidV !== null && !kidV.isString) return fail(r, R_MALFORMED, null);

    // provider by issuer
    let issV = payload.get("iss");
    if (issV !== null && !issV.isString) return fail(r, R_MALFORMED, null);
    let iss = issV === null ? "" : issV.strValue;
    let p: Provider | null = null;
    for (let i = 0; i < this.providers.length; i++) {
      let c = unchecked(this.providers[i]);
      if (!c.sources.includes(si)) continue;
      if (c.issuer.length == 0 || (issV !== null && c.issuer == iss)) {
        p = c;
        break;
      }
    }
    if (p === null) return fail(r, R_ISSUER, null);
    if (alg == ALG_NONE || !unchecked(p.allowed[alg])) return fail(r, R_ALG, p);

    // claims
    if (p.audiences.length > 0) {
      let aud = payload.get("aud");
      let ok = false;
      if (aud !== null && aud.isString) ok = p.audiences.includes(aud.strValue);
      else if (aud !== null && aud.isArray) {
        let items = aud.items!;
        for (let i = 0; i < items.length && !ok; i++) if (items[i].isString && p.audiences.includes(items[i].strValue)) ok = true;
      }
      if (!ok) return fail(r, R_AUDIENCE, p);
    }
    let exp = numericDate(payload, "exp");
    let nbf = numericDate(payload, "nbf");
    let iat = numericDate(payload, "iat");
    if (exp == -Infinity || nbf == -Infinity || iat == -Infinity) return fail(r, R_MALFORMED, p);
    let skew = p.clockSkewS;
    if (isNaN(exp)) {
      if (p.requireExpiration) return fail(r, R_MISSING_EXP, p);
    } else if (nowS > exp + skew) {
      return fail(r, R_EXPIRED, p);
    }
    if (!isNaN(nbf) && nowS + skew < nbf) return fail(r, R_NOT_YET_VALID, p);
    if (p.maxLifetimeS > 0) {
      let from = !isNaN(iat) ? iat : nbf;
      if (isNaN(exp) || isNaN(from) || exp - from > p.maxLifetimeS) return fail(r, R_LIFETIME, p);
    }
    for (let i = 0; i < p.requiredClaims.length; i++) {
      if (claimByPath(payload, unchecked(p.requiredClaims[i])) === null) return fail(r, R_MISSING_CLAIM, p);
    }
    let subV = payload.get("sub");
    if (subV !== null && !subV.isString) return fail(r, R_MALFORMED, p);

    // keys
    let keys = p.keys;
    if (keys.length == 0) return fail(r, R_NO_KEYS, p);
    let candidates: Jwk[] = [];
    let kidSeen = false;
    for (let i = 0; i < keys.length; i++) {
      let k = unchecked(keys[i]);
      if (kidV !== null) {
        if (!k.hasKid || k.kid != kidV.strValue) continue;
        kidSeen = true;
      }
      if (k.fits(alg)) candidates.push(k);
    }
    if (kidV !== null && !kidSeen) return fail(r, R_UNKNOWN_KID, p);
    if (candidates.length == 0) return fail(r, R_KEY_MISMATCH, p);

    // signature
    let sig = decodeBase64Url(token, d2 + 1, token.length, true);
    if (sig === null) return fail(r, R_MALFORMED, p);
    let verified = false;
    let unavailable = false;
    let mismatched = false;
    let tries = min(candidates.length, 16);
    for (let i = 0; i < tries && !verified; i++) {
      let k = unchecked(candidates[i]);
      let v = checkSignature(k, alg, token, d2, sig);
      if (v == VERIFY_OK) verified = true;
      else if (v == VERIFY_BAD_KEY) r.badKey = true;
      else if (v == VERIFY_UNAVAILABLE) unavailable = true;
      else mismatched = true;
    }
    if (!verified) {
      // An HMAC key too short for this algorithm never verifies: say so rather than blame the signature.
      let tooShort = isHmac(alg) && r.badKey && !mismatched;
      return fail(r, unavailable ? R_VERIFY_UNAVAILABLE : tooShort ? R_KEY_TOO_SHORT : R_BAD_SIGNATURE, p);
    }

    // the payload segment is kept only when a provider forwards it (cache memory)
    let t = new VerifiedToken(p, payload, p.payloadHeader.length > 0 ? token.substring(d1 + 1, d2) : "", texts[1]);
    if (!isNaN(exp)) {
      t.hasExp = true;
      t.exp = exp;
    }
    if (!isNaN(nbf)) {
      t.hasNbf = true;
      t.nbf = nbf;
    }
    t.issuer = iss;
    t.subject = subV === null ? "" : subV.strValue;
    if (p.tenantClaim.length > 0) {
      let tv = claimByPath(payload, p.tenantClaim);
      if (tv !== null && tv.isString) t.tenant = tv.strValue;
    }
    this.cache.put(token, t);
    r.token = t;
    r.provider = p;
    return r;
  }
}

/** One signature check. */
function checkSignature(k: Jwk, alg: i32, token: string, signedEnd: i32, sig: ArrayBuffer): i32 {
  if (isHmac(alg)) {
    let hk = k.hmac(alg);
    // RFC 7518 §3.2: the key must be at least as long as the hash output
    if (hk.keyLength < hmacMinBytes(alg)) return VERIFY_BAD_KEY;
    let input = asciiBytes(token, 0, signedEnd);
    let mac = hk.mac(changetype<usize>(input), input.byteLength);
    return constantTimeEqual(mac, sig) ? VERIFY_OK : 1;
  }
  if (isRsa(alg)) return hostVerify(algHashName(alg), k.spki!, sig, token, 0, signedEnd);
  if (isEc(alg)) {
    let der = ecdsaToDer(sig, curveSize(k.crv));
    if (der === null) return 1;
    return hostVerify(algHashName(alg), k.spki!, der, token, 0, signedEnd);
  }
  return 1;
}

/** s[start, end) of an ASCII string as bytes. */
function asciiBytes(s: string, start: i32, end: i32): ArrayBuffer {
  let n = end - start;
  let out = new ArrayBuffer(n);
  let o = changetype<usize>(out);
  let sp = changetype<usize>(s) + (<usize>start << 1);
  for (let i = 0; i < n; i++) store<u8>(o + <usize>i, <u8>load<u16>(sp + (<usize>i << 1)));
  return out;
}
