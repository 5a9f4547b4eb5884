// Copies into the entry's buffer eight bytes at a time. An entry is ~50 short pieces (field
// prefixes, values of 3-40 bytes): ByteBuffer's memory.copy is a call out of compiled wasm
// into the engine per piece, dearer than the copy itself at these sizes, and its JSON copy
// tests each byte on its own. Output is byte-for-byte what ByteBuffer.raw / jsonRaw write
// (jsonRaw itself writes any value that needs escaping).

import { ByteBuffer } from "wasm-mixer/sdk";

/** Below this, copy with loads and stores; above, memory.copy's call pays for itself. */
const SMALL: i32 = 64;
const ONES: u64 = 0x0101010101010101;
const HIGHS: u64 = 0x8080808080808080;

/**
 * Non-zero when one of the 8 bytes of v is below 0x20, a '"' or a '\' (what JSON escapes).
 * Exact as a yes/no answer (the classic has-zero-byte / has-less-than tests), not per byte.
 */
// @ts-ignore: decorator
@inline export function needsEscape(v: u64): u64 {
  let q = v ^ (ONES * 0x22);
  let b = v ^ (ONES * 0x5c);
  return ((v - ONES * 0x20) & ~v & HIGHS) | ((q - ONES) & ~q & HIGHS) | ((b - ONES) & ~b & HIGHS);
}

// @ts-ignore: decorator
@inline function copyTo(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) store<u64>(dst + <usize>i, load<u64>(src + <usize>i));
  for (; i < n; i++) store<u8>(dst + <usize>i, load<u8>(src + <usize>i));
}

/** Bytes src..src+n as they are (ByteBuffer.raw). */
export function putRaw(w: ByteBuffer, src: usize, n: i32): void {
  if (n <= 0) return;
  if (n > SMALL) {
    w.raw(src, n);
    return;
  }
  w.reserve(n);
  copyTo(w.ptr + <usize>w.len, src, n);
  w.len += n;
}

/** UTF-8 bytes src..src+n as the contents of a JSON string literal (ByteBuffer.jsonRaw). */
export function putJson(w: ByteBuffer, src: usize, n: i32): void {
  if (n <= 0) return;
  w.reserve(n);
  let dst = w.ptr + <usize>w.len;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    let v = load<u64>(src + <usize>i);
    if (needsEscape(v) != 0) {
      w.jsonRaw(src, n); // rare: the SDK's escaper writes the whole value
      return;
    }
    store<u64>(dst + <usize>i, v);
  }
  for (; i < n; i++) {
    let c = load<u8>(src + <usize>i);
    if (c < 0x20 || c == 0x22 || c == 0x5c) {
      w.jsonRaw(src, n);
      return;
    }
    store<u8>(dst + <usize>i, c);
  }
  w.len += n;
}
