// The primary of a multi-worker proxy (`wasm-mixer proxy --workers N`, node:cluster).
//
// It forks N workers that each run the proxy with their own adapter VMs on one shared
// listening port (the primary accepts and hands connections out round-robin, Node's
// default on Linux), and it keeps for itself what must be one per proxy:
//   * the admin port: /metrics merged over the workers (metrics-merge.ts), /adapters
//     listing each worker's VMs, /ready when every worker is, /config, POST /reload;
//   * reload, all or nothing: every worker builds and configures the new VMs
//     (prepare); only when all succeeded do they swap (commit), else all drop them
//     (abort) and the old config keeps serving everywhere;
//   * the budget of local quota limits (lease-store.ts), leased by the workers over IPC;
//   * replacing a worker that died, with a crash-rate limit (restart-policy.ts);
//   * shutdown: SIGTERM drains every worker, then the primary exits.

import cluster, { type Worker } from 'node:cluster';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { LogLevel } from '../abi/constants.js';
import { loadConfigFile } from '../config/load.js';
import type { MixerConfig } from '../config/schema.js';
import { describeError, HostError, type HostErrorCode } from '../errors.js';
import { createLogger, parseLogLevel, type HostLogger } from '../log/logger.js';
import { registerProcessMetrics } from '../metrics/process.js';
import type { FamilySnapshot } from '../metrics/registry.js';
import { MetricsRegistry } from '../metrics/registry.js';
import { startAdminFor, type AdminServer } from '../proxy/admin.js';
import type { LeaseRequest } from '../quota/lease-protocol.js';
import type { ReloadResult } from '../reload/reloader.js';
import { LeaseStore } from './lease-store.js';
import { mergedRegistry, mergeSnapshots, RetiredMetrics, type SourceSnapshot } from './metrics-merge.js';
import { RestartLimiter } from './restart-policy.js';
import { Rpc } from './rpc.js';
import type { WorkerInit } from './worker.js';

export interface PrimaryOptions {
  workers: number;
  baseDir: string;
  /** Re-read on reload; without it reload re-applies the config in force. */
  configFile?: string;
  /** Applied to the file on every reload (the command line's overrides). */
  configOverride?: (config: MixerConfig) => MixerConfig;
  port?: number;
  adminPort?: number;
  drainMs?: number;
  /** How long a worker may take to load its adapters and listen. */
  startTimeoutMs?: number;
  logger?: HostLogger;
}

export interface RunningPrimary {
  readonly port: number;
  readonly adminPort: number | null;
  /** Live worker process ids, by worker number (1..N). */
  pids(): Record<number, number>;
  reload(reason: string): Promise<ReloadResult & { workers: number }>;
  close(): Promise<void>;
}

interface Slot {
  readonly id: number;
  worker: Worker | null;
  rpc: Rpc | null;
  ready: boolean;
  /** Config generation the worker runs. */
  generation: number;
  lastMetrics: FamilySnapshot[];
  restartTimer: NodeJS.Timeout | null;
}

const RPC_TIMEOUT_MS = 10_000;

export async function startPrimary(initial: MixerConfig, opts: PrimaryOptions): Promise<RunningPrimary> {
  const logger = opts.logger ?? createLogger(parseLogLevel(initial.logLevel ?? 'info'));
  let config = initial;
  let generation = 1;
  let port = opts.port ?? config.listen?.port ?? 8080;
  let closing = false;
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const drainMs = opts.drainMs ?? 10_000;

  const registry = new MetricsRegistry();
  registerProcessMetrics(registry);
  registry.gauge('wasm_mixer_workers', 'Worker processes configured (workers).')(opts.workers);
  const upGauge = registry.gauge('wasm_mixer_workers_up', 'Worker processes running and serving.');
  const exits = (reason: string) => registry.counter('wasm_mixer_worker_exits_total', 'Worker processes that exited while the proxy was serving, by reason (crash, signal).', { reason });
  const countRestart = registry.counter('wasm_mixer_worker_restarts_total', 'Worker processes started to replace one that exited.');
  exits('crash');
  exits('signal');
  const retired = new RetiredMetrics();
  const leases = new LeaseStore();
  registry.addCollector(() => upGauge(slots.filter((s) => s.ready).length));

  cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)), args: [] });
  const slots: Slot[] = Array.from({ length: opts.workers }, (_, i) => ({
    id: i + 1,
    worker: null,
    rpc: null,
    ready: false,
    generation: 0,
    lastMetrics: [],
    restartTimer: null,
  }));
  // One crash-rate limit for the whole proxy, not one per slot: workers die of the same causes
  // (a module that crashes the process, a bad host), so N slots must not allow N times the rate.
  const restarts = new RestartLimiter(config.workerRestart);

  /** Reloads and worker (re)starts take turns, so a worker never misses a reload. */
  let turn: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = turn.catch(() => undefined).then(fn);
    turn = run;
    return run;
  };

  function fork(slot: Slot): Promise<void> {
    const w = cluster.fork({ WASM_MIXER_WORKER: String(slot.id) });
    const rpc = new Rpc((m) => (w.isConnected() ? w.send(m) : false));
    slot.worker = w;
    slot.rpc = rpc;
    slot.ready = false;
    rpc.handle('lease', (arg) => leases.lease(arg as LeaseRequest));
    let hello: () => void = () => {};
    const listening = new Promise<void>((resolve) => (hello = resolve));
    w.on('message', (m: { wm?: string }) => (m?.wm === 'hello' ? hello() : rpc.receive(m)));
    w.on('exit', (code, signal) => onExit(slot, w, code, signal));
    w.on('error', () => {}); // IPC errors surface as exit
    const init: WorkerInit = { id: slot.id, workers: opts.workers, config, baseDir: opts.baseDir, port, drainMs };
    slot.generation = generation;
    const died = new Promise<never>((_, reject) => w.once('exit', (code) => reject(new Error(`exited (code ${code}) before it was ready`))));
    died.catch(() => {});
    let helloTimer: NodeJS.Timeout | undefined;
    const silent = new Promise<never>((_, reject) => {
      helloTimer = setTimeout(() => reject(new Error(`no word from the worker process in ${startTimeoutMs} ms`)), startTimeoutMs);
      helloTimer.unref();
    });
    silent.catch(() => {});
    const started = Promise.race([listening, died, silent])
      .finally(() => clearTimeout(helloTimer))
      .then(() => rpc.call<{ port: number }>('init', init, startTimeoutMs));
    return started.then(
      () => {
        slot.ready = true;
      },
      (err: Error & { code?: string; detail?: Record<string, unknown> }) => {
        w.process.kill('SIGKILL');
        // The host's own errors (a module that does not load, a port in use) read as in one process: every worker runs the same config.
        if (err.code !== undefined && err.code !== 'INTERNAL') throw new HostError(err.code as HostErrorCode, err.message, { ...err.detail, worker: slot.id });
        throw new HostError('WORKER_START_FAILED', `worker ${slot.id} did not start: ${err.message}`, { ...err.detail, worker: slot.id });
      },
    );
  }

  function onExit(slot: Slot, w: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== w) return;
    slot.rpc?.close(`worker ${slot.id} exited`);
    if (slot.lastMetrics.length > 0) retired.retire(slot.lastMetrics);
    slot.lastMetrics = [];
    slot.worker = null;
    slot.rpc = null;
    slot.ready = false;
    if (closing) return;
    exits(signal !== null ? 'signal' : 'crash')();
    const wait = restarts.next();
    const how = signal !== null ? `signal ${signal}` : `code ${code}`;
    if (!Number.isFinite(wait)) {
      logger.log(LogLevel.Error, 'primary', `worker ${slot.id} (pid ${w.process.pid}) exited (${how}); workerRestart.maxRestarts is 0, it stays down`, { code: 'WORKER_EXITED' });
      return;
    }
    logger.log(LogLevel.Error, 'primary', `worker ${slot.id} (pid ${w.process.pid}) exited (${how}); replacing it in ${wait} ms; the other workers keep serving`, { code: 'WORKER_EXITED' });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (closing) return;
      countRestart();
      serial(() => fork(slot)).then(
        () => logger.log(LogLevel.Info, 'primary', `worker ${slot.id} replaced (pid ${slot.worker?.process.pid})`, { code: 'WORKER_RESTARTED' }),
        (err) => logger.log(LogLevel.Error, 'primary', `replacing worker ${slot.id} failed: ${describeError(err)}`, { code: 'WORKER_START_FAILED' }),
      );
    }, wait);
  }

  const live = () => slots.filter((s) => s.ready && s.rpc !== null);

  async function reload(reason: string): Promise<ReloadResult & { workers: number }> {
    return serial(async () => {
      let next: MixerConfig;
      try {
        next = opts.configFile !== undefined ? (opts.configOverride ?? ((c: MixerConfig) => c))((await loadConfigFile(opts.configFile)).config) : config;
      } catch (err) {
        registry.counter('wasm_mixer_reloads_total', 'Adapter reloads, by result (ok, failed).', { result: 'failed' })();
        const e = err as HostError;
        throw new HostError('RELOAD_FAILED', `reload (${reason}) rejected, the running adapters keep serving: ${describeError(err)}`, { ...e.detail, cause: e.code ?? 'INTERNAL' });
      }
      const targets = live();
      const prepared = await Promise.allSettled(targets.map((s) => s.rpc!.call('prepare', { config: next, reason }, startTimeoutMs)));
      const bad = prepared.findIndex((r) => r.status === 'rejected');
      if (bad >= 0) {
        await Promise.allSettled(targets.map((s) => s.rpc!.call('abort', null, RPC_TIMEOUT_MS)));
        const err = (prepared[bad] as PromiseRejectedResult).reason as Error & { code?: string; detail?: Record<string, unknown> };
        const detail = err.detail ?? {};
        const msg = `reload (${reason}) rejected: it failed in worker ${targets[bad]!.id}, so no worker applied it and the running adapters keep serving everywhere: ${err.message}`;
        logger.log(LogLevel.Error, 'primary', msg, { code: 'RELOAD_FAILED' });
        throw new HostError('RELOAD_FAILED', msg, { ...detail, cause: detail.cause ?? err.code ?? 'INTERNAL', worker: targets[bad]!.id });
      }
      // Every worker has the new VMs ready: swap everywhere (each swap is synchronous in its worker).
      const results = await Promise.allSettled(targets.map((s) => s.rpc!.call<ReloadResult>('commit', null, RPC_TIMEOUT_MS)));
      config = next;
      generation++;
      for (const s of targets) s.generation = generation;
      const first = results.find((r): r is PromiseFulfilledResult<ReloadResult> => r.status === 'fulfilled');
      for (const [i, r] of results.entries()) {
        // A worker that died between prepare and commit is replaced with the new config.
        if (r.status === 'rejected') logger.log(LogLevel.Warn, 'primary', `worker ${targets[i]!.id} did not confirm the reload: ${(r.reason as Error).message}`, { code: 'RELOAD_FAILED' });
      }
      if (next.workers !== initial.workers || JSON.stringify(next.listen) !== JSON.stringify(initial.listen) || JSON.stringify(next.admin) !== JSON.stringify(initial.admin)) {
        logger.log(LogLevel.Warn, 'primary', 'workers, listen and admin changes take effect on restart; the reload applied the rest', { code: 'RELOADED' });
      }
      logger.log(LogLevel.Info, 'primary', `reload (${reason}) applied in all ${targets.length} workers`, { code: 'RELOADED' });
      return { ...(first?.value ?? { generation, loaded: [], kept: [], removed: [], ms: 0, reason }), workers: targets.length };
    });
  }

  async function metrics(): Promise<MetricsRegistry> {
    const sources: SourceSnapshot[] = [retired.snapshot(), { worker: 'primary', families: registry.collect(), proxyWide: (f) => f.startsWith('wasm_mixer_worker') }];
    const snaps = await Promise.all(
      live().map(async (s) => {
        try {
          s.lastMetrics = await s.rpc!.call<FamilySnapshot[]>('metrics', null, RPC_TIMEOUT_MS);
        } catch {
          // a worker that does not answer in time shows its last snapshot
        }
        return { worker: String(s.id), families: s.lastMetrics };
      }),
    );
    return mergedRegistry(mergeSnapshots([...sources, ...snaps]));
  }

  async function adapters(): Promise<unknown> {
    const workers = await Promise.all(
      slots.map(async (s) => {
        const a = s.ready ? await s.rpc!.call<{ requests: number; adapters: unknown[] }>('adapters', null, RPC_TIMEOUT_MS).catch((e: Error) => ({ error: e.message, requests: null, adapters: [] })) : { requests: null, adapters: [] };
        return { worker: s.id, pid: s.worker?.process.pid ?? null, up: s.ready, ...a };
      }),
    );
    return { workers };
  }

  async function ready(): Promise<boolean> {
    if (closing || slots.some((s) => !s.ready)) return false;
    const answers = await Promise.all(live().map((s) => s.rpc!.call<boolean>('ready', null, RPC_TIMEOUT_MS).catch(() => false)));
    return answers.every(Boolean);
  }

  let admin: AdminServer | null = null;
  async function close(): Promise<void> {
    if (closing) return;
    closing = true;
    for (const s of slots) if (s.restartTimer) clearTimeout(s.restartTimer);
    const running = slots.map((s) => s.worker).filter((w): w is Worker => w !== null);
    await Promise.all(
      running.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            const kill = setTimeout(() => w.process.kill('SIGKILL'), drainMs + 5_000);
            w.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            if (w.isConnected()) w.send({ wm: 'req', id: 0, op: 'shutdown' });
            else w.process.kill('SIGTERM');
          }),
      ),
    );
    await admin?.close();
    leases.close();
  }

  try {
    // Port 0: pick the port here, so a replacement worker listens on the same one (in node:cluster
    // a worker's listen(0) gets the port of the handle keyed "0", which is gone once no worker holds it).
    if (port === 0) port = await freePort(config.listen?.address ?? '127.0.0.1');
    await serial(() => Promise.all(slots.map((s) => fork(s))));
    if (config.admin || opts.adminPort !== undefined) {
      admin = await startAdminFor(
        { ready, metrics, adapters, config: () => config },
        { address: config.admin?.address ?? '127.0.0.1', port: opts.adminPort ?? config.admin?.port ?? 9901, allowRemote: config.admin?.allowRemote ?? false, allowRemoteReload: config.admin?.allowRemoteReload ?? false },
        (why) => reload(why),
      );
    }
  } catch (err) {
    await close();
    throw err;
  }
  if (config.reload?.watch) {
    const { watchFiles } = await import('../reload/watch.js');
    const watcher = watchFiles(opts.configFile ?? null, config, opts.baseDir, config.reload.debounceMs ?? 300, (file) => {
      reload(`file change: ${file}`)
        .then(() => watcher.update(config))
        .catch(() => {}); // logged
    });
    const origClose = close;
    return build(() => {
      watcher.close();
      return origClose();
    });
  }
  return build(close);

  function build(closeFn: () => Promise<void>): RunningPrimary {
    logger.log(LogLevel.Info, 'primary', `${opts.workers} workers listening on ${config.listen?.address ?? '127.0.0.1'}:${port}${admin ? `, admin on ${admin.address}:${admin.port}` : ''}`);
    return {
      port,
      adminPort: admin?.port ?? null,
      pids: () => Object.fromEntries(slots.filter((s) => s.worker !== null && s.ready).map((s) => [s.id, s.worker!.process.pid!])),
      reload,
      close: closeFn,
    };
  }
}

function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
