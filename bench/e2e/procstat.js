// CPU time and memory of processes from /proc (Linux), and the machine's own busy time,
// so each run can say how much CPU other programs took while it ran.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let tck = 100;
try {
  tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* 100 on every Linux we know */
}
export const CLK_TCK = tck;

/** utime + stime of a process, in clock ticks (null when it is gone). */
export function cpuTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // fields 14 and 15 of proc(5)
  } catch {
    return null;
  }
}

/** CPU ticks of a process's waited-for (exited) children: cutime + cstime. */
export function reapedChildrenTicks(pid = process.pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[13]) + Number(f[14]); // fields 16 and 17 of proc(5)
}

/** Resident set size now and at its peak (VmHWM), in KiB. */
export function memory(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rssKiB: kb('VmRSS'), peakRssKiB: kb('VmHWM') };
  } catch {
    return { rssKiB: null, peakRssKiB: null };
  }
}

/** Machine-wide CPU ticks: busy (everything but idle and iowait) and steal. */
export function machineTicks() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal = 0] = v;
  void idle;
  void iowait;
  return { busy: user + nice + system + irq + softirq + steal, steal };
}

/**
 * Samples a set of processes at the start of a measured window; end() returns, per
 * named process, CPU ms and µs per request, RSS; plus the CPU that programs other than
 * these, this process and `alsoOurs` (our idle children) used meanwhile, in cores.
 */
export function window(pids, alsoOurs = []) {
  const t0 = process.hrtime.bigint();
  const m0 = machineTicks();
  const self0 = cpuTicks(process.pid);
  const reaped0 = reapedChildrenTicks();
  const others0 = alsoOurs.map((pid) => cpuTicks(pid));
  const start = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuTicks(pid)]));
  return {
    end(requests) {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const m1 = machineTicks();
      const out = { seconds: Math.round(seconds * 1000) / 1000, processes: {} };
      let ours = (cpuTicks(process.pid) ?? 0) - (self0 ?? 0);
      // Children that exited during the window (wrk): their CPU time lands in our cutime.
      const reaped = reapedChildrenTicks() - reaped0;
      ours += reaped;
      out.exitedChildrenCpuMs = (reaped * 1000) / CLK_TCK;
      alsoOurs.forEach((pid, i) => void (ours += (cpuTicks(pid) ?? 0) - (others0[i] ?? 0)));
      for (const [k, pid] of Object.entries(pids)) {
        const t = cpuTicks(pid);
        const d = t === null || start[k] === null ? null : t - start[k];
        if (d !== null) ours += d;
        const ms = d === null ? null : (d * 1000) / CLK_TCK;
        out.processes[k] = {
          pid,
          cpuMs: ms,
          cpuUsPerRequest: ms === null || !requests ? null : Math.round(((ms * 1000) / requests) * 100) / 100,
          cores: ms === null ? null : Math.round((ms / 1000 / seconds) * 1000) / 1000,
          ...memory(pid),
        };
      }
      const busy = m1.busy - m0.busy;
      out.otherProgramsCores = Math.max(0, Math.round(((busy - ours) / CLK_TCK / seconds) * 100) / 100);
      out.stealCores = Math.round(((m1.steal - m0.steal) / CLK_TCK / seconds) * 100) / 100;
      return out;
    },
  };
}
