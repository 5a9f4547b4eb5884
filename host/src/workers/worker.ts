// One worker process of a multi-worker proxy (node:cluster). It runs the ordinary
// proxy (startProxy) with its own adapter VMs on the port the primary shares out,
// without an admin port or file watch (the primary owns both), and answers the
// primary's questions over IPC: metrics, adapters, readiness, the two reload
// phases, and shutdown. Its local quota limits lease from the primary (lease-client.ts).

import { LogLevel } from '../abi/constants.js';
import type { MixerConfig } from '../config/schema.js';
import type { PreparedReload } from '../reload/reloader.js';
import { startProxy, type RunningProxy } from '../proxy/proxy.js';
import { startWatchdog, type Watchdog } from '../watchdog.js';
import { PRIMARY_QUOTA_CLUSTER, PRIMARY_QUOTA_URL, setPrimaryChannel } from './lease-client.js';
import { Rpc } from './rpc.js';
import { workerView } from './worker-config.js';

export interface WorkerInit {
  id: number;
  workers: number;
  config: MixerConfig;
  baseDir: string;
  port: number;
  drainMs: number;
}

export function runWorker(): Promise<number> {
  const rpc = new Rpc((m) => process.send!(m));
  process.on('message', (m) => rpc.receive(m));
  setPrimaryChannel(rpc);
  let proxy: RunningProxy | null = null;
  let init: WorkerInit | null = null;
  let prepared: PreparedReload | null = null;
  let closing: Promise<void> | null = null;
  let watchdog: Watchdog | null = null;

  return new Promise<number>((resolve) => {
    const shutdown = (why: string) => {
      if (closing !== null) return closing;
      closing = (async () => {
        proxy?.host.logger.log(LogLevel.Info, 'proxy', `worker ${init?.id ?? '?'} draining (${why})`);
        prepared?.abort();
        await proxy?.close();
        if (proxy !== null) await import('../oop/remote-clients.js').then((m) => m.closeRemote(proxy!.host)).catch(() => {});
        await import('../quota/callout-scheme.js').then((m) => m.closeLeaseClients()).catch(() => {});
        await watchdog?.stop();
        rpc.close('worker shut down');
        resolve(0);
      })();
      return closing;
    };

    rpc.handle('init', async (arg) => {
      init = arg as WorkerInit;
      const { config, baseDir, port, id, workers } = init;
      // Each worker has its own watchdog: a worker whose event loop is blocked ends, and the primary replaces it.
      if (config.watchdog?.enabled !== false) watchdog = startWatchdog({ hardLimitMs: config.watchdog?.hardLimitMs });
      proxy = await startProxy(workerView(config, id, workers), {
        baseDir,
        port,
        drainMs: init.drainMs,
        workerQuota: workers > 1 ? { cluster: PRIMARY_QUOTA_CLUSTER, url: PRIMARY_QUOTA_URL } : undefined,
      });
      return { port: proxy.port, pid: process.pid };
    });
    rpc.handle('metrics', () => proxy?.host.metrics.collect() ?? []);
    rpc.handle('adapters', () => ({ requests: proxy?.host.metrics.value('wasm_mixer_host_streams_total') ?? 0, adapters: proxy?.host.describe() ?? [] }));
    rpc.handle('ready', () => proxy !== null && closing === null && proxy.host.plugins.every((p) => p.adapter.healthy));
    rpc.handle('prepare', async (arg) => {
      const { config, reason } = arg as { config: MixerConfig; reason: string };
      prepared?.abort();
      prepared = null;
      prepared = await proxy!.prepareReload(workerView(config, init!.id, init!.workers), reason);
      return true;
    });
    rpc.handle('commit', () => {
      const p = prepared;
      prepared = null;
      if (p === null) throw new Error('no prepared reload to commit');
      return p.commit();
    });
    rpc.handle('abort', () => {
      prepared?.abort();
      prepared = null;
      return true;
    });
    rpc.handle('shutdown', () => {
      void shutdown('primary asked');
      return true;
    });
    // The primary went away: nobody will route connections here any more.
    process.on('disconnect', () => void shutdown('primary gone'));
    // A signal to the whole process group (Ctrl-C) reaches the workers too: drain, as the primary does.
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGINT', () => void shutdown('SIGINT'));
    process.on('SIGHUP', () => {}); // reload is the primary's job
    // A cluster worker reads its IPC channel from the start, and messages that arrive before
    // this (ESM) module has attached its listener are lost: the primary waits for this hello.
    process.send!({ wm: 'hello' });
  });
}
