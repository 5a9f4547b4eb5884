// BytesMap: a map from byte strings to values, for per-request lookups keyed by bytes the
// adapter already has (e.g. a request's label values, to find the metric handle of that
// label set) without making a string or hashing UTF-16. Keys are copied into one buffer.

import { ByteBuffer } from "./bytes";

/** FNV-1a over bytes p..p+n. */
export function hashBytes(p: usize, n: i32): u32 {
  let h: u32 = 0x811c9dc5;
  for (let i = 0; i < n; i++) {
    h ^= <u32>load<u8>(p + <usize>i);
    h *= 0x01000193;
  }
  return h;
}

export class BytesMap<T> {
  private store: ByteBuffer = new ByteBuffer(256);
  private offs: i32[] = [];
  private lens: i32[] = [];
  private hashes: u32[] = [];
  private next: i32[] = [];
  private vals: T[] = [];
  private heads: StaticArray<i32>;

  constructor(buckets: i32 = 16) {
    let n = 16;
    while (n < buckets) n <<= 1;
    this.heads = new StaticArray<i32>(n);
    for (let i = 0; i < n; i++) unchecked((this.heads[i] = -1));
  }

  get size(): i32 {
    return this.vals.length;
  }

  /** Index of the key p..p+n (whose hashBytes is `hash`), or -1. */
  find(p: usize, n: i32, hash: u32): i32 {
    let heads = this.heads;
    let i = unchecked(heads[<i32>(hash & <u32>(heads.length - 1))]);
    let base = this.store.ptr;
    while (i >= 0) {
      if (unchecked(this.hashes[i]) == hash && unchecked(this.lens[i]) == n &&
        memory.compare(base + <usize>unchecked(this.offs[i]), p, <usize>n) == 0) return i;
      i = unchecked(this.next[i]);
    }
    return -1;
  }

  /** Adds a key that find() did not find; returns its index. */
  add(p: usize, n: i32, hash: u32, value: T): i32 {
    let idx = this.vals.length;
    this.offs.push(this.store.len);
    this.store.raw(p, n);
    this.lens.push(n);
    this.hashes.push(hash);
    this.vals.push(value);
    this.next.push(-1);
    if (idx + 1 > this.heads.length * 2) this.rehash(this.heads.length * 4);
    else this.link(idx);
    return idx;
  }

  /** The value at an index from find() or add(). */
  valueAt(i: i32): T {
    return this.vals[i];
  }

  private link(i: i32): void {
    let heads = this.heads;
    let b = <i32>(unchecked(this.hashes[i]) & <u32>(heads.length - 1));
    unchecked((this.next[i] = heads[b]));
    unchecked((heads[b] = i));
  }

  private rehash(buckets: i32): void {
    this.heads = new StaticArray<i32>(buckets);
    for (let i = 0; i < buckets; i++) unchecked((this.heads[i] = -1));
    for (let i = 0, n = this.vals.length; i < n; i++) this.link(i);
  }
}
