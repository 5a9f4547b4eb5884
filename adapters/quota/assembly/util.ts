// Small helpers: durations, key encoding, paths, binary records.

/** Parses "500ms", "1s", "1m30s", "2h", "1d" into milliseconds; -1 when malformed or zero. */
export function parseDurationMs(s: string): i64 {
  let n = s.length;
  if (n == 0) return -1;
  let total: i64 = 0;
  let i = 0;
  while (i < n) {
    let start = i;
    let v: i64 = 0;
    while (i < n) {
      let c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + <i64>(c - 0x30);
      if (v > 1000000000000) return -1;
      i++;
    }
    if (i == start) return -1;
    let u = i;
    while (i < n) {
      let c = s.charCodeAt(i);
      if (c >= 0x30 && c <= 0x39) break;
      i++;
    }
    let unit = s.substring(u, i);
    let mult: i64 = 0;
    if (unit == "ms") mult = 1;
    else if (unit == "s") mult = 1000;
    else if (unit == "m") mult = 60000;
    else if (unit == "h") mult = 3600000;
    else if (unit == "d") mult = 86400000;
    else return -1;
    total += v * mult;
  }
  return total > 0 ? total : -1;
}

/** "1s", "90s", "1m", "250ms": a short human form of a duration (for headers and messages). */
export function formatDurationMs(ms: i64): string {
  if (ms % 86400000 == 0) return (ms / 86400000).toString() + "d";
  if (ms % 3600000 == 0) return (ms / 3600000).toString() + "h";
  if (ms % 60000 == 0) return (ms / 60000).toString() + "m";
  if (ms % 1000 == 0) return (ms / 1000).toString() + "s";
  return ms.toString() + "ms";
}

/** FNV-1a 64 over UTF-16 code units (only used to shorten long key parts). */
export function fnv1a64(s: string): u64 {
  let h: u64 = 0xcbf29ce484222325;
  for (let i = 0, n = s.length; i < n; i++) {
    h ^= <u64>s.charCodeAt(i);
    h *= 0x100000001b3;
  }
  return h;
}

const HEX = "0123456789abcdef";

function hex64(v: u64): string {
  let parts = new Array<string>(16);
  for (let i = 15; i >= 0; i--) {
    parts[i] = HEX.charAt(<i32>(v & 15));
    v >>= 4;
  }
  return parts.join("");
}

/** Longest dimension value kept verbatim in a key; longer ones are hashed. */
export const MAX_KEY_PART = 128;

/**
 * A dimension value made safe for a key: ":" and "%" percent-encoded (":" separates
 * key parts), control characters encoded, and values over MAX_KEY_PART characters
 * replaced by "#" + a 64-bit hash + the length, so a client cannot grow keys (or
 * host memory) with a huge header.
 */
export function keyPart(v: string): string {
  let n = v.length;
  if (n > MAX_KEY_PART) return "#" + hex64(fnv1a64(v)) + "." + n.toString();
  let plain = true;
  for (let i = 0; i < n; i++) {
    let c = v.charCodeAt(i);
    if (c == 0x3a || c == 0x25 || c < 0x20 || c == 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) return v;
  let out: string[] = [];
  for (let i = 0; i < n; i++) {
    let c = v.charCodeAt(i);
    if (c == 0x3a || c == 0x25 || c < 0x20 || c == 0x7f) {
      out.push("%" + HEX.charAt((c >> 4) & 15) + HEX.charAt(c & 15));
    } else {
      out.push(String.fromCharCode(c));
    }
  }
  return out.join("");
}

/** "host:port" or "[v6]:port" -> host, lower case. */
export function stripPort(authority: string): string {
  let a = authority;
  if (a.startsWith("[")) {
    let end = a.indexOf("]");
    return end > 0 ? a.substring(0, end + 1).toLowerCase() : a.toLowerCase();
  }
  let c = a.lastIndexOf(":");
  if (c >= 0 && a.indexOf(":") == c) a = a.substring(0, c);
  return a.toLowerCase();
}

/** The path without its query. */
export function urlPath(path: string): string {
  let q = path.indexOf("?");
  return q < 0 ? path : path.substring(0, q);
}

/** The first `n` segments of a path: ("/v1/orders/17", 2) -> "/v1/orders". */
export function pathSegments(path: string, n: i32): string {
  let p = urlPath(path);
  let seen = 0;
  for (let i = 1, len = p.length; i < len; i++) {
    if (p.charCodeAt(i) == 0x2f) {
      seen++;
      if (seen == n) return p.substring(0, i);
    }
  }
  return p;
}

/** ceil(a / b) for a >= 0, b > 0. */
// @ts-ignore: decorator
@inline export function ceilDiv(a: i64, b: i64): i64 {
  return a <= 0 ? 0 : (a + b - 1) / b;
}

/** Seconds for a header: ceil(ms / 1000), at least 0. */
export function headerSeconds(ms: i64): string {
  return (ms <= 0 ? <i64>0 : (ms + 999) / 1000).toString();
}

// ---- fixed-size little-endian records in shared data ------------------------------------------

/** A record of i64 slots, read from / written to a shared-data value. */
export class Rec {
  buf: ArrayBuffer;
  constructor(public slots: i32) {
    this.buf = new ArrayBuffer(slots << 3);
  }

  /**
   * Takes a stored value (a buffer the SDK just allocated for this read, so it is
   * ours to keep); false (record left as it was) when the size does not match.
   */
  load(value: ArrayBuffer): bool {
    if (value.byteLength != this.slots << 3) return false;
    this.buf = value;
    return true;
  }

  /** Copies a stored value of the right size (false, record left as it was, otherwise). */
  copyFrom(p: usize, n: usize): bool {
    if (n != <usize>(this.slots << 3)) return false;
    memory.copy(changetype<usize>(this.buf), p, n);
    return true;
  }

  clear(): void {
    memory.fill(changetype<usize>(this.buf), 0, <usize>(this.slots << 3));
  }

  // @ts-ignore: decorator
  @inline get(i: i32): i64 {
    return load<i64>(changetype<usize>(this.buf) + (<usize>i << 3));
  }

  // @ts-ignore: decorator
  @inline set(i: i32, v: i64): void {
    store<i64>(changetype<usize>(this.buf) + (<usize>i << 3), v);
  }

  // @ts-ignore: decorator
  @inline getF(i: i32): f64 {
    return load<f64>(changetype<usize>(this.buf) + (<usize>i << 3));
  }

  // @ts-ignore: decorator
  @inline setF(i: i32, v: f64): void {
    store<f64>(changetype<usize>(this.buf) + (<usize>i << 3), v);
  }

}
