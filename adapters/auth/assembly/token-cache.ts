// The cache of verified tokens, by the token's exact bytes: a token seen before costs a
// hash of its bytes and one comparison, not base64, JSON and a signature check, and it can
// be looked up straight from the header's bytes (no string made for it).
//
// Bounded: at most maxEntries tokens, none longer than maxTokenBytes. Entries live in
// slots reused in insertion order, so a full cache evicts the oldest token. The verifier
// drops an entry when its token is found expired, and everything when a provider's keys
// change (clear). The comparison is constant-time over the length, as the API-key cache's
// (bytecache.ts): how long a lookup takes does not tell how much of a cached token a guess
// got right. The hash is seeded per VM; only tokens that verified are ever stored.

export class TokenCache<T> {
  private keys: StaticArray<ArrayBuffer | null>;
  private vals: StaticArray<T | null>;
  private hashes: StaticArray<u32>;
  /** Next slot in the same bucket, or -1. */
  private chain: StaticArray<i32>;
  /** First slot of each bucket, or -1. */
  private heads: StaticArray<i32>;
  private pos: i32 = 0;
  private count: i32 = 0;

  constructor(public readonly maxEntries: i32, public readonly maxTokenBytes: i32, private seed: u32 = 0) {
    let n = maxEntries > 0 ? maxEntries : 0;
    this.keys = new StaticArray<ArrayBuffer | null>(n);
    this.vals = new StaticArray<T | null>(n);
    this.hashes = new StaticArray<u32>(n);
    this.chain = new StaticArray<i32>(n);
    let b = 16;
    while (b < n) b <<= 1;
    this.heads = new StaticArray<i32>(b);
    for (let i = 0; i < b; i++) unchecked((this.heads[i] = -1));
  }

  get size(): i32 {
    return this.count;
  }

  /** The value cached for the token [p, p+n), or null. */
  get(p: usize, n: usize): T | null {
    if (this.count == 0) return null;
    let i = this.find(p, n, this.hash(p, n));
    return i < 0 ? null : unchecked(this.vals[i]);
  }

  /** get() for a token held as text. */
  getText(token: string): T | null {
    if (this.count == 0) return null;
    let b = String.UTF8.encode(token);
    return this.get(changetype<usize>(b), <usize>b.byteLength);
  }

  put(token: string, v: T): void {
    if (this.maxEntries <= 0 || token.length > this.maxTokenBytes) return;
    let b = String.UTF8.encode(token);
    let p = changetype<usize>(b);
    let n = <usize>b.byteLength;
    let h = this.hash(p, n);
    let i = this.find(p, n, h);
    if (i >= 0) {
      unchecked((this.vals[i] = v));
      return;
    }
    i = this.pos;
    if (unchecked(this.keys[i]) !== null) this.unlink(i);
    unchecked((this.keys[i] = b));
    unchecked((this.vals[i] = v));
    unchecked((this.hashes[i] = h));
    let bucket = <i32>(h & <u32>(this.heads.length - 1));
    unchecked((this.chain[i] = this.heads[bucket]));
    unchecked((this.heads[bucket] = i));
    this.count++;
    this.pos = (i + 1) % this.maxEntries;
  }

  /** Drops the token [p, p+n) if cached. */
  remove(p: usize, n: usize): void {
    let i = this.find(p, n, this.hash(p, n));
    if (i >= 0) this.unlink(i);
  }

  clear(): void {
    for (let i = 0, n = this.keys.length; i < n; i++) {
      unchecked((this.keys[i] = null));
      unchecked((this.vals[i] = null));
    }
    for (let i = 0, n = this.heads.length; i < n; i++) unchecked((this.heads[i] = -1));
    this.count = 0;
    this.pos = 0;
  }

  private find(p: usize, n: usize, h: u32): i32 {
    if (this.count == 0) return -1;
    let i = unchecked(this.heads[<i32>(h & <u32>(this.heads.length - 1))]);
    while (i >= 0) {
      let k = unchecked(this.keys[i]);
      if (unchecked(this.hashes[i]) == h && k !== null && <usize>k.byteLength == n && sameBytes(p, changetype<usize>(k), n)) return i;
      i = unchecked(this.chain[i]);
    }
    return -1;
  }

  /** Empties slot i (occupied), taking it out of its bucket's chain. */
  private unlink(i: i32): void {
    let bucket = <i32>(unchecked(this.hashes[i]) & <u32>(this.heads.length - 1));
    let j = unchecked(this.heads[bucket]);
    if (j == i) unchecked((this.heads[bucket] = this.chain[i]));
    else {
      while (j >= 0) {
        let nx = unchecked(this.chain[j]);
        if (nx == i) {
          unchecked((this.chain[j] = this.chain[i]));
          break;
        }
        j = nx;
      }
    }
    unchecked((this.keys[i] = null));
    unchecked((this.vals[i] = null));
    this.count--;
  }

  /**
   * A seeded multiply-xorshift hash (tokens are a few hundred bytes): 32 bytes a round in four
   * independent lanes, so the multiplications overlap, folded together, then eight at a time.
   */
  private hash(p: usize, n: usize): u32 {
    let h: u64 = (<u64>this.seed << 32) ^ (<u64>n * 0x9e3779b97f4a7c15);
    let i: usize = 0;
    if (n >= 32) {
      let a = h;
      let b = h ^ 0x6a09e667f3bcc908;
      let c = h ^ 0xbb67ae8584caa73b;
      let d = h ^ 0x3c6ef372fe94f82b;
      for (; i + 32 <= n; i += 32) {
        a = (a ^ load<u64>(p + i)) * 0xff51afd7ed558ccd;
        b = (b ^ load<u64>(p + i, 8)) * 0xff51afd7ed558ccd;
        c = (c ^ load<u64>(p + i, 16)) * 0xff51afd7ed558ccd;
        d = (d ^ load<u64>(p + i, 24)) * 0xff51afd7ed558ccd;
        a ^= a >> 29;
        b ^= b >> 29;
        c ^= c >> 29;
        d ^= d >> 29;
      }
      h = ((a ^ rotl<u64>(b, 17)) * 0xc4ceb9fe1a85ec53) ^ rotl<u64>(c, 31) ^ rotl<u64>(d, 47);
      h ^= h >> 29;
    }
    for (; i + 8 <= n; i += 8) {
      h = (h ^ load<u64>(p + i)) * 0xff51afd7ed558ccd;
      h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ <u64>load<u8>(p + i)) * 0x100000001b3;
    h ^= h >> 32;
    return <u32>h;
  }
}

/** Whether [a, a+n) and [b, b+n) hold the same bytes, in time that depends on n only. */
function sameBytes(a: usize, b: usize, n: usize): bool {
  let diff: u64 = 0;
  let i: usize = 0;
  for (; i + 32 <= n; i += 32) {
    diff |= (load<u64>(a + i) ^ load<u64>(b + i)) | (load<u64>(a + i, 8) ^ load<u64>(b + i, 8)) |
      (load<u64>(a + i, 16) ^ load<u64>(b + i, 16)) | (load<u64>(a + i, 24) ^ load<u64>(b + i, 24));
  }
  for (; i + 8 <= n; i += 8) diff |= load<u64>(a + i) ^ load<u64>(b + i);
  for (; i < n; i++) diff |= <u64>(load<u8>(a + i) ^ load<u8>(b + i));
  return diff == 0;
}
