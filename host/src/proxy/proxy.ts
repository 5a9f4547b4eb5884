// The HTTP/1.1 reverse proxy, put together: the host and its adapters, the
// proxy port (server.ts), routing (routes.ts), each request (request.ts) and its
// forwarding (upstream.ts), reload on a signal, file change or admin request, the
// admin port (admin.ts), and a graceful close (drain.ts).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LogLevel } from '../abi/constants.js';
import type { MixerConfig } from '../config/schema.js';
import { loadConfigFile } from '../config/load.js';
import { WasmHost, type HostOptions } from '../host.js';
import { prepareReload, reloadHost, type PreparedReload, type ReloadResult } from '../reload/reloader.js';
import { watchFiles, type FileWatcher } from '../reload/watch.js';
import { startAdmin } from './admin.js';
import { Drain } from './drain.js';
import { listenOn } from './listen.js';
import { handleRequest, type ProxyContext } from './request.js';
import { responseCounter } from './response-metrics.js';
import { RouteTable } from './routes.js';
import { createProxyServer } from './server.js';
import { Upstream } from './upstream.js';
import { flushBatchedPhases } from './batched-phases.js';

export { DEFAULT_SERVER_LIMITS } from './server.js';

export interface ProxyOptions extends HostOptions {
  /** Override the listen port (0 picks a free one). */
  port?: number;
  adminPort?: number;
  /** How long shutdown waits for in-flight requests. */
  drainMs?: number;
  /** The config file that reload (SIGHUP, admin POST /reload, file watch) re-reads; without it reload re-reads the modules only. */
  configFile?: string;
  /** Applied to the config file each time it is (re)read: the command line's overrides (--port, --to, …). */
  configOverride?: (config: MixerConfig) => MixerConfig;
}

export interface RunningProxy {
  readonly host: WasmHost;
  readonly port: number;
  readonly adminPort: number | null;
  readonly server: http.Server;
  /** Stops accepting, drains in-flight requests (up to drainMs), then closes everything. */
  close(): Promise<void>;
  /**
   * Reloads adapters (and routes) from `config`, else from the config file, else
   * re-reads the current modules. Requests in flight finish on the old VMs.
   * Rejects with RELOAD_FAILED, and then the old config keeps serving.
   */
  reload(opts?: { config?: MixerConfig; reason?: string }): Promise<ReloadResult>;
  /** Two-phase reload for a multi-worker proxy (host/src/workers): new VMs ready, not yet serving; commit() swaps adapters and routes. */
  prepareReload(config: MixerConfig, reason: string): Promise<PreparedReload>;
}

export async function startProxy(config: MixerConfig, options: ProxyOptions = {}): Promise<RunningProxy> {
  const host = await WasmHost.create(config, options);
  const routes = new RouteTable(config);
  const upstream = new Upstream(config);
  const responses = responseCounter(host);
  const drain = new Drain();
  const ctx: ProxyContext = { host, routes, upstream, responses };
  const server = createProxyServer(host, config, drain, (req, res) => handleRequest(ctx, req, res), responses);

  const listenAddr = config.listen?.address ?? '127.0.0.1';
  await listenOn(server, options.port ?? config.listen?.port ?? 8080, listenAddr, 'the proxy port', 'choose another port with --port N (listen.port in the config)').catch(async (err) => {
    await upstream.close();
    await host.close();
    throw err;
  });
  const port = (server.address() as AddressInfo).port;

  let watcher: FileWatcher | null = null;
  const reload = async (opts: { config?: MixerConfig; reason?: string } = {}): Promise<ReloadResult> => {
    const file = options.configFile;
    const override = options.configOverride ?? ((c: MixerConfig) => c);
    const source = opts.config ?? (file !== undefined ? async () => override((await loadConfigFile(file)).config) : host.config);
    const result = await reloadHost(host, source, { reason: opts.reason });
    routes.set(host.config);
    upstream.retain(routes.origins());
    watcher?.update(host.config);
    return result;
  };
  if (config.reload?.watch) {
    watcher = watchFiles(options.configFile ?? null, config, options.baseDir ?? process.cwd(), config.reload.debounceMs ?? 300, (file) => {
      reload({ reason: `file change: ${file}` }).catch(() => {}); // logged by the reloader
    });
  }
  const admin = config.admin || options.adminPort !== undefined
    ? await startAdmin(
        host,
        { address: config.admin?.address ?? '127.0.0.1', port: options.adminPort ?? config.admin?.port ?? 9901, allowRemote: config.admin?.allowRemote ?? false, allowRemoteReload: config.admin?.allowRemoteReload ?? false },
        () => !drain.active,
        (reason) => reload({ reason }),
      ).catch(async (err) => {
        // e.g. ADMIN_FORBIDDEN, EADDRINUSE: do not leave the proxy port and the VMs running.
        watcher?.close();
        server.close();
        await upstream.close();
        await host.close();
        throw err;
      })
    : null;
  host.logger.log(LogLevel.Info, 'proxy', `listening on ${listenAddr}:${port}${admin ? `, admin on ${admin.address}:${admin.port}` : ''}; ${host.plugins.length} adapter(s): ${host.plugins.map((p) => p.config.name).join(', ') || 'none'}`);

  return {
    host,
    port,
    adminPort: admin?.port ?? null,
    server,
    reload,
    async prepareReload(next, reason) {
      const p = await prepareReload(host, next, { reason });
      return {
        abort: () => p.abort(),
        commit: () => {
          const r = p.commit();
          routes.set(host.config);
          upstream.retain(routes.origins());
          return r;
        },
      };
    },
    async close() {
      drain.start();
      watcher?.close();
      server.close();
      server.closeIdleConnections();
      await drain.wait(options.drainMs ?? 10_000);
      server.closeAllConnections();
      await admin?.close();
      await upstream.close();
      flushBatchedPhases(); // phases queued for this turn run on the VMs before they close
      await host.close(); // flushes access logs, last OTLP export
    },
  };
}
