// Public API of the out-of-process mode. The gRPC stack is loaded only when a
// function here is called (embedders that stay in process never load grpc-js).

import type { MixerConfig } from '../config/schema.js';
import type { RunningServer, ServerOptions } from './server.js';

export type { RunningServer, ServerOptions } from './server.js';
export type { RemoteSettings, RemoteServerSettings, PluginRemoteSettings, CacheMode, ResolvedRemote, ResolvedPluginRemote } from '../config/remote.js';
export { resolveRemote, pluginRemote, isRemotePlugin, DEFAULT_REMOTE_ADDRESS } from '../config/remote.js';

/** Starts the adapter server (`wasm-mixer serve`) for a validated config. */
export async function startAdapterServer(config: MixerConfig, options?: ServerOptions): Promise<RunningServer> {
  const m = await import('./server.js');
  return m.startAdapterServer(config, options);
}

/** Sends the queued reports of a host's (or proxy's `host`) remote adapters and waits for them. */
export async function flushRemote(host: object): Promise<void> {
  const m = await import('./remote-clients.js');
  return m.flushRemote(host);
}

/** Flushes and closes a host's connection to the adapter server; call after closing the host or proxy. */
export async function closeRemote(host: object): Promise<void> {
  const m = await import('./remote-clients.js');
  return m.closeRemote(host);
}
