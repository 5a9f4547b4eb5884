// Values by the raw bytes they were computed from: auth's verified API keys by the
// header value the client sent (a key seen before skips the UTF-8 decode, SHA-256 and
// hex lookup) and parsed peer addresses by their text; quota's dimension values to the
// key, values and parameters built from them.
//
// Bounded: `entries` slots (default BYTE_CACHE_ENTRIES), direct-mapped by a hash of
// (source, bytes) seeded per VM; bytes over `maxBytes` (default BYTE_CACHE_MAX_BYTES)
// are never cached. A new entry evicts whatever held its slot. For API keys only keys
// that verified are stored (an unknown key always pays the digest, so spraying random
// keys cannot evict anything). The key cache belongs to one configuration: the adapter
// builds a new one in configure, and a changed configuration runs in a new VM, so a
// revoked key is never answered from it.
//
// The comparison is constant-time over the length: how long it takes does not tell
// how many leading bytes of a cached key a guess got right.

export const BYTE_CACHE_ENTRIES: i32 = 256;
export const BYTE_CACHE_MAX_BYTES: i32 = 2048;

export class ByteCache<T> {
  private srcs: StaticArray<i32>;
  private keys: StaticArray<ArrayBuffer | null>;
  private vals: StaticArray<T | null>;
  private count: i32 = 0;

  constructor(private seed: u32, public readonly entries: i32 = BYTE_CACHE_ENTRIES, public readonly maxBytes: i32 = BYTE_CACHE_MAX_BYTES) {
    this.srcs = new StaticArray<i32>(entries);
    this.keys = new StaticArray<ArrayBuffer | null>(entries);
    this.vals = new StaticArray<T | null>(entries);
  }

  /** Entries in use (at most `entries`). */
  get size(): i32 {
    return this.count;
  }

  private slot(src: i32, p: usize, n: usize): i32 {
    let h: u32 = 0x811c9dc5 ^ this.seed ^ <u32>src;
    for (let i: usize = 0; i < n; i++) {
      h ^= <u32>load<u8>(p + i);
      h *= 0x01000193;
    }
    h ^= h >> 15;
    return <i32>(h % <u32>this.entries);
  }

  /** The value cached for these bytes from source `src`, or null. */
  get(src: i32, p: usize, n: usize): T | null {
    if (n > <usize>this.maxBytes) return null;
    let i = this.slot(src, p, n);
    let k = unchecked(this.keys[i]);
    if (k === null || unchecked(this.srcs[i]) != src || <usize>k.byteLength != n) return null;
    let q = changetype<usize>(k);
    let diff: u32 = 0;
    for (let j: usize = 0; j < n; j++) diff |= <u32>(load<u8>(p + j) ^ load<u8>(q + j));
    return diff == 0 ? unchecked(this.vals[i]) : null;
  }

  /** Remembers that these bytes from source `src` verified as `v` (evicting the slot's entry). */
  put(src: i32, p: usize, n: usize, v: T): void {
    if (n > <usize>this.maxBytes || this.entries == 0) return;
    let i = this.slot(src, p, n);
    let copy = new ArrayBuffer(<i32>n);
    memory.copy(changetype<usize>(copy), p, n);
    if (unchecked(this.keys[i]) === null) this.count++;
    unchecked((this.srcs[i] = src));
    unchecked((this.keys[i] = copy));
    unchecked((this.vals[i] = v));
  }

  clear(): void {
    for (let i = 0; i < this.entries; i++) {
      unchecked((this.keys[i] = null));
      unchecked((this.vals[i] = null));
    }
    this.count = 0;
  }
}
