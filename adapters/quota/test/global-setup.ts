// What the Redis Cluster and Sentinel tests share: the quota adapter, a temp folder and
// an upstream torn down with the test file, and a proxy process (the real CLI) whose one
// global fixed-window limit "api" leases through a Redis cluster.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { startDemoUpstream } from '../../../host/src/index.js';
import { projectAdapter } from '../../../test/oop/helpers.js';
import { startProxyProcess, type ProxyProcess } from './helpers.js';

export interface GlobalSetup {
  /** The quota adapter: wasm/quota.wasm from npm run build, else built once. */
  readonly wasm: string;
  readonly dir: string;
  readonly upstreamPort: number;
}

/** The adapter, a temp folder and a demo upstream, removed by `t`'s teardown. */
export async function globalSetup(t: Test, name: string): Promise<GlobalSetup> {
  const wasm = await projectAdapter('quota');
  const dir = await mkdtemp(join(tmpdir(), `${name}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const upstream = await startDemoUpstream(0);
  t.teardown(() => upstream.close());
  return { wasm, dir, upstreamPort: upstream.port };
}

export interface GlobalLimitProxy {
  /** The Redis URL of the cluster the leases go through. */
  redisUrl: string;
  domain: string;
  limit: number;
  lease: number;
  timeoutMs: number;
  /** Proxy processes behind one port (each holds leases of its own). */
  workers: number;
  /** The proxy process's name (its config file's name in the temp folder). */
  name: string;
}

/**
 * The real CLI with one global fixed-window limit "api" (a day's window) leased through
 * `redisUrl`; on_error closed, so a lease that fails while Redis fails over denies (503),
 * never admits. Stopped by `t`'s teardown.
 */
export async function startGlobalLimitProxy(t: Test, s: GlobalSetup, o: GlobalLimitProxy): Promise<ProxyProcess> {
  const proxy = await startProxyProcess(
    {
      workers: o.workers,
      listen: { address: '127.0.0.1', port: 0 },
      admin: { port: 0 },
      logLevel: 'error',
      routes: [{ name: 'default', upstream: `http://127.0.0.1:${s.upstreamPort}` }],
      clusters: { redis: { url: o.redisUrl } },
      plugins: [
        {
          name: 'quota',
          url: s.wasm,
          clusters: ['redis'],
          pluginConfig: {
            domain: o.domain,
            global: { cluster: 'redis', lease: o.lease, timeout_ms: o.timeoutMs, on_error: 'closed', down_for: '200ms' },
            limits: [{ name: 'api', algorithm: 'fixed_window', limit: o.limit, window: '1d', mode: 'global' }],
          },
        },
      ],
    },
    s.dir,
    o.name,
  );
  t.teardown(() => proxy.stop());
  return proxy;
}
