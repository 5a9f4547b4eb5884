// IPv4 and IPv6 addresses and CIDR ranges. Every address is held as 128 bits;
// IPv4 is mapped into ::ffff:0:0/96, so "10.0.0.0/8" and a client seen as
// "::ffff:10.1.2.3" (a dual-stack socket) match each other.

export class Ip {
  constructor(public hi: u64, public lo: u64) {}
  get isV4(): bool {
    return this.hi == 0 && (this.lo >> 32) == 0xffff;
  }
}

export class Cidr {
  constructor(public hi: u64, public lo: u64, public bits: i32, public text: string) {}

  contains(ip: Ip): bool {
    let b = this.bits;
    if (b == 0) return true;
    if (b <= 64) {
      let m: u64 = b == 64 ? 0xffffffffffffffff : ~(<u64>0xffffffffffffffff >> <u64>b);
      return (ip.hi & m) == this.hi;
    }
    if (ip.hi != this.hi) return false;
    let lb = b - 64;
    let m: u64 = lb == 64 ? 0xffffffffffffffff : ~(<u64>0xffffffffffffffff >> <u64>lb);
    return (ip.lo & m) == this.lo;
  }
}

function parseV4(s: string, start: i32, end: i32): i64 {
  // returns the 32-bit address, or -1
  let parts = 0;
  let acc: i64 = 0;
  let i = start;
  while (true) {
    let digits = 0;
    let v = 0;
    let first = i;
    while (i < end) {
      let c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
      digits++;
      i++;
      if (digits > 3) return -1;
    }
    if (digits == 0 || v > 255) return -1;
    if (digits > 1 && s.charCodeAt(first) == 0x30) return -1; // leading zero: octal to some parsers, refused
    acc = (acc << 8) | v;
    parts++;
    if (parts == 4) break;
    if (i >= end || s.charCodeAt(i) != 0x2e) return -1;
    i++;
  }
  return i == end ? acc : -1;
}

function hexVal(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  let l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

const GROUPS = new StaticArray<u32>(8);

function parseV6(s: string, start: i32, end: i32): Ip | null {
  let n = 0; // groups written
  let gap = -1; // where "::" was
  let i = start;
  if (end - start >= 2 && s.charCodeAt(i) == 0x3a) {
    if (s.charCodeAt(i + 1) != 0x3a) return null;
    gap = 0;
    i += 2;
    if (i == end) {
      return new Ip(0, 0);
    }
  }
  while (i < end) {
    if (n >= 8) return null;
    // an embedded IPv4 tail?
    let j = i;
    let isV4 = false;
    while (j < end && s.charCodeAt(j) != 0x3a) {
      if (s.charCodeAt(j) == 0x2e) isV4 = true;
      j++;
    }
    if (isV4) {
      if (j != end || n > 6) return null;
      let v4 = parseV4(s, i, end);
      if (v4 < 0) return null;
      unchecked((GROUPS[n++] = <u32>(v4 >> 16)));
      unchecked((GROUPS[n++] = <u32>(v4 & 0xffff)));
      i = end;
      break;
    }
    let digits = j - i;
    if (digits == 0 || digits > 4) return null;
    let v: u32 = 0;
    for (let k = i; k < j; k++) {
      let h = hexVal(s.charCodeAt(k));
      if (h < 0) return null;
      v = (v << 4) | <u32>h;
    }
    unchecked((GROUPS[n++] = v));
    i = j;
    if (i == end) break;
    // at ':'
    i++;
    if (i < end && s.charCodeAt(i) == 0x3a) {
      if (gap >= 0) return null; // a second "::"
      gap = n;
      i++;
      if (i == end) break;
    } else if (i == end) {
      return null; // trailing single ':'
    }
  }
  let out = new StaticArray<u32>(8);
  if (gap < 0) {
    if (n != 8) return null;
    for (let k = 0; k < 8; k++) unchecked((out[k] = GROUPS[k]));
  } else {
    if (n > 7) return null; // "::" must stand for at least one group
    for (let k = 0; k < gap; k++) unchecked((out[k] = GROUPS[k]));
    let tail = n - gap;
    for (let k = 0; k < tail; k++) unchecked((out[8 - tail + k] = GROUPS[gap + k]));
  }
  let hi: u64 = 0;
  let lo: u64 = 0;
  for (let k = 0; k < 4; k++) hi = (hi << 16) | <u64>unchecked(out[k]);
  for (let k = 4; k < 8; k++) lo = (lo << 16) | <u64>unchecked(out[k]);
  return new Ip(hi, lo);
}

/**
 * Parses "1.2.3.4", "2001:db8::1", "::ffff:1.2.3.4", "[::1]" or "fe80::1%eth0"
 * (the zone is ignored). null when it is not an address.
 */
export function parseIp(text: string): Ip | null {
  let s = text.trim();
  let start = 0;
  let end = s.length;
  if (end >= 2 && s.charCodeAt(0) == 0x5b && s.charCodeAt(end - 1) == 0x5d) {
    start = 1;
    end--;
  }
  if (end - start == 0) return null;
  let colon = false;
  for (let i = start; i < end; i++) {
    let c = s.charCodeAt(i);
    if (c == 0x3a) colon = true;
    if (c == 0x25) { // '%' zone id
      if (!colon) return null;
      end = i;
      break;
    }
  }
  if (!colon) {
    let v4 = parseV4(s, start, end);
    if (v4 < 0) return null;
    return new Ip(0, (<u64>0xffff << 32) | <u64>v4);
  }
  return parseV6(s, start, end);
}

/**
 * Parses "10.0.0.0/8", "2001:db8::/32", or a single address (/32 or /128).
 * Host bits below the prefix are cleared. null when invalid.
 */
export function parseCidr(text: string): Cidr | null {
  let s = text.trim();
  let slash = s.indexOf("/");
  let addr = slash < 0 ? s : s.substring(0, slash);
  if (addr.indexOf("%") >= 0) return null;
  let ip = parseIp(addr);
  if (ip === null) return null;
  let v4 = addr.indexOf(":") < 0;
  let max = v4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    let p = s.substring(slash + 1);
    if (p.length == 0 || p.length > 3) return null;
    bits = 0;
    for (let i = 0; i < p.length; i++) {
      let c = p.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return null;
      bits = bits * 10 + (c - 0x30);
    }
    if (p.length > 1 && p.charCodeAt(0) == 0x30) return null;
    if (bits > max) return null;
  }
  if (v4) bits += 96;
  let hi = ip.hi;
  let lo = ip.lo;
  if (bits <= 64) {
    hi = bits == 0 ? 0 : bits == 64 ? hi : hi & ~(<u64>0xffffffffffffffff >> <u64>bits);
    lo = 0;
  } else if (bits < 128) {
    lo = lo & ~(<u64>0xffffffffffffffff >> <u64>(bits - 64));
  }
  return new Cidr(hi, lo, bits, s);
}

/** True when any range contains the address. */
export function anyContains(ranges: Cidr[], ip: Ip): bool {
  for (let i = 0; i < ranges.length; i++) if (unchecked(ranges[i]).contains(ip)) return true;
  return false;
}
