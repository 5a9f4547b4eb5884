// What every host function shares: guest memory access through the VM's current
// GuestMemory, and copying results out into fresh guest allocations.

import type { AbiContext } from './context.js';
import { headerBytes } from './pairs.js';
import { Status } from './constants.js';
import type { GuestMemory } from '../vm/guest-memory.js';
import { fixedPropertySize, writeFixedProperty } from '../plugin/properties.js';
import type { ForeignWriter } from '../plugin/foreign-functions.js';

export type HostFn = (...args: never[]) => number | bigint | void;

export interface GuestIo {
  /** The VM's memory now (a restart replaces it). */
  mem(): GuestMemory;
  /** Copies `data` into a fresh guest allocation and writes its pointer and size. */
  copyOut(data: Uint8Array, retPtr: number, retSize: number): Status;
  /** copyOut for host byte strings (header values, properties). */
  copyOutString(s: string, retPtr: number, retSize: number): Status;
  /** Writes a sized result (a foreign function's writer) straight into a fresh guest allocation. */
  copyOutSized(w: ForeignWriter, retPtr: number, retSize: number): Status;
  /** An int64 (number or bigint) or boolean property value, encoded straight into a fresh guest allocation. */
  copyOutFixed(v: number | bigint | boolean, retPtr: number, retSize: number): Status;
}

export function guestIo(vm: AbiContext): GuestIo {
  const mem = () => vm.memory;

  /** Copies `data` into a fresh guest allocation and writes its pointer and size. */
  const copyOut = (data: Uint8Array, retPtr: number, retSize: number): Status => {
    const m = vm.memory;
    // The result slots are checked before anything is allocated in the guest.
    if (!m.resultInBounds(retPtr, retSize)) return Status.InvalidMemoryAccess;
    const n = data.length;
    if (n === 0) return m.setResult(retPtr, retSize, 0, 0) ? Status.Ok : Status.InvalidMemoryAccess;
    const p = vm.allocate(n);
    if (p === 0 || !m.write(p, data)) return Status.InvalidMemoryAccess;
    return m.setResult(retPtr, retSize, p, n) ? Status.Ok : Status.InvalidMemoryAccess;
  };

  /**
   * copyOut for host strings (header values, properties), which are byte strings as
   * Node's HTTP layer holds them (headerBytes): written straight into guest memory,
   * one byte per char, unless a char above 0xFF makes them UTF-8.
   */
  const copyOutString = (s: string, retPtr: number, retSize: number): Status => {
    if (!isByteString(s)) return copyOut(headerBytes(s), retPtr, retSize);
    const m = vm.memory;
    if (!m.resultInBounds(retPtr, retSize)) return Status.InvalidMemoryAccess;
    const n = s.length;
    if (n === 0) return m.setResult(retPtr, retSize, 0, 0) ? Status.Ok : Status.InvalidMemoryAccess;
    const p = vm.allocate(n);
    if (p === 0 || !m.writeLatin1(p, s)) return Status.InvalidMemoryAccess;
    return m.setResult(retPtr, retSize, p, n) ? Status.Ok : Status.InvalidMemoryAccess;
  };
  const copyOutSized = (w: ForeignWriter, retPtr: number, retSize: number): Status => {
    const size = w.size;
    const m = vm.memory;
    if (!m.resultInBounds(retPtr, retSize)) return Status.InvalidMemoryAccess;
    if (size === 0) return m.setResult(retPtr, retSize, 0, 0) ? Status.Ok : Status.InvalidMemoryAccess;
    const p = vm.allocate(size);
    const dst = p === 0 ? null : m.writable(p, size);
    if (dst === null) return Status.InvalidMemoryAccess;
    w.write(dst);
    return m.setResult(retPtr, retSize, p, size) ? Status.Ok : Status.InvalidMemoryAccess;
  };

  // One writer for every int64/boolean property: it is used up before the host function returns.
  const fixed = {
    value: 0 as number | bigint | boolean,
    write(dst: Uint8Array, offset: number): void {
      writeFixedProperty(this.value, dst, offset);
    },
  };
  const copyOutFixed = (v: number | bigint | boolean, retPtr: number, retSize: number): Status => {
    const m = vm.memory;
    if (!m.resultInBounds(retPtr, retSize)) return Status.InvalidMemoryAccess;
    const size = fixedPropertySize(v);
    const p = vm.allocate(size);
    fixed.value = v;
    if (p === 0 || !m.fill(p, size, fixed)) return Status.InvalidMemoryAccess;
    return m.setResult(retPtr, retSize, p, size) ? Status.Ok : Status.InvalidMemoryAccess;
  };
  return { mem, copyOut, copyOutString, copyOutSized, copyOutFixed };
}

export const EMPTY_BYTES = new Uint8Array(0);

// RFC 9110 field names are tokens (pseudo-headers start with ':'); values must not
// contain CR, LF or NUL, which would let an adapter split the message (Node refuses them).
// Checked with a char table rather than regular expressions: this runs on every header
// an adapter adds or replaces.
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+.^_`|~-") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;

export function validHeader(name: string, value: string): boolean {
  return validHeaderName(name) && validHeaderValue(value);
}

export function validHeaderName(name: string): boolean {
  const n = name.length;
  let i = n > 0 && name.charCodeAt(0) === 0x3a ? 1 : 0; // ':'
  if (i === n) return false;
  for (; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || TOKEN[c] === 0) return false;
  }
  return true;
}

export function validHeaderValue(value: string): boolean {
  for (let j = 0; j < value.length; j++) {
    const c = value.charCodeAt(j);
    if (c === 0x0d || c === 0x0a || c === 0) return false;
  }
  return true;
}

/** One char per byte (every char below 0x100): headerBytes would encode it as latin1. */
function isByteString(s: string): boolean {
  const n = s.length;
  // A long value (a JWT in Authorization) is checked natively: its UTF-8 length equals its
  // length only when it is ASCII, which is a byte string; else the loop decides.
  if (n > 64 && Buffer.byteLength(s, 'utf8') === n) return true;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

const timeOriginNs = BigInt(Math.round(performance.timeOrigin * 1e6));
const hrOrigin = process.hrtime.bigint() - BigInt(Math.round(performance.now() * 1e6));
export function wallClockNs(): bigint {
  return timeOriginNs + (process.hrtime.bigint() - hrOrigin);
}
