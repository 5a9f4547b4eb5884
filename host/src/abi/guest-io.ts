// What every host function shares: guest memory access through the VM's current
// GuestMemory, and copying results out into fresh guest allocations.

import type { AbiContext } from './context.js';
import { headerBytes } from './pairs.js';
import { Status } from './constants.js';
import type { GuestMemory } from '../vm/guest-memory.js';

export type HostFn = (...args: never[]) => number | bigint | void;

export interface GuestIo {
  /** The VM's memory now (a restart replaces it). */
  mem(): GuestMemory;
  /** Copies `data` into a fresh guest allocation and writes its pointer and size. */
  copyOut(data: Uint8Array, retPtr: number, retSize: number): Status;
  /** copyOut for host byte strings (header values, properties). */
  copyOutString(s: string, retPtr: number, retSize: number): Status;
}

export function guestIo(vm: AbiContext): GuestIo {
  const mem = () => vm.memory;

  /** Copies `data` into a fresh guest allocation and writes its pointer and size. */
  const copyOut = (data: Uint8Array, retPtr: number, retSize: number): Status => {
    const m = mem();
    if (!m.inBounds(retPtr, 4) || !m.inBounds(retSize, 4)) return Status.InvalidMemoryAccess;
    if (data.length === 0) {
      m.setU32(retPtr, 0);
      m.setU32(retSize, 0);
      return Status.Ok;
    }
    const p = vm.allocate(data.length);
    if (p === 0 || !m.write(p, data)) return Status.InvalidMemoryAccess;
    m.setU32(retPtr, p);
    m.setU32(retSize, data.length);
    return Status.Ok;
  };

  /**
   * copyOut for host strings (header values, properties), which are byte strings as
   * Node's HTTP layer holds them: short ASCII ones are written straight into guest memory.
   */
  const copyOutString = (s: string, retPtr: number, retSize: number): Status => {
    if (s.length > 256 || !isAscii(s)) return copyOut(headerBytes(s), retPtr, retSize);
    const m = mem();
    if (!m.inBounds(retPtr, 4) || !m.inBounds(retSize, 4)) return Status.InvalidMemoryAccess;
    if (s.length === 0) {
      m.setU32(retPtr, 0);
      m.setU32(retSize, 0);
      return Status.Ok;
    }
    const p = vm.allocate(s.length);
    if (p === 0 || !m.writeStringAscii(p, s)) return Status.InvalidMemoryAccess;
    m.setU32(retPtr, p);
    m.setU32(retSize, s.length);
    return Status.Ok;
  };
  return { mem, copyOut, copyOutString };
}

export const EMPTY_BYTES = new Uint8Array(0);

// RFC 9110 field names are tokens (pseudo-headers start with ':'); values must not
// contain CR, LF or NUL, which would let an adapter split the message (Node refuses them).
const HEADER_NAME = /^:?[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;
export function validHeader(name: string, value: string): boolean {
  return HEADER_NAME.test(name) && !BAD_VALUE.test(value);
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

const timeOriginNs = BigInt(Math.round(performance.timeOrigin * 1e6));
const hrOrigin = process.hrtime.bigint() - BigInt(Math.round(performance.now() * 1e6));
export function wallClockNs(): bigint {
  return timeOriginNs + (process.hrtime.bigint() - hrOrigin);
}
