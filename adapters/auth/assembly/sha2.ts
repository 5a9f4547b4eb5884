// SHA-256, SHA-384 and SHA-512 (FIPS 180-4) and HMAC (RFC 2104), in the module.
// Used for API-key digests and HS256/384/512 token signatures: hashing a short
// input is cheap in wasm and needs no host support, so these work on any
// Proxy-Wasm host. (RSA and ECDSA go to the host: see verify.ts.)

export const SHA256: i32 = 0;
export const SHA384: i32 = 1;
export const SHA512: i32 = 2;

const K256: StaticArray<u32> = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5,
  0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
  0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
  0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
  0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];
const K512: StaticArray<u64> = [
  0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc,
  0x3956c25bf348b538, 0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118,
  0xd807aa98a3030242, 0x12835b0145706fbe, 0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2,
  0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235, 0xc19bf174cf692694,
  0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
  0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5,
  0x983e5152ee66dfab, 0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4,
  0xc6e00bf33da88fc2, 0xd5a79147930aa725, 0x06ca6351e003826f, 0x142929670a0e6e70,
  0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed, 0x53380d139d95b3df,
  0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
  0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30,
  0xd192e819d6ef5218, 0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8,
  0x19a4c116b8d2d0c8, 0x1e376c085141ab53, 0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8,
  0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373, 0x682e6ff3d6b2b8a3,
  0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
  0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b,
  0xca273eceea26619c, 0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178,
  0x06f067aa72176fba, 0x0a637dc5a2c898a6, 0x113f9804bef90dae, 0x1b710b35131c471b,
  0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc, 0x431d67c49c100d4c,
  0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
];
const H256: StaticArray<u32> = [
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const H384: StaticArray<u64> = [
  0xcbbb9d5dc1059ed8, 0x629a292a367cd507, 0x9159015a3070dd17, 0x152fecd8f70e5939,
  0x67332667ffc00b31, 0x8eb44a8768581511, 0xdb0c2e0d64f98fa7, 0x47b5481dbefa4fa4,
];
const H512: StaticArray<u64> = [
  0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
  0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
];

// Message schedules: scratch shared by every hash (the module is single-threaded).
const W32 = new StaticArray<u32>(64);
const W64 = new StaticArray<u64>(80);

@inline function rotr32(x: u32, n: u32): u32 { return rotr<u32>(x, n); }
@inline function rotr64(x: u64, n: u64): u64 { return rotr<u64>(x, n); }

function compress256(h: StaticArray<u32>, p: usize): void {
  for (let i = 0; i < 16; i++) unchecked((W32[i] = bswap<u32>(load<u32>(p + (<usize>i << 2)))));
  for (let i = 16; i < 64; i++) {
    let w15 = unchecked(W32[i - 15]);
    let w2 = unchecked(W32[i - 2]);
    let s0 = rotr32(w15, 7) ^ rotr32(w15, 18) ^ (w15 >>> 3);
    let s1 = rotr32(w2, 17) ^ rotr32(w2, 19) ^ (w2 >>> 10);
    unchecked((W32[i] = unchecked(W32[i - 16]) + s0 + unchecked(W32[i - 7]) + s1));
  }
  let a = unchecked(h[0]), b = unchecked(h[1]), c = unchecked(h[2]), d = unchecked(h[3]);
  let e = unchecked(h[4]), f = unchecked(h[5]), g = unchecked(h[6]), hh = unchecked(h[7]);
  for (let i = 0; i < 64; i++) {
    let S1 = rotr32(e, 6) ^ rotr32(e, 11) ^ rotr32(e, 25);
    let ch = (e & f) ^ (~e & g);
    let t1 = hh + S1 + ch + unchecked(K256[i]) + unchecked(W32[i]);
    let S0 = rotr32(a, 2) ^ rotr32(a, 13) ^ rotr32(a, 22);
    let maj = (a & b) ^ (a & c) ^ (b & c);
    let t2 = S0 + maj;
    hh = g; g = f; f = e; e = d + t1;
    d = c; c = b; b = a; a = t1 + t2;
  }
  unchecked((h[0] += a)); unchecked((h[1] += b)); unchecked((h[2] += c)); unchecked((h[3] += d));
  unchecked((h[4] += e)); unchecked((h[5] += f)); unchecked((h[6] += g)); unchecked((h[7] += hh));
}

function compress512(h: StaticArray<u64>, p: usize): void {
  for (let i = 0; i < 16; i++) unchecked((W64[i] = bswap<u64>(load<u64>(p + (<usize>i << 3)))));
  for (let i = 16; i < 80; i++) {
    let w15 = unchecked(W64[i - 15]);
    let w2 = unchecked(W64[i - 2]);
    let s0 = rotr64(w15, 1) ^ rotr64(w15, 8) ^ (w15 >>> 7);
    let s1 = rotr64(w2, 19) ^ rotr64(w2, 61) ^ (w2 >>> 6);
    unchecked((W64[i] = unchecked(W64[i - 16]) + s0 + unchecked(W64[i - 7]) + s1));
  }
  let a = unchecked(h[0]), b = unchecked(h[1]), c = unchecked(h[2]), d = unchecked(h[3]);
  let e = unchecked(h[4]), f = unchecked(h[5]), g = unchecked(h[6]), hh = unchecked(h[7]);
  for (let i = 0; i < 80; i++) {
    let S1 = rotr64(e, 14) ^ rotr64(e, 18) ^ rotr64(e, 41);
    let ch = (e & f) ^ (~e & g);
    let t1 = hh + S1 + ch + unchecked(K512[i]) + unchecked(W64[i]);
    let S0 = rotr64(a, 28) ^ rotr64(a, 34) ^ rotr64(a, 39);
    let maj = (a & b) ^ (a & c) ^ (b & c);
    let t2 = S0 + maj;
    hh = g; g = f; f = e; e = d + t1;
    d = c; c = b; b = a; a = t1 + t2;
  }
  unchecked((h[0] += a)); unchecked((h[1] += b)); unchecked((h[2] += c)); unchecked((h[3] += d));
  unchecked((h[4] += e)); unchecked((h[5] += f)); unchecked((h[6] += g)); unchecked((h[7] += hh));
}

/** An incremental SHA-2 hash. */
export class Hash {
  readonly alg: i32;
  readonly blockSize: i32;
  readonly outSize: i32;
  private h32: StaticArray<u32> = new StaticArray<u32>(8);
  private h64: StaticArray<u64> = new StaticArray<u64>(8);
  private block: StaticArray<u8> = new StaticArray<u8>(128);
  private fill: i32 = 0;
  private total: u64 = 0;

  constructor(alg: i32) {
    this.alg = alg;
    this.blockSize = alg == SHA256 ? 64 : 128;
    this.outSize = alg == SHA256 ? 32 : alg == SHA384 ? 48 : 64;
    this.reset();
  }

  reset(): Hash {
    if (this.alg == SHA256) {
      for (let i = 0; i < 8; i++) unchecked((this.h32[i] = H256[i]));
    } else {
      let iv = this.alg == SHA384 ? H384 : H512;
      for (let i = 0; i < 8; i++) unchecked((this.h64[i] = iv[i]));
    }
    this.fill = 0;
    this.total = 0;
    return this;
  }

  /** Makes this hash a copy of `o` (same algorithm), e.g. a precomputed HMAC pad state. */
  copyFrom(o: Hash): Hash {
    memory.copy(changetype<usize>(this.h32), changetype<usize>(o.h32), 32);
    memory.copy(changetype<usize>(this.h64), changetype<usize>(o.h64), 64);
    memory.copy(changetype<usize>(this.block), changetype<usize>(o.block), 128);
    this.fill = o.fill;
    this.total = o.total;
    return this;
  }

  @inline private compress(p: usize): void {
    if (this.alg == SHA256) compress256(this.h32, p);
    else compress512(this.h64, p);
  }

  /** Absorbs `n` bytes at `p`. */
  update(p: usize, n: i32): Hash {
    this.total += <u64>n;
    let bs = this.blockSize;
    let blk = changetype<usize>(this.block);
    if (this.fill > 0) {
      let take = min(bs - this.fill, n);
      memory.copy(blk + <usize>this.fill, p, <usize>take);
      this.fill += take;
      p += <usize>take;
      n -= take;
      if (this.fill < bs) return this;
      this.compress(blk);
      this.fill = 0;
    }
    while (n >= bs) {
      this.compress(p);
      p += <usize>bs;
      n -= bs;
    }
    if (n > 0) {
      memory.copy(blk, p, <usize>n);
      this.fill = n;
    }
    return this;
  }

  updateBuffer(b: ArrayBuffer): Hash {
    return this.update(changetype<usize>(b), b.byteLength);
  }

  /** Finishes the hash and returns the digest (the hash must be reset before reuse). */
  digest(): ArrayBuffer {
    let bs = this.blockSize;
    let blk = changetype<usize>(this.block);
    let lenField = bs == 64 ? 8 : 16;
    let bits = this.total << 3;
    store<u8>(blk + <usize>this.fill, 0x80);
    this.fill++;
    if (this.fill > bs - lenField) {
      memory.fill(blk + <usize>this.fill, 0, <usize>(bs - this.fill));
      this.compress(blk);
      this.fill = 0;
    }
    memory.fill(blk + <usize>this.fill, 0, <usize>(bs - this.fill));
    store<u64>(blk + <usize>(bs - 8), bswap<u64>(bits));
    this.compress(blk);
    let out = new ArrayBuffer(this.outSize);
    let o = changetype<usize>(out);
    if (this.alg == SHA256) {
      for (let i = 0; i < 8; i++) store<u32>(o + (<usize>i << 2), bswap<u32>(unchecked(this.h32[i])));
    } else {
      let words = this.outSize >> 3;
      for (let i = 0; i < words; i++) store<u64>(o + (<usize>i << 3), bswap<u64>(unchecked(this.h64[i])));
    }
    return out;
  }
}

/** One-shot digest. */
export function digest(alg: i32, data: ArrayBuffer): ArrayBuffer {
  return new Hash(alg).updateBuffer(data).digest();
}

/** An HMAC key with its inner and outer pad states precomputed. */
export class HmacKey {
  readonly alg: i32;
  /** Length of the key as given (RFC 7518 wants at least the hash size). */
  readonly keyLength: i32;
  private inner: Hash;
  private outer: Hash;
  private work: Hash;

  constructor(alg: i32, key: ArrayBuffer) {
    this.alg = alg;
    this.keyLength = key.byteLength;
    let h = new Hash(alg);
    let bs = h.blockSize;
    let k = key.byteLength > bs ? digest(alg, key) : key;
    let pad = new ArrayBuffer(bs);
    let pp = changetype<usize>(pad);
    let kp = changetype<usize>(k);
    let kl = k.byteLength;
    for (let i = 0; i < bs; i++) store<u8>(pp + <usize>i, (i < kl ? load<u8>(kp + <usize>i) : 0) ^ 0x36);
    this.inner = new Hash(alg).update(pp, bs);
    for (let i = 0; i < bs; i++) store<u8>(pp + <usize>i, (i < kl ? load<u8>(kp + <usize>i) : 0) ^ 0x5c);
    this.outer = new Hash(alg).update(pp, bs);
    this.work = new Hash(alg);
  }

  /** HMAC of `n` bytes at `p`. */
  mac(p: usize, n: i32): ArrayBuffer {
    let inner = this.work.copyFrom(this.inner).update(p, n).digest();
    return this.work.copyFrom(this.outer).updateBuffer(inner).digest();
  }
}

/** Equality of two byte strings in time that depends only on their lengths. */
export function constantTimeEqual(a: ArrayBuffer, b: ArrayBuffer): bool {
  let n = a.byteLength;
  if (n != b.byteLength) return false;
  let pa = changetype<usize>(a);
  let pb = changetype<usize>(b);
  let diff: u32 = 0;
  for (let i = 0; i < n; i++) diff |= <u32>(load<u8>(pa + <usize>i) ^ load<u8>(pb + <usize>i));
  return diff == 0;
}

/** Lower-case hex of a byte string. */
export function toHex(b: ArrayBuffer): string {
  let p = changetype<usize>(b);
  let n = <usize>b.byteLength;
  let out = changetype<string>(__new(n << 2, idof<string>()));
  let o = changetype<usize>(out);
  for (let i: usize = 0; i < n; i++) {
    let v = <u32>load<u8>(p + i);
    let hi = v >> 4;
    let lo = v & 15;
    store<u16>(o + (i << 2), <u16>(hi < 10 ? 0x30 + hi : 0x57 + hi));
    store<u16>(o + (i << 2) + 2, <u16>(lo < 10 ? 0x30 + lo : 0x57 + lo));
  }
  return out;
}
