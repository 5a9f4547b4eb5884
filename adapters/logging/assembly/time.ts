// Timestamps written straight into the entry's buffer: Envoy's default START_TIME,
// RFC 3339 UTC with milliseconds, without building a string.

import { ByteBuffer } from "wasm-mixer/sdk";

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
export function writeIsoTime(w: ByteBuffer, ns: i64): void {
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
  // the same second as the last entry (most entries, under load): its 20 bytes again
  w.reserve(24);
  let p = w.ptr + <usize>w.len;
  if (secs == lastSecs) {
    store<u64>(p, load<u64>(lastHead));
    store<u64>(p, load<u64>(lastHead, 8), 8);
    store<u32>(p, load<u32>(lastHead, 16), 16);
    digits(p + 20, msPart, 3);
    store<u8>(p + 23, 0x5a);
    w.len += 24;
    return;
  }
  let ymd = civil(days);
  let y = ymd / 10000;
  if (y < 0 || y > 9999) {
    writeIsoTimeSlow(w, ymd, sod, msPart);
    return;
  }
  // the usual year: all 24 bytes stored at once, without a call per part
  digits(p, y, 4);
  store<u8>(p + 4, 0x2d);
  digits(p + 5, (ymd / 100) % 100, 2);
  store<u8>(p + 7, 0x2d);
  digits(p + 8, ymd % 100, 2);
  store<u8>(p + 10, 0x54);
  digits(p + 11, sod / 3600, 2);
  store<u8>(p + 13, 0x3a);
  digits(p + 14, (sod / 60) % 60, 2);
  store<u8>(p + 16, 0x3a);
  digits(p + 17, sod % 60, 2);
  store<u8>(p + 19, 0x2e);
  digits(p + 20, msPart, 3);
  store<u8>(p + 23, 0x5a);
  memory.copy(lastHead, p, 20);
  lastSecs = secs;
  w.len += 24;
}

/** The second writeIsoTime wrote last (seconds since the epoch) and its "YYYY-MM-DDTHH:MM:SS." */
let lastSecs: i64 = i64.MIN_VALUE;
const lastHead: usize = memory.data(24, 8);

/** `width` decimal digits of 0 <= v < 10^width, zero-padded, at p. */
// @ts-ignore: decorator
@inline function digits(p: usize, v: i64, width: i32): void {
  for (let i = width - 1; i >= 0; i--) {
    store<u8>(p + <usize>i, <u8>(0x30 + <i32>(v % 10)));
    v /= 10;
  }
}

function writeIsoTimeSlow(w: ByteBuffer, ymd: i64, sod: i64, msPart: i64): void {
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
