// Runtime glue: the allocator the host copies data through, the abort handler,
// and the seed/trace replacements. The build routes AssemblyScript's `abort`,
// `seed` and `trace` here with `--use abort=mixer_abort --use seed=mixer_seed
// --use trace=mixer_trace`, so a module imports nothing but env.proxy_* (and
// wasi_snapshot_preview1.random_get, only if the adapter uses Math.random).

import { proxy_log, proxy_get_current_time_nanoseconds } from "./abi/imports";
import { random_get } from "./abi/wasi";

// ---- allocator ---------------------------------------------------------------------------------
//
// The host calls proxy_on_memory_allocate (or malloc) in the middle of a hostcall,
// copies bytes into the region and hands us the pointer. The region is a managed
// ArrayBuffer, pinned so that the incremental GC neither frees nor moves it before
// the SDK looks at it. The SDK then "takes" it: unpins it and keeps it as an
// ordinary ArrayBuffer (no copy) or decodes it into a string and drops it. Any
// buffer still pending when a callback returns is unpinned then, so nothing the
// host allocated can stay pinned for longer than one callback.

const pending = new Array<usize>();

// A buffer the SDK lends to the host for the next allocation (see lend()): reads on the hot
// path reuse one buffer instead of allocating, pinning and collecting one per hostcall.
let lentPtr: usize = 0;
let lentCap: usize = 0;

export function allocate(size: usize): usize {
  if (lentPtr != 0 && size <= lentCap) {
    let p = lentPtr;
    lentPtr = 0;
    return p;
  }
  let ptr = __pin(__new(size, idof<ArrayBuffer>()));
  pending.push(ptr);
  return ptr;
}

/**
 * Offers `buf` for the host's next allocation, if it fits. The caller keeps `buf`
 * reachable (so the GC, which never moves objects, leaves it alone), calls the host, then
 * unlend(); a result pointer equal to `buf` means the bytes were written in place.
 */
export function lend(buf: ArrayBuffer): void {
  lentPtr = changetype<usize>(buf);
  lentCap = <usize>buf.byteLength;
}

/** Withdraws the offer of lend() (whether or not the host used it). */
export function unlend(): void {
  lentPtr = 0;
}

// The read arena: values hostbytes.ts reads (a header, a property, a shared-data record) are
// written by the host into this static region, one after another, instead of into a fresh
// pinned ArrayBuffer each: no allocation and no garbage per read. releaseAll() empties it
// when the callback ends, so a value stays readable until then, as a pinned buffer does.
// A value that does not fit in what is left takes the ordinary path (allocate).
const ARENA_BYTES: usize = 8192;
const arenaBase: usize = memory.data(<i32>ARENA_BYTES, 16);
let arenaTop: usize = arenaBase;

/** Offers the rest of the read arena for the host's next allocation (then call keepArena). */
export function lendArena(): void {
  lentPtr = arenaTop;
  lentCap = arenaBase + ARENA_BYTES - arenaTop;
}

/** Withdraws lendArena's offer; the value [ptr, ptr+size) stays in the arena when the host wrote it there. */
export function keepArena(ptr: usize, size: usize): void {
  lentPtr = 0;
  if (ptr == arenaTop && ptr != 0) arenaTop = (ptr + size + 7) & ~<usize>7;
}

function unpinPending(ptr: usize): bool {
  let n = pending.length;
  for (let i = n - 1; i >= 0; i--) {
    if (unchecked(pending[i]) == ptr) {
      unchecked((pending[i] = pending[n - 1]));
      pending.length = n - 1;
      __unpin(ptr);
      return true;
    }
  }
  return false;
}

/** Takes ownership of a host-written buffer as an ArrayBuffer of `size` bytes. */
export function takeBuffer(ptr: usize, size: usize): ArrayBuffer {
  if (ptr == 0) {
    if (size != 0) abort("host returned a null pointer with size " + size.toString());
    return new ArrayBuffer(0);
  }
  if (!unpinPending(ptr)) {
    // Not one of ours: copy it out and leave the region alone.
    let copy = new ArrayBuffer(<i32>size);
    memory.copy(changetype<usize>(copy), ptr, size);
    return copy;
  }
  let buf = changetype<ArrayBuffer>(ptr);
  let have = <usize>buf.byteLength;
  if (size == have) return buf;
  if (size > have) abort("host wrote " + size.toString() + " bytes into a " + have.toString() + "-byte buffer");
  return buf.slice(0, <i32>size);
}

/** Decodes a host-written UTF-8 buffer and releases it. */
export function takeString(ptr: usize, size: usize): string {
  if (ptr == 0) return "";
  let s = size == 0 ? "" : String.UTF8.decodeUnsafe(ptr, size);
  unpinPending(ptr);
  return s;
}

/** Releases a host-written buffer the SDK does not need. */
export function releaseBuffer(ptr: usize): void {
  if (ptr != 0) unpinPending(ptr);
}

/** Unpins whatever the host allocated but the SDK never took (called after every callback). */
export function releaseAll(): void {
  arenaTop = arenaBase;
  let n = pending.length;
  if (n == 0) return;
  for (let i = 0; i < n; i++) __unpin(unchecked(pending[i]));
  pending.length = 0;
}

/** Number of host buffers allocated and not yet taken (for tests). */
export function pendingBuffers(): i32 {
  return pending.length;
}

// ---- abort -------------------------------------------------------------------------------------
//
// Writes "abort: MESSAGE at FILE:LINE:COL" into a static buffer (no allocation:
// abort may be reporting an out-of-memory), logs it at CRITICAL and traps. The
// host sees a trap and applies its crash policy.

// @ts-ignore: decorator
@lazy const abortBuf: usize = memory.data(1024);
// @ts-ignore: decorator
@lazy let aborting = false;

function putStr(pos: usize, s: string | null): usize {
  if (s === null) return pos;
  let room = <usize>1024 - pos;
  let chars = <usize>s.length;
  if (chars * 3 > room) chars = room / 3;
  return pos + String.UTF8.encodeUnsafe(changetype<usize>(s), <i32>chars, abortBuf + pos);
}

function putU32(pos: usize, v: u32): usize {
  let digits = 1;
  for (let t = v; t >= 10; t /= 10) digits++;
  if (pos + <usize>digits > <usize>1024) return pos;
  for (let i = digits - 1; i >= 0; i--) {
    store<u8>(abortBuf + pos + <usize>i, <u8>(48 + v % 10));
    v /= 10;
  }
  return pos + <usize>digits;
}

// @ts-ignore: decorator
@global
export function mixer_abort(
  message: string | null = null, fileName: string | null = null, line: u32 = 0, column: u32 = 0,
): void {
  if (!aborting) {
    aborting = true;
    let p = putStr(0, "abort: ");
    p = putStr(p, message !== null ? message : "(no message)");
    if (fileName !== null) {
      p = putStr(p, " at ");
      p = putStr(p, fileName);
      p = putStr(p, ":");
      p = putU32(p, line);
      p = putStr(p, ":");
      p = putU32(p, column);
    }
    proxy_log(5, abortBuf, p);
  }
  unreachable();
}

// ---- seed and trace ----------------------------------------------------------------------------

// @ts-ignore: decorator
@lazy const seedBuf: usize = memory.data(8, 8);

// @ts-ignore: decorator
@global
export function mixer_seed(): f64 {
  let bits: u64 = 0;
  if (random_get(seedBuf, 8) == 0) bits = load<u64>(seedBuf);
  if (bits == 0 && proxy_get_current_time_nanoseconds(seedBuf) == 0) bits = load<u64>(seedBuf);
  return <f64>(bits >>> 11) + 1.0;
}

// @ts-ignore: decorator
@global
export function mixer_trace(
  message: string, n: i32 = 0, a0: f64 = 0, a1: f64 = 0, a2: f64 = 0, a3: f64 = 0, a4: f64 = 0,
): void {
  let s = message;
  if (n > 0) s += " " + a0.toString();
  if (n > 1) s += " " + a1.toString();
  if (n > 2) s += " " + a2.toString();
  if (n > 3) s += " " + a3.toString();
  if (n > 4) s += " " + a4.toString();
  let buf = String.UTF8.encode(s);
  proxy_log(1, changetype<usize>(buf), <usize>buf.byteLength);
}
