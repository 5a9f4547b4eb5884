// A credential found in the bytes the host wrote: a header's value after its prefix
// (Source.fromHeader on text), a query parameter of request.path (queryParam on text),
// without making a string. When the bytes cannot be used as they are (a non-ASCII byte
// where the text rules would treat it specially, a percent-encoded name or value) the
// answer is CRED_TEXT, and the caller reads the source as text as before, so both ways
// find the same credential.

/** The source has no credential. */
export const CRED_NONE: i32 = 0;
/** The credential is [credPtr, credPtr + credLen), exactly the UTF-8 of what the text rules give. */
export const CRED_BYTES: i32 = 1;
/** Read the source as text (Source.read). */
export const CRED_TEXT: i32 = 2;

export let credPtr: usize = 0;
export let credLen: usize = 0;

/** The ASCII bytes of s, lower-cased; null when s is not ASCII (the text rules then apply). */
export function asciiLower(s: string): ArrayBuffer | null {
  let n = s.length;
  let out = new ArrayBuffer(n);
  let o = changetype<usize>(out);
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0x80) return null;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    store<u8>(o + <usize>i, <u8>c);
  }
  return out;
}

// @ts-ignore: decorator
@inline function isSpace(c: u32): bool {
  return c == 0x20 || (c >= 0x09 && c <= 0x0d); // String#trim's ASCII whitespace
}

/**
 * A header value [p, p+n) as a credential: the prefix (ASCII, lower case; compared
 * case-insensitively) checked and removed, ASCII whitespace trimmed.
 */
export function credentialFromHeader(prefixLower: ArrayBuffer, p: usize, n: usize): i32 {
  let pl = <usize>prefixLower.byteLength;
  if (pl > 0) {
    if (n < pl) return CRED_NONE; // the text is no longer than the bytes
    let q = changetype<usize>(prefixLower);
    for (let i: usize = 0; i < pl; i++) {
      let c = <u32>load<u8>(p + i);
      if (c >= 0x80) return CRED_TEXT; // toLowerCase maps a few non-ASCII characters to ASCII
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      if (c != <u32>load<u8>(q + i)) return CRED_NONE;
    }
  }
  let s = p + pl;
  let e = p + n;
  while (s < e && isSpace(<u32>load<u8>(s))) s++;
  while (e > s && isSpace(<u32>load<u8>(e - 1))) e--;
  if (s == e) return CRED_NONE;
  // a non-ASCII edge may be Unicode whitespace, which trim() removes
  if (load<u8>(s) >= 0x80 || load<u8>(e - 1) >= 0x80) return CRED_TEXT;
  credPtr = s;
  credLen = e - s;
  return CRED_BYTES;
}

function indexOf(p: usize, from: usize, to: usize, c: u8): usize {
  for (let i = from; i < to; i++) if (load<u8>(p + i) == c) return i;
  return to;
}

/**
 * The first `name` parameter (ASCII) of the query of a path [p, p+n): as queryParam, the first
 * parameter with that name decides, and an empty value is no credential.
 */
export function credentialFromQuery(name: ArrayBuffer, p: usize, n: usize): i32 {
  let q = indexOf(p, 0, n, 0x3f); // ?
  if (q == n) return CRED_NONE;
  let end = indexOf(p, q, n, 0x23); // #
  let np = changetype<usize>(name);
  let nl = <usize>name.byteLength;
  let i = q + 1;
  while (i < end) {
    let amp = indexOf(p, i, end, 0x26); // &
    let eq = indexOf(p, i, amp, 0x3d); // =
    let keyEnd = eq;
    if (indexOf(p, i, keyEnd, 0x25) < keyEnd) return CRED_TEXT; // a percent-encoded name
    if (keyEnd - i == nl && memory.compare(p + i, np, nl) == 0) {
      if (keyEnd == amp) return CRED_NONE;
      let v = keyEnd + 1;
      if (v == amp) return CRED_NONE;
      if (indexOf(p, v, amp, 0x25) < amp) return CRED_TEXT; // a percent-encoded value
      credPtr = p + v;
      credLen = amp - v;
      return CRED_BYTES;
    }
    i = amp + 1;
  }
  return CRED_NONE;
}
