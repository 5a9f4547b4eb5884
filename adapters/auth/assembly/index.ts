// auth: API keys, JWT (HS*/RS*/ES*, inline or remote JWKS), and ALLOW / DENY /
// AUDIT rules, in the AUTHN/AUTHZ phase. See ../README.md for the
// configuration and ../README.md#signatures for where the signature maths runs.

import {
  Adapter, Config, Counter, Decision, Gauge, Headers, HttpCallResponse, JSONValue, LogLevel, Request,
  log, now, parseJSON, quoteJSON, raw, register, setProperty,
} from "wasm-mixer/sdk";
// The ABI callbacks auth has work in. Every callback is optional: a host skips one the module
// does not export (Envoy, and this host), so proxy_on_response_headers, proxy_on_done and
// proxy_on_log (nothing to do there: no onResponse, no report) cost no guest call per request.
// An onResponse or report added here needs its callback exported again.
export {
  proxy_abi_version_0_2_1, proxy_on_memory_allocate, malloc, proxy_on_context_create, proxy_on_vm_start, proxy_on_configure,
  proxy_on_tick, proxy_on_queue_ready, proxy_on_foreign_function, proxy_on_delete, proxy_on_request_headers,
  proxy_on_http_call_response, proxy_on_grpc_receive_initial_metadata, proxy_on_grpc_receive,
  proxy_on_grpc_receive_trailing_metadata, proxy_on_grpc_close,
} from "wasm-mixer/sdk/exports";

import { Attrs, Match, PathMatcher, anyPath, onlyKeys, parsePaths } from "./match";
import { ALG_NAMES, algFromName, loadKeySet, KeySet } from "./jwks";
import {
  ClaimHeader, Provider, REASONS, R_NO_KEYS, R_UNKNOWN_KID, R_VERIFY_UNAVAILABLE, RemoteJwks, SRC_HEADER, SRC_QUERY,
  Source, TokenOutputs, VerifiedToken, VerifyResult, Verifier, claimByPath,
} from "./jwt";
import { TokenCache } from "./token-cache";
import { CRED_BYTES, CRED_NONE, CRED_TEXT, credLen, credPtr } from "./credential";
import { SHA256, digest, toHex } from "./sha2";
import { ByteCache } from "wasm-mixer/sdk/assembly/bytecache";
import * as hb from "wasm-mixer/sdk/assembly/hostbytes";
import { Bytes } from "wasm-mixer/sdk/assembly/hostbytes";
import { configureReads, readLen, readPtr } from "./reads";
import { PropertyWrites } from "wasm-mixer/sdk/assembly/propwrite";

// ---- metrics -----------------------------------------------------------------------------------

const mAllowed = new Counter("auth_allowed_total");
const mDenied = new Counter("auth_denied_total");
const mShadow = new Counter("auth_shadow_denied_total");
const mAudit = new Counter("auth_audit_total");
const mErrors = new Counter("auth_errors_total");
const mCache = new Counter("auth_jwt_cache_total");
const mFetches = new Counter("auth_jwks_fetches_total");
const mKeys = new Gauge("auth_jwks_keys");

// Property paths and values written on every allowed request, encoded once.
// The properties an allowed request gets, set in one host call (propwrite.ts).
const props = new PropertyWrites();
const P_PRINCIPAL = props.add(["mixer", "principal"]);
const P_AUTH_METHOD = props.add(["mixer", "auth_method"]);
const P_TENANT = props.add(["mixer", "tenant"]);
const P_JWT_ISSUER = props.add(["mixer", "jwt_issuer"]);
const P_JWT_PROVIDER = props.add(["mixer", "jwt_provider"]);
const P_JWT_PAYLOAD = props.add(["mixer", "jwt_payload"]);
const V_JWT = new Bytes("jwt");
const V_API_KEY = new Bytes("api_key");
const V_JWT_AND_API_KEY = new Bytes("jwt+api_key");

// auth_allowed_total{method} by method index, looked up once.
const ALLOWED_METHODS: string[] = ["jwt", "jwt_and_api_key", "api_key", "anonymous"];
const allowedBy: Array<Counter | null> = [null, null, null, null];

// auth_jwt_cache_total{result}: hit, miss.
let cacheHits: Counter | null = null;
let cacheMisses: Counter | null = null;

function cacheCounter(hit: bool): Counter {
  let c = hit ? cacheHits : cacheMisses;
  if (c === null) {
    c = mCache.with(["result", hit ? "hit" : "miss"]);
    if (hit) cacheHits = c;
    else cacheMisses = c;
  }
  return c;
}

function allowedCounter(i: i32): Counter {
  let c = unchecked(allowedBy[i]);
  if (c === null) {
    c = mAllowed.with(["method", unchecked(ALLOWED_METHODS[i])]);
    unchecked((allowedBy[i] = c));
  }
  return c;
}

// ---- configuration pieces ----------------------------------------------------------------------

const REQ_ANY: i32 = 0;
const REQ_JWT: i32 = 1;
const REQ_API_KEY: i32 = 2;
const REQ_OPTIONAL: i32 = 3;
const REQ_NONE: i32 = 4;
const REQ_NAMES: string[] = ["any", "jwt", "api_key", "optional", "none"];

const ACT_ALLOW: i32 = 0;
const ACT_DENY: i32 = 1;
const ACT_AUDIT: i32 = 2;

class Rule {
  name: string = "";
  action: i32 = ACT_ALLOW;
  match: Match = new Match();
  unless: Match | null = null;
  dryRun: bool = false;

  matches(a: Attrs): bool {
    if (!this.match.matches(a)) return false;
    let u = this.unless;
    return u === null || !u.matches(a);
  }
}

class RouteRequirement {
  match: Match = new Match();
  requires: i32 = REQ_ANY;
}

// Shared empty lists for the keys without restrictions (most): configure makes no arrays for them.
const NO_PATHS: PathMatcher[] = [];
const NO_STRINGS: string[] = [];
// The settings of an API key and of the api_keys section, made once (not per key).
const API_KEY_SETTINGS: string[] = ["name", "tenant", "sha256", "paths", "methods", "route_names"];

// Fields start empty and are set by configure: an ApiKey allocates nothing of its own, so the
// 100 keys of a typical configuration leave the GC far less to walk while configure runs.
class ApiKey {
  name: string = "";
  tenant: string = "";
  private _nameBytes: Bytes | null = null;
  private _tenantBytes: Bytes | null = null;
  paths: PathMatcher[] = NO_PATHS;
  methods: string[] = NO_STRINGS;
  routeNames: string[] = NO_STRINGS;

  /** name and tenant as UTF-8, for the headers and properties an allowed request gets (encoded on first use). */
  get nameBytes(): Bytes {
    let b = this._nameBytes;
    if (b === null) this._nameBytes = b = new Bytes(this.name);
    return b;
  }

  get tenantBytes(): Bytes {
    let b = this._tenantBytes;
    if (b === null) this._tenantBytes = b = new Bytes(this.tenant);
    return b;
  }

  get restricted(): bool {
    return this.paths.length > 0 || this.methods.length > 0 || this.routeNames.length > 0;
  }

  allows(a: Attrs): bool {
    if (this.paths.length > 0 && !anyPath(this.paths, a.path)) return false;
    if (this.methods.length > 0 && !this.methods.includes(a.method)) return false;
    if (this.routeNames.length > 0 && !this.routeNames.includes(a.routeName)) return false;
    return true;
  }
}

const HEX_LOWER: i32 = 0;
const HEX_UPPER: i32 = 1;
const HEX_INVALID: i32 = 2;

/**
 * 64 hex digits in lower case (HEX_LOWER), with some in upper case (HEX_UPPER: lower-cased, it
 * is a digest), or anything else (HEX_INVALID: lower-casing cannot make it one, as no other
 * character lower-cases to a hex digit). One pass; toLowerCase() only for upper case.
 */
function hexDigestForm(s: string): i32 {
  if (s.length != 64) return HEX_INVALID;
  let form = HEX_LOWER;
  for (let i = 0; i < 64; i++) {
    let c = s.charCodeAt(i);
    if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66)) continue;
    if (c >= 0x41 && c <= 0x46) form = HEX_UPPER;
    else return HEX_INVALID;
  }
  return form;
}

function validHeaderName(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    let ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f || c == 0x2e;
    if (!ok) return false;
  }
  return true;
}

/** Whether a string can be sent as a header value (no control characters, bounded). */
function headerSafe(s: string): bool {
  if (s.length > 4096) return false;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if ((c < 0x20 && c != 0x09) || c == 0x7f) return false;
  }
  return true;
}

/** A claim value as a header value, or null when it cannot be one (objects, control characters, too long). */
function claimHeaderValue(v: JSONValue): string | null {
  let s: string;
  if (v.isString) s = v.strValue;
  else if (v.isNumber || v.isBool) s = v.toString();
  else if (v.isArray) {
    let parts: string[] = [];
    let items = v.items!;
    for (let i = 0; i < items.length; i++) {
      let it = items[i];
      if (it.isString) parts.push(it.strValue);
      else if (it.isNumber || it.isBool) parts.push(it.toString());
      else return null;
    }
    s = parts.join(",");
  } else return null;
  return headerSafe(s) ? s : null;
}

// client-facing error codes and their fixed messages (no detail that helps an attacker)
const E_MISSING = "missing_credentials";
const E_API_KEY = "invalid_api_key";
const E_TOKEN = "invalid_token";
const E_FORBIDDEN = "forbidden";
const E_UNAVAILABLE = "auth_unavailable";

function messageFor(code: string): string {
  if (code == E_MISSING) return "Authentication is required.";
  if (code == E_API_KEY) return "The API key is not valid.";
  if (code == E_TOKEN) return "The access token is not valid.";
  if (code == E_FORBIDDEN) return "Access to this resource is denied.";
  return "Authentication is temporarily unavailable.";
}

// ---- the adapter -------------------------------------------------------------------------------

const MAX_WAITING: i32 = 1024;
const MAX_JWKS_BYTES: u32 = 1048576;

class AuthAdapter extends Adapter {
  realm: string = "api";
  dryRun: bool = false;
  requires: i32 = REQ_ANY;
  routeRequirements: RouteRequirement[] = [];
  bypassCorsPreflight: bool = false;
  principalHeader: string = "x-auth-principal";
  tenantHeader: string = "x-auth-tenant";
  xffTrustedHops: i32 = 0;

  apiKeysOn: bool = false;
  apiKeySources: Source[] = [];
  apiKeyForward: bool = true;
  keys: Map<string, ApiKey> = new Map<string, ApiKey>();
  /** Keys that verified, by the raw header value (see bytecache.ts); rebuilt by configure. */
  keyCache: ByteCache<ApiKey> = new ByteCache<ApiKey>(0);

  jwtOn: bool = false;
  verifier: Verifier = new Verifier();
  /** The tokens a request presented so far (pointer, length), so a repeated one is verified once. */
  seenPtr: StaticArray<usize> = new StaticArray<usize>(0);
  seenLen: StaticArray<usize> = new StaticArray<usize>(0);
  /** UTF-8 of tokens found as text (the rare path), kept until the next decision. */
  textTokens: ArrayBuffer[] = [];
  minRsaBits: i32 = 2048;

  denyRules: Rule[] = [];
  auditRules: Rule[] = [];
  allowRules: Rule[] = [];
  defaultAllow: bool = true;

  /** Headers this adapter sets upstream: removed from every incoming request first, so clients cannot forge them. */
  owned: string[] = [];
  ownedBytes: Bytes[] = [];
  /**
   * Remove the owned headers before deciding (some condition or credential source reads one of
   * them). Otherwise an allowed request's owned headers are replaced or removed as it leaves
   * (allow), and a denied or held one's removed then: the same headers, two calls fewer.
   */
  stripFirst: bool = true;
  /** Bits of the principal and tenant headers in owned (0: not owned). */
  principalBit: u64 = 0;
  tenantBit: u64 = 0;
  /** The attributes of the request being decided (reused: see decide). */
  private attrs: Attrs | null = null;
  principalHeaderBytes: Bytes = new Bytes("");
  tenantHeaderBytes: Bytes = new Bytes("");

  // ---- configuration ----

  configure(c: Config): string | null {
    onlyKeys(c, [
      "realm", "dry_run", "requires", "route_requirements", "bypass_cors_preflight", "principal_header",
      "tenant_header", "xff_trusted_hops", "api_keys", "jwt", "rules", "default_action",
    ]);
    this.realm = c.getString("realm", "api");
    if (this.realm.indexOf("\"") >= 0 || this.realm.indexOf("\\") >= 0) c.fail("realm", "must not contain '\"' or '\\'");
    this.dryRun = c.getBool("dry_run", false);
    this.bypassCorsPreflight = c.getBool("bypass_cors_preflight", false);
    this.principalHeader = c.getString("principal_header", "x-auth-principal").toLowerCase();
    this.tenantHeader = c.getString("tenant_header", "x-auth-tenant").toLowerCase();
    if (this.principalHeader.length > 0 && !validHeaderName(this.principalHeader)) c.fail("principal_header", "is not a valid header name");
    if (this.tenantHeader.length > 0 && !validHeaderName(this.tenantHeader)) c.fail("tenant_header", "is not a valid header name");
    let hops = c.getInt("xff_trusted_hops", 0);
    if (hops < 0 || hops > 32) c.fail("xff_trusted_hops", "must be from 0 to 32");
    this.xffTrustedHops = <i32>hops;

    if (c.has("api_keys")) this.configureApiKeys(c.getObject("api_keys"));
    if (c.has("jwt")) this.configureJwt(c.getObject("jwt"));

    let dflt = this.apiKeysOn || this.jwtOn ? "any" : "none";
    this.requires = this.parseRequirement(c, "requires", c.getString("requires", dflt));
    let rrs = c.getArray("route_requirements");
    for (let i = 0; i < rrs.length; i++) {
      let rc = rrs[i];
      onlyKeys(rc, ["match", "requires"]);
      let rr = new RouteRequirement();
      rr.match = Match.parse(rc.getObject("match"));
      rr.requires = this.parseRequirement(rc, "requires", rc.requireString("requires"));
      this.routeRequirements.push(rr);
    }

    let rules = c.getArray("rules");
    let names = new Set<string>();
    for (let i = 0; i < rules.length; i++) {
      let rc = rules[i];
      onlyKeys(rc, ["name", "action", "match", "unless", "dry_run"]);
      let r = new Rule();
      r.name = rc.getString("name", "rule-" + i.toString());
      if (names.has(r.name)) rc.fail("name", "\"" + r.name + "\" is used by another rule");
      names.add(r.name);
      let action = rc.requireString("action").toUpperCase();
      if (action == "ALLOW") r.action = ACT_ALLOW;
      else if (action == "DENY") r.action = ACT_DENY;
      else if (action == "AUDIT") r.action = ACT_AUDIT;
      else if (action.length > 0) rc.fail("action", "must be ALLOW, DENY or AUDIT");
      r.match = Match.parse(rc.getObject("match"));
      if (rc.has("unless")) r.unless = Match.parse(rc.getObject("unless"));
      r.dryRun = rc.getBool("dry_run", false);
      if (r.action == ACT_DENY) this.denyRules.push(r);
      else if (r.action == ACT_AUDIT) this.auditRules.push(r);
      else this.allowRules.push(r);
    }
    // Istio's rule: with ALLOW rules present, a request none of them matches is denied.
    let da = c.getString("default_action", this.allowRules.length > 0 ? "DENY" : "ALLOW").toUpperCase();
    if (da != "ALLOW" && da != "DENY") c.fail("default_action", "must be ALLOW or DENY");
    this.defaultAllow = da == "ALLOW";

    // headers we set upstream
    if (this.principalHeader.length > 0) this.owned.push(this.principalHeader);
    if (this.tenantHeader.length > 0) this.owned.push(this.tenantHeader);
    let ps = this.verifier.providers;
    for (let i = 0; i < ps.length; i++) {
      let p = ps[i];
      for (let j = 0; j < p.claimHeaders.length; j++) this.addOwned(p.claimHeaders[j].header);
      if (p.payloadHeader.length > 0) this.addOwned(p.payloadHeader);
    }

    for (let i = 0; i < this.owned.length; i++) this.ownedBytes.push(new Bytes(this.owned[i]));
    this.principalHeaderBytes = new Bytes(this.principalHeader);
    this.tenantHeaderBytes = new Bytes(this.tenantHeader);
    let seed = <u32>now() ^ <u32>(now() >> 32);
    this.keyCache = new ByteCache<ApiKey>(seed);
    let tc = this.verifier.cache;
    this.verifier.cache = new TokenCache<VerifiedToken>(tc.maxEntries, tc.maxTokenBytes, seed ^ 0x5bd1e995);
    this.assignOwnedBits();
    props.register();
    let credentialHeaders: string[] = [];
    for (let i = 0; i < this.verifier.sources.length; i++) {
      let s = unchecked(this.verifier.sources[i]);
      if (s.kind == SRC_HEADER) credentialHeaders.push(s.name);
    }
    if (this.apiKeysOn) {
      for (let i = 0; i < this.apiKeySources.length; i++) {
        let s = unchecked(this.apiKeySources[i]);
        if (s.kind == SRC_HEADER) credentialHeaders.push(s.name);
      }
    }
    configureReads(credentialHeaders);

    let err = c.error;
    if (err !== null) return err;

    // start remote key fetches and the refresh timer
    let tick: f64 = 1000;
    for (let i = 0; i < ps.length; i++) {
      let rem = ps[i].remote;
      if (rem === null) continue;
      tick = Math.min(tick, Math.min(rem.retryMs, rem.cacheDurationMs) / 2);
      if (!this.startFetch(ps[i], <f64>now() / 1e6)) {
        return "config \"jwt.providers[" + i.toString() + "].remote_jwks.cluster\": the host refused a call to cluster \"" +
          rem.cluster + "\" (it must be in the proxy's clusters and granted to this plugin)";
      }
    }
    if (tick < 1000 || this.hasRemote()) this.setTickPeriod(<u32>Math.max(50, tick));
    if (log.enabled(LogLevel.Info)) {
      log.info("auth configured: " + this.keys.size.toString() + " API keys, " + ps.length.toString() + " JWT providers, " +
        (this.denyRules.length + this.allowRules.length + this.auditRules.length).toString() + " rules, requires " +
        REQ_NAMES[this.requires] + ", default " + (this.defaultAllow ? "ALLOW" : "DENY") + (this.dryRun ? ", DRY RUN" : ""));
    }
    return null;
  }

  private addOwned(h: string): void {
    if (!this.owned.includes(h)) this.owned.push(h);
  }

  private ownedBit(h: string): u64 {
    let i = this.owned.indexOf(h);
    return i < 0 || i >= 64 ? 0 : <u64>1 << <u64>i;
  }

  /** Each owned header's bit (allow's record of what it set), and whether they are removed first. */
  private assignOwnedBits(): void {
    this.principalBit = this.principalHeader.length > 0 ? this.ownedBit(this.principalHeader) : 0;
    this.tenantBit = this.tenantHeader.length > 0 ? this.ownedBit(this.tenantHeader) : 0;
    let ps = this.verifier.providers;
    for (let i = 0; i < ps.length; i++) {
      let p = ps[i];
      for (let j = 0; j < p.claimHeaders.length; j++) p.claimHeaders[j].ownedBit = this.ownedBit(p.claimHeaders[j].header);
      if (p.payloadHeader.length > 0) p.payloadOwnedBit = this.ownedBit(p.payloadHeader);
    }
    this.stripFirst = this.owned.length > 64 || this.readsOwnedHeader();
  }

  /** Whether deciding reads a request header this adapter owns (then it must be gone first). */
  private readsOwnedHeader(): bool {
    let read: string[] = [];
    let rules = this.denyRules.concat(this.auditRules).concat(this.allowRules);
    for (let i = 0; i < rules.length; i++) {
      let r = rules[i];
      for (let j = 0; j < r.match.headers.length; j++) read.push(r.match.headers[j].name);
      let u = r.unless;
      if (u !== null) for (let j = 0; j < u.headers.length; j++) read.push(u.headers[j].name);
      if (r.match.hosts.length > 0 || (u !== null && u.hosts.length > 0)) read.push("host");
    }
    for (let i = 0; i < this.routeRequirements.length; i++) {
      let m = this.routeRequirements[i].match;
      for (let j = 0; j < m.headers.length; j++) read.push(m.headers[j].name);
      if (m.hosts.length > 0) read.push("host");
    }
    let srcs = this.apiKeySources.concat(this.verifier.sources);
    for (let i = 0; i < srcs.length; i++) {
      let s = srcs[i];
      if (s.kind == SRC_HEADER) read.push(s.name);
      else if (s.kind != SRC_QUERY) read.push("cookie");
    }
    if (this.bypassCorsPreflight) {
      read.push("origin");
      read.push("access-control-request-method");
    }
    if (this.xffTrustedHops > 0) read.push("x-forwarded-for");
    for (let i = 0; i < read.length; i++) if (this.owned.includes(read[i])) return true;
    return false;
  }

  /** Removes every owned header (a request denied or held, when they were not removed first). */
  private stripOwned(a: Attrs): void {
    if (a.ownedStripped) return;
    a.ownedStripped = true;
    let owned = this.ownedBytes;
    for (let i = 0, n = owned.length; i < n; i++) hb.removeHeader(unchecked(owned[i]));
  }

  private hasRemote(): bool {
    let ps = this.verifier.providers;
    for (let i = 0; i < ps.length; i++) if (ps[i].remote !== null) return true;
    return false;
  }

  private parseRequirement(c: Config, key: string, v: string): i32 {
    let i = REQ_NAMES.indexOf(v);
    if (i < 0) {
      c.fail(key, "must be one of " + REQ_NAMES.join(", "));
      return REQ_ANY;
    }
    if (i == REQ_JWT && !this.jwtOn) c.fail(key, "\"jwt\" needs a jwt section");
    if (i == REQ_API_KEY && !this.apiKeysOn) c.fail(key, "\"api_key\" needs an api_keys section");
    if (i == REQ_ANY && !this.jwtOn && !this.apiKeysOn) c.fail(key, "\"any\" needs an api_keys or jwt section");
    return i;
  }

  private parseSources(c: Config, key: string): Source[] {
    let out: Source[] = [];
    let items = c.getArray(key);
    for (let i = 0; i < items.length; i++) {
      let s = Source.parse(items[i]);
      if (s !== null) out.push(s);
    }
    return out;
  }

  private configureApiKeys(c: Config): void {
    onlyKeys(c, ["sources", "keys", "forward"]);
    this.apiKeysOn = true;
    this.apiKeySources = c.has("sources") ? this.parseSources(c, "sources") : [Source.header("x-api-key", "")];
    if (this.apiKeySources.length == 0) c.fail("sources", "needs at least one source");
    this.apiKeyForward = c.getBool("forward", true);
    let ks = c.getArray("keys");
    for (let i = 0; i < ks.length; i++) {
      let kc = ks[i];
      onlyKeys(kc, API_KEY_SETTINGS);
      let k = new ApiKey();
      k.name = kc.requireString("name");
      k.tenant = kc.getString("tenant", "");
      let d = kc.requireString("sha256");
      let form = hexDigestForm(d);
      if (form != HEX_LOWER) d = d.toLowerCase(); // digests are usually written in lower case already
      if (form == HEX_INVALID) kc.fail("sha256", "must be the SHA-256 of the key as 64 hex digits");
      else {
        // one lookup: a key already there is a duplicate (configure fails; the entry is replaced, as before)
        let n = this.keys.size;
        this.keys.set(d, k);
        if (this.keys.size == n) kc.fail("sha256", "the same key is listed twice");
      }
      if (kc.has("paths")) k.paths = parsePaths(kc, "paths");
      if (kc.has("methods")) {
        let ms = kc.getStrings("methods");
        let up: string[] = [];
        for (let j = 0; j < ms.length; j++) up.push(ms[j].toUpperCase());
        k.methods = up;
      }
      if (kc.has("route_names")) k.routeNames = kc.getStrings("route_names");
      if (form == HEX_INVALID) this.keys.set(d, k);
    }
  }

  private configureJwt(c: Config): void {
    onlyKeys(c, ["providers", "cache", "max_token_bytes", "min_rsa_bits"]);
    this.jwtOn = true;
    let v = this.verifier;
    v.maxTokenBytes = <i32>c.getInt("max_token_bytes", 8192);
    if (v.maxTokenBytes < 256 || v.maxTokenBytes > 65536) c.fail("max_token_bytes", "must be from 256 to 65536");
    this.minRsaBits = <i32>c.getInt("min_rsa_bits", 2048);
    if (this.minRsaBits < 1024 || this.minRsaBits > 16384) c.fail("min_rsa_bits", "must be from 1024 to 16384");
    let cc = c.getObject("cache");
    onlyKeys(cc, ["max_entries", "max_token_bytes"]);
    let entries = cc.getInt("max_entries", 256);
    if (entries < 0 || entries > 100000) cc.fail("max_entries", "must be from 0 (no cache) to 100000");
    let cacheTokenBytes = cc.getInt("max_token_bytes", 4096);
    if (cacheTokenBytes < 0) cc.fail("max_token_bytes", "must not be negative");
    // An entry holds the token, its decoded payload and the parsed claims; with the allocator's
    // slack a full cache was measured at ~16 bytes of linear memory per token byte
    // (256 x 4 KiB tokens: 16 MiB). Keep the worst case at half the module's 32 MiB.
    if (entries * cacheTokenBytes > 1048576) {
      cc.fail("", "max_entries x max_token_bytes must not exceed 1048576 (a full cache would need more memory than the module has); lower max_token_bytes to cache more tokens");
    }
    v.cache = new TokenCache(<i32>entries, <i32>cacheTokenBytes);
    let ps = c.getArray("providers");
    if (ps.length == 0) c.fail("providers", "needs at least one provider");
    let names = new Set<string>();
    for (let i = 0; i < ps.length; i++) {
      let p = this.configureProvider(ps[i], i);
      if (names.has(p.name)) ps[i].fail("name", "\"" + p.name + "\" is used by another provider");
      names.add(p.name);
      v.providers.push(p);
    }
  }

  private configureProvider(c: Config, index: i32): Provider {
    onlyKeys(c, [
      "name", "issuer", "audiences", "algorithms", "sources", "local_jwks", "remote_jwks", "clock_skew_seconds",
      "require_expiration", "max_lifetime_seconds", "required_claims", "tenant_claim", "claim_to_headers",
      "forward_payload_header", "forward",
    ]);
    let p = new Provider();
    p.name = c.getString("name", "provider-" + index.toString());
    p.issuer = c.getString("issuer", "");
    p.audiences = c.getStrings("audiences");
    let algs = c.getStrings("algorithms");
    for (let a = 1; a < ALG_NAMES.length; a++) unchecked((p.allowed[a] = algs.length == 0));
    for (let j = 0; j < algs.length; j++) {
      let id = algFromName(algs[j]);
      if (id == 0) c.fail("algorithms[" + j.toString() + "]", "\"" + algs[j] + "\" is not supported (use " + ALG_NAMES.slice(1).join(", ") + ")");
      else unchecked((p.allowed[id] = true));
    }
    let srcs = c.has("sources") ? this.parseSources(c, "sources") : [Source.header("authorization", "Bearer "), Source.query("access_token")];
    if (srcs.length == 0) c.fail("sources", "needs at least one source");
    for (let j = 0; j < srcs.length; j++) p.sources.push(this.sourceIndex(srcs[j]));
    p.clockSkewS = c.getNumber("clock_skew_seconds", 60);
    if (p.clockSkewS < 0 || p.clockSkewS > 3600) c.fail("clock_skew_seconds", "must be from 0 to 3600");
    p.requireExpiration = c.getBool("require_expiration", true);
    p.maxLifetimeS = c.getNumber("max_lifetime_seconds", 0);
    if (p.maxLifetimeS < 0) c.fail("max_lifetime_seconds", "must not be negative");
    p.requiredClaims = c.getStrings("required_claims");
    p.tenantClaim = c.getString("tenant_claim", "");
    let chs = c.getArray("claim_to_headers");
    for (let j = 0; j < chs.length; j++) {
      let hc = chs[j];
      onlyKeys(hc, ["claim", "header"]);
      let h = hc.requireString("header").toLowerCase();
      if (!validHeaderName(h)) hc.fail("header", "is not a valid header name");
      p.claimHeaders.push(new ClaimHeader(hc.requireString("claim"), h));
    }
    p.payloadHeader = c.getString("forward_payload_header", "").toLowerCase();
    if (p.payloadHeader.length > 0 && !validHeaderName(p.payloadHeader)) c.fail("forward_payload_header", "is not a valid header name");
    p.forward = c.getBool("forward", false);

    let hasLocal = c.has("local_jwks");
    let hasRemote = c.has("remote_jwks");
    if (hasLocal == hasRemote) c.fail("", "a provider needs exactly one of local_jwks, remote_jwks");
    if (hasLocal) {
      let lv = c.value.get("local_jwks")!;
      let jv: JSONValue | null = lv;
      if (lv.isString) {
        let parsed = parseJSON(lv.strValue);
        jv = parsed.ok ? parsed.value : null;
        if (!parsed.ok) c.fail("local_jwks", "is not valid JSON: " + parsed.error!);
      }
      if (jv !== null) {
        let set = loadKeySet(jv, this.minRsaBits, p.allowed);
        this.reportKeySet(p, set);
        if (set.error !== null) c.fail("local_jwks", set.error!);
        else if (set.hostCannotVerify && set.keys.length == 0) {
          c.fail("local_jwks", "RSA/EC keys need the host's verify_signature foreign function, which this host does not provide");
        } else if (set.keys.length == 0) c.fail("local_jwks", "has no usable keys (" + set.warnings.join("; ") + ")");
        p.keys = set.keys;
        p.keysGen = 1;
        mKeys.with(["provider", p.name]).set(p.keys.length);
      }
    }
    if (hasRemote) {
      let rc = c.getObject("remote_jwks");
      onlyKeys(rc, ["cluster", "uri", "timeout_ms", "cache_duration_seconds", "min_refetch_seconds", "retry_seconds"]);
      let rem = new RemoteJwks();
      rem.cluster = rc.requireString("cluster");
      let uri = rc.requireString("uri");
      // http://authority/path → :authority and :path (the cluster decides where it goes)
      let scheme = uri.indexOf("://");
      if (scheme < 0) {
        if (uri.length > 0) rc.fail("uri", "must be an absolute URL such as http://idp.example.com/.well-known/jwks.json");
      } else {
        let rest = uri.substring(scheme + 3);
        let slash = rest.indexOf("/");
        rem.authority = slash < 0 ? rest : rest.substring(0, slash);
        rem.path = slash < 0 ? "/" : rest.substring(slash);
        if (rem.authority.length == 0) rc.fail("uri", "has no host");
      }
      let t = rc.getInt("timeout_ms", 3000);
      if (t < 1 || t > 60000) rc.fail("timeout_ms", "must be from 1 to 60000");
      rem.timeoutMs = <u32>t;
      rem.cacheDurationMs = rc.getNumber("cache_duration_seconds", 600) * 1000;
      rem.minRefetchMs = rc.getNumber("min_refetch_seconds", 30) * 1000;
      rem.retryMs = rc.getNumber("retry_seconds", 1) * 1000;
      if (rem.cacheDurationMs < 100) rc.fail("cache_duration_seconds", "must be at least 0.1");
      if (rem.minRefetchMs < 0) rc.fail("min_refetch_seconds", "must not be negative");
      if (rem.retryMs < 50) rc.fail("retry_seconds", "must be at least 0.05");
      p.remote = rem;
    }
    return p;
  }

  private sourceIndex(s: Source): i32 {
    let list = this.verifier.sources;
    for (let i = 0; i < list.length; i++) if (list[i].same(s)) return i;
    list.push(s);
    return list.length - 1;
  }

  private reportKeySet(p: Provider, set: KeySet): void {
    for (let i = 0; i < set.warnings.length; i++) log.warn("jwt provider " + p.name + ": skipped " + set.warnings[i]);
  }

  // ---- remote JWKS ----

  /** Starts a fetch of the provider's JWKS; false when the host refused the call. */
  startFetch(p: Provider, nowMs: f64): bool {
    let rem = p.remote!;
    if (rem.inFlight) return true;
    let h = Headers.of([":method", "GET", ":path", rem.path, ":authority", rem.authority, "accept", "application/json"]);
    rem.lastStartMs = nowMs;
    if (!this.httpCall(rem.cluster, h, null, rem.timeoutMs, onJwksResponse)) {
      this.fetchFailed(p, nowMs, "the host refused the call");
      return false;
    }
    rem.inFlight = true;
    rem.token = this.lastCallToken;
    return true;
  }

  private fetchFailed(p: Provider, nowMs: f64, why: string): void {
    let rem = p.remote!;
    rem.failures++;
    let backoff = rem.retryMs * Math.pow(2, <f64>min(rem.failures - 1, 10));
    rem.nextRefreshMs = nowMs + Math.min(backoff, Math.max(rem.cacheDurationMs, rem.retryMs));
    mFetches.with(["provider", p.name, "result", "failed"]).inc();
    mErrors.with(["error", "jwks_fetch_failed"]).inc();
    log.warn("jwt provider " + p.name + ": JWKS fetch failed (" + why + "); " +
      (p.keys.length > 0 ? "keeping the " + p.keys.length.toString() + " keys loaded before" : "no keys yet") +
      ", next try in " + (<i64>(rem.nextRefreshMs - nowMs)).toString() + " ms");
  }

  jwksAnswered(resp: HttpCallResponse): void {
    let ps = this.verifier.providers;
    let p: Provider | null = null;
    for (let i = 0; i < ps.length; i++) {
      let rem = ps[i].remote;
      if (rem !== null && rem.inFlight && rem.token == resp.token) {
        p = ps[i];
        break;
      }
    }
    if (p === null) return;
    let rem = p.remote!;
    rem.inFlight = false;
    let nowMs = <f64>now() / 1e6;
    if (resp.failed) this.fetchFailed(p, nowMs, "no answer");
    else if (resp.status != 200) this.fetchFailed(p, nowMs, "status " + resp.status.toString());
    else if (resp.bodySize > MAX_JWKS_BYTES) this.fetchFailed(p, nowMs, "body over " + MAX_JWKS_BYTES.toString() + " bytes");
    else {
      let body = resp.text();
      if (rem.loaded && body == rem.lastBody) {
        rem.failures = 0;
        rem.nextRefreshMs = nowMs + rem.cacheDurationMs;
        mFetches.with(["provider", p.name, "result", "unchanged"]).inc();
      } else {
        let parsed = parseJSON(body);
        if (!parsed.ok) {
          mErrors.with(["error", "jwks_invalid"]).inc();
          this.fetchFailed(p, nowMs, "not JSON");
        } else {
          let set = loadKeySet(parsed.value!, this.minRsaBits, p.allowed);
          this.reportKeySet(p, set);
          if (set.error !== null || set.keys.length == 0) {
            mErrors.with(["error", set.hostCannotVerify ? "verify_unavailable" : "jwks_invalid"]).inc();
            this.fetchFailed(p, nowMs, set.error !== null ? set.error! : "no usable keys");
          } else {
            p.keys = set.keys;
            p.keysGen++;
            this.verifier.cache.clear(); // tokens verified with rotated-out keys must not outlive them
            rem.loaded = true;
            rem.lastBody = body;
            rem.failures = 0;
            rem.nextRefreshMs = nowMs + rem.cacheDurationMs;
            mFetches.with(["provider", p.name, "result", "ok"]).inc();
            mKeys.with(["provider", p.name]).set(p.keys.length);
            if (log.enabled(LogLevel.Info)) log.info("jwt provider " + p.name + ": loaded " + p.keys.length.toString() + " keys from " + rem.authority + rem.path);
          }
        }
      }
    }
    // answer the requests that waited for these keys
    let waiting = rem.waiting;
    rem.waiting = [];
    for (let i = 0; i < waiting.length; i++) {
      let req = waiting[i];
      if (!raw.setEffectiveContext(req.contextId)) continue; // the request is gone
      let d = this.decide(req, true); // held requests had their owned headers removed
      if (d.isAllow) req.resume();
      else if (d.isDeny) req.deny(d.status, d.body, d.headers);
      // pause: decide() queued it again behind a new fetch
    }
  }

  onTick(): void {
    let nowMs = <f64>now() / 1e6;
    let ps = this.verifier.providers;
    for (let i = 0; i < ps.length; i++) {
      let rem = ps[i].remote;
      if (rem !== null && !rem.inFlight && nowMs >= rem.nextRefreshMs) this.startFetch(ps[i], nowMs);
    }
  }

  // ---- requests ----

  check(req: Request): Decision {
    if (this.stripFirst) {
      let owned = this.ownedBytes;
      for (let i = 0, n = owned.length; i < n; i++) hb.removeHeader(unchecked(owned[i]));
    }
    return this.decide(req, this.stripFirst);
  }

  private seenBefore(seen: i32, p: usize, n: usize): bool {
    for (let i = 0; i < seen; i++) {
      if (unchecked(this.seenLen[i]) == n && memory.compare(unchecked(this.seenPtr[i]), p, n) == 0) return true;
    }
    return false;
  }

  private requirementFor(a: Attrs): i32 {
    let rrs = this.routeRequirements;
    for (let i = 0; i < rrs.length; i++) if (unchecked(rrs[i]).match.matches(a)) return unchecked(rrs[i]).requires;
    return this.requires;
  }

  /**
   * The whole decision for a request (also re-run when keys it waited for arrive).
   * `stripped`: the owned headers were removed already.
   */
  decide(req: Request, stripped: bool): Decision {
    // One Attrs for every decision: a decision never outlives its call (a held request keeps
    // only its Request, and is decided again from scratch), and calls never overlap.
    let a = this.attrs;
    if (a === null) this.attrs = a = new Attrs(req, this.xffTrustedHops);
    else a.reset(req, this.xffTrustedHops);
    a.ownedStripped = stripped;
    let requires = this.requirementFor(a);
    if (this.bypassCorsPreflight && a.method == "OPTIONS" && req.header("origin") !== null &&
      req.header("access-control-request-method") !== null) {
      requires = REQ_NONE;
    }
    let apiKey: ApiKey | null = null;

    if (requires != REQ_NONE) {
      let sawCredential = false;
      // JWTs: every token present must verify (Envoy: "if two tokens are present both must verify")
      if (this.jwtOn && requires != REQ_API_KEY) {
        let v = this.verifier;
        let nowMs: f64 = -1; // read when a token is present
        let seen = 0; // tokens in seenPtr/seenLen
        if (this.seenPtr.length < v.sources.length) {
          this.seenPtr = new StaticArray<usize>(v.sources.length);
          this.seenLen = new StaticArray<usize>(v.sources.length);
        }
        if (this.textTokens.length > 0) this.textTokens.length = 0;
        for (let si = 0; si < v.sources.length; si++) {
          // the token's bytes (a view of what the host wrote, or the UTF-8 of the text rules' answer)
          let src = unchecked(v.sources[si]);
          let tok: string | null = null;
          let tp: usize = 0;
          let tn: usize = 0;
          let k = CRED_TEXT;
          if (src.kind == SRC_HEADER) {
            if (!src.readRaw()) continue;
            tp = readPtr;
            tn = readLen;
            k = src.findInHeader(tp, tn);
            if (k == CRED_TEXT) tok = src.fromHeader(tn == 0 ? "" : String.UTF8.decodeUnsafe(tp, tn));
          } else if (src.kind == SRC_QUERY) {
            if (!a.readRawPath()) continue;
            k = src.findInPath(a.rawPathPtr, a.rawPathLen);
            if (k == CRED_TEXT) tok = src.read(req);
          } else {
            tok = src.read(req);
          }
          if (k == CRED_NONE) continue;
          if (k == CRED_BYTES) {
            tp = credPtr;
            tn = credLen;
          } else {
            if (tok === null) continue;
            let b = String.UTF8.encode(tok!);
            this.textTokens.push(b); // alive until the next request
            tp = changetype<usize>(b);
            tn = <usize>b.byteLength;
          }
          if (this.seenBefore(seen, tp, tn)) continue;
          unchecked((this.seenPtr[seen] = tp));
          unchecked((this.seenLen[seen] = tn));
          seen++;
          if (nowMs < 0) nowMs = <f64>now() / 1e6;
          sawCredential = true;
          let r: VerifyResult | null = v.cached(tp, tn, si, nowMs / 1000);
          if (r === null) r = v.verify(tok !== null ? tok! : String.UTF8.decodeUnsafe(tp, tn), si, nowMs / 1000, true);
          if (r.badKey) mErrors.with(["error", "verify_bad_key"]).inc();
          if (r.token !== null) {
            cacheCounter(r.cached).inc();
            a.addToken(r.token!, si);
            continue;
          }
          let p = r.provider;
          if ((r.reason == R_NO_KEYS || r.reason == R_UNKNOWN_KID) && p !== null && p.remote !== null) {
            let rem = p.remote!;
            let fetching = rem.inFlight;
            if (!fetching) {
              let due = r.reason == R_NO_KEYS ? nowMs >= rem.nextRefreshMs : nowMs - rem.lastStartMs >= rem.minRefetchMs;
              if (due) fetching = this.startFetch(p, nowMs);
            }
            if (fetching) {
              if (rem.waiting.length >= MAX_WAITING) return this.deny(a, 503, E_UNAVAILABLE, "jwks_wait_queue_full", false);
              rem.waiting.push(req);
              this.stripOwned(a);
              return Decision.pause();
            }
          }
          if (r.reason == R_NO_KEYS) {
            mErrors.with(["error", "jwks_unavailable"]).inc();
            return this.deny(a, 503, E_UNAVAILABLE, "jwks_unavailable", false);
          }
          if (r.reason == R_VERIFY_UNAVAILABLE) {
            mErrors.with(["error", "verify_unavailable"]).inc();
            return this.deny(a, 503, E_UNAVAILABLE, "verify_unavailable", false);
          }
          return this.deny(a, 401, E_TOKEN, REASONS[r.reason], true);
        }
      }
      // API keys: the first source that has one
      if (this.apiKeysOn && requires != REQ_JWT) {
        let srcs = this.apiKeySources;
        for (let i = 0; i < srcs.length; i++) {
          let src = unchecked(srcs[i]);
          let key: string | null;
          let rawPtr: usize = 0;
          let rawLen: usize = 0;
          if (src.kind == SRC_HEADER) {
            if (!src.readRaw()) continue;
            rawPtr = readPtr;
            rawLen = readLen;
            let hit = this.keyCache.get(i, rawPtr, rawLen);
            if (hit !== null) {
              sawCredential = true;
              apiKey = hit;
              a.apiKeySource = i;
              break;
            }
            key = src.fromHeader(rawLen == 0 ? "" : String.UTF8.decodeUnsafe(rawPtr, rawLen));
          } else {
            key = src.read(req);
          }
          if (key === null) continue;
          sawCredential = true;
          let d = key.length <= 1024 ? toHex(digest(SHA256, String.UTF8.encode(key))) : "";
          if (!this.keys.has(d)) return this.deny(a, 401, E_API_KEY, "unknown_api_key", false);
          let k = this.keys.get(d);
          // the raw value stays readable until the callback returns (hostbytes.ts)
          if (src.kind == SRC_HEADER) this.keyCache.put(i, rawPtr, rawLen, k);
          apiKey = k;
          a.apiKeySource = i;
          break;
        }
      }
      if (!sawCredential && requires != REQ_OPTIONAL) return this.deny(a, 401, E_MISSING, "missing_credentials", false);
    }

    // who it is
    let tokens = a.tokens;
    if (tokens.length > 0) {
      let t = tokens[0];
      a.authenticated = true;
      a.viaJwt = true;
      a.principal = t.subject;
      a.issuer = t.issuer;
      a.claims = t.claims;
      a.tenant = t.tenant;
      let o = outputsOf(t);
      a.principalBytes = o.subject;
      a.tenantBytes = o.tenant;
    }
    if (apiKey !== null) {
      a.authenticated = true;
      a.viaApiKey = true;
      if (!a.viaJwt) {
        a.principal = apiKey.name;
        a.principalBytes = apiKey.nameBytes;
      }
      if (apiKey.tenant.length > 0) {
        a.tenant = apiKey.tenant;
        a.tenantBytes = apiKey.tenantBytes;
      }
      if (apiKey.restricted && !apiKey.allows(a)) return this.deny(a, 403, E_FORBIDDEN, "route_not_allowed", false);
    }

    // rules: AUDIT (logs whatever the outcome), then DENY, then ALLOW (Istio's order); dry-run rules only log
    for (let i = 0; i < this.auditRules.length; i++) {
      let r = unchecked(this.auditRules[i]);
      if (!r.matches(a)) continue;
      mAudit.with(["rule", r.name]).inc();
      if (log.enabled(LogLevel.Info)) log.info("audit rule=" + r.name + " " + this.describe(a));
    }
    for (let i = 0; i < this.denyRules.length; i++) {
      let r = unchecked(this.denyRules[i]);
      if (!r.matches(a)) continue;
      if (r.dryRun) {
        this.shadow(a, 403, "rule_denied", r.name);
        continue;
      }
      return this.deny(a, 403, E_FORBIDDEN, "rule_denied", false, r.name);
    }
    if (this.allowRules.length > 0) {
      let allowed = false;
      for (let i = 0; i < this.allowRules.length && !allowed; i++) {
        let r = unchecked(this.allowRules[i]);
        if (!r.matches(a)) continue;
        if (r.dryRun) this.shadowAllowed(a, r.name);
        else allowed = true;
      }
      if (!allowed && !this.defaultAllow) return this.deny(a, 403, E_FORBIDDEN, "no_allow_rule", false);
    } else if (!this.defaultAllow) {
      return this.deny(a, 403, E_FORBIDDEN, "default_deny", false);
    }
    return this.allow(a);
  }

  private allow(a: Attrs): Decision {
    let tokens = a.tokens;
    // a value a header cannot carry (e.g. a claim with CR/LF) is left out, never forwarded mangled
    let principal = a.principal.length > 0 ? a.principalUtf8 : null;
    let tenant = a.tenant.length > 0 ? a.tenantUtf8 : null;
    let set: u64 = 0; // owned headers set below (replacing what the client sent)
    if (principal !== null && this.principalHeader.length > 0 && headerSafe(a.principal)) {
      hb.setHeader(this.principalHeaderBytes, principal);
      set |= this.principalBit;
    }
    if (tenant !== null && this.tenantHeader.length > 0 && headerSafe(a.tenant)) {
      hb.setHeader(this.tenantHeaderBytes, tenant);
      set |= this.tenantBit;
    }
    if (a.authenticated) {
      props.setRaw(P_PRINCIPAL, a.principalUtf8.buf);
      props.setRaw(P_AUTH_METHOD, (a.viaJwt ? (a.viaApiKey ? V_JWT_AND_API_KEY : V_JWT) : V_API_KEY).buf);
    }
    if (tenant !== null) props.setRaw(P_TENANT, tenant.buf);
    for (let i = 0; i < tokens.length; i++) {
      let t = unchecked(tokens[i]);
      let p = t.provider;
      let o = outputsOf(t);
      if (i == 0) {
        props.setRaw(P_JWT_ISSUER, o.issuer.buf);
        props.setRaw(P_JWT_PROVIDER, p.nameBytes.buf);
        props.setRaw(P_JWT_PAYLOAD, t.payloadJson);
      }
      for (let j = 0; j < p.claimHeaders.length; j++) {
        let v = unchecked(o.claimValues[j]);
        if (v === null) continue;
        let ch = unchecked(p.claimHeaders[j]);
        hb.setHeader(ch.headerBytes, v);
        set |= ch.ownedBit;
      }
      let ps = o.payloadSegment;
      if (ps !== null) {
        hb.setHeader(p.payloadHeaderBytes, ps);
        set |= p.payloadOwnedBit;
      }
      if (!p.forward) unchecked(this.verifier.sources[a.tokenSources[i]]).strip(a.req);
    }
    props.commit();
    if (a.apiKeySource >= 0 && !this.apiKeyForward) unchecked(this.apiKeySources[a.apiKeySource]).strip(a.req);
    if (!a.ownedStripped) {
      // what the client sent in the owned headers this request did not set
      a.ownedStripped = true;
      let owned = this.ownedBytes;
      for (let i = 0, n = owned.length; i < n; i++) if ((set & (<u64>1 << <u64>i)) == 0) hb.removeHeader(unchecked(owned[i]));
    }
    allowedCounter(a.viaJwt ? (a.viaApiKey ? 1 : 0) : a.viaApiKey ? 2 : 3).inc();
    if (log.enabled(LogLevel.Debug)) log.debug("allow " + this.describe(a));
    return Decision.allow();
  }

  /** principal, method, path (no query: it may carry credentials) and source, for logs. */
  private describe(a: Attrs): string {
    let ip = a.req.sourceAddress;
    return "principal=" + (a.authenticated ? (a.principal.length > 0 ? a.principal : "-") : "anonymous") +
      (a.tenant.length > 0 ? " tenant=" + a.tenant : "") + " " + a.method + " " + a.path + " from " + ip;
  }

  private shadow(a: Attrs, status: i32, reason: string, rule: string): void {
    mShadow.with(["reason", reason]).inc();
    if (log.enabled(LogLevel.Info)) {
      log.info("dry-run: would deny " + status.toString() + " reason=" + reason + (rule.length > 0 ? " rule=" + rule : "") + " " + this.describe(a));
    }
  }

  private shadowAllowed(a: Attrs, rule: string): void {
    if (log.enabled(LogLevel.Info)) log.info("dry-run: rule=" + rule + " would allow " + this.describe(a));
  }

  /**
   * A denial: 401 (with WWW-Authenticate) or 403 or 503, a JSON body with a
   * stable code and a fixed message. The reason goes to metrics, logs and the
   * response details the proxy records, never to the client. In dry-run mode
   * the request is let through and the would-be denial logged.
   */
  private deny(a: Attrs, status: i32, code: string, reason: string, tokenPresented: bool, rule: string = ""): Decision {
    if (this.dryRun) {
      this.shadow(a, status, reason, rule);
      return this.allow(a);
    }
    this.stripOwned(a);
    mDenied.with(["status", status.toString(), "reason", reason]).inc();
    if (log.enabled(LogLevel.Debug)) {
      log.debug("deny " + status.toString() + " reason=" + reason + (rule.length > 0 ? " rule=" + rule : "") + " " + this.describe(a));
    }
    let h = new Headers();
    h.add("content-type", "application/json");
    h.add("cache-control", "no-store");
    if (status == 401) {
      if (this.jwtOn) h.add("www-authenticate", "Bearer realm=\"" + this.realm + "\"" + (tokenPresented ? ", error=\"invalid_token\"" : ""));
      if (this.apiKeysOn) h.add("www-authenticate", "ApiKey realm=\"" + this.realm + "\"");
    }
    let id = a.req.id;
    let body = "{\"error\":" + quoteJSON(code) + ",\"message\":" + quoteJSON(messageFor(code)) +
      (id.length > 0 ? ",\"request_id\":" + quoteJSON(id) : "") + "}";
    return Decision.deny(<u32>status, body, h).withDetails("auth_" + reason);
  }
}

/** The token's outputs, made on its first allowed request and kept with it (in the cache). */
function outputsOf(t: VerifiedToken): TokenOutputs {
  let o = t.outputs;
  if (o !== null) return o;
  let p = t.provider;
  let values = new Array<Bytes | null>(p.claimHeaders.length);
  for (let j = 0; j < p.claimHeaders.length; j++) {
    let v = claimByPath(t.claims, unchecked(p.claimHeaders[j]).claim);
    let s: string | null = v === null ? null : claimHeaderValue(v!);
    if (s !== null) unchecked((values[j] = new Bytes(s!)));
  }
  o = new TokenOutputs(new Bytes(t.subject), new Bytes(t.tenant), new Bytes(t.issuer), values,
    p.payloadHeader.length > 0 ? new Bytes(t.payloadSegment) : null);
  t.outputs = o;
  return o;
}

function onJwksResponse(adapter: Adapter, resp: HttpCallResponse): void {
  (<AuthAdapter>adapter).jwksAnswered(resp);
}

register<AuthAdapter>();
