// A limit's key for a request from the bytes of its dimension values. The values a
// client sends repeat (its tenant, its address), so the key, the decoded values, the
// parameters their overrides select and the encoded shared-data key are built once
// per distinct set of value bytes and found again by those bytes (bytecache.ts).
// Dimensions read as bytes: header, source_ip, source_address; a limit with any other
// dimension, a missing or empty value, or values over KEY_BYTES_MAX takes the string
// path in index.ts, as before.

import { ByteCache } from "wasm-mixer/sdk/assembly/bytecache";
import { Bytes, readHeader, readProperty, viewLen, viewPtr } from "wasm-mixer/sdk/assembly/hostbytes";
import { LimitSpec, Params, Src } from "./spec";

/** Largest concatenation of a limit's value bytes (with their lengths) that is cached. */
export const KEY_BYTES_MAX: i32 = 512;
/** Cached value sets per limit. */
export const KEY_ENTRIES: i32 = 64;

const P_SOURCE_ADDRESS = Bytes.path("source", "address");

/** What a set of dimension values resolves to for one limit. */
export class KeyEntry {
  constructor(
    public values: string[],
    /** domain:limit:values, as Slot.dimKey. */
    public dimKey: string,
    /** "l:" + dimKey as UTF-8: the local counter's shared-data key. */
    public localKey: Bytes,
    public params: Params,
  ) {}
}

/** One cache per limit, indexed like QuotaSpec.limits; made by configure. */
export class KeyCaches {
  caches: ByteCache<KeyEntry>[] = [];
  constructor(n: i32, seed: u32) {
    for (let i = 0; i < n; i++) this.caches.push(new ByteCache<KeyEntry>(seed + <u32>i, KEY_ENTRIES, KEY_BYTES_MAX));
  }
}

// The value bytes of the request being planned, each as u32 length + bytes.
const SCRATCH = memory.data(KEY_BYTES_MAX + 8, 8);
export let scratchLen: i32 = 0;

function append(p: usize, n: usize): bool {
  let at = <usize>scratchLen;
  if (at + 4 + n > <usize>KEY_BYTES_MAX) return false;
  store<u32>(SCRATCH + at, <u32>n);
  memory.copy(SCRATCH + at + 4, p, n);
  scratchLen = <i32>(at + 4 + n);
  return true;
}

/** The IP part of "ip:port" / "[v6]:port" in bytes, as the SDK's hostPart does it on text. */
function appendHostPart(p: usize, n: usize): bool {
  if (n > 0 && load<u8>(p) == 0x5b) {
    for (let i: usize = 1; i < n; i++) if (load<u8>(p + i) == 0x5d) return i > 1 && append(p + 1, i - 1);
    return append(p, n);
  }
  let first: isize = -1;
  let last: isize = -1;
  for (let i: usize = 0; i < n; i++) {
    if (load<u8>(p + i) == 0x3a) {
      if (first < 0) first = <isize>i;
      last = <isize>i;
    }
  }
  if (first < 0 || first != last) return append(p, n);
  return first > 0 && append(p, <usize>first);
}

/** readDimensionBytes: every value is in the scratch buffer (each non-empty). */
export const DIMS_READ: i32 = 0;
/** readDimensionBytes: take the string path (a dimension of another kind, a value too long or with no host part). */
export const DIMS_TEXT: i32 = 1;
/** readDimensionBytes: a value is missing or empty (the ones before it were read): the string path would find the same. */
export const DIMS_MISSING: i32 = 2;

/** Reads the limit's dimension values as bytes into the scratch buffer (DIMS_*). */
export function readDimensionBytes(l: LimitSpec): i32 {
  scratchLen = 0;
  let dims = l.dims;
  for (let j = 0, d = dims.length; j < d; j++) {
    let s = unchecked(dims[j]);
    if (s.kind == Src.Header) {
      if (!readHeader(s.nameBytes) || viewLen == 0) return DIMS_MISSING;
      if (!append(viewPtr, viewLen)) return DIMS_TEXT;
    } else if (s.kind == Src.SourceIp || s.kind == Src.SourceAddress) {
      if (!readProperty(P_SOURCE_ADDRESS) || viewLen == 0) return DIMS_MISSING;
      if (s.kind == Src.SourceIp ? !appendHostPart(viewPtr, viewLen) : !append(viewPtr, viewLen)) return DIMS_TEXT;
    } else {
      return DIMS_TEXT;
    }
  }
  return DIMS_READ;
}

/** The entry for the values just read, or null. */
export function findKey(cache: ByteCache<KeyEntry>): KeyEntry | null {
  return cache.get(0, SCRATCH, <usize>scratchLen);
}

/** Remembers the entry for the values just read (nothing may have been read since). */
export function keepKey(cache: ByteCache<KeyEntry>, e: KeyEntry): void {
  cache.put(0, SCRATCH, <usize>scratchLen, e);
}
