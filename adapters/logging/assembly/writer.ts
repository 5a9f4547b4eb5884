// A reusable, growable UTF-8 byte buffer: entries are written straight into it (JSON
// escaping on the fly, integers and timestamps as digits), so formatting an entry makes
// almost no garbage — the adapter's cost per request is mostly host calls, not GC.

export class Writer {
  buf: ArrayBuffer;
  len: i32 = 0;

  constructor(capacity: i32 = 2048) {
    this.buf = new ArrayBuffer(capacity);
  }

  @inline private get ptr(): usize {
    return changetype<usize>(this.buf);
  }

  reserve(n: i32): void {
    let need = this.len + n;
    let cap = this.buf.byteLength;
    if (need <= cap) return;
    while (cap < need) cap <<= 1;
    let nb = new ArrayBuffer(cap);
    memory.copy(changetype<usize>(nb), this.ptr, <usize>this.len);
    this.buf = nb;
  }

  byte(b: u8): void {
    this.reserve(1);
    store<u8>(this.ptr + <usize>this.len, b);
    this.len++;
  }

  /** Raw bytes. */
  bytes(b: ArrayBuffer): void {
    let n = b.byteLength;
    this.reserve(n);
    memory.copy(this.ptr + <usize>this.len, changetype<usize>(b), <usize>n);
    this.len += n;
  }

  /** A string as UTF-8. */
  str(s: string): void {
    let n = String.UTF8.byteLength(s);
    this.reserve(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.ptr + <usize>this.len);
    this.len += n;
  }

  /** The contents of a JSON string literal (no quotes): escapes ", \ and control characters. */
  jsonStr(s: string): void {
    let n = s.length;
    let clean = true;
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x20 || c == 0x22 || c == 0x5c) {
        clean = false;
        break;
      }
    }
    if (clean) {
      this.str(s);
      return;
    }
    let run = 0;
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
      if (i > run) this.str(s.substring(run, i));
      this.escape(<u8>c);
      run = i + 1;
    }
    if (n > run) this.str(s.substring(run, n));
  }

  /** UTF-8 bytes as the contents of a JSON string literal. */
  jsonBytes(b: ArrayBuffer): void {
    this.jsonRaw(changetype<usize>(b), b.byteLength);
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

  raw(src: usize, n: i32): void {
    this.reserve(n);
    memory.copy(this.ptr + <usize>this.len, src, <usize>n);
    this.len += n;
  }

  private escape(c: u8): void {
    this.reserve(6);
    let p = this.ptr + <usize>this.len;
    store<u8>(p, 0x5c);
    if (c == 0x22 || c == 0x5c) {
      store<u8>(p + 1, c);
      this.len += 2;
    } else if (c == 0x0a) {
      store<u8>(p + 1, 0x6e);
      this.len += 2;
    } else if (c == 0x0d) {
      store<u8>(p + 1, 0x72);
      this.len += 2;
    } else if (c == 0x09) {
      store<u8>(p + 1, 0x74);
      this.len += 2;
    } else {
      store<u8>(p + 1, 0x75); // \u00XX
      store<u8>(p + 2, 0x30);
      store<u8>(p + 3, 0x30);
      store<u8>(p + 4, hex(c >> 4));
      store<u8>(p + 5, hex(c & 15));
      this.len += 6;
    }
  }

  /** A signed integer in decimal. */
  int(v: i64): void {
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

  /** A copy of bytes [from, len) as an exact-size ArrayBuffer. */
  slice(from: i32): ArrayBuffer {
    let n = this.len - from;
    let out = new ArrayBuffer(n);
    memory.copy(changetype<usize>(out), this.ptr + <usize>from, <usize>n);
    return out;
  }
}

@inline function hex(v: u8): u8 {
  return v < 10 ? 0x30 + v : 0x57 + v;
}

/** Days since 1970-01-01 → civil date (Howard Hinnant's algorithm), as y*10000 + m*100 + d. */
export function civil(days: i64): i64 {
  let z = days + 719468;
  let era = (z >= 0 ? z : z - 146096) / 146097;
  let doe = z - era * 146097;
  let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  let y = yoe + era * 400;
  let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  let mp = (5 * doy + 2) / 153;
  let d = doy - (153 * mp + 2) / 5 + 1;
  let m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) y++;
  return y * 10000 + m * 100 + d;
}

/** RFC 3339 UTC with milliseconds (Envoy's default START_TIME): 2026-11-25T00:50:54.123Z */
export function writeIsoTime(w: Writer, ns: i64): void {
  let ms = ns / 1_000_000;
  let secs = ms / 1000;
  let msPart = ms % 1000;
  if (msPart < 0) {
    msPart += 1000;
    secs--;
  }
  let days = secs / 86400;
  let sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days--;
  }
  let ymd = civil(days);
  w.padded(ymd / 10000, 4);
  w.byte(0x2d);
  w.padded((ymd / 100) % 100, 2);
  w.byte(0x2d);
  w.padded(ymd % 100, 2);
  w.byte(0x54);
  w.padded(sod / 3600, 2);
  w.byte(0x3a);
  w.padded((sod / 60) % 60, 2);
  w.byte(0x3a);
  w.padded(sod % 60, 2);
  w.byte(0x2e);
  w.padded(msPart, 3);
  w.byte(0x5a);
}
