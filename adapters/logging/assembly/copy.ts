// Copies a JSON string value into the entry's buffer eight bytes at a time. ByteBuffer's
// JSON copy tests each byte on its own; plain copies use ByteBuffer.raw, which copies pieces
// of up to 64 bytes without memory.copy already. Output is byte-for-byte what ByteBuffer.jsonRaw writes
// (jsonRaw itself writes any value that needs escaping).

import { ByteBuffer } from "wasm-mixer/sdk";

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

/**
 * UTF-8 bytes src..src+n as the contents of a JSON string literal (ByteBuffer.jsonRaw). The
 * last 1-7 bytes are one word too when the 8 bytes from them lie inside memory: the bytes
 * past the value are left out of the escape test and written past w.len, where the next
 * write goes, instead of a loop of single bytes (two per field of a JSON line).
 */
export function putJson(w: ByteBuffer, src: usize, n: i32): void {
  if (n <= 0) return;
  w.reserve(n + 8);
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
  let k = n - i;
  if (k > 0 && src + <usize>i + 8 <= (<usize>memory.size() << 16)) {
    let v = load<u64>(src + <usize>i);
    let keep: u64 = (<u64>1 << (<u64>k << 3)) - 1; // k < 8
    // the bytes past the value as 'A' (no escape), so only the value's own bytes are tested
    if (needsEscape((v & keep) | (ONES * 0x41 & ~keep)) != 0) {
      w.jsonRaw(src, n);
      return;
    }
    store<u64>(dst + <usize>i, v);
    w.len += n;
    return;
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
