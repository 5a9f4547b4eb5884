// ByteBuffer: a growable UTF-8 byte buffer meant to be kept and reused. Adapters build
// output in it (JSON escaping on the fly, integers as digits) and the SDK reads host
// values into it (headers, properties, foreign-function results), so the hot path of a
// request neither allocates nor converts bytes to UTF-16 strings to compare them.
// The SDK's only JSON string escaper lives here (quoteJSON uses it too).

export class ByteBuffer {
  buf: ArrayBuffer;
  /** Bytes in use, from the start of buf. */
  len: i32 = 0;

  constructor(capacity: i32 = 256) {
    this.buf = new ArrayBuffer(capacity > 0 ? capacity : 16);
  }

  /** Address of the first byte (valid until the buffer grows). */
  @inline get ptr(): usize {
    return changetype<usize>(this.buf);
  }

  get capacity(): i32 {
    return this.buf.byteLength;
  }

  /** Empties the buffer, keeping its memory. */
  reset(): void {
    this.len = 0;
  }

  /** Makes room for n more bytes. */
  @inline reserve(n: i32): void {
    if (this.len + n > this.buf.byteLength) this.grow(this.len + n);
  }

  private grow(need: i32): void {
    let cap = this.buf.byteLength;
    while (cap < need) cap <<= 1;
    let nb = new ArrayBuffer(cap);
    memory.copy(changetype<usize>(nb), this.ptr, <usize>this.len);
    this.buf = nb;
  }

  /** @internal Takes `b` (exactly `b.byteLength` bytes of content) as the buffer. */
  adopt(b: ArrayBuffer): void {
    this.buf = b;
    this.len = b.byteLength;
  }

  // ---- writing ---------------------------------------------------------------------------------

  byte(b: u8): void {
    this.reserve(1);
    store<u8>(this.ptr + <usize>this.len, b);
    this.len++;
  }

  /** Raw bytes. */
  bytes(b: ArrayBuffer): void {
    this.raw(changetype<usize>(b), b.byteLength);
  }

  /** Raw bytes at src..src+n. */
  raw(src: usize, n: i32): void {
    if (n <= 0) return;
    this.reserve(n);
    let dst = this.ptr + <usize>this.len;
    // Most pieces of a log line or label set are short: copied with a few loads and stores,
    // they skip memory.copy's call out of the engine (and its metering charge).
    if (n <= 64 && (src + <usize>n <= dst || dst + <usize>n <= src)) {
      if (n <= 32) copyShort(dst, src, <usize>n);
      else copyMedium(dst, src, <usize>n);
    } else {
      memory.copy(dst, src, <usize>n);
    }
    this.len += n;
  }

  /** A string as UTF-8. */
  str(s: string): void {
    let chars = s.length;
    // One pass when the worst case (3 bytes per UTF-16 unit) fits; else measure first.
    if (this.len + chars * 3 > this.buf.byteLength) this.reserve(String.UTF8.byteLength(s));
    this.len += <i32>String.UTF8.encodeUnsafe(changetype<usize>(s), chars, this.ptr + <usize>this.len);
  }

  /** The contents of a JSON string literal (no quotes): escapes ", \ and control characters. */
  jsonStr(s: string): void {
    let n = s.length;
    let run = 0;
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
      if (i > run) this.strRange(s, run, i);
      this.escape(<u8>c);
      run = i + 1;
    }
    if (run == 0) this.str(s);
    else if (n > run) this.strRange(s, run, n);
  }

  /** UTF-8 bytes at p..p+n as the contents of a JSON string literal. */
  jsonRaw(p: usize, n: i32): void {
    let run = 0;
    for (let i = 0; i < n; i++) {
      let c = load<u8>(p + <usize>i);
      if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
      if (i > run) this.raw(p + <usize>run, i - run);
      this.escape(c);
      run = i + 1;
    }
    if (n > run) this.raw(p + <usize>run, n - run);
  }

  /** UTF-8 bytes as the contents of a JSON string literal. */
  jsonBytes(b: ArrayBuffer): void {
    this.jsonRaw(changetype<usize>(b), b.byteLength);
  }

  private strRange(s: string, from: i32, to: i32): void {
    let src = changetype<usize>(s) + (<usize>from << 1);
    let chars = to - from;
    this.reserve(chars * 3);
    this.len += <i32>String.UTF8.encodeUnsafe(src, chars, this.ptr + <usize>this.len);
  }

  // JSON's escapes (RFC 8259 section 7): the two-character forms where JSON has one, else \u00XX.
  private escape(c: u8): void {
    this.reserve(6);
    let p = this.ptr + <usize>this.len;
    store<u8>(p, 0x5c);
    let short: u8 = 0;
    if (c == 0x22 || c == 0x5c) short = c;
    else if (c == 0x0a) short = 0x6e; // n
    else if (c == 0x0d) short = 0x72; // r
    else if (c == 0x09) short = 0x74; // t
    else if (c == 0x08) short = 0x62; // b
    else if (c == 0x0c) short = 0x66; // f
    if (short != 0) {
      store<u8>(p + 1, short);
      this.len += 2;
      return;
    }
    store<u8>(p + 1, 0x75); // \u00XX
    store<u8>(p + 2, 0x30);
    store<u8>(p + 3, 0x30);
    store<u8>(p + 4, hexDigit(c >> 4));
    store<u8>(p + 5, hexDigit(c & 15));
    this.len += 6;
  }

  /** A signed integer in decimal. */
  int(v: i64): void {
    if (<u64>v <= <u64>u32.MAX_VALUE) {
      // codes, sizes, durations: 32-bit divisions (several times cheaper than 64-bit ones)
      let u = <u32>v;
      let digits = u < 10 ? 1 : u < 100 ? 2 : u < 1000 ? 3 : u < 10000 ? 4 : u < 100000 ? 5 : u < 1000000 ? 6 :
        u < 10000000 ? 7 : u < 100000000 ? 8 : u < 1000000000 ? 9 : 10;
      this.reserve(10);
      let q = this.ptr + <usize>this.len;
      for (let i = digits - 1; i >= 0; i--) {
        store<u8>(q + <usize>i, <u8>(0x30 + u % 10));
        u /= 10;
      }
      this.len += digits;
      return;
    }
    if (v < 0) {
      this.byte(0x2d);
      if (v == i64.MIN_VALUE) {
        this.str("9223372036854775808");
        return;
      }
      v = -v;
    }
    this.reserve(20);
    let digits = 1;
    let t = v;
    while (t >= 10) {
      t /= 10;
      digits++;
    }
    let p = this.ptr + <usize>this.len;
    for (let i = digits - 1; i >= 0; i--) {
      store<u8>(p + <usize>i, <u8>(0x30 + <i32>(v % 10)));
      v /= 10;
    }
    this.len += digits;
  }

  /** A non-negative integer, zero-padded to `width` digits. */
  padded(v: i64, width: i32): void {
    let digits = 1;
    let t = v;
    while (t >= 10) {
      t /= 10;
      digits++;
    }
    for (let i = digits; i < width; i++) this.byte(0x30);
    this.int(v);
  }

  // ---- reading ---------------------------------------------------------------------------------

  /** A copy of bytes [from, len) as an exact-size ArrayBuffer. */
  slice(from: i32 = 0): ArrayBuffer {
    let n = this.len - from;
    let out = new ArrayBuffer(n);
    memory.copy(changetype<usize>(out), this.ptr + <usize>from, <usize>n);
    return out;
  }

  /** The contents decoded as UTF-8. */
  toString(): string {
    return String.UTF8.decodeUnsafe(this.ptr, <usize>this.len);
  }

  /** Whether the contents are the UTF-8 encoding of `s` (no allocation for ASCII `s`). */
  equals(s: string): bool {
    return bytesEqual(this.ptr, this.len, s);
  }

  /** Whether the contents start with the UTF-8 encoding of `s`. */
  startsWith(s: string): bool {
    return bytesStartWith(this.ptr, this.len, s);
  }
}

// Copies n (1..32) bytes between regions that do not overlap, with overlapping word moves
// (the head and tail words cover the middle), no loop and no call.
@inline function copyShort(dst: usize, src: usize, n: usize): void {
  if (n >= 8) {
    store<u64>(dst, load<u64>(src)); // [0, 8)
    store<u64>(dst + n - 8, load<u64>(src + n - 8)); // [n-8, n): all of 8..16
    if (n > 16) {
      store<u64>(dst, load<u64>(src, 8), 8); // [8, 16)
      store<u64>(dst + n - 16, load<u64>(src + n - 16)); // [n-16, n-8): all of 17..32
    }
  } else if (n >= 4) {
    store<u32>(dst, load<u32>(src));
    store<u32>(dst + n - 4, load<u32>(src + n - 4));
  } else {
    store<u8>(dst, load<u8>(src));
    store<u8>(dst + (n >> 1), load<u8>(src + (n >> 1)));
    store<u8>(dst + n - 1, load<u8>(src + n - 1));
  }
}

// Copies n (33..64) bytes between regions that do not overlap: the first 32 and the last 32
// (overlapping in the middle), no loop and no call.
@inline function copyMedium(dst: usize, src: usize, n: usize): void {
  store<u64>(dst, load<u64>(src));
  store<u64>(dst, load<u64>(src, 8), 8);
  store<u64>(dst, load<u64>(src, 16), 16);
  store<u64>(dst, load<u64>(src, 24), 24);
  let d = dst + n - 32;
  let s = src + n - 32;
  store<u64>(d, load<u64>(s));
  store<u64>(d, load<u64>(s, 8), 8);
  store<u64>(d, load<u64>(s, 16), 16);
  store<u64>(d, load<u64>(s, 24), 24);
}

@inline function hexDigit(v: u8): u8 {
  return v < 10 ? 0x30 + v : 0x57 + v;
}

// Whether bytes p..p+n equal (whole) or start with (!whole) the UTF-8 encoding of s. Callers
// ensure n >= s.length. ASCII strings are compared without encoding them.
function matchPrefix(p: usize, n: i32, s: string, whole: bool): bool {
  let m = s.length;
  let sp = changetype<usize>(s);
  let i = 0;
  for (; i < m; i++) {
    let c = <i32>load<u16>(sp + (<usize>i << 1));
    if (c >= 0x80) break;
    if (<i32>load<u8>(p + <usize>i) != c) return false;
  }
  if (i == m) return whole ? i == n : true;
  // non-ASCII from here: encode the rest once (rare: header names and paths are ASCII)
  let rest = String.UTF8.encode(s.substring(i));
  let r = rest.byteLength;
  if (whole ? n - i != r : n - i < r) return false;
  return memory.compare(p + <usize>i, changetype<usize>(rest), <usize>r) == 0;
}

/** Whether UTF-8 bytes p..p+n equal `s`. */
export function bytesEqual(p: usize, n: i32, s: string): bool {
  if (n < s.length) return false; // a UTF-16 unit is at least one UTF-8 byte
  return matchPrefix(p, n, s, true);
}

/** Whether UTF-8 bytes p..p+n start with `s`. */
export function bytesStartWith(p: usize, n: i32, s: string): bool {
  if (n < s.length) return false;
  return matchPrefix(p, n, s, false);
}
