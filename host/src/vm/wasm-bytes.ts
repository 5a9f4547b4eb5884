// Byte-level helpers for reading and building wasm binaries without an array or
// object per instruction: the load-time rewriter (vm/metering.ts) runs over every
// byte of an adapter's code at start-up, so its cost is start-up time.

/** A cursor over a byte range; every read past `end` fails with a RangeError. */
export class Reader {
  pos: number;
  constructor(
    readonly b: Uint8Array,
    pos = 0,
    readonly end = b.length,
  ) {
    this.pos = pos;
  }
  fail(what: string): never {
    throw new RangeError(`${what} at byte offset ${this.pos}`);
  }
  byte(): number {
    if (this.pos >= this.end) this.fail('unexpected end of input');
    return this.b[this.pos++]!;
  }
  u32(): number {
    return this.leb32('u32') >>> 0;
  }
  /** A signed LEB128 of up to 32 bits (an i32.const immediate). */
  s32(): number {
    const r = this.leb32('s32');
    const bits = this.lebBits;
    return bits < 32 && (this.lebLast & 0x40) !== 0 ? r | (-1 << bits) : r | 0;
  }
  /** The bits read by the last leb32() and its last byte (s32 sign-extends from them). */
  private lebBits = 0;
  private lebLast = 0;
  /** The low 32 bits of a LEB128 of at most 5 bytes, not yet sign- or zero-extended. */
  private leb32(what: string): number {
    const b = this.b;
    let pos = this.pos;
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= this.end) this.fail('unexpected end of input');
      const x = b[pos++]!;
      result |= (x & 0x7f) << shift;
      if ((x & 0x80) === 0) {
        this.pos = pos;
        this.lebBits = shift + 7;
        this.lebLast = x;
        return result;
      }
    }
    this.fail(`${what} LEB128 too long`);
  }
  /** Skips a signed or unsigned LEB128 of up to `maxBytes` bytes. */
  skipLeb(maxBytes = 10): void {
    const b = this.b;
    let pos = this.pos;
    const stop = Math.min(this.end, pos + maxBytes);
    while (pos < stop) {
      if ((b[pos++]! & 0x80) === 0) {
        this.pos = pos;
        return;
      }
    }
    this.pos = pos;
    this.fail(pos >= this.end ? 'unexpected end of input' : 'LEB128 too long');
  }
  skip(n: number): void {
    if (this.pos + n > this.end) this.fail('unexpected end of input');
    this.pos += n;
  }
}

/** Bytes of the unsigned LEB128 encoding of `n`. */
export function u32lebLength(n: number): number {
  n >>>= 0;
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** A growable output buffer. */
export class ByteWriter {
  buf: Uint8Array;
  n = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }
  ensure(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
  }
  byte(v: number): void {
    this.ensure(1);
    this.buf[this.n++] = v;
  }
  u32(v: number): void {
    this.ensure(5);
    v >>>= 0;
    do {
      let x = v & 0x7f;
      v >>>= 7;
      if (v !== 0) x |= 0x80;
      this.buf[this.n++] = x;
    } while (v !== 0);
  }
  s32(v: number): void {
    this.ensure(5);
    v |= 0;
    for (;;) {
      const x = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (x & 0x40) === 0) || (v === -1 && (x & 0x40) !== 0)) {
        this.buf[this.n++] = x;
        return;
      }
      this.buf[this.n++] = x | 0x80;
    }
  }
  /** Appends src[from, to). */
  copy(src: Uint8Array, from = 0, to = src.length): void {
    const k = to - from;
    this.ensure(k);
    const buf = this.buf;
    if (k > 32) buf.set(src.subarray(from, to), this.n);
    else for (let i = 0; i < k; i++) buf[this.n + i] = src[from + i]!;
    this.n += k;
  }
  /** Reserves room for a u32 size prefix of what follows; `endSized` fills it in. */
  beginSized(): number {
    this.ensure(5);
    const at = this.n;
    this.n += 5;
    return at;
  }
  /** Writes the size of everything after the reserved prefix at `at`, minimally encoded. */
  endSized(at: number): void {
    const size = this.n - at - 5;
    const k = u32lebLength(size);
    if (k < 5) this.buf.copyWithin(at + k, at + 5, this.n);
    this.n -= 5 - k;
    let v = size;
    for (let i = 0; i < k; i++) {
      this.buf[at + i] = (v & 0x7f) | (i < k - 1 ? 0x80 : 0);
      v >>>= 7;
    }
  }
  /** The bytes written (a view, no copy). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.n);
  }
}

/** A growable list of int32s. */
export class IntList {
  a: Int32Array;
  n = 0;
  constructor(capacity = 64) {
    this.a = new Int32Array(Math.max(4, capacity));
  }
  push(v: number): void {
    if (this.n === this.a.length) {
      const next = new Int32Array(this.a.length * 2);
      next.set(this.a);
      this.a = next;
    }
    this.a[this.n++] = v;
  }
}
