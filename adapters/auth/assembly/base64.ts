// base64url (RFC 4648 §5) for JWS segments and JWK members.
//
// Token segments are decoded strictly: the URL-safe alphabet only, no padding,
// no impossible lengths, and unused trailing bits must be zero, so each byte
// string has exactly one accepted spelling. JWK members are decoded leniently
// (padding and the standard alphabet allowed), as key sets in the wild vary.

// 0..63 for alphabet characters, 64 for "-"/"_" when standard, 255 invalid.
const URL_TABLE = new StaticArray<u8>(128);
const STD_TABLE = new StaticArray<u8>(128);

function initTables(): void {
  for (let i = 0; i < 128; i++) {
    unchecked((URL_TABLE[i] = 255));
    unchecked((STD_TABLE[i] = 255));
  }
  let alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  for (let i = 0; i < 62; i++) {
    let c = alpha.charCodeAt(i);
    unchecked((URL_TABLE[c] = <u8>i));
    unchecked((STD_TABLE[c] = <u8>i));
  }
  unchecked((URL_TABLE[0x2d] = 62)); // -
  unchecked((URL_TABLE[0x5f] = 63)); // _
  unchecked((STD_TABLE[0x2d] = 62));
  unchecked((STD_TABLE[0x5f] = 63));
  unchecked((STD_TABLE[0x2b] = 62)); // +
  unchecked((STD_TABLE[0x2f] = 63)); // /
}
initTables();

/**
 * Decodes s[start, end). strict: URL alphabet, no padding, canonical trailing
 * bits. Returns null when the text is not valid.
 */
export function decodeBase64Url(s: string, start: i32, end: i32, strict: bool): ArrayBuffer | null {
  if (!strict) {
    while (end > start && s.charCodeAt(end - 1) == 0x3d) end--; // '='
  }
  let n = end - start;
  if (n < 0 || (n & 3) == 1) return null;
  let outLen = (n >> 2) * 3 + ((n & 3) == 0 ? 0 : (n & 3) - 1);
  let out = new ArrayBuffer(outLen);
  let o = changetype<usize>(out);
  let table = strict ? URL_TABLE : STD_TABLE;
  let sp = changetype<usize>(s) + (<usize>start << 1);
  let acc: u32 = 0;
  let bits: u32 = 0;
  let w: usize = 0;
  for (let i = 0; i < n; i++) {
    let c = <u32>load<u16>(sp + (<usize>i << 1));
    if (c >= 128) return null;
    let v = <u32>unchecked(table[c]);
    if (v == 255) return null;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      store<u8>(o + w, <u8>(acc >> bits));
      w++;
      acc &= (1 << bits) - 1;
    }
  }
  if (strict && acc != 0) return null; // non-zero unused bits: a second spelling of the same bytes
  return out;
}

/** Decodes a whole string (lenient, for JWK members). */
export function decodeJwkMember(s: string): ArrayBuffer | null {
  return decodeBase64Url(s, 0, s.length, false);
}
