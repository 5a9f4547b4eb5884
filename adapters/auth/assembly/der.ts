// The few DER structures the host's verify_signature needs: a SubjectPublicKeyInfo
// built from a JWK's RSA (n, e) or EC (crv, x, y) members, and an ECDSA signature
// turned from JOSE's fixed-size r||s into DER SEQUENCE { INTEGER r, INTEGER s }.

export const CRV_P256: i32 = 1;
export const CRV_P384: i32 = 2;
export const CRV_P521: i32 = 3;

/** Coordinate / scalar size in bytes of a curve. */
export function curveSize(crv: i32): i32 {
  return crv == CRV_P256 ? 32 : crv == CRV_P384 ? 48 : crv == CRV_P521 ? 66 : 0;
}

class Der {
  bytes: u8[] = [];

  raw(b: u8[]): Der {
    for (let i = 0; i < b.length; i++) this.bytes.push(unchecked(b[i]));
    return this;
  }

  length(n: i32): Der {
    if (n < 0x80) this.bytes.push(<u8>n);
    else if (n < 0x100) this.raw([0x81, <u8>n]);
    else this.raw([0x82, <u8>(n >> 8), <u8>n]);
    return this;
  }

  /** tag, length, content. */
  tlv(tag: u8, content: u8[]): Der {
    this.bytes.push(tag);
    this.length(content.length);
    return this.raw(content);
  }

  toBuffer(): ArrayBuffer {
    let n = this.bytes.length;
    let out = new ArrayBuffer(n);
    let p = changetype<usize>(out);
    for (let i = 0; i < n; i++) store<u8>(p + <usize>i, unchecked(this.bytes[i]));
    return out;
  }
}

function bytesOf(b: ArrayBuffer): u8[] {
  let n = b.byteLength;
  let out = new Array<u8>(n);
  let p = changetype<usize>(b);
  for (let i = 0; i < n; i++) unchecked((out[i] = load<u8>(p + <usize>i)));
  return out;
}

/** Content of a positive DER INTEGER from big-endian magnitude bytes [p, p+n). */
function integerContent(p: usize, n: i32): u8[] {
  let i = 0;
  while (i < n - 1 && load<u8>(p + <usize>i) == 0) i++;
  let out: u8[] = [];
  if ((load<u8>(p + <usize>i) & 0x80) != 0) out.push(0);
  for (; i < n; i++) out.push(load<u8>(p + <usize>i));
  return out;
}

/** Bit length of a big-endian unsigned integer. */
export function bitLength(b: ArrayBuffer): i32 {
  let p = changetype<usize>(b);
  let n = b.byteLength;
  for (let i = 0; i < n; i++) {
    let v = <u32>load<u8>(p + <usize>i);
    if (v != 0) return (n - i - 1) * 8 + (32 - <i32>clz<u32>(v));
  }
  return 0;
}

const RSA_ALG_ID: u8[] = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
const EC_OID: u8[] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256_OID: u8[] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID: u8[] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521_OID: u8[] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];

/** SubjectPublicKeyInfo of an RSA public key. */
export function rsaSpki(n: ArrayBuffer, e: ArrayBuffer): ArrayBuffer {
  let rsaKey = new Der()
    .tlv(0x02, integerContent(changetype<usize>(n), n.byteLength))
    .tlv(0x02, integerContent(changetype<usize>(e), e.byteLength));
  let seq = new Der().tlv(0x30, rsaKey.bytes);
  let bitString: u8[] = [0];
  bitString = bitString.concat(seq.bytes);
  let body = new Der().raw(RSA_ALG_ID).tlv(0x03, bitString);
  return new Der().tlv(0x30, body.bytes).toBuffer();
}

/** SubjectPublicKeyInfo of an EC public key (uncompressed point). x and y must be curveSize(crv) bytes. */
export function ecSpki(crv: i32, x: ArrayBuffer, y: ArrayBuffer): ArrayBuffer {
  let algId = new Der().raw(EC_OID).raw(crv == CRV_P256 ? P256_OID : crv == CRV_P384 ? P384_OID : P521_OID);
  let point: u8[] = [0, 4];
  point = point.concat(bytesOf(x)).concat(bytesOf(y));
  let body = new Der().tlv(0x30, algId.bytes).tlv(0x03, point);
  return new Der().tlv(0x30, body.bytes).toBuffer();
}

/** Length of the DER INTEGER content for big-endian magnitude bytes [p, p+n), and where it starts. */
@inline function intStart(p: usize, n: i32): i32 {
  let i = 0;
  while (i < n - 1 && load<u8>(p + <usize>i) == 0) i++;
  return i;
}

/**
 * JOSE ECDSA signature (r||s, each `size` bytes) to DER. null when the length
 * is wrong or r or s is zero (never valid, so refused before the host sees it).
 * Written straight into one buffer: this runs for every uncached ES* token.
 */
export function ecdsaToDer(sig: ArrayBuffer, size: i32): ArrayBuffer | null {
  if (sig.byteLength != size * 2) return null;
  let p = changetype<usize>(sig);
  let zeroR = true;
  let zeroS = true;
  for (let i = 0; i < size; i++) {
    if (load<u8>(p + <usize>i) != 0) zeroR = false;
    if (load<u8>(p + <usize>(size + i)) != 0) zeroS = false;
  }
  if (zeroR || zeroS) return null;
  let rs = intStart(p, size);
  let ss = intStart(p + <usize>size, size);
  let rPad = (load<u8>(p + <usize>rs) & 0x80) != 0 ? 1 : 0;
  let sPad = (load<u8>(p + <usize>(size + ss)) & 0x80) != 0 ? 1 : 0;
  let rLen = size - rs + rPad;
  let sLen = size - ss + sPad;
  let body = 2 + rLen + 2 + sLen; // each INTEGER: tag, one length byte (lengths here are < 128)
  let head = body < 0x80 ? 2 : 3;
  let out = new ArrayBuffer(head + body);
  let o = changetype<usize>(out);
  store<u8>(o, 0x30);
  if (head == 2) store<u8>(o + 1, <u8>body);
  else {
    store<u8>(o + 1, 0x81);
    store<u8>(o + 2, <u8>body);
  }
  o += <usize>head;
  store<u8>(o, 0x02);
  store<u8>(o + 1, <u8>rLen);
  o += 2;
  if (rPad) store<u8>(o++, 0);
  memory.copy(o, p + <usize>rs, <usize>(size - rs));
  o += <usize>(size - rs);
  store<u8>(o, 0x02);
  store<u8>(o + 1, <u8>sLen);
  o += 2;
  if (sPad) store<u8>(o++, 0);
  memory.copy(o, p + <usize>(size + ss), <usize>(size - ss));
  return out;
}
