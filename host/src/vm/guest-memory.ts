// Bounds-checked access to a guest's linear memory. Views are rebuilt whenever
// memory.grow has detached the old ArrayBuffer (baseline.md pitfall 5).

import { HOST_BYTE_FUEL, HOST_CHARGE_BATCH } from '../limits.js';

const decoder = new TextDecoder('utf-8');

/** A direct-mapped cache of short decoded strings, shared by all VMs (collisions just overwrite). */
const INTERN_SLOTS = 1024;
const internCache: Array<string | undefined> = new Array(INTERN_SLOTS);

export class GuestMemory {
  private u8: Uint8Array;
  private dv: DataView;
  /** The same bytes as a Buffer, for its fast latin1 decoding of ASCII strings. */
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

  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  private charge(bytes: number): void {
    const m = this.meter;
    if ((m.pending += bytes * HOST_BYTE_FUEL) >= HOST_CHARGE_BATCH) m.flush?.();
  }

  private refresh(): void {
    // memory.grow detaches the old buffer, and views on a detached buffer have
    // length 0: a cheap test, unlike reading memory.buffer on every access.
    if (this.u8.length === 0) {
      this.u8 = new Uint8Array(this.memory.buffer);
      this.dv = new DataView(this.memory.buffer);
      this.buf = Buffer.from(this.memory.buffer);
    }
  }

  /** True when [ptr, ptr+len) lies inside memory. Pointers are u32 on the wire. */
  inBounds(ptr: number, len: number): boolean {
    this.refresh();
    ptr >>>= 0;
    len >>>= 0;
    return ptr + len <= this.u8.length;
  }

  /** A view (not a copy) of guest bytes, or null when out of bounds. Copy before the next guest call. */
  view(ptr: number, len: number): Uint8Array | null {
    this.refresh();
    ptr >>>= 0;
    len >>>= 0;
    if (ptr + len > this.u8.length) return null;
    this.charge(len);
    return this.u8.subarray(ptr, ptr + len);
  }

  copy(ptr: number, len: number): Uint8Array | null {
    const v = this.view(ptr, len);
    return v === null ? null : v.slice();
  }

  /**
   * A copy for bytes the host keeps only briefly (a request's filter state, a foreign
   * function's arguments): small ones come from Node's Buffer pool, which is several times
   * cheaper than a fresh ArrayBuffer but keeps its 8 KiB slab alive as long as the copy,
   * so long-lived values (shared data, queues) use copy().
   */
  copyShortLived(ptr: number, len: number): Uint8Array | null {
    const v = this.view(ptr, len);
    if (v === null) return null;
    if (v.length >= 4096) return v.slice();
    const out = Buffer.allocUnsafe(v.length);
    out.set(v);
    return out;
  }

  string(ptr: number, len: number): string | null {
    const v = this.view(ptr, len);
    if (v === null) return null;
    // Short ASCII strings (header names, property paths) decode faster as latin1,
    // which is identical to UTF-8 for ASCII.
    if (v.length <= 128) {
      let ascii = true;
      for (let i = 0; i < v.length; i++) {
        if (v[i]! >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) return v.length <= 32 ? this.interned(v) : this.buf.toString('latin1', v.byteOffset, v.byteOffset + v.length);
    }
    return decoder.decode(v);
  }

  /** Bytes as a byte string (one char per byte): header names and values, as Node's HTTP layer holds them. */
  latin1(ptr: number, len: number): string | null {
    const v = this.view(ptr, len);
    if (v === null) return null;
    if (v.length <= 32) return this.interned(v);
    return this.buf.toString('latin1', v.byteOffset, v.byteOffset + v.length);
  }

  /**
   * Short ASCII strings (header names, property paths) repeat on every request: keep
   * the decoded string for each distinct byte sequence, found by an FNV-1a hash and
   * checked byte for byte, so no string is built on a hit.
   */
  private interned(v: Uint8Array): string {
    let h = 0x811c9dc5;
    for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v[i]!, 0x01000193);
    const slot = (h >>> 0) & (INTERN_SLOTS - 1);
    const hit = internCache[slot];
    if (hit !== undefined && hit.length === v.length) {
      let same = true;
      for (let i = 0; i < v.length; i++) {
        if (hit.charCodeAt(i) !== v[i]) {
          same = false;
          break;
        }
      }
      if (same) return hit;
    }
    const s = this.buf.toString('latin1', v.byteOffset, v.byteOffset + v.length);
    internCache[slot] = s;
    return s;
  }

  /** Writes an ASCII-only string at ptr (one byte per char); false when it does not fit. */
  writeStringAscii(ptr: number, s: string): boolean {
    this.refresh();
    ptr >>>= 0;
    if (ptr + s.length > this.u8.length) return false;
    this.charge(s.length);
    const u8 = this.u8;
    for (let i = 0; i < s.length; i++) u8[ptr + i] = s.charCodeAt(i);
    return true;
  }

  setU32(ptr: number, value: number): boolean {
    this.refresh();
    ptr >>>= 0;
    if (ptr + 4 > this.u8.length) return false;
    this.dv.setUint32(ptr, value >>> 0, true);
    return true;
  }

  setU64(ptr: number, value: bigint): boolean {
    this.refresh();
    ptr >>>= 0;
    if (ptr + 8 > this.u8.length) return false;
    this.dv.setBigUint64(ptr, BigInt.asUintN(64, value), true);
    return true;
  }

  getU32(ptr: number): number | null {
    this.refresh();
    ptr >>>= 0;
    if (ptr + 4 > this.u8.length) return null;
    return this.dv.getUint32(ptr, true);
  }

  /** A view of guest bytes for the host to fill (charged as written), or null when out of bounds. */
  writable(ptr: number, len: number): Uint8Array | null {
    return this.view(ptr, len);
  }

  write(ptr: number, data: Uint8Array): boolean {
    this.refresh();
    ptr >>>= 0;
    if (ptr + data.length > this.u8.length) return false;
    this.charge(data.length);
    this.u8.set(data, ptr);
    return true;
  }
}
