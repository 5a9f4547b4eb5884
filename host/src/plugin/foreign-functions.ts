// Host foreign functions: what a module reaches with proxy_call_foreign_function(name, args).
//
// Names and argument formats follow Envoy (source/extensions/common/wasm/foreign.cc), so a
// module that uses them loads in Envoy as well as here:
//
//   verify_signature  args: VerifySignatureArguments (protobuf, ext/verify_signature.proto)
//                       1 hash_function string   "sha1" | "sha224" | "sha256" | "sha384" | "sha512"
//                       2 public_key     bytes   SubjectPublicKeyInfo, DER   } exactly one
//                       5 public_key_pem string  the same, PEM               } of the two
//                       3 signature      bytes   RSA: PKCS#1 v1.5; ECDSA: DER SEQUENCE{r, s}
//                       4 text           bytes   the signed data
//                     result: VerifySignatureResult (protobuf) 1 result bool, 2 error string
//                     status: OK with a result (also for a bad signature or an unsupported hash);
//                     BAD_ARGUMENT when the arguments do not parse or the key cannot be imported.
//
// A function returns the bytes to hand back (status OK) or a Status. Unknown names, and names the
// caller is not granted, are NOT_FOUND. Grants are a hook (ForeignFunctionRegistry.setGrant) for
// the per-adapter capability lists; until those exist every adapter may call every function.

import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { Status } from '../abi/constants.js';
import type { PluginFacts, PropertyValue } from './properties.js';
import type { HttpStream } from '../stream/http-stream.js';

/**
 * A result of known size written straight into the guest's allocation (status OK): the host
 * allocates `size` bytes in the guest and calls `write` once, before the host call returns,
 * so no intermediate Buffer is built. `write` must not call back into the guest.
 */
export interface ForeignWriter {
  readonly size: number;
  write(dst: Uint8Array): void;
}

/** Bytes (or a writer of them) to return with status OK, or the status to return with no result. */
export type ForeignResult = Uint8Array | ForeignWriter | Status;

/** A result's bytes (a writer's written into a fresh array): for callers outside a guest call, such as tests. */
export function foreignBytes(r: Uint8Array | ForeignWriter): Uint8Array {
  if (r instanceof Uint8Array) return r;
  const out = new Uint8Array(r.size);
  r.write(out);
  return out;
}

export interface ForeignCaller {
  /** The calling adapter's name. */
  readonly adapter: string;
  /** Where refusals are reported (e.g. the adapter's log at warn). */
  readonly warn?: (message: string) => void;
  /**
   * A property of the calling context, as proxy_get_property reads it (path segments joined by NUL):
   * bytes, a string meaning its UTF-8, a number or bigint meaning an int64 (8 bytes little-endian),
   * a boolean meaning one byte (plugin/properties.ts writeFixedProperty); null when unknown.
   */
  readonly property?: (path: string) => PropertyValue | null;
  /**
   * The calling context's request (null outside one) and the plugin's facts: what `property`
   * reads, for functions that resolve their paths once instead of on every call
   * (telemetry/property-plan.ts). Both or neither.
   */
  readonly stream?: () => HttpStream | null;
  readonly facts?: PluginFacts;
}

/**
 * `args` is borrowed: a view of the caller's guest memory (for a few bytes, an array the host
 * reuses for the next call), valid only until the function returns (the guest reuses it, and
 * a later guest allocation may detach it). A function copies whatever it keeps, and a
 * ForeignWriter it returns must not read `args`.
 */
export type ForeignFunction = (args: Uint8Array, caller: ForeignCaller) => ForeignResult;

/** Decides whether `adapter` may call foreign function `name`. */
export type ForeignGrant = (adapter: string, name: string) => boolean;

export class ForeignFunctionRegistry {
  private readonly fns = new Map<string, ForeignFunction>();
  private grant: ForeignGrant = () => true;

  register(name: string, fn: ForeignFunction): this {
    this.fns.set(name, fn);
    return this;
  }

  has(name: string): boolean {
    return this.fns.has(name);
  }

  names(): string[] {
    return [...this.fns.keys()].sort();
  }

  /** Installs the capability check (the default grants everything). */
  setGrant(grant: ForeignGrant): this {
    this.grant = grant;
    return this;
  }

  /** Runs `name` for `caller`. NOT_FOUND for unknown or ungranted names; a throwing function is INTERNAL_FAILURE. */
  call(caller: ForeignCaller, name: string, args: Uint8Array): ForeignResult {
    const fn = this.fns.get(name);
    if (fn === undefined) return Status.NotFound;
    if (!this.grant(caller.adapter, name)) {
      caller.warn?.(`foreign function "${name}" is not granted to this adapter`);
      return Status.NotFound;
    }
    try {
      return fn(args, caller);
    } catch (err) {
      caller.warn?.(`foreign function "${name}" failed: ${(err as Error).message}`);
      return Status.InternalFailure;
    }
  }
}

// ---- a minimal protobuf codec (just what the argument messages need) ---------------------------

/** Field number → last value of each length-delimited field; varints as bigint. null when malformed. */
export function decodeProto(buf: Uint8Array): Map<number, Uint8Array | bigint> | null {
  const out = new Map<number, Uint8Array | bigint>();
  let i = 0;
  // Varints as plain numbers (exact up to 2^53, far beyond any key or length here); -1 when malformed.
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let n = 0; n < 10; n++) {
      if (i >= buf.length) return -1;
      const b = buf[i++]!;
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return v <= Number.MAX_SAFE_INTEGER ? v : -1;
      mul *= 128;
    }
    return -1;
  };
  while (i < buf.length) {
    const key = varint();
    if (key < 0) return null;
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) return null;
    switch (wire) {
      case 0: {
        const v = varint();
        if (v < 0) return null;
        out.set(field, BigInt(v));
        break;
      }
      case 1:
        if (i + 8 > buf.length) return null;
        i += 8;
        break;
      case 2: {
        const len = varint();
        if (len < 0 || len > buf.length - i) return null;
        out.set(field, buf.subarray(i, i + len));
        i += len;
        break;
      }
      case 5:
        if (i + 4 > buf.length) return null;
        i += 4;
        break;
      default:
        return null;
    }
  }
  return out;
}

function encodeVarint(v: number, out: number[]): void {
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** Encodes fields in order; proto3 style, so false, 0 and empty values are left out. */
export function encodeProto(fields: Array<[number, boolean | number | string | Uint8Array]>): Uint8Array {
  const out: number[] = [];
  for (const [n, v] of fields) {
    if (typeof v === 'boolean' || typeof v === 'number') {
      const x = typeof v === 'boolean' ? (v ? 1 : 0) : v;
      if (x === 0) continue;
      encodeVarint(n << 3, out);
      encodeVarint(x, out);
    } else {
      const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      if (b.length === 0) continue;
      encodeVarint((n << 3) | 2, out);
      encodeVarint(b.length, out);
      for (const c of b) out.push(c);
    }
  }
  return Uint8Array.from(out);
}

// ---- verify_signature -------------------------------------------------------------------------

const HASHES = new Set(['sha1', 'sha224', 'sha256', 'sha384', 'sha512']);
const KEY_CACHE_MAX = 256;
const keyCache = new Map<string, KeyObject | null>();

function importKey(der: Uint8Array | null, pem: string | null): KeyObject | null {
  const id = der !== null ? `d${Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1')}` : `p${pem}`;
  const hit = keyCache.get(id);
  if (hit !== undefined) {
    keyCache.delete(id); // refresh its place in the LRU order
    keyCache.set(id, hit);
    return hit;
  }
  let key: KeyObject | null = null;
  try {
    key = der !== null ? createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' }) : createPublicKey(pem!);
  } catch {
    key = null;
  }
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value!);
  keyCache.set(id, key);
  return key;
}

const text = (b: Uint8Array | bigint | undefined): string => (b instanceof Uint8Array ? Buffer.from(b).toString('utf8') : '');
const bytes = (b: Uint8Array | bigint | undefined): Uint8Array => (b instanceof Uint8Array ? b : new Uint8Array(0));

/** Envoy's verify_signature, with node:crypto (OpenSSL) doing the maths. */
export const verifySignature: ForeignFunction = (args) => {
  const f = decodeProto(args);
  if (f === null) return Status.BadArgument;
  const der = bytes(f.get(2));
  const pem = text(f.get(5));
  if ((der.length > 0) === (pem.length > 0)) return Status.BadArgument; // neither, or both
  const key = importKey(der.length > 0 ? der : null, pem.length > 0 ? pem : null);
  if (key === null) return Status.BadArgument;
  const hashName = text(f.get(1));
  const hash = hashName.toLowerCase();
  if (!HASHES.has(hash)) return encodeProto([[1, false], [2, `${hashName} is not supported.`]]);
  let ok = false;
  try {
    ok = verify(hash, bytes(f.get(4)), { key, dsaEncoding: 'der' }, bytes(f.get(3)));
  } catch {
    return encodeProto([[1, false], [2, 'Failed to initialize digest verify.']]);
  }
  return ok ? encodeProto([[1, true]]) : encodeProto([[1, false], [2, 'Failed to verify digest. Error code: 0']]);
};

/** The functions every PluginVm can reach (subject to the registry's grant). */
export const defaultForeignFunctions = new ForeignFunctionRegistry().register('verify_signature', verifySignature);
