// The Proxy-Wasm pairs serialization, written from the spec independently of the
// host's code (host/src/abi/pairs.ts), for the ABI tests to check the host against.

export type Pairs = [string, string][];

/** The pairs serialization, written from the spec independently of the host's code. */
export function serialize(pairs: Pairs): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(4 + 8 * pairs.length);
  head.writeUInt32LE(pairs.length, 0);
  pairs.forEach(([k, v], i) => {
    head.writeUInt32LE(Buffer.byteLength(k), 4 + 8 * i);
    head.writeUInt32LE(Buffer.byteLength(v), 8 + 8 * i);
    parts.push(Buffer.from(k), Buffer.from([0]), Buffer.from(v), Buffer.from([0]));
  });
  return Buffer.concat([head, ...parts]);
}

/** Parses the pairs serialization independently of the host's code. */
export function parsePairs(b: Uint8Array): Pairs {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = v.getUint32(0, true);
  let off = 4 + 8 * n;
  const out: Pairs = [];
  for (let i = 0; i < n; i++) {
    const kl = v.getUint32(4 + 8 * i, true);
    const vl = v.getUint32(8 + 8 * i, true);
    const key = Buffer.from(b.subarray(off, off + kl)).toString();
    if (b[off + kl] !== 0) throw new Error('missing NUL after key');
    off += kl + 1;
    const value = Buffer.from(b.subarray(off, off + vl)).toString();
    if (b[off + vl] !== 0) throw new Error('missing NUL after value');
    off += vl + 1;
    out.push([key, value]);
  }
  if (off !== b.length) throw new Error('trailing bytes after pairs');
  return out;
}
