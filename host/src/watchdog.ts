// The last line of isolation (issue 11): a worker thread that watches a
// heartbeat the main thread writes into shared memory every
// WATCHDOG_HEARTBEAT_MS. Guest work is bounded by the work budget, so the
// event loop should never be blocked for long; if it is anyway (an unmetered
// module, a bug), the proxy would otherwise hang forever with every connection
// open, ignoring SIGTERM. When the heartbeat is older than `hardLimitMs`, the
// watchdog writes one critical log line (code EVENT_LOOP_BLOCKED, naming the
// adapter that was running) to stderr and kills the process with SIGKILL, so a
// supervisor (systemd, Kubernetes) restarts it. Requests in flight are cut: their
// connections are reset by the kernel.
//
// Why not recover in-process: the main thread is inside a synchronous wasm call
// and cannot be interrupted from JS. V8's TerminateExecution (reachable through
// the inspector's Runtime.terminateExecution) does stop the wasm, but Node 20 then
// aborts on a corrupted async-hook stack (exit code 1, native stack dump), so a
// clean kill is the more predictable end.

import { Worker } from 'node:worker_threads';
import { DEFAULT_WATCHDOG_HARD_LIMIT_MS, WATCHDOG_HEARTBEAT_MS } from './limits.js';

const shared = new SharedArrayBuffer(16);
const heartbeat = new Float64Array(shared, 0, 1);
/** The watchdog id of the adapter whose guest code is running (0: none). Written by PluginVm around every outermost guest call. */
export const runningAdapter = new Int32Array(shared, 8, 1);

const names: string[] = ['(no adapter: host code)'];
let worker: Worker | null = null;

/** A small id for an adapter name, for runningAdapter. */
export function watchdogId(name: string): number {
  let id = names.indexOf(name);
  if (id < 0) {
    id = names.push(name) - 1;
    worker?.postMessage({ id, name });
  }
  return id;
}

const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const { shared, names, hardLimitMs, pid } = workerData;
const heartbeat = new Float64Array(shared, 0, 1);
const running = new Int32Array(shared, 8, 1);
parentPort.on('message', (m) => { names[m.id] = m.name; });
setInterval(() => {
  const blocked = Date.now() - heartbeat[0];
  if (blocked <= hardLimitMs) return;
  const adapter = names[Atomics.load(running, 0)] || 'unknown';
  const record = {
    time: new Date().toISOString(), level: 'critical', source: 'watchdog', code: 'EVENT_LOOP_BLOCKED',
    message: 'the event loop has been blocked for ' + blocked + ' ms (watchdog.hardLimitMs ' + hardLimitMs + '), running ' + adapter + '; killing the process (SIGKILL) so that it is restarted; requests in flight are reset',
    blockedMs: blocked, adapter,
  };
  writeSync(2, JSON.stringify(record) + '\\n');
  process.kill(pid, 'SIGKILL');
}, Math.max(50, Math.min(250, hardLimitMs / 4)));
`;

export interface Watchdog {
  stop(): Promise<void>;
}

/** Starts the watchdog (once per process; later calls return the running one). */
export function startWatchdog(opts: { hardLimitMs?: number } = {}): Watchdog {
  const hardLimitMs = opts.hardLimitMs ?? DEFAULT_WATCHDOG_HARD_LIMIT_MS;
  heartbeat[0] = Date.now();
  const beat = setInterval(() => (heartbeat[0] = Date.now()), WATCHDOG_HEARTBEAT_MS);
  beat.unref();
  if (worker === null) {
    worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { shared, names: [...names], hardLimitMs, pid: process.pid } });
    worker.unref();
  }
  const w = worker;
  return {
    stop: async () => {
      clearInterval(beat);
      if (worker === w) worker = null;
      await w.terminate();
    },
  };
}
