// WASI preview1 functions a filter may use (stdout/stderr, clocks, random, its own
// environment); the rest of the table (abi/names.ts) return ENOSYS.

import { randomFillSync } from 'node:crypto';
import { Errno } from './constants.js';
import type { AbiContext } from './context.js';
import { wallClockNs, type GuestIo, type HostFn } from './guest-io.js';
import { UNIMPLEMENTED_WASI } from './names.js';
import { MAX_FD_WRITE_BYTES, MAX_FD_WRITE_IOVECS, RANDOM_GET_MAX } from '../limits.js';

/** Thrown by WASI proc_exit: unwinds the guest call, which the VM treats as a crash. */
export class ProcExit extends Error {
  constructor(readonly exitCode: number) {
    super(`adapter called proc_exit(${exitCode})`);
    this.name = 'ProcExit';
  }
}

const NUL = new Uint8Array([0]);

export function wasiFunctions(vm: AbiContext, { mem }: GuestIo): Record<string, HostFn> {
  const wasi: Record<string, HostFn> = {
    fd_write(fd: number, iovs: number, iovsLen: number, retWritten: number): number {
      if (fd !== 1 && fd !== 2) return Errno.Badf;
      const n = iovsLen >>> 0;
      if (n > MAX_FD_WRITE_IOVECS) return Errno.Inval; // as writev past IOV_MAX
      const m = mem();
      const table = m.copy(iovs, n * 8);
      if (table === null) return Errno.Fault;
      const iov = new DataView(table.buffer);
      // At most MAX_FD_WRITE_BYTES are taken from one call; the rest is reported
      // written (so libc does not retry it) and dropped, never copied.
      let total = 0;
      let taken = 0;
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        const p = iov.getUint32(i * 8, true);
        const l = iov.getUint32(i * 8 + 4, true);
        if (!m.inBounds(p, l)) return Errno.Fault;
        total += l;
        const want = Math.min(l, MAX_FD_WRITE_BYTES - taken);
        if (want > 0) {
          chunks.push(m.copy(p, want)!);
          taken += want;
        }
      }
      if (total > 0xffffffff || !m.setU32(retWritten, total)) return Errno.Fault;
      vm.stdioWrite(fd, chunks, total - taken);
      return Errno.Success;
    },
    proc_exit(code: number): void {
      throw new ProcExit(code);
    },
    clock_time_get(clockId: number, _precision: bigint, retTime: number): number {
      let t: bigint;
      if (clockId === 0) t = wallClockNs();
      else if (clockId === 1) t = process.hrtime.bigint();
      else return Errno.Notsup;
      return mem().setU64(retTime, t) ? Errno.Success : Errno.Fault;
    },
    random_get(ptr: number, len: number): number {
      len >>>= 0;
      if (len > RANDOM_GET_MAX) return Errno.Inval;
      const v = mem().view(ptr, len);
      if (v === null) return Errno.Fault;
      randomFillSync(v);
      return Errno.Success;
    },
    environ_sizes_get(retCount: number, retBufSize: number): number {
      const env = vm.environ;
      const size = env.reduce((n, e) => n + e.length + 1, 0);
      return mem().setU32(retCount, env.length) && mem().setU32(retBufSize, size) ? Errno.Success : Errno.Fault;
    },
    environ_get(ptrs: number, buf: number): number {
      const m = mem();
      let p = buf >>> 0;
      const env = vm.environ;
      for (let i = 0; i < env.length; i++) {
        const e = env[i]!;
        if (!m.setU32(ptrs + i * 4, p) || !m.write(p, e) || !m.write(p + e.length, NUL)) return Errno.Fault;
        p += e.length + 1;
      }
      return Errno.Success;
    },
    args_sizes_get(retCount: number, retBufSize: number): number {
      return mem().setU32(retCount, 0) && mem().setU32(retBufSize, 0) ? Errno.Success : Errno.Fault;
    },
    args_get(): number {
      return Errno.Success;
    },
    sched_yield(): number {
      return Errno.Success;
    },
  };
  for (const name of UNIMPLEMENTED_WASI) wasi[name] = () => Errno.Nosys;
  return wasi;
}
