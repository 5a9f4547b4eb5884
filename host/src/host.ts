// WasmHost: the embeddable core. Loads adapters from config, keeps one VM per
// adapter, and builds the ordered chain that runs for each request.

import { LogLevel } from './abi/constants.js';
import type { HeaderPair } from './abi/pairs.js';
import type { Adapter } from './chain/adapter.js';
import { DEFAULT_MAX_BUFFERED_BODY_BYTES, HostStream, type ChainEntry } from './chain/chain.js';
import type { MixerConfig, PathMatch, Phase, PluginConfig, PluginMatch } from './config/schema.js';
import { describeError, HostError } from './errors.js';
import { createLogger, parseLogLevel, type HostLogger } from './log/logger.js';
import { rateLimitedLogger, type RateLimitedLogger } from './log/rate-limit.js';
import { MetricsRegistry } from './metrics/registry.js';
import type { AccessLogSink } from './log/access-log.js';
import { Telemetry } from './telemetry/index.js';
import { loadOtlp, usesOtlp, type Otlp } from './telemetry/otlp.js';
import { isRemotePlugin } from './config/remote.js';
import type { HttpCallTransport } from './transport/http-call.js';
// Call-out schemes beyond http(s):// register themselves with transport/http-call.ts.
import './quota/callout-scheme.js';
import './workers/callout-scheme.js';
import { DEFAULT_FUEL_PER_CALLBACK, PluginVm, START_FUEL_FACTOR, type GuestMemoryFactory } from './plugin/plugin-vm.js';
import { scrubbingLogger, SecretScrubber } from './security/redact.js';
import { SharedStore } from './shared/shared-store.js';
import { compileModuleAsync, type CompiledModule } from './vm/module.js';
import { localModulePath, readLocalModuleSync, readModuleBytes } from './vm/module-source.js';
import { ScratchReader, warmReader } from './vm/scratch-read.js';
import { instrumentedCacheFor } from './vm/instrumented-cache.js';
import { resolve } from 'node:path';
import { MIB } from './limits.js';
import { HttpStream, type StreamInfo } from './stream/http-stream.js';

const PHASE_ORDER: Record<Phase, number> = { AUTHN: 0, AUTHZ: 1, STATS: 2, UNSPECIFIED_PHASE: 3 };

export interface HostOptions {
  /** Folder that relative plugin urls are resolved against. */
  baseDir?: string;
  logger?: HostLogger;
  metrics?: MetricsRegistry;
  shared?: SharedStore;
  /** Answers proxy_http_call; the default makes real HTTP requests to the configured clusters. */
  httpTransport?: HttpCallTransport;
  /** Pre-loaded modules by plugin url, e.g. bytes compiled in a test. */
  modules?: Record<string, Uint8Array | CompiledModule>;
  /** Access-log sinks to use instead of the configured ones (accessLog.sinks). */
  accessLogSinks?: AccessLogSink[];
  /** In a worker of a multi-worker proxy: a built-in cluster (name → url) every plugin may call, for local quota leases (host/src/workers). */
  workerQuota?: { cluster: string; url: string };
  /** Makes each in-process VM's GuestMemory (the adapter server observes the strings ABI calls read). */
  guestMemory?: GuestMemoryFactory;
}

/** Plugins in chain order: by phase (AUTHN, AUTHZ, STATS, unspecified), then priority (high first), then config order. */
export function orderPlugins(plugins: readonly PluginConfig[]): PluginConfig[] {
  return [...plugins]
    .map((p, i) => ({ p, i }))
    .sort((a, b) => PHASE_ORDER[a.p.phase ?? 'UNSPECIFIED_PHASE'] - PHASE_ORDER[b.p.phase ?? 'UNSPECIFIED_PHASE'] || (b.p.priority ?? 0) - (a.p.priority ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}

export interface LoadedPlugin {
  readonly config: PluginConfig;
  /** The plugin's adapter: an in-process PluginVm, or a RemoteAdapter out of process. */
  readonly adapter: Adapter;
  /** @deprecated The same object as `adapter` (its former name). */
  readonly vm: Adapter;
  readonly entry: ChainEntry;
  readonly module: CompiledModule;
  readonly loadMs: number;
}

/** What the embedding proxy knows about a request when it arrives. */
export interface StreamInit {
  method: string;
  /** Path with query, as on the request line. */
  path: string;
  authority: string;
  scheme?: string;
  /** Lower-case names, without pseudo-headers. */
  headers: HeaderPair[];
  /** Route name, for plugin matching. */
  route?: string;
  /** The route's cap on body bytes any adapter may buffer (routes[].maxBufferedBodyBytes). */
  maxBufferedBodyBytes?: number;
  info?: Partial<StreamInfo>;
}

export class WasmHost {
  readonly plugins: LoadedPlugin[] = [];
  readonly metrics: MetricsRegistry;
  readonly logger: HostLogger;
  readonly shared: SharedStore;
  /** Access-log sinks, OTLP export, telemetry foreign functions, adapter call latency. */
  readonly telemetry: Telemetry;
  private readonly countRequests: (d?: number) => void;
  /** Masks secrets from the config (and credentials) in log records; learns a reloaded config's secrets. */
  readonly scrubber: SecretScrubber;
  /** Repeated warnings: one per key per interval, then a count of the suppressed ones (config logRateLimit). */
  private readonly rateLimiter: RateLimitedLogger;

  private constructor(
    /** The config in force; replaced by a successful reload (host/src/reload). */
    public config: MixerConfig,
    readonly options: HostOptions,
    otlp: Otlp | undefined,
  ) {
    this.scrubber = new SecretScrubber(config);
    this.metrics = options.metrics ?? new MetricsRegistry({ buckets: config.metrics?.histogramBuckets, maxSeriesPerMetric: config.metrics?.maxSeriesPerMetric });
    // Every host log line goes through the scrubber: config secrets and credential-shaped text never reach a sink.
    // Rate limiting outside the scrubber, so its "N similar lines suppressed, like: …" lines are scrubbed too.
    this.rateLimiter = rateLimitedLogger(scrubbingLogger(options.logger ?? createLogger(parseLogLevel(config.logLevel ?? 'info')), this.scrubber), config.logRateLimit);
    this.logger = this.rateLimiter;
    this.telemetry = new Telemetry(config, this.metrics, this.logger, { baseDir: options.baseDir, accessLogSinks: options.accessLogSinks, otlp });
    this.shared = options.shared ?? new SharedStore();
    this.countRequests = this.metrics.counter('wasm_mixer_host_streams_total', 'Requests run through the adapter chain.');
    this.metrics.addCollector(() => this.collectHostMemory());
  }

  /** Loads, validates, starts and configures every plugin in the config. Throws a HostError naming the adapter on failure. */
  /** Folder that relative paths in the config are resolved against. */
  get baseDir(): string | undefined {
    return this.options.baseDir;
  }

  static async create(config: MixerConfig, options: HostOptions = {}): Promise<WasmHost> {
    const ordered = orderPlugins(config.plugins ?? []);
    // Every local module is read (through two reused buffers: vm/scratch-read.ts) and its
    // compile started, in chain order, before the host is built: WebAssembly.compile runs on
    // V8's background threads while the constructor runs and the ones before it start and configure.
    const readers = moduleReaders();
    const compiling = ordered.map((p) => compilePlugin(p, config, options, readers));
    // After a failure the rest are not awaited: their rejections are not unhandled.
    for (const c of compiling) c.catch(() => {});
    const host = new WasmHost(config, options, usesOtlp(config) ? await loadOtlp(config) : undefined);
    try {
      for (let i = 0; i < ordered.length; i++) host.plugins.push(await host.startPlugin(ordered[i]!, await compiling[i]!, config));
    } catch (err) {
      host.close();
      throw err;
    }
    return host;
  }

  /** Loads, starts and configures one plugin (also used by reload, with the new config). */
  async loadPlugin(p: PluginConfig, config: MixerConfig = this.config): Promise<LoadedPlugin> {
    return this.startPlugin(p, await compilePlugin(p, config, this.options, moduleReaders()), config);
  }

  /** Starts and configures a plugin from its compiled module (or connects it to the adapter server). */
  private async startPlugin(p: PluginConfig, { compiled, ms }: Compiled, config: MixerConfig): Promise<LoadedPlugin> {
    // loadMs: from the start of its read to the end of its configure, less the wait for the plugins
    // before it to start (its read and compile overlap theirs, so the figures do not add up to the total).
    const t0 = performance.now() - ms;
    if (compiled.unimplementedImports.length > 0) {
      this.logger.log(LogLevel.Warn, p.name, `module imports functions this host does not implement yet; calls return UNIMPLEMENTED: ${compiled.unimplementedImports.join(', ')}`, { code: 'ABI_UNIMPLEMENTED' });
    }
    if (isRemotePlugin(config, p)) {
      // Out of process (docs/out-of-process.md): a RemoteAdapter stands in for the VM (the same Adapter contract).
      const { createRemoteAdapter } = await import('./oop/remote-adapter.js');
      const adapter = createRemoteAdapter(this, p, compiled, config);
      this.logger.log(LogLevel.Info, p.name, `adapter runs out of process, in the adapter server at ${adapter.address}`);
      const entry: ChainEntry = { name: p.name, adapter, failStrategy: p.failStrategy ?? 'FAIL_CLOSE', pauseTimeoutMs: p.timeoutMs ?? 10_000, maxBufferedBodyBytes: p.limits?.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES };
      return { config: p, adapter, vm: adapter, entry, module: compiled, loadMs: performance.now() - t0 };
    }
    // HTTP call-outs only to the clusters the plugin lists (none by default).
    const clusters: Record<string, string> = {};
    for (const c of p.clusters ?? []) if (config.clusters?.[c]) clusters[c] = config.clusters[c].url;
    const wq = this.options.workerQuota;
    // Per VM id, as shared data is: plugins with different vm ids never share (or touch) each other's counters.
    if (wq !== undefined) clusters[wq.cluster] = `${wq.url}/${encodeURIComponent(p.vmConfig?.vmId ?? p.name)}`;
    const vm = new PluginVm(compiled, {
      name: p.name,
      rootId: p.rootId ?? '',
      vmId: p.vmConfig?.vmId ?? p.name,
      pluginConfig: toBytes(p.pluginConfig),
      vmConfig: toBytes(p.vmConfig?.configuration),
      env: p.vmConfig?.env ?? {},
      logLevel: parseLogLevel(p.logLevel ?? config.logLevel ?? 'info'),
      clusters,
      logger: this.logger,
      metrics: this.metrics,
      shared: this.shared,
      httpTransport: this.options.httpTransport,
      fuelPerCallback: p.limits?.fuelPerCallback,
      restart: p.restart,
      capabilities: p.capabilities,
      sharedLimits: {
        maxBytes: p.limits?.maxSharedDataMb !== undefined ? p.limits.maxSharedDataMb * MIB : undefined,
        maxQueueBytes: p.limits?.maxQueueMb !== undefined ? p.limits.maxQueueMb * MIB : undefined,
      },
      foreign: this.telemetry.foreign,
      onGuestCall: this.telemetry.callObserver(p.name),
      workerQuotaCluster: wq?.cluster,
      guestMemory: this.options.guestMemory,
    });
    try {
      vm.start();
    } catch (err) {
      vm.stop();
      // The adapter's own error line is quoted in the message: scrub config secrets out of it.
      if (err instanceof Error) err.message = this.scrubber.scrub(err.message);
      throw err;
    }
    const loadMs = performance.now() - t0;
    this.logger.log(LogLevel.Info, p.name, `adapter loaded from ${compiled.source} (ABI ${compiled.abiVersion}, ${compiled.bytes} bytes, ${loadMs.toFixed(1)} ms)`);
    this.metrics.counter('wasm_mixer_vm_restarts_total', 'VM restarts after an adapter crash.', { adapter: p.name }); // exposed at 0 from the start
    const entry: ChainEntry = { name: p.name, adapter: vm, failStrategy: p.failStrategy ?? 'FAIL_CLOSE', pauseTimeoutMs: p.timeoutMs ?? 10_000, maxBufferedBodyBytes: p.limits?.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES };
    return { config: p, adapter: vm, vm, entry, module: compiled, loadMs };
  }

  /** Starts a request through the plugins that match it. Call `finish()` on the result when the response is done. */
  newStream(init: StreamInit): HostStream {
    this.countRequests();
    const headers: HeaderPair[] = [
      [':method', init.method],
      [':path', init.path],
      [':authority', init.authority],
      [':scheme', init.scheme ?? 'http'],
    ];
    for (let i = 0; i < init.headers.length; i++) headers.push(init.headers[i]!);
    const info = init.info ?? {};
    info.routeName = init.route ?? '';
    const stream = new HttpStream(headers, info);
    return new HostStream(stream, this.chainFor(init), init.maxBufferedBodyBytes);
  }

  /**
   * The previous chain, reused while the plugin list is unchanged: the whole list when no
   * plugin has a `match`, else one entries array per set of matching plugins, so each
   * chain keeps the shape HostStream works out once per chain (chain/chain.ts).
   */
  private lastChain: { plugins: LoadedPlugin[]; entries: ChainEntry[]; unconditional: boolean; byMatch: Map<number, ChainEntry[]> } | null = null;

  /** The adapters that apply to a request, in chain order. */
  private chainFor(init: StreamInit): ChainEntry[] {
    const plugins = this.plugins;
    let c = this.lastChain;
    if (c === null || c.plugins.length !== plugins.length || c.plugins.some((p, i) => p !== plugins[i])) {
      c = this.lastChain = { plugins: plugins.slice(), entries: plugins.map((p) => p.entry), unconditional: plugins.every((p) => !p.config.match?.length), byMatch: new Map() };
    }
    if (c.unconditional) return c.entries;
    const host = stripPort(init.authority);
    if (plugins.length > 30) {
      const entries: ChainEntry[] = [];
      for (const p of plugins) if (matches(p.config.match, init.route, host, init.path)) entries.push(p.entry);
      return entries;
    }
    let mask = 0;
    for (let i = 0; i < plugins.length; i++) if (matches(plugins[i]!.config.match, init.route, host, init.path)) mask |= 1 << i;
    let entries = c.byMatch.get(mask);
    if (entries === undefined) {
      entries = [];
      for (let i = 0; i < plugins.length; i++) if (mask & (1 << i)) entries.push(plugins[i]!.entry);
      c.byMatch.set(mask, entries);
    }
    return entries;
  }

  /** A snapshot for the admin endpoint. */
  describe(): Array<Record<string, unknown>> {
    return this.plugins.map((p) => {
      const a = p.adapter;
      const d = a.details();
      return {
        name: p.config.name,
        file: p.module.source,
        sha256: p.module.sha256,
        abi: p.module.abiVersion,
        phase: p.config.phase ?? 'UNSPECIFIED_PHASE',
        priority: p.config.priority ?? 0,
        failStrategy: p.entry.failStrategy,
        healthy: a.healthy,
        failure: a.failed,
        lastCrash: a.lastCrash,
        crashes: a.crashes,
        generation: a.generation,
        metered: p.module.metered,
        fuelPerCallback: p.config.limits?.fuelPerCallback ?? DEFAULT_FUEL_PER_CALLBACK,
        fuelHighWater: d.fuelHighWater,
        memoryLimitBytes: p.module.memoryPages?.maximum != null ? p.module.memoryPages.maximum * 65536 : null,
        capabilities: p.config.capabilities ?? 'all',
        clusters: p.config.clusters ?? [],
        memoryBytes: d.memoryBytes,
        maxTableElements: p.module.maxTableElements,
        // Host memory the adapter holds outside its linear memory, and its restart state (in process only).
        hostMemory: d.hostMemory,
        restart: d.restart,
        liveStreams: a.liveStreams,
        loadMs: Math.round(p.loadMs * 100) / 100,
        // Out of process: the adapter server's address (the VM fields above are then the server's business).
        remote: d.remote,
      };
    });
  }

  /** wasm_mixer_vm_host_memory_bytes{adapter,kind}: refreshed at every scrape. */
  private collectHostMemory(): void {
    for (const p of this.plugins) {
      const u = p.adapter.details().hostMemory;
      if (u === null) continue;
      const g = (kind: string, v: number) => this.metrics.gauge('wasm_mixer_vm_host_memory_bytes', 'Host memory an adapter VM holds outside its linear memory, by kind (shared_data, queues, callouts, log_buffer, total).', { adapter: p.config.name, kind })(v);
      g('shared_data', u.sharedDataBytes);
      g('queues', u.queueBytes);
      g('callouts', u.calloutBytes);
      g('log_buffer', u.logBufferBytes);
      g('total', u.totalBytes);
      this.metrics.gauge('wasm_mixer_vm_host_memory_limit_bytes', 'The most host memory an adapter VM may hold outside its linear memory under its bounds.', { adapter: p.config.name })(u.limitBytes);
    }
  }

  /** Stops every VM at once; the promise settles when access logs are flushed and the last OTLP export is done. */
  close(): Promise<void> {
    for (const p of this.plugins) p.adapter.stop();
    this.rateLimiter.flush();
    return this.telemetry.close();
  }
}

/** The buffers compilePlugin reads modules and instrumented-cache entries into, reused from one plugin to the next. */
interface ModuleReaders {
  module: ScratchReader;
  entry: ScratchReader;
}

/** The two readers: the config validator's, if it handed them back (vm/scratch-read.ts), else new ones. */
function moduleReaders(): ModuleReaders {
  return { module: warmReader(), entry: warmReader() };
}

/**
 * Reads (or takes from options.modules) and compiles a plugin's module; errors name the plugin.
 * A local module is read and its compile started before the first await (so the next plugin may reuse `readers`).
 */
async function compilePlugin(p: PluginConfig, config: MixerConfig, options: HostOptions, readers: ModuleReaders): Promise<Compiled> {
  const t0 = performance.now();
  const pre = options.modules?.[p.url];
  let compiled: CompiledModule;
  const fuel = p.limits?.fuelPerCallback;
  const limits = { metering: p.limits?.metering, maxMemoryMb: p.limits?.maxMemoryMb, maxTableElements: p.limits?.maxTableElements, startFuel: fuel === undefined ? undefined : fuel * START_FUEL_FACTOR };
  const baseDir = options.baseDir ?? process.cwd();
  const ic = config.moduleCache?.instrumented;
  const cache = instrumentedCacheFor(ic?.dir === undefined ? ic : { ...ic, dir: resolve(baseDir, ic.dir) });
  try {
    const local = pre === undefined ? localModulePath(p.url, baseDir, p.name) : null;
    if (pre instanceof Uint8Array) compiled = await compileModuleAsync(pre, p.url, p.sha256, limits, { cache });
    else if (pre !== undefined) compiled = pre;
    else if (local !== null) {
      const read = (reader: ScratchReader) => readLocalModuleSync(local.path, local.lookedUp, p.name, reader);
      compiled = await compileModuleAsync(read(readers.module), local.path, p.sha256, limits, { cache, entryReader: readers.entry, reread: () => read(new ScratchReader()) });
    } else {
      const src = await readModuleBytes(p.url, p.sha256, { baseDir, cacheDir: config.moduleCache?.dir, fetchTimeoutMs: config.moduleCache?.fetchTimeoutMs, plugin: p.name });
      compiled = await compileModuleAsync(src.bytes, src.source, p.sha256, limits, { cache });
    }
  } catch (err) {
    if (err instanceof HostError) throw new HostError(err.code, `plugin ${p.name}: ${err.message}`, { ...err.detail, adapter: p.name }, { cause: err });
    throw err;
  }
  return { compiled, ms: performance.now() - t0 };
}

/** A compiled module and how long reading and compiling it took. */
interface Compiled {
  compiled: CompiledModule;
  ms: number;
}

function toBytes(v: unknown): Uint8Array {
  if (v === undefined || v === null) return new Uint8Array(0);
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  return Buffer.from(JSON.stringify(v), 'utf8');
}

function stripPort(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(0, authority.indexOf(']') + 1);
  const c = authority.lastIndexOf(':');
  return (c < 0 ? authority : authority.slice(0, c)).toLowerCase();
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return pattern.toLowerCase() === host;
}

function pathMatches(m: PathMatch, path: string): boolean {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  if (m.exact !== undefined) return p === m.exact;
  return m.prefix !== undefined && p.startsWith(m.prefix);
}

function matches(match: PluginMatch[] | undefined, route: string | undefined, host: string, path: string): boolean {
  if (match === undefined || match.length === 0) return true;
  return match.some(
    (m) =>
      (m.routes === undefined || (route !== undefined && m.routes.includes(route))) &&
      (m.hosts === undefined || m.hosts.some((h) => hostMatches(h, host))) &&
      (m.paths === undefined || m.paths.some((pm) => pathMatches(pm, path))),
  );
}

export function describeLoadError(err: unknown): string {
  return describeError(err);
}
