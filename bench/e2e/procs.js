// Child processes of the benchmark: started with an IPC channel (a child whose parent
// dies sees "disconnect" and exits), stderr kept in a log file, every one stopped by
// its pid at the end (SIGTERM, then SIGKILL after a grace period).
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ROLES = resolve(here, 'roles.js');
const live = new Set();

/** Starts `node [nodeArgs] roles.js role ...args` (`roles`: another checkout's roles.js, for before/after runs); resolves { pid, port, adminPort, child } on "ready". */
export function startRole(role, args = [], { nodeArgs = [], logFile = null, timeoutMs = 60_000, roles = ROLES } = {}) {
  return new Promise((resolveReady, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, roles, role, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    live.add(child);
    const log = logFile ? createWriteStream(logFile, { flags: 'a' }) : null;
    let tail = '';
    child.stderr.on('data', (d) => {
      log?.write(d);
      tail = (tail + d).slice(-4000);
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${role} did not start within ${timeoutMs} ms:\n${tail}`)), timeoutMs);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /ready (\d+)(?: (\d+|null))?/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveReady({ pid: child.pid, port: Number(m[1]), adminPort: m[2] && m[2] !== 'null' ? Number(m[2]) : null, child, role, stderrTail: () => tail });
      }
    });
    child.on('exit', (code, sig) => {
      live.delete(child);
      log?.end();
      clearTimeout(timer);
      reject(new Error(`${role} exited (${code ?? sig}) before it was ready:\n${tail}`));
    });
  });
}

/** Stops one child (SIGTERM, SIGKILL after graceMs); resolves when it has exited. */
export function stop(child, graceMs = 4000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      r();
    });
    child.kill('SIGTERM');
  });
}

export async function stopAll() {
  await Promise.all([...live].map((c) => stop(c)));
}

/** Tracks a child started elsewhere (load generators, wrk) so stopAll and the exit hook reach it. */
export function track(child) {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

// Last resort: whatever way this process ends, no child survives it.
process.on('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping ${live.size} child process(es)\n`);
    stopAll().finally(() => process.exit(130));
  });
}
