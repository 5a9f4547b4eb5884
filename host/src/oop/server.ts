// `wasm-mixer serve`: the adapter server. It loads the adapters from the same
// config file as the proxy, with the same host core, and serves over gRPC:
//   wasm_mixer.v1.Mixer                              Check / Report / Describe (the proxy in remote mode)
//   envoy.service.auth.v3.Authorization/Check        Envoy's ext_authz (envoy.ts)
//   envoy.service.ratelimit.v3.RateLimitService      Envoy's global rate limit (envoy.ts)
//   grpc.health.v1.Health                            standard health checks
// plus the admin port (/ready, /metrics, /adapters), and drains on shutdown.
// About 540 lines, one file: the four gRPC services share one loaded host, one reload
// path and one drain.

import { randomUUID } from 'node:crypto';
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { LogLevel } from '../abi/constants.js';
import type { HeaderPair } from '../abi/pairs.js';
import { HostStream } from '../chain/chain.js';
import type { MixerConfig } from '../config/schema.js';
import { describeError, HostError } from '../errors.js';
import { WasmHost, type HostOptions, type LoadedPlugin } from '../host.js';
import { createLogger, parseLogLevel, type HostLogger } from '../log/logger.js';
import { performHttpCall } from '../transport/http-call.js';
import type { HttpStream } from '../stream/http-stream.js';
import { startAdmin, type AdminServer } from '../proxy/admin.js';
import { applyReportBag, decodeBag, DecodeError, globalDictionary, newStreamFromBag, WordDecoder, type Bag } from './attributes.js';
import { configDigest, GLOBAL_WORDS_METADATA } from './client.js';
import { checkRemoteConfig, pluginRemote, resolveRemote, type ResolvedRemote } from '../config/remote.js';
import { EnvoyServices } from './envoy.js';
import { serverCredentials } from './tls.js';
import { Executor } from './executor.js';
import { HealthService, type ServingStatus } from './health.js';
import { encodeOutcome, encodeRefs, type Outcome } from './outcome.js';
import {
  grpcCodeName,
  INDEPENDENT_ENCODING,
  loadProtos,
  routeGrpcLogs,
  msToDuration,
  SERVICE_NAMES,
  serviceError,
  type PbCheckRequest,
  type PbCheckResponse,
  type PbDescribeResponse,
  type PbEffect,
  type PbQuotaResult,
  type PbReportRequest,
} from './protos.js';
import { HITS_ADDEND, observeGuestStrings, Tracker, trackingLogger, TrackingMetrics, TrackingSharedStore, trackingTransport, type Ref } from './tracker.js';

export const SERVER_VERSION = '1';
/** Filter state set while a quota allocation runs, so an adapter can tell it from a request. */
export const QUOTA_ALLOCATION_STATE = 'wasm_mixer.quota_allocation';
const MAX_ALLOCATION_RUNS = 1000;

export interface ServerOptions extends Omit<HostOptions, 'metrics' | 'shared'> {
  /** gRPC address to listen on (overrides remote.address); port 0 picks a free port. */
  listen?: string;
  /** Admin port (overrides remote.server.admin.port); null: no admin port. */
  adminPort?: number | null;
}

export interface RunningServer {
  readonly host: WasmHost;
  /** The address clients use, with the bound port. */
  readonly address: string;
  readonly port: number;
  readonly adminPort: number | null;
  readonly serverId: string;
  /** Server-side sessions waiting for their Report. */
  readonly sessions: number;
  /** Stops accepting, lets in-flight calls finish (up to drainMs), then stops. */
  close(drainMs?: number): Promise<void>;
}

interface Session {
  readonly hostStream: HostStream;
  readonly stream: HttpStream;
  readonly plugins: readonly LoadedPlugin[];
  readonly created: number;
  readonly reportPhase: boolean;
}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

export async function startAdapterServer(config: MixerConfig, options: ServerOptions = {}): Promise<RunningServer> {
  const problems = checkRemoteConfig(config);
  if (problems.length > 0) throw new HostError('CONFIG_INVALID', `config is invalid:\n  - ${problems.join('\n  - ')}`, { problems });
  const settings = resolveRemote(config);
  const tracker = new Tracker();
  const names = new Set((config.plugins ?? []).map((p) => p.name));
  const baseLogger = options.logger ?? createLogger(parseLogLevel(config.logLevel ?? 'info'));
  const logger = trackingLogger(baseLogger, tracker, () => names);
  const metrics = new TrackingMetrics(tracker, { buckets: config.metrics?.histogramBuckets, maxSeriesPerMetric: config.metrics?.maxSeriesPerMetric });
  // The server runs every plugin in process, whatever the proxy's remote switches say.
  const local: MixerConfig = {
    ...config,
    remote: { ...config.remote, plugins: 'none' },
    // (keeping the plugin's own remote settings: cache policy, quota, response phase)
    plugins: (config.plugins ?? []).map((p) => ({ ...p, remote: typeof p.remote === 'object' ? { ...p.remote, enabled: false } : false })),
  };
  const host = await WasmHost.create(local, {
    ...options,
    logger,
    metrics,
    shared: new TrackingSharedStore(tracker),
    httpTransport: trackingTransport(options.httpTransport ?? performHttpCall, tracker),
    guestMemory: observeGuestStrings(tracker),
  });
  const server = new AdapterServer(config, settings, host, tracker, logger, metrics);
  try {
    return await server.start(options);
  } catch (err) {
    await host.close();
    throw err;
  }
}

class AdapterServer {
  readonly serverId = randomUUID();
  private readonly grpc = new grpc.Server({
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
  });
  private readonly executor: Executor;
  private readonly byName = new Map<string, LoadedPlugin>();
  private readonly sessions = new Map<string, Session>();
  private nextSession = 1;
  private readonly dedup = new Map<string, { at: number; res: PbCheckResponse }>();
  private readonly health: HealthService;
  private admin: AdminServer | null = null;
  private draining = false;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly counters = new Map<string, () => void>();
  private readonly durations = new Map<string, (v: number) => void>();
  private readonly sessionGauge: (v: number) => void;
  private readonly sessionsExpired: () => void;
  private readonly reportEntries: (n?: number) => void;
  private readonly replayed: (n?: number) => void;
  private readonly cacheable: Record<'true' | 'false', () => void>;
  private readonly envoy: EnvoyServices;

  constructor(
    readonly config: MixerConfig,
    readonly settings: ResolvedRemote,
    readonly host: WasmHost,
    readonly tracker: Tracker,
    readonly logger: HostLogger,
    readonly metrics: TrackingMetrics,
  ) {
    this.executor = new Executor(config, tracker);
    for (const p of host.plugins) this.byName.set(p.config.name, p);
    this.sessionGauge = metrics.gauge('wasm_mixer_server_sessions', 'Checks whose contexts wait for their Report.');
    this.sessionsExpired = metrics.counter('wasm_mixer_server_sessions_expired_total', 'Sessions closed without a Report (ran the log phase after remote.server.sessionTtlMs, or at shutdown).');
    this.reportEntries = metrics.counter('wasm_mixer_server_report_entries_total', 'Finished requests received in Report calls.');
    this.replayed = metrics.counter('wasm_mixer_server_replayed_effects_total', 'Effects of cached checks replayed from Reports (metric updates, log lines).');
    this.cacheable = {
      true: metrics.counter('wasm_mixer_server_checks_total', 'Checks run, by whether the result may be cached by the proxy.', { cacheable: 'true' }),
      false: metrics.counter('wasm_mixer_server_checks_total', 'Checks run, by whether the result may be cached by the proxy.', { cacheable: 'false' }),
    };
    this.health = new HealthService(() => this.status(), Object.values(SERVICE_NAMES));
    this.envoy = new EnvoyServices(config, settings, host, this.executor, tracker, logger, (s, d) => this.finishNow(s, d));
  }

  /** SERVING while not draining and every adapter VM is healthy. */
  private status(): ServingStatus {
    if (this.draining) return 'NOT_SERVING';
    return this.host.plugins.every((p) => p.adapter.healthy) ? 'SERVING' : 'NOT_SERVING';
  }

  private count(service: string, method: string, code: number, ms: number): void {
    const key = `${method}\0${code}`;
    let c = this.counters.get(key);
    if (c === undefined) {
      c = this.metrics.counter('wasm_mixer_server_calls_total', 'Calls served by the adapter server, by service, method and gRPC status.', { service, method, code: grpcCodeName(code) });
      this.counters.set(key, c);
    }
    c();
    let d = this.durations.get(method);
    if (d === undefined) {
      d = this.metrics.histogram('wasm_mixer_server_call_duration_ms', 'Time the adapter server spent on a call, in ms.', { method });
      this.durations.set(method, d);
    }
    d(ms);
  }

  /** Wraps an async handler: metrics, error mapping, drain accounting. */
  private unary<Req, Res>(service: string, method: string, fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): Unary<Req, Res> {
    return (call, callback) => {
      const t0 = performance.now();
      const p = fn(call.request, call).then(
        (res) => {
          this.count(service, method, 0, performance.now() - t0);
          callback(null, res);
        },
        (err: unknown) => {
          const e = toServiceError(err);
          this.count(service, method, e.code, performance.now() - t0);
          if (e.code === grpc.status.INTERNAL) this.logger.log(LogLevel.Error, 'server', `${method} failed: ${describeError(err)}`, { code: 'REMOTE_ERROR' });
          callback(e);
        },
      );
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    };
  }

  async start(options: ServerOptions): Promise<RunningServer> {
    const protos = loadProtos();
    routeGrpcLogs((m) => this.logger.log(LogLevel.Debug, 'grpc', m));
    this.grpc.addService(protos.mixer, {
      Check: this.unary('mixer', 'Check', (req: PbCheckRequest) => this.check(req)),
      Report: this.unary('mixer', 'Report', (req: PbReportRequest) => this.report(req)),
      Describe: this.unary('mixer', 'Describe', async () => this.describe()),
    });
    this.grpc.addService(protos.authorization, { Check: this.unary('authorization', 'AuthzCheck', (req: object) => this.envoy.authorize(req)) });
    this.grpc.addService(protos.rateLimit, { ShouldRateLimit: this.unary('ratelimit', 'ShouldRateLimit', (req: object) => this.envoy.shouldRateLimit(req)) });
    this.grpc.addService(protos.health, this.health.handlers());

    const address = options.listen ?? this.settings.address;
    const credentials = serverCredentials(this.config, address, options.baseDir ?? process.cwd());
    removeStaleSocket(address);
    const port = await new Promise<number>((resolve, reject) => {
      this.grpc.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p)));
    }).catch((err: Error) => {
      throw new HostError('SERVER_START_FAILED', `cannot listen on ${address}: ${err.message}; free the port or change remote.address / --listen`, { address }, { cause: err });
    });
    const bound = address.startsWith('unix:') ? address : address.replace(/:\d+$/, `:${port}`);

    const adminCfg = this.settings.server.admin;
    const adminPort = options.adminPort === null ? null : (options.adminPort ?? adminCfg?.port ?? null);
    if (adminPort !== null) {
      try {
        this.admin = await startAdmin(this.host, { address: adminCfg?.address ?? '127.0.0.1', port: adminPort, allowRemote: adminCfg?.allowRemote ?? false }, () => !this.draining);
      } catch (err) {
        this.grpc.forceShutdown();
        throw new HostError('SERVER_START_FAILED', `cannot open the admin port ${adminPort}: ${(err as Error).message}`, { port: adminPort }, { cause: err });
      }
    }
    const ttl = this.settings.server.sessionTtlMs;
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(ttl / 4, 5000)));
    this.sweeper.unref();
    this.health.start();
    this.logger.log(
      LogLevel.Info,
      'server',
      `adapter server listening on ${bound}${this.admin ? `, admin on ${this.admin.address}:${this.admin.port}` : ''}; ${this.host.plugins.length} adapter(s): ${this.host.plugins.map((p) => p.config.name).join(', ') || 'none'}`,
    );
    const self = this;
    return {
      host: this.host,
      address: bound,
      port,
      adminPort: this.admin?.port ?? null,
      serverId: this.serverId,
      get sessions() {
        return self.sessions.size;
      },
      close: (drainMs?: number) => this.close(drainMs ?? this.settings.server.drainMs),
    };
  }

  // --- Mixer API -----------------------------------------------------------------------------------

  private plugins(names: readonly string[]): LoadedPlugin[] {
    return names.map((n) => {
      const p = this.byName.get(n);
      if (p === undefined) throw serviceError(grpc.status.NOT_FOUND, `adapter "${n}" is not loaded by this server (it runs: ${[...this.byName.keys()].join(', ') || 'none'}); run proxy and server from the same config`);
      return p;
    });
  }

  private decoder(words: readonly string[], count: number | undefined): WordDecoder {
    const n = count ?? 0;
    const known = globalDictionary().length;
    if (n > known) {
      throw serviceError(grpc.status.FAILED_PRECONDITION, `the client's global dictionary has ${n} words, this server knows ${known}; upgrade the server or let the client use ${known}`, { [GLOBAL_WORDS_METADATA]: String(known) });
    }
    return new WordDecoder(words, n);
  }

  private async check(req: PbCheckRequest): Promise<PbCheckResponse> {
    if (this.draining) throw serviceError(grpc.status.UNAVAILABLE, 'the adapter server is shutting down');
    const dedupKey = req.deduplication_id && req.quotas && Object.keys(req.quotas).length > 0 ? req.deduplication_id : null;
    if (dedupKey !== null) {
      const seen = this.dedup.get(dedupKey);
      if (seen !== undefined) return seen.res;
    }
    const gc = req.global_word_count ?? 0;
    const bag = decodeBag(req.attributes, this.decoder(req.attributes?.words ?? [], gc));
    const plugins = this.plugins(req.adapters ?? []);
    const res: PbCheckResponse = {};
    let allowed = true;
    if (plugins.length > 0) {
      const reportPhase = plugins.some((p) => pluginRemote(this.config, p.config).responsePhase === 'report');
      const x = await this.executor.execute(bag, plugins, { probeResponse: !reportPhase });
      (x.outcome.validDurationMs > 0 ? this.cacheable.true : this.cacheable.false)();
      res.precondition = encodeOutcome(x.outcome, gc);
      allowed = x.outcome.reply === null && !x.outcome.reset;
      if (req.keep_session && !this.draining) {
        const id = `${this.serverId.slice(0, 8)}-${this.nextSession++}`;
        this.sessions.set(id, { hostStream: x.hostStream, stream: x.stream, plugins, created: performance.now(), reportPhase });
        this.evictSessions();
        this.sessionGauge(this.sessions.size);
        res.session_id = id;
      } else {
        this.finishNow(x.hostStream, 'no_session');
      }
    }
    if (allowed && req.quotas) {
      res.quotas = {};
      for (const [name, q] of Object.entries(req.quotas)) res.quotas[name] = await this.allocate(bag, name, q.amount ?? 1, q.best_effort ?? false, gc);
    }
    if (dedupKey !== null) this.remember(dedupKey, res);
    return res;
  }

  /**
   * Allocates quota from a quota adapter: runs its request phase with
   * envoy.ratelimit.hits_addend = amount. An adapter that reads that value
   * charges the whole amount in one run; otherwise each run is one unit and the
   * server runs it up to `amount` times (best effort: until the first denial).
   */
  private async allocate(bag: Bag, name: string, amount: number, bestEffort: boolean, gc: number): Promise<PbQuotaResult> {
    const [plugin] = this.plugins([name]);
    const want = Math.max(0, Math.min(Math.floor(amount), MAX_ALLOCATION_RUNS * 1000));
    let granted = 0;
    let allow: Outcome | null = null;
    let deny: Outcome | null = null;
    const refs = new Map<string, Ref>();
    let ask = want;
    for (let run = 0; granted < want && run < MAX_ALLOCATION_RUNS; run++) {
      const x = await this.executor.execute(bag, [plugin!], { probeResponse: true, state: [[HITS_ADDEND, String(ask)], [QUOTA_ALLOCATION_STATE, '1']] });
      this.finishNow(x.hostStream, 'quota_allocation');
      for (const r of x.outcome.refs) if (r.name !== `filter_state.${HITS_ADDEND}` && r.name !== `filter_state.${QUOTA_ALLOCATION_STATE}`) refs.set(`${r.name}\0${r.key ?? ''}`, r);
      const hitsAware = x.track.readsHitsAddend;
      if (x.outcome.reply !== null || x.outcome.reset) {
        deny = x.outcome;
        // Best effort with an adapter that charges the whole amount: try half as much.
        if (bestEffort && hitsAware && ask > 1) {
          ask = Math.floor(ask / 2);
          continue;
        }
        break;
      }
      allow = x.outcome;
      granted += hitsAware ? ask : 1;
      if (!bestEffort && hitsAware) break;
      ask = Math.min(ask, want - granted);
    }
    const r = pluginRemote(this.config, plugin!.config);
    const result = allow ?? deny;
    return {
      granted_amount: granted,
      valid_duration: msToDuration(r.quotaValidDurationMs),
      referenced_attributes: encodeRefs([...refs.values()], gc),
      ...(result !== null ? { precondition: encodeOutcome({ ...result, refs: [...refs.values()], validDurationMs: 0, validUseCount: 0 }, gc) } : {}),
      ...(deny !== null && allow !== null ? { denial: encodeOutcome({ ...deny, validDurationMs: 0, validUseCount: 0 }, gc) } : {}),
    };
  }

  private remember(key: string, res: PbCheckResponse): void {
    const now = performance.now();
    this.dedup.set(key, { at: now, res });
    if (this.dedup.size > 10_000) {
      for (const [k, v] of this.dedup) {
        if (now - v.at < 60_000 && this.dedup.size <= 10_000) break;
        this.dedup.delete(k);
      }
    }
  }

  private async report(req: PbReportRequest): Promise<object> {
    if ((req.repeated_attributes_semantics ?? 0) !== INDEPENDENT_ENCODING) {
      throw serviceError(grpc.status.INVALID_ARGUMENT, 'only INDEPENDENT_ENCODING reports are supported (each bag complete); set repeated_attributes_semantics');
    }
    const bags = req.attributes ?? [];
    const entries = req.entries ?? [];
    const gc = req.global_word_count ?? 0;
    const shared = this.decoder(req.default_words ?? [], gc);
    let failures = 0;
    for (let i = 0; i < bags.length; i++) {
      try {
        const pb = bags[i]!;
        const dec = pb.words !== undefined && pb.words.length > 0 ? this.decoder(pb.words, gc) : shared;
        const bag = decodeBag(pb, dec);
        const e = entries[i] ?? {};
        const adapters = (e.adapters ?? []).map((w) => dec.word(w));
        this.replay(e.replay ?? [], adapters);
        this.logPhase(bag, adapters, e.session_id ?? '');
      } catch (err) {
        failures++;
        if (failures === 1) this.logger.log(LogLevel.Warn, 'server', `Report entry ${i} refused: ${describeError(err)}`, { code: 'REMOTE_ERROR' });
      }
    }
    this.reportEntries(bags.length);
    if (failures > 0 && failures === bags.length) throw serviceError(grpc.status.INVALID_ARGUMENT, `none of the ${bags.length} report entries could be processed`);
    return {};
  }

  /** Applies a cached check's effects: its metric updates and log lines. */
  private replay(effects: readonly PbEffect[], adapters: readonly string[]): void {
    let n = 0;
    for (const e of effects) {
      // Only for the adapters of this entry, and only what they could have done themselves.
      if (e.metric !== undefined) {
        if (adapters.includes(e.metric.adapter ?? '') && this.metrics.replay(e.metric)) n++;
      } else if (e.log !== undefined) {
        const level = e.log.level ?? 2;
        const source = e.log.adapter ?? '';
        if (adapters.includes(source) && Number.isInteger(level) && level >= 0 && level <= 5) {
          this.logger.log(level as LogLevel, source, (e.log.message ?? '').slice(0, 65_536));
          n++;
        }
      }
    }
    if (n > 0) this.replayed(n);
  }

  /** Runs the log phase for a finished request: in its session when there is one, else in fresh contexts. */
  private logPhase(bag: Bag, adapters: readonly string[], sessionId: string): void {
    const s = sessionId !== '' ? this.sessions.get(sessionId) : undefined;
    if (s !== undefined) {
      this.sessions.delete(sessionId);
      this.sessionGauge(this.sessions.size);
      applyReportBag(s.stream, bag);
      this.runLog(s.hostStream, s.stream, s.reportPhase);
      return;
    }
    const plugins = this.plugins(adapters);
    const stream = newStreamFromBag(bag);
    applyReportBag(stream, bag);
    const reportPhase = plugins.some((p) => pluginRemote(this.config, p.config).responsePhase === 'report');
    this.runLog(new HostStream(stream, plugins.map((p) => p.entry)), stream, reportPhase);
  }

  private runLog(hs: HostStream, stream: HttpStream, reportPhase: boolean): void {
    this.tracker.quiet(() => {
      if (reportPhase && stream.responseHeaders !== null && stream.localResponse === null) {
        const headers = stream.responseHeaders;
        const status = Number(headers.find(([k]) => k === ':status')?.[1] ?? stream.info.responseCode) || 200;
        const rest: HeaderPair[] = headers.filter(([k]) => k !== ':status');
        const code = stream.info.responseCode;
        const r = hs.responseHeaders(status, rest, true);
        // Header changes made now cannot reach the client any more; the log phase sees the response as sent.
        stream.responseHeaders = headers;
        stream.info.responseCode = code;
        void r;
      }
      hs.finish();
    });
  }

  /** Ends a stream that will get no Report (no session asked, allocation runs, Envoy checks). */
  finishNow(hs: HostStream, details: string): void {
    this.tracker.quiet(() => {
      if (hs.stream.info.responseCodeDetails === '') hs.stream.info.responseCodeDetails = `wasm_mixer_${details}`;
      hs.finish();
    });
  }

  private sweep(): void {
    const ttl = this.settings.server.sessionTtlMs;
    const now = performance.now();
    for (const [id, s] of this.sessions) {
      if (now - s.created < ttl) break; // insertion order = age order
      this.expire(id, s);
    }
  }

  private evictSessions(): void {
    while (this.sessions.size > this.settings.server.maxSessions) {
      const [id, s] = this.sessions.entries().next().value as [string, Session];
      this.expire(id, s);
    }
  }

  private expire(id: string, s: Session): void {
    this.sessions.delete(id);
    this.sessionsExpired();
    this.sessionGauge(this.sessions.size);
    this.finishNow(s.hostStream, 'report_lost');
  }

  private describe(): PbDescribeResponse {
    return {
      server_id: this.serverId,
      version: SERVER_VERSION,
      global_word_count: globalDictionary().length,
      adapters: this.host.plugins.map((p) => ({
        name: p.config.name,
        module_sha256: p.module.sha256,
        config_sha256: configDigest(p.config),
        healthy: p.adapter.healthy,
        failure: p.adapter.failed ?? '',
      })),
    };
  }

  async close(drainMs: number): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.health.update();
    this.health.endWatches();
    if (this.sweeper) clearInterval(this.sweeper);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.grpc.forceShutdown();
        resolve();
      }, drainMs);
      timer.unref();
      this.grpc.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await Promise.allSettled([...this.inflight]);
    for (const [id, s] of [...this.sessions]) this.expire(id, s);
    this.health.stop();
    await this.admin?.close();
    await this.host.close();
    this.logger.log(LogLevel.Info, 'server', 'adapter server stopped');
  }
}

function toServiceError(err: unknown): grpc.ServiceError {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'number' && 'details' in err) return err as grpc.ServiceError;
  if (err instanceof DecodeError) return serviceError(grpc.status.INVALID_ARGUMENT, `bad attribute encoding: ${err.message}`);
  if (err instanceof HostError) return serviceError(grpc.status.INTERNAL, `${err.code}: ${err.message}`);
  return serviceError(grpc.status.INTERNAL, describeError(err));
}

function removeStaleSocket(address: string): void {
  if (!address.startsWith('unix:')) return;
  const path = address.replace(/^unix:(\/\/)?/, '');
  try {
    if (existsSync(path) && lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // bind reports the problem
  }
}
