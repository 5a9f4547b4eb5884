// Each host's connection to the adapter server, apart from remote-adapter.ts so that closing a
// proxy that never ran a remote adapter does not import the gRPC stack (~100 ms at shutdown).

import type { RemoteClient } from './client.js';

/** Filled by remote-adapter.ts when a host's first remote adapter is created. */
export const clients = new WeakMap<object, RemoteClient>();

/** The remote client of a host (created by its first remote adapter). */
export function remoteClientOf(host: object): RemoteClient | undefined {
  return clients.get(host);
}

/** Sends queued reports of a host's remote adapters and waits for them. */
export async function flushRemote(host: object): Promise<void> {
  await clients.get(host)?.flush();
}

/** Flushes and closes a host's connection to the adapter server (after the host is closed). */
export async function closeRemote(host: object): Promise<void> {
  await clients.get(host)?.close();
}
