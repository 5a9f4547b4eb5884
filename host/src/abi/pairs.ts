// The Proxy-Wasm "pairs" serialization used for header maps, local replies,
// HTTP call-outs and map-valued properties:
//   u32 LE count, count × (u32 LE key_len, u32 LE value_len), then per pair key \0 value \0.

export type HeaderPair = [name: string, value: string];

// Header names and values are byte strings: Node's HTTP parser turns each byte into
// one char (latin1), and writes them back the same way. They cross the ABI as those
// same bytes, so a guest sees exactly the bytes on the wire (UTF-8 stays UTF-8).
// A string with chars above 0xFF cannot have come off the wire; it is sent as UTF-8.

/** The wire bytes of a header name or value. */
export function headerBytes(s: string): Uint8Array {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return encoder.encode(s);
  return Buffer.from(s, 'latin1');
}

/** A header name or value from wire bytes (one char per byte, as Node's parser makes them). */
export function headerString(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Mirrors proxy-wasm-cpp-host's limits (include/proxy-wasm/limits.h). */
export const PAIRS_MAX_BYTES = 1024 * 1024;
export const PAIRS_MAX_COUNT = 1024;

const encoder = new TextEncoder();

export function serializePairs(pairs: ReadonlyArray<readonly [string, string]>): Uint8Array {
  const n = pairs.length;
  const keys: Uint8Array[] = new Array(n);
  const values: Uint8Array[] = new Array(n);
  let size = 4 + n * 8;
  for (let i = 0; i < n; i++) {
    keys[i] = headerBytes(pairs[i]![0]);
    values[i] = headerBytes(pairs[i]![1]);
    size += keys[i]!.length + values[i]!.length + 2;
  }
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, n, true);
  let p = 4 + n * 8;
  for (let i = 0; i < n; i++) {
    dv.setUint32(4 + i * 8, keys[i]!.length, true);
    dv.setUint32(8 + i * 8, values[i]!.length, true);
    out.set(keys[i]!, p);
    p += keys[i]!.length + 1;
    out.set(values[i]!, p);
    p += values[i]!.length + 1;
  }
  return out;
}

/**
 * Parses serialized pairs. Returns null for malformed input (truncated, missing
 * NUL terminators, trailing bytes, over the limits), as cpp-host does.
 * An empty input, or a single 0x00 byte, is an empty map.
 */
export function deserializePairs(bytes: Uint8Array): HeaderPair[] | null {
  if (bytes.length === 0 || (bytes.length === 1 && bytes[0] === 0)) return [];
  if (bytes.length < 4 || bytes.length > PAIRS_MAX_BYTES) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(0, true);
  if (n > PAIRS_MAX_COUNT) return null;
  let p = 4 + n * 8;
  if (p > bytes.length) return null;
  const out: HeaderPair[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const kl = dv.getUint32(4 + i * 8, true);
    const vl = dv.getUint32(8 + i * 8, true);
    if (p + kl + vl + 2 > bytes.length) return null;
    if (bytes[p + kl] !== 0 || bytes[p + kl + 1 + vl] !== 0) return null;
    const key = headerString(bytes.subarray(p, p + kl));
    const value = headerString(bytes.subarray(p + kl + 1, p + kl + 1 + vl));
    out[i] = [key, value];
    p += kl + vl + 2;
  }
  if (p !== bytes.length) return null;
  return out;
}
