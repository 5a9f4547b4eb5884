// Hot reload of adapters without dropping requests.
//
//   1. Build: every plugin whose module bytes or configuration changed gets a
//      new VM, started and configured (proxy_on_vm_start, proxy_on_configure)
//      before anything else happens. Unchanged plugins keep their running VM
//      (and its state: counters, caches).
//   2. Validate: if any new VM fails to load, start or configure, the reload is
//      rejected as a whole with RELOAD_FAILED (the cause's code, adapter, file
//      and field are in the message) and the new VMs are thrown away: the old
//      ones never stopped serving.
//   3. Swap: one synchronous assignment of the plugin list, so every request
//      that starts after it sees the new chain, and none sees a mix.
//   4. Drain: requests in flight keep the chain they started with (HostStream
//      holds its entries). A replaced VM is stopped once its last request
//      finishes, or after reload.drainTimeoutMs.
//
// Reloads are serialised: a reload requested while one runs waits for it.

import { createHash } from 'node:crypto';
import { LogLevel } from '../abi/constants.js';
import type { MixerConfig, PluginConfig } from '../config/schema.js';
import { describeError, HostError, isHostError } from '../errors.js';
import { orderPlugins, type LoadedPlugin, type WasmHost } from '../host.js';
import type { Adapter } from '../chain/adapter.js';
import { readModuleBytes } from '../vm/module-source.js';

export interface ReloadResult {
  /** Reload counter for this host (1 for the first reload). */
  readonly generation: number;
  /** Plugins with a new VM (added or changed). */
  readonly loaded: string[];
  /** Plugins whose VM was kept (module and config unchanged). */
  readonly kept: string[];
  /** Plugins no longer in the config. */
  readonly removed: string[];
  readonly ms: number;
  readonly reason: string;
}

export interface ReloadOptions {
  /** Why (for the log): "SIGHUP", "admin", "file change: x.wasm". */
  reason?: string;
  /** How long replaced VMs may finish in-flight requests (default config reload.drainTimeoutMs, else 30 s). */
  drainTimeoutMs?: number;
}

const queues = new WeakMap<WasmHost, Promise<unknown>>();
const generations = new WeakMap<WasmHost, number>();

/** Reloads the host's adapters to match `config`. Rejects with RELOAD_FAILED; the old adapters keep serving then. */
export function reloadHost(host: WasmHost, config: MixerConfig | (() => Promise<MixerConfig>), opts: ReloadOptions = {}): Promise<ReloadResult> {
  const prev = queues.get(host) ?? Promise.resolve();
  const run = prev.catch(() => undefined).then(() => doReload(host, config, opts));
  queues.set(host, run);
  return run;
}

/** A reload whose new VMs are built and configured but not in service yet (steps 1-2). */
export interface PreparedReload {
  /** Steps 3-4: the swap, synchronous; returns what changed. */
  commit(): ReloadResult;
  /** Throws the new VMs away; the running adapters were never touched. */
  abort(): void;
}

/**
 * Steps 1-2 only, for a reload that must succeed everywhere or nowhere: the primary of
 * a multi-worker proxy (host/src/workers) prepares it in every worker, then commits it
 * in all of them or aborts it in all of them. Rejects with RELOAD_FAILED.
 */
export function prepareReload(host: WasmHost, config: MixerConfig, opts: ReloadOptions = {}): Promise<PreparedReload> {
  return prepare(host, config, opts);
}

async function doReload(host: WasmHost, source: MixerConfig | (() => Promise<MixerConfig>), opts: ReloadOptions): Promise<ReloadResult> {
  return (await prepare(host, source, opts)).commit();
}

async function prepare(host: WasmHost, source: MixerConfig | (() => Promise<MixerConfig>), opts: ReloadOptions): Promise<PreparedReload> {
  const t0 = performance.now();
  const reason = opts.reason ?? 'requested';
  const old = new Map(host.plugins.map((p) => [p.config.name, p]));
  const next: LoadedPlugin[] = [];
  const created: LoadedPlugin[] = [];
  const loaded: string[] = [];
  const kept: string[] = [];
  const count = (result: string) => host.metrics.counter('wasm_mixer_reloads_total', 'Adapter reloads, by result (ok, failed).', { result })();
  let config: MixerConfig;
  let ordered: PluginConfig[];
  try {
    config = typeof source === 'function' ? await source() : source;
    ordered = orderPlugins(config.plugins ?? []);
    for (const p of ordered) {
      const prev = old.get(p.name);
      if (prev !== undefined && (await fingerprint(host, p, config)) === fingerprintOf(prev, host.config)) {
        next.push(prev);
        kept.push(p.name);
        continue;
      }
      const lp = await host.loadPlugin(p, config);
      created.push(lp);
      next.push(lp);
      loaded.push(p.name);
    }
  } catch (err) {
    for (const lp of created) lp.adapter.stop();
    count('failed');
    const cause = isHostError(err) ? err : null;
    const e = new HostError(
      'RELOAD_FAILED',
      `reload (${reason}) rejected, the running adapters keep serving: ${describeError(err)}`,
      { ...(cause?.detail ?? {}), cause: cause?.code ?? 'INTERNAL' },
      { cause: err },
    );
    host.logger.log(LogLevel.Error, 'host', e.message, { code: 'RELOAD_FAILED', cause: cause?.code });
    throw e;
  }
  return {
    abort: () => {
      for (const lp of created) lp.adapter.stop();
      count('failed');
    },
    commit: () => swap(host, config, ordered, next, loaded, kept, t0, reason, opts),
  };
}

function swap(host: WasmHost, config: MixerConfig, ordered: PluginConfig[], next: LoadedPlugin[], loaded: string[], kept: string[], t0: number, reason: string, opts: ReloadOptions): ReloadResult {
  const count = (result: string) => host.metrics.counter('wasm_mixer_reloads_total', 'Adapter reloads, by result (ok, failed).', { result })();
  // The swap: synchronous, so no request sees a half-updated chain.
  const retired = host.plugins.filter((p) => !next.includes(p));
  host.plugins.splice(0, host.plugins.length, ...next);
  host.config = config;
  host.scrubber.setConfig(config);
  const generation = (generations.get(host) ?? 0) + 1;
  generations.set(host, generation);
  const drainMs = opts.drainTimeoutMs ?? config.reload?.drainTimeoutMs ?? 30_000;
  for (const p of retired) drain(host, p.adapter, drainMs);
  const removed = retired.filter((p) => !ordered.some((q) => q.name === p.config.name)).map((p) => p.config.name);
  const ms = performance.now() - t0;
  count('ok');
  host.logger.log(
    LogLevel.Info,
    'host',
    `reload #${generation} (${reason}) applied in ${ms.toFixed(1)} ms: new VMs for [${loaded.join(', ')}], kept [${kept.join(', ')}], removed [${removed.join(', ')}]; replaced VMs finish their in-flight requests`,
    { code: 'RELOADED' },
  );
  return { generation, loaded, kept, removed, ms, reason };
}

/** Stops a replaced VM when its last in-flight request is done (or at the deadline). */
function drain(host: WasmHost, vm: Adapter, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  const check = () => {
    if (vm.liveStreams === 0 || Date.now() >= deadline) {
      if (vm.liveStreams > 0) host.logger.log(LogLevel.Warn, vm.name, `replaced VM stopped with ${vm.liveStreams} request(s) still in flight after ${timeoutMs} ms (reload.drainTimeoutMs)`, { code: 'RELOAD_DRAIN_TIMEOUT' });
      vm.stop();
      return;
    }
    setTimeout(check, 50).unref();
  };
  check();
}

/** What decides whether a plugin needs a new VM: its config, its granted clusters and its module's bytes. */
async function fingerprint(host: WasmHost, p: PluginConfig, config: MixerConfig): Promise<string> {
  let sha: string;
  const pre = host.options.modules?.[p.url];
  if (pre instanceof Uint8Array) sha = createHash('sha256').update(pre).digest('hex');
  else if (pre !== undefined) sha = pre.sha256;
  else {
    const src = await readModuleBytes(p.url, p.sha256, { baseDir: host.options.baseDir ?? process.cwd(), cacheDir: config.moduleCache?.dir, fetchTimeoutMs: config.moduleCache?.fetchTimeoutMs, plugin: p.name });
    sha = createHash('sha256').update(src.bytes).digest('hex');
  }
  return `${sha}\0${configKey(p, config)}`;
}

function fingerprintOf(lp: LoadedPlugin, config: MixerConfig): string {
  return `${lp.module.sha256}\0${configKey(lp.config, config)}`;
}

function configKey(p: PluginConfig, config: MixerConfig): string {
  const clusters = (p.clusters ?? []).map((c) => [c, config.clusters?.[c]?.url ?? null]);
  return stableJson({ p, clusters, logLevel: config.logLevel ?? null });
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
