// Signature checks that run in the host: Envoy's `verify_signature` foreign
// function (envoyproxy/envoy source/extensions/common/wasm/foreign.cc), whose
// arguments and result are protobuf messages (ext/verify_signature.proto):
//
//   VerifySignatureArguments { string hash_function = 1; bytes public_key = 2 (DER SPKI);
//                              bytes signature = 3; bytes text = 4; string public_key_pem = 5; }
//   VerifySignatureResult    { bool result = 1; string error = 2; }
//
// The same name and format in wasm-mixer's host (host/src/plugin/foreign-functions.ts)
// keep this module loadable by Envoy. RSA signatures are PKCS#1 v1.5; ECDSA
// signatures are DER (see der.ts for the conversion from JOSE's r||s).

import { callForeignFunctionStatus, Status } from "wasm-mixer/sdk";

export const VERIFY_OK: i32 = 0;
/** The signature does not verify (or the hash is not supported). */
export const VERIFY_BAD_SIGNATURE: i32 = 1;
/** The host could not use the key (BAD_ARGUMENT). */
export const VERIFY_BAD_KEY: i32 = 2;
/** The host has no verify_signature (NOT_FOUND) or failed otherwise. */
export const VERIFY_UNAVAILABLE: i32 = 3;

@inline function varintSize(v: u32): i32 {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function writeVarint(p: usize, v: u32): usize {
  while (v >= 0x80) {
    store<u8>(p++, <u8>((v & 0x7f) | 0x80));
    v >>>= 7;
  }
  store<u8>(p++, <u8>v);
  return p;
}

@inline function fieldSize(n: i32): i32 {
  return n == 0 ? 0 : 1 + varintSize(<u32>n) + n;
}

function writeField(p: usize, field: u32, data: usize, n: i32): usize {
  if (n == 0) return p;
  store<u8>(p++, <u8>((field << 3) | 2));
  p = writeVarint(p, <u32>n);
  memory.copy(p, data, <usize>n);
  return p + <usize>n;
}

/** Encodes VerifySignatureArguments. `text` is s[start, end) of an ASCII string (the JWS signing input). */
export function verifyArguments(hash: string, spki: ArrayBuffer, sig: ArrayBuffer, text: string, start: i32, end: i32): ArrayBuffer {
  let hashBytes = String.UTF8.encode(hash);
  let textLen = end - start;
  let size = fieldSize(hashBytes.byteLength) + fieldSize(spki.byteLength) + fieldSize(sig.byteLength) + fieldSize(textLen);
  let out = new ArrayBuffer(size);
  let p = changetype<usize>(out);
  p = writeField(p, 1, changetype<usize>(hashBytes), hashBytes.byteLength);
  p = writeField(p, 2, changetype<usize>(spki), spki.byteLength);
  p = writeField(p, 3, changetype<usize>(sig), sig.byteLength);
  if (textLen > 0) {
    store<u8>(p++, <u8>((4 << 3) | 2));
    p = writeVarint(p, <u32>textLen);
    // the signing input is ASCII (base64url and '.'): one byte per UTF-16 unit
    let sp = changetype<usize>(text) + (<usize>start << 1);
    for (let i = 0; i < textLen; i++) store<u8>(p + <usize>i, <u8>load<u16>(sp + (<usize>i << 1)));
  }
  return out;
}

/** Reads VerifySignatureResult.result (absent means false, as proto3 omits defaults). null when malformed. */
function parseResult(b: ArrayBuffer): i32 {
  let p = changetype<usize>(b);
  let end = p + <usize>b.byteLength;
  let result = false;
  while (p < end) {
    // key
    let key: u64 = 0;
    let shift: u64 = 0;
    while (true) {
      if (p >= end || shift > 63) return -1;
      let c = load<u8>(p++);
      key |= (<u64>(c & 0x7f)) << shift;
      shift += 7;
      if ((c & 0x80) == 0) break;
    }
    let wire = <i32>(key & 7);
    let field = key >> 3;
    if (wire == 0) {
      let v: u64 = 0;
      shift = 0;
      while (true) {
        if (p >= end || shift > 63) return -1;
        let c = load<u8>(p++);
        v |= (<u64>(c & 0x7f)) << shift;
        shift += 7;
        if ((c & 0x80) == 0) break;
      }
      if (field == 1) result = v != 0;
    } else if (wire == 2) {
      let n: u64 = 0;
      shift = 0;
      while (true) {
        if (p >= end || shift > 63) return -1;
        let c = load<u8>(p++);
        n |= (<u64>(c & 0x7f)) << shift;
        shift += 7;
        if ((c & 0x80) == 0) break;
      }
      if (n > <u64>(end - p)) return -1;
      p += <usize>n;
    } else if (wire == 1) {
      p += 8;
    } else if (wire == 5) {
      p += 4;
    } else {
      return -1;
    }
  }
  if (p != end) return -1;
  return result ? 1 : 0;
}

/** Runs verify_signature. One of the VERIFY_* codes. */
export function hostVerify(hash: string, spki: ArrayBuffer, sig: ArrayBuffer, text: string, start: i32, end: i32): i32 {
  let r = callForeignFunctionStatus("verify_signature", verifyArguments(hash, spki, sig, text, start, end));
  if (r.status == Status.BadArgument) return VERIFY_BAD_KEY;
  if (r.status != Status.Ok) return VERIFY_UNAVAILABLE;
  let v = parseResult(r.value);
  if (v < 0) return VERIFY_UNAVAILABLE;
  return v == 1 ? VERIFY_OK : VERIFY_BAD_SIGNATURE;
}

/**
 * Whether the host can verify with this key: an empty signature over empty
 * text either fails cleanly (usable key) or comes back BAD_ARGUMENT (unusable)
 * or NOT_FOUND (no verify_signature on this host).
 */
export function probeKey(spki: ArrayBuffer): i32 {
  let r = callForeignFunctionStatus("verify_signature", verifyArguments("sha256", spki, new ArrayBuffer(0), "", 0, 0));
  if (r.status == Status.Ok) return VERIFY_OK;
  if (r.status == Status.BadArgument) return VERIFY_BAD_KEY;
  return VERIFY_UNAVAILABLE;
}
