// Bounds-checked access to a guest's linear memory. Views are rebuilt whenever
// memory.grow has detached the old ArrayBuffer (baseline.md pitfall 5).
//
// Host functions run on every guest call, so the methods here work on (ptr, len)
// pairs straight on one Uint8Array: no subarray per access (a typed-array view costs
// about as much as a short copy), strings decoded and results written in place.

import { HOST_BYTE_FUEL, HOST_CHARGE_BATCH } from '../limits.js';

const decoder = new TextDecoder('utf-8');

/**
 * A cache of short decoded strings, shared by all VMs: 512 sets of two (the newest first).
 * Two ways, because the hash samples five bytes: two names an adapter uses on every request
 * that differ only elsewhere (wasm_mixer.get_property_set and .set_property_set did) land in
 * one set, and with one way they evicted each other and were decoded again every time.
 */
const INTERN_SLOTS = 1024;
const INTERN_MAX = 32;
const internCache: Array<string | undefined> = new Array(INTERN_SLOTS);

/** The cached string in set `slot` equal to guest bytes [ptr, ptr+len) (ASCII only when `ascii`), else undefined. */
function internFind(u8: Uint8Array, ptr: number, len: number, slot: number, ascii: boolean): string | undefined {
  for (let way = slot; way < slot + 2; way++) {
    const hit = internCache[way];
    if (hit === undefined || hit.length !== len) continue;
    let i = 0;
    while (i < len) {
      const c = hit.charCodeAt(i);
      if (c !== u8[ptr + i] || (ascii && c >= 0x80)) break;
      i++;
    }
    if (i === len) return hit;
  }
  return undefined;
}

/** Puts `s` first in set `slot`, the previous first second. */
function internStore(slot: number, s: string): void {
  internCache[slot + 1] = internCache[slot];
  internCache[slot] = s;
}

/** Below this many bytes a JS loop copies faster than TypedArray.set on a fresh view. */
const LOOP_COPY_MAX = 64;

/**
 * The intern cache set (its first slot) of guest bytes [ptr, ptr+len), len >= 1: a hash of
 * the length and five of the bytes (a hit is compared byte for byte anyway).
 */
function internSlot(u8: Uint8Array, ptr: number, len: number): number {
  const end = ptr + len;
  let h = Math.imul(len ^ u8[ptr]!, 0x01000193);
  h = Math.imul(h ^ u8[end - 1]!, 0x01000193);
  h = Math.imul(h ^ u8[ptr + (len >>> 1)]!, 0x01000193);
  h = Math.imul(h ^ u8[ptr + (len >>> 2)]!, 0x01000193);
  h = Math.imul(h ^ u8[end - 1 - (len >>> 2)]!, 0x01000193);
  return (h ^ (h >>> 15)) & (INTERN_SLOTS - 2);
}

export class GuestMemory {
  private u8: Uint8Array;
  private dv: DataView;
  /** The same bytes as a Buffer, for its fast latin1 decoding and encoding. */
  private buf: Buffer;

  /**
   * `meter.pending` is charged HOST_BYTE_FUEL units per byte read (view, copy, string) or
   * written (write), so host functions pay for the bytes they move (plugin/host-meter.ts);
   * past HOST_CHARGE_BATCH it is applied with meter.flush(), which throws when the budget
   * is gone (so a host function moving a huge buffer stops before it acts on it).
   */
  constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly meter: { pending: number; flush?: () => void } = { pending: 0 },
  ) {
    this.u8 = new Uint8Array(memory.buffer);
    this.dv = new DataView(memory.buffer);
    this.buf = Buffer.from(memory.buffer);
  }

  /** The memory's size now (no call into the engine unless it grew). */
  get byteLength(): number {
    return this.bytes().length;
  }

  private charge(bytes: number): void {
    const m = this.meter;
    if ((m.pending += bytes * HOST_BYTE_FUEL) >= HOST_CHARGE_BATCH) m.flush?.();
  }

  /**
   * The current bytes. memory.grow detaches the old buffer, and views on a detached
   * buffer have length 0: a cheap test, unlike reading memory.buffer on every access.
   */
  private bytes(): Uint8Array {
    if (this.u8.length === 0) {
      this.u8 = new Uint8Array(this.memory.buffer);
      this.dv = new DataView(this.memory.buffer);
      this.buf = Buffer.from(this.memory.buffer);
    }
    return this.u8;
  }

  /** True when [ptr, ptr+len) lies inside memory. Pointers are u32 on the wire. */
  inBounds(ptr: number, len: number): boolean {
    return (ptr >>> 0) + (len >>> 0) <= this.bytes().length;
  }

  /** Both 4-byte result slots of a call (pointer and size) lie inside memory. */
  resultInBounds(retPtr: number, retSize: number): boolean {
    const n = this.bytes().length - 4;
    return retPtr >>> 0 <= n && retSize >>> 0 <= n;
  }

  /** True when [ptr, ptr+len) holds exactly `bytes` (false when out of bounds), without copying. */
  equals(ptr: number, len: number, bytes: Uint8Array): boolean {
    const u8 = this.bytes();
    ptr >>>= 0;
    len >>>= 0;
    if (ptr + len > u8.length || len !== bytes.length) return false;
    this.charge(len);
    for (let i = 0; i < len; i++) if (u8[ptr + i] !== bytes[i]) return false;
    return true;
  }

  /** A view (not a copy) of guest bytes, or null when out of bounds. Copy before the next guest call. */
  view(ptr: number, len: number): Uint8Array | null {
    const u8 = this.bytes();
    ptr >>>= 0;
    len >>>= 0;
    if (ptr + len > u8.length) return null;
    this.charge(len);
    return u8.subarray(ptr, ptr + len);
  }

  copy(ptr: number, len: number): Uint8Array | null {
    const u8 = this.bytes();
    ptr >>>= 0;
    len >>>= 0;
    if (ptr + len > u8.length) return null;
    this.charge(len);
    if (len > LOOP_COPY_MAX) return u8.slice(ptr, ptr + len);
    // Small typed arrays live on V8's heap: far cheaper than a fresh ArrayBuffer.
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) out[i] = u8[ptr + i]!;
    return out;
  }

  /** Copies guest bytes [ptr, ptr+dst.length) into `dst`; false (nothing copied) when out of bounds. */
  copyInto(ptr: number, dst: Uint8Array): boolean {
    const u8 = this.bytes();
    ptr >>>= 0;
    const len = dst.length;
    if (ptr + len > u8.length) return false;
    this.charge(len);
    if (len <= LOOP_COPY_MAX) for (let i = 0; i < len; i++) dst[i] = u8[ptr + i]!;
    else this.buf.copy(dst, 0, ptr, ptr + len);
    return true;
  }

  string(ptr: number, len: number): string | null {
    const u8 = this.bytes();
    ptr >>>= 0;
    len >>>= 0;
    if (ptr + len > u8.length) return null;
    this.charge(len);
    if (len === 0) return '';
    // Short ASCII strings (header names, property paths) decode faster as latin1, which is
    // identical to UTF-8 for ASCII; an interned one matches only if every char is ASCII too.
    let slot = -1;
    if (len <= INTERN_MAX) {
      slot = internSlot(u8, ptr, len);
      const hit = internFind(u8, ptr, len, slot, true);
      if (hit !== undefined) return hit;
    }
    if (len <= 128) {
      let i = ptr;
      const end = ptr + len;
      while (i < end && u8[i]! < 0x80) i++;
      if (i === end) {
        const s = this.buf.toString('latin1', ptr, end);
        if (slot >= 0) internStore(slot, s);
        return s;
      }
    }
    return decoder.decode(u8.subarray(ptr, ptr + len));
  }

  /** Bytes as a byte string (one char per byte): header names and values, as Node's HTTP layer holds them. */
  latin1(ptr: number, len: number): string | null {
    const u8 = this.bytes();
    ptr >>>= 0;
    len >>>= 0;
    if (ptr + len > u8.length) return null;
    this.charge(len);
    if (len > INTERN_MAX) return this.buf.toString('latin1', ptr, ptr + len);
    if (len === 0) return '';
    // Short strings (header names, property paths) repeat on every request: the decoded
    // string is kept for each distinct byte sequence, checked byte for byte, so no string
    // is built on a hit.
    const slot = internSlot(u8, ptr, len);
    const hit = internFind(u8, ptr, len, slot, false);
    if (hit !== undefined) return hit;
    const s = this.buf.toString('latin1', ptr, ptr + len);
    internStore(slot, s);
    return s;
  }

  /**
   * Writes a string whose chars are all below 0x100 at ptr, one byte per char (a byte
   * string as Node's HTTP layer holds header values; ASCII is the same in UTF-8); false
   * when it does not fit.
   */
  writeLatin1(ptr: number, s: string): boolean {
    const u8 = this.bytes();
    ptr >>>= 0;
    const n = s.length;
    if (ptr + n > u8.length) return false;
    this.charge(n);
    if (n <= LOOP_COPY_MAX) for (let i = 0; i < n; i++) u8[ptr + i] = s.charCodeAt(i);
    else this.buf.write(s, ptr, n, 'latin1');
    return true;
  }

  setU32(ptr: number, value: number): boolean {
    ptr >>>= 0;
    if (ptr + 4 > this.bytes().length) return false;
    this.dv.setUint32(ptr, value >>> 0, true);
    return true;
  }

  /** Writes a call's two results (a pointer and a size), or false when a slot is out of bounds. */
  setResult(retPtr: number, retSize: number, ptr: number, size: number): boolean {
    if (!this.resultInBounds(retPtr, retSize)) return false;
    const dv = this.dv;
    dv.setUint32(retPtr >>> 0, ptr >>> 0, true);
    dv.setUint32(retSize >>> 0, size >>> 0, true);
    return true;
  }

  setU64(ptr: number, value: bigint): boolean {
    ptr >>>= 0;
    if (ptr + 8 > this.bytes().length) return false;
    this.dv.setBigUint64(ptr, BigInt.asUintN(64, value), true);
    return true;
  }

  getU32(ptr: number): number | null {
    ptr >>>= 0;
    if (ptr + 4 > this.bytes().length) return null;
    return this.dv.getUint32(ptr, true);
  }

  /** A view of guest bytes for the host to fill (charged as written), or null when out of bounds. */
  writable(ptr: number, len: number): Uint8Array | null {
    return this.view(ptr, len);
  }

  /** Lets `w` fill [ptr, ptr+len) in place (charged as written), without a view; false when out of bounds. */
  fill(ptr: number, len: number, w: { write(dst: Uint8Array, offset: number): void }): boolean {
    const u8 = this.bytes();
    ptr >>>= 0;
    len >>>= 0;
    if (ptr + len > u8.length) return false;
    this.charge(len);
    w.write(u8, ptr);
    return true;
  }

  write(ptr: number, data: Uint8Array): boolean {
    const u8 = this.bytes();
    ptr >>>= 0;
    const n = data.length;
    if (ptr + n > u8.length) return false;
    this.charge(n);
    if (n <= LOOP_COPY_MAX) for (let i = 0; i < n; i++) u8[ptr + i] = data[i]!;
    else u8.set(data, ptr);
    return true;
  }
}
