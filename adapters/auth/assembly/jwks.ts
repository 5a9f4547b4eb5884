// JSON Web Keys (RFC 7517/7518) as verification keys: HMAC secrets ("oct"),
// RSA and EC public keys (turned into DER SubjectPublicKeyInfo for the host).
// A key that cannot be used is skipped with a warning, never half-used.

import { JSONValue } from "wasm-mixer/sdk";
import { decodeJwkMember } from "./base64";
import { CRV_P256, CRV_P384, CRV_P521, bitLength, curveSize, ecSpki, rsaSpki } from "./der";
import { HmacKey, SHA256, SHA384, SHA512 } from "./sha2";
import { VERIFY_BAD_KEY, VERIFY_OK, probeKey } from "./verify";

// ---- algorithms --------------------------------------------------------------------------------

export const ALG_NONE: i32 = 0; // unsupported (including "none")
export const ALG_HS256: i32 = 1;
export const ALG_HS384: i32 = 2;
export const ALG_HS512: i32 = 3;
export const ALG_RS256: i32 = 4;
export const ALG_RS384: i32 = 5;
export const ALG_RS512: i32 = 6;
export const ALG_ES256: i32 = 7;
export const ALG_ES384: i32 = 8;
export const ALG_ES512: i32 = 9;

export const ALG_NAMES: string[] = ["", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"];

export function algFromName(s: string): i32 {
  let i = ALG_NAMES.indexOf(s);
  return i <= 0 ? ALG_NONE : i;
}

/** SHA2 variant of an algorithm (SHA256/SHA384/SHA512 from sha2.ts). */
export function algHash(alg: i32): i32 {
  let r = (alg - 1) % 3;
  return r == 0 ? SHA256 : r == 1 ? SHA384 : SHA512;
}

export function algHashName(alg: i32): string {
  let r = (alg - 1) % 3;
  return r == 0 ? "sha256" : r == 1 ? "sha384" : "sha512";
}

@inline export function isHmac(alg: i32): bool { return alg >= ALG_HS256 && alg <= ALG_HS512; }

/** RFC 7518 §3.2: an HS* secret must be at least as long as the hash output (32, 48, 64 bytes). */
export function hmacMinBytes(alg: i32): i32 {
  return alg == ALG_HS256 ? 32 : alg == ALG_HS384 ? 48 : 64;
}
@inline export function isRsa(alg: i32): bool { return alg >= ALG_RS256 && alg <= ALG_RS512; }
@inline export function isEc(alg: i32): bool { return alg >= ALG_ES256 && alg <= ALG_ES512; }

// ---- keys --------------------------------------------------------------------------------------

export const KTY_OCT: i32 = 1;
export const KTY_RSA: i32 = 2;
export const KTY_EC: i32 = 3;

export class Jwk {
  kid: string = "";
  hasKid: bool = false;
  kty: i32 = 0;
  /** The key's own "alg", or ALG_NONE when it does not say. */
  alg: i32 = ALG_NONE;
  crv: i32 = 0;
  bits: i32 = 0;
  spki: ArrayBuffer | null = null;
  secret: ArrayBuffer | null = null;
  private hmacs: StaticArray<HmacKey | null> = new StaticArray<HmacKey | null>(3);

  /**
   * Whether this key may verify `alg`: the key type must fit the algorithm (an
   * RSA or EC key is never an HMAC secret, which stops algorithm confusion),
   * EC keys must be on the algorithm's curve, and a key that names its own
   * "alg" is used for that algorithm only.
   */
  fits(alg: i32): bool {
    if (this.alg != ALG_NONE && this.alg != alg) return false;
    if (isHmac(alg)) return this.kty == KTY_OCT;
    if (isRsa(alg)) return this.kty == KTY_RSA;
    if (alg == ALG_ES256) return this.kty == KTY_EC && this.crv == CRV_P256;
    if (alg == ALG_ES384) return this.kty == KTY_EC && this.crv == CRV_P384;
    if (alg == ALG_ES512) return this.kty == KTY_EC && this.crv == CRV_P521;
    return false;
  }

  /** The HMAC key for an HS* algorithm (pad states computed once). */
  hmac(alg: i32): HmacKey {
    let i = alg - ALG_HS256;
    let k = unchecked(this.hmacs[i]);
    if (k === null) {
      k = new HmacKey(algHash(alg), this.secret!);
      unchecked((this.hmacs[i] = k));
    }
    return k;
  }
}

/** Whether some algorithm in `allowed` could verify with `k` (type, curve, own alg and, for HMAC, secret length). */
export function canVerify(k: Jwk, allowed: StaticArray<bool>): bool {
  for (let a = 1; a < ALG_NAMES.length; a++) {
    if (!unchecked(allowed[a]) || !k.fits(a)) continue;
    if (isHmac(a) && k.secret!.byteLength < hmacMinBytes(a)) continue;
    return true;
  }
  return false;
}

/** Outcome of loading a key set. */
export class KeySet {
  keys: Jwk[] = [];
  /** Why keys were skipped (no key material in the text). */
  warnings: string[] = [];
  /** A fatal problem: the text is not a JWK Set. */
  error: string | null = null;
  /** RSA/EC keys were present but the host has no verify_signature. */
  hostCannotVerify: bool = false;
}

function member(o: JSONValue, name: string): string | null {
  let v = o.get(name);
  if (v !== null && v.isString) return v.strValue;
  return null;
}

/** A base64url member decoded, or null when absent or invalid. */
function bytesMember(o: JSONValue, name: string): ArrayBuffer | null {
  let s = member(o, name);
  if (s === null) return null;
  return decodeJwkMember(s);
}

/**
 * Loads a JWK Set ({"keys": [...]}) or a single JWK. RSA keys below
 * `minRsaBits`, HMAC secrets under 32 bytes, encryption keys, unknown key
 * types and curves are skipped with a warning. RSA and EC keys are checked
 * with the host (probeKey) so a key the host cannot import is skipped too.
 */
export function loadKeySet(v: JSONValue, minRsaBits: i32, allowed: StaticArray<bool> | null = null): KeySet {
  let set = new KeySet();
  let list: JSONValue[];
  if (v.isObject && v.has("keys")) {
    let ks = v.get("keys")!;
    if (!ks.isArray) {
      set.error = "\"keys\" must be an array";
      return set;
    }
    list = ks.items!;
  } else if (v.isObject && v.has("kty")) {
    list = [v];
  } else {
    set.error = "not a JWK Set (an object with \"keys\") or a JWK";
    return set;
  }
  for (let i = 0; i < list.length; i++) {
    let o = unchecked(list[i]);
    let where = "key " + i.toString();
    if (!o.isObject) {
      set.warnings.push(where + ": not an object");
      continue;
    }
    let k = new Jwk();
    let kid = member(o, "kid");
    if (kid !== null) {
      k.kid = kid;
      k.hasKid = true;
      where += " (kid \"" + kid + "\")";
    }
    let use = member(o, "use");
    if (use !== null && use != "sig") {
      set.warnings.push(where + ": use is \"" + use + "\", not \"sig\"");
      continue;
    }
    let ops = o.get("key_ops");
    if (ops !== null && ops.isArray) {
      let verifies = false;
      let items = ops.items!;
      for (let j = 0; j < items.length; j++) if (items[j].isString && items[j].strValue == "verify") verifies = true;
      if (!verifies) {
        set.warnings.push(where + ": key_ops does not include \"verify\"");
        continue;
      }
    }
    let alg = member(o, "alg");
    if (alg !== null) {
      k.alg = algFromName(alg);
      if (k.alg == ALG_NONE) {
        set.warnings.push(where + ": unsupported alg \"" + alg + "\"");
        continue;
      }
    }
    let kty = member(o, "kty");
    if (kty === null) {
      set.warnings.push(where + ": no kty");
      continue;
    }
    if (kty == "oct") {
      k.kty = KTY_OCT;
      let secret = bytesMember(o, "k");
      if (secret === null) {
        set.warnings.push(where + ": oct key without a valid \"k\"");
        continue;
      }
      if (secret.byteLength < 32) {
        set.warnings.push(where + ": HMAC secret shorter than 32 bytes");
        continue;
      }
      k.secret = secret;
      k.bits = secret.byteLength * 8;
    } else if (kty == "RSA") {
      k.kty = KTY_RSA;
      let n = bytesMember(o, "n");
      let e = bytesMember(o, "e");
      if (n === null || e === null || n.byteLength == 0 || e.byteLength == 0) {
        set.warnings.push(where + ": RSA key without valid \"n\" and \"e\"");
        continue;
      }
      k.bits = bitLength(n);
      if (k.bits < minRsaBits) {
        set.warnings.push(where + ": RSA modulus of " + k.bits.toString() + " bits is below min_rsa_bits " + minRsaBits.toString());
        continue;
      }
      k.spki = rsaSpki(n, e);
    } else if (kty == "EC") {
      k.kty = KTY_EC;
      let crv = member(o, "crv");
      k.crv = crv == "P-256" ? CRV_P256 : crv == "P-384" ? CRV_P384 : crv == "P-521" ? CRV_P521 : 0;
      if (k.crv == 0) {
        set.warnings.push(where + ": unsupported curve" + (crv !== null ? " \"" + crv + "\"" : ""));
        continue;
      }
      let x = bytesMember(o, "x");
      let y = bytesMember(o, "y");
      let size = curveSize(k.crv);
      if (x === null || y === null || x.byteLength != size || y.byteLength != size) {
        set.warnings.push(where + ": EC key without valid \"x\" and \"y\" of " + size.toString() + " bytes");
        continue;
      }
      k.bits = size * 8;
      k.spki = ecSpki(k.crv, x, y);
    } else {
      set.warnings.push(where + ": unsupported kty \"" + kty + "\"");
      continue;
    }
    if (k.alg != ALG_NONE && !k.fits(k.alg)) {
      set.warnings.push(where + ": alg " + ALG_NAMES[k.alg] + " does not fit the key type");
      continue;
    }
    if (k.kty == KTY_OCT && k.alg != ALG_NONE && k.secret!.byteLength < hmacMinBytes(k.alg)) {
      set.warnings.push(where + ": " + ALG_NAMES[k.alg] + " needs a secret of at least " + hmacMinBytes(k.alg).toString() +
        " bytes (RFC 7518 section 3.2), this one has " + k.secret!.byteLength.toString());
      continue;
    }
    if (allowed !== null && !canVerify(k, allowed)) {
      set.warnings.push(where + ": can never verify a token: it fits none of the provider's algorithms" +
        (k.kty == KTY_OCT ? " (an HMAC secret of " + k.secret!.byteLength.toString() + " bytes; HS256 needs 32, HS384 48, HS512 64)" : ""));
      continue;
    }
    if (k.spki !== null) {
      let probe = probeKey(k.spki!);
      if (probe == VERIFY_BAD_KEY) {
        set.warnings.push(where + ": the host cannot import this key");
        continue;
      }
      if (probe != VERIFY_OK) {
        set.hostCannotVerify = true;
        set.warnings.push(where + ": the host has no verify_signature foreign function, so RSA/EC keys cannot be used");
        continue;
      }
    }
    set.keys.push(k);
  }
  return set;
}
