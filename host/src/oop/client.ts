// The proxy's connection to the adapter server: one gRPC channel (HTTP/2,
// reconnecting with a short capped backoff), Check/Report/Describe calls with
// deadlines, the check cache, the report batcher and the quota pools, and the
// metrics that show what they do. One client per host, shared by every remote adapter.

import { createHash, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { LogLevel } from '../abi/constants.js';
import type { MixerConfig, PluginConfig } from '../config/schema.js';
import { HostError } from '../errors.js';
import type { HostLogger } from '../log/logger.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import { encodeBag, globalDictionary, WordEncoder } from './attributes.js';
import { ReportBatcher, type ReportItem } from './batcher.js';
import { CheckCache } from './cache.js';
import { resolveRemote, type ResolvedRemote } from '../config/remote.js';
import { channelCredentials } from './tls.js';
import {
  grpcCodeName,
  INDEPENDENT_ENCODING,
  loadProtos,
  routeGrpcLogs,
  type PbCheckRequest,
  type PbCheckResponse,
  type PbDescribeResponse,
  type PbReportRequest,
} from './protos.js';
import { QuotaPools } from './quota.js';

type Callback<T> = (err: grpc.ServiceError | null, res?: T) => void;
interface MixerStub extends grpc.Client {
  Check(req: PbCheckRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<PbCheckResponse>): grpc.ClientUnaryCall;
  Report(req: PbReportRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<object>): grpc.ClientUnaryCall;
  Describe(req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<PbDescribeResponse>): grpc.ClientUnaryCall;
}

/** Metadata key a server uses to say how many global words it knows. */
export const GLOBAL_WORDS_METADATA = 'wasm-mixer-global-word-count';
const MAX_REPORTS_IN_FLIGHT = 8;

/** sha256 of what configures an adapter, compared between proxy and server. */
export function configDigest(p: PluginConfig): string {
  return createHash('sha256')
    .update(JSON.stringify({ pluginConfig: p.pluginConfig ?? null, vmConfig: p.vmConfig ?? null, ...(p.rootId !== undefined ? { rootId: p.rootId } : {}) }))
    .digest('hex');
}

export class RemoteClient {
  readonly settings: ResolvedRemote;
  readonly cache: CheckCache | null;
  readonly batcher: ReportBatcher;
  private readonly stub: MixerStub;
  private readonly quota = new Map<string, QuotaPools>();
  private readonly expected = new Map<string, { sha256: string; config: string }>();
  /** Global words both ends know (shrinks if the server's dictionary is older). */
  globalCount = globalDictionary().length;
  serverId: string | null = null;
  private users = 0;
  private closed = false;
  private reportsInFlight = 0;
  private connected = false;
  private warnedDown = false;
  private readonly mismatchLogged = new Set<string>();

  private readonly m: {
    calls: Map<string, () => void>;
    duration: Map<string, (v: number) => void>;
    cacheHits: () => void;
    cacheMisses: () => void;
    cacheEntries: (v: number) => void;
    batches: () => void;
    entries: (n?: number) => void;
    dropped: Map<string, (n?: number) => void>;
    connectedGauge: (v: number) => void;
    quotaLocal: (n?: number) => void;
    quotaLocalDenied: (n?: number) => void;
    prefetch: Map<string, () => void>;
  };

  constructor(
    readonly config: MixerConfig,
    readonly logger: HostLogger,
    readonly metrics: MetricsRegistry,
    /** Folder that relative TLS file paths are resolved against (the config file's). */
    baseDir: string = process.cwd(),
  ) {
    this.settings = resolveRemote(config);
    const s = this.settings;
    const protos = loadProtos();
    routeGrpcLogs((m) => logger.log(LogLevel.Debug, 'grpc', m));
    const transport = channelCredentials(config, s.address, baseDir);
    this.stub = new protos.MixerClient(s.address, transport.credentials, {
      ...transport.options,
      'grpc.initial_reconnect_backoff_ms': s.reconnect.initialBackoffMs,
      'grpc.max_reconnect_backoff_ms': s.reconnect.maxBackoffMs,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.enable_retries': 0,
    }) as unknown as MixerStub;
    this.cache = s.checkCache.enabled ? new CheckCache(s.checkCache.maxEntries) : null;
    this.m = {
      calls: new Map(),
      duration: new Map(),
      cacheHits: metrics.counter('wasm_mixer_remote_check_cache_hits_total', 'Checks answered from the proxy-side check cache.'),
      cacheMisses: metrics.counter('wasm_mixer_remote_check_cache_misses_total', 'Checks that were not in the proxy-side check cache (a Check call followed).'),
      cacheEntries: metrics.gauge('wasm_mixer_remote_check_cache_entries', 'Results held in the proxy-side check cache.'),
      batches: metrics.counter('wasm_mixer_remote_report_batches_total', 'Report calls sent (batches).'),
      entries: metrics.counter('wasm_mixer_remote_report_entries_total', 'Finished requests sent in Report calls.'),
      dropped: new Map(),
      connectedGauge: metrics.gauge('wasm_mixer_remote_connected', '1 while the channel to the adapter server is ready.'),
      quotaLocal: metrics.counter('wasm_mixer_remote_quota_local_grants_total', 'Requests admitted with a prefetched quota unit, without a call.'),
      quotaLocalDenied: metrics.counter('wasm_mixer_remote_quota_local_denials_total', 'Requests denied locally during a quota close-wait, without a call.'),
      prefetch: new Map(),
    };
    this.batcher = new ReportBatcher(s.reportBatch, (items) => this.sendReport(items), (n) => this.countDropped('queue_full', n));
    this.watch(grpc.connectivityState.IDLE);
    this.stub.getChannel().getConnectivityState(true);
  }

  get address(): string {
    return this.settings.address;
  }

  /** An adapter starts using this client; the proxy compares what the server runs with this. */
  retain(p: PluginConfig, moduleSha256: string): void {
    this.users++;
    this.expected.set(p.name, { sha256: moduleSha256, config: configDigest(p) });
  }

  /** An adapter stops; the last one closes the channel after flushing reports. */
  release(): void {
    if (--this.users <= 0) void this.close();
  }

  quotaPools(adapter: string): QuotaPools {
    let q = this.quota.get(adapter);
    if (q === undefined) {
      q = new QuotaPools(this.settings.quotaPrefetch);
      this.quota.set(adapter, q);
    }
    return q;
  }

  countCache(hit: boolean): void {
    if (hit) this.m.cacheHits();
    else this.m.cacheMisses();
    if (this.cache !== null) this.m.cacheEntries(this.cache.size);
  }

  countQuota(kind: 'grant' | 'deny'): void {
    if (kind === 'grant') this.m.quotaLocal();
    else this.m.quotaLocalDenied();
  }

  countPrefetch(result: 'granted' | 'partial' | 'refused' | 'error'): void {
    let f = this.m.prefetch.get(result);
    if (f === undefined) {
      f = this.metrics.counter('wasm_mixer_remote_quota_prefetches_total', 'Background quota allocations, by result.', { result });
      this.m.prefetch.set(result, f);
    }
    f();
  }

  private countCall(method: string, code: number, ms: number): void {
    const key = `${method}\0${code}`;
    let c = this.m.calls.get(key);
    if (c === undefined) {
      c = this.metrics.counter('wasm_mixer_remote_calls_total', 'Calls to the adapter server, by method and gRPC status.', { method, code: grpcCodeName(code) });
      this.m.calls.set(key, c);
    }
    c();
    let d = this.m.duration.get(method);
    if (d === undefined) {
      d = this.metrics.histogram('wasm_mixer_remote_call_duration_ms', 'Round trip of calls to the adapter server, in ms.', { method });
      this.m.duration.set(method, d);
    }
    d(ms);
  }

  private countDropped(reason: string, n: number): void {
    let f = this.m.dropped.get(reason);
    if (f === undefined) {
      f = this.metrics.counter('wasm_mixer_remote_report_dropped_total', 'Finished requests whose report was dropped, by reason.', { reason });
      this.m.dropped.set(reason, f);
    }
    f(n);
  }

  /** A Check call; rejects with a HostError (ADAPTER_TIMEOUT, REMOTE_UNAVAILABLE, REMOTE_CONFIG_MISMATCH, REMOTE_ERROR). */
  check(req: PbCheckRequest, timeoutMs: number, what: string): Promise<PbCheckResponse> {
    if (this.closed) return Promise.reject(new HostError('REMOTE_UNAVAILABLE', `the client for adapter server ${this.address} is closed`, { address: this.address }));
    req.global_word_count = this.globalCount;
    req.deduplication_id ??= randomUUID();
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      this.stub.Check(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        this.countCall('Check', err ? err.code : 0, performance.now() - t0);
        if (err) {
          this.learnDictionary(err);
          reject(this.describeFailure(err, what, timeoutMs));
        } else resolve(res ?? {});
      });
    });
  }

  private learnDictionary(err: grpc.ServiceError): void {
    const v = err.metadata?.get(GLOBAL_WORDS_METADATA)?.[0];
    const n = v === undefined ? NaN : Number(v);
    if (Number.isInteger(n) && n >= 0 && n < this.globalCount) {
      this.logger.log(LogLevel.Warn, 'remote', `adapter server ${this.address} knows ${n} global dictionary words, this proxy ${this.globalCount}; using ${n}`, { code: 'REMOTE_CONFIG_MISMATCH' });
      this.globalCount = n;
    }
  }

  describeFailure(err: grpc.ServiceError, what: string, timeoutMs: number): HostError {
    const detail = { address: this.address, grpcCode: grpcCodeName(err.code) };
    switch (err.code) {
      case grpc.status.DEADLINE_EXCEEDED:
        return new HostError('ADAPTER_TIMEOUT', `adapter server ${this.address} did not answer the check of ${what} within ${timeoutMs} ms; raise remote.timeoutMs or look at the server's load`, detail);
      case grpc.status.UNAVAILABLE:
      case grpc.status.CANCELLED:
        return new HostError('REMOTE_UNAVAILABLE', `adapter server ${this.address} is unavailable (${err.details}); start it with "wasm-mixer serve --config FILE" or fix remote.address`, detail);
      case grpc.status.NOT_FOUND:
      case grpc.status.FAILED_PRECONDITION:
        return new HostError('REMOTE_CONFIG_MISMATCH', `adapter server ${this.address} cannot run ${what}: ${err.details}; run proxy and server from the same config`, detail);
      default:
        return new HostError('REMOTE_ERROR', `adapter server ${this.address} failed the check of ${what}: ${grpcCodeName(err.code)}: ${err.details}`, detail);
    }
  }

  /** Queues a finished request for the next Report. */
  report(item: ReportItem): void {
    if (this.closed) {
      this.countDropped('closed', 1);
      return;
    }
    this.batcher.add(item);
  }

  private sendReport(items: ReportItem[]): Promise<void> {
    if (this.reportsInFlight >= MAX_REPORTS_IN_FLIGHT) {
      this.countDropped('backlog', items.length);
      return Promise.resolve();
    }
    const enc = new WordEncoder(this.globalCount);
    const req: PbReportRequest = {
      attributes: items.map((i) => encodeBag(i.bag, enc)),
      entries: items.map((i) => ({ adapters: i.adapters.map((a) => enc.index(a)), session_id: i.sessionId, replay: [...i.replay] })),
      default_words: enc.words,
      global_word_count: enc.globalCount,
      repeated_attributes_semantics: INDEPENDENT_ENCODING,
    };
    this.reportsInFlight++;
    return new Promise((resolve) => {
      const t0 = performance.now();
      this.stub.Report(req, new grpc.Metadata(), { deadline: Date.now() + this.settings.reportTimeoutMs }, (err) => {
        this.reportsInFlight--;
        this.countCall('Report', err ? err.code : 0, performance.now() - t0);
        if (err) {
          this.learnDictionary(err);
          this.countDropped(grpcCodeName(err.code).toLowerCase(), items.length);
          this.logger.log(LogLevel.Debug, 'remote', `Report of ${items.length} request(s) to ${this.address} failed: ${err.details}`, { code: 'REMOTE_UNAVAILABLE' });
        } else {
          this.m.batches();
          this.m.entries(items.length);
        }
        resolve();
      });
    });
  }

  /** What the server runs; also compared with this proxy's config (REMOTE_CONFIG_MISMATCH is logged). */
  describe(timeoutMs = 2000): Promise<PbDescribeResponse> {
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      this.stub.Describe({}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
        this.countCall('Describe', err ? err.code : 0, performance.now() - t0);
        if (err) return reject(this.describeFailure(err, 'Describe', timeoutMs));
        const d = res ?? {};
        this.compare(d);
        resolve(d);
      });
    });
  }

  private compare(d: PbDescribeResponse): void {
    if (d.server_id && d.server_id !== this.serverId) {
      if (this.serverId !== null) this.logger.log(LogLevel.Info, 'remote', `adapter server ${this.address} restarted (server id ${d.server_id})`);
      this.serverId = d.server_id;
    }
    const n = d.global_word_count ?? this.globalCount;
    if (n < this.globalCount) this.globalCount = n;
    const running = new Map((d.adapters ?? []).map((a) => [a.name ?? '', a]));
    for (const [name, want] of this.expected) {
      const got = running.get(name);
      const problem =
        got === undefined
          ? 'does not run it'
          : got.module_sha256 !== want.sha256
            ? `runs module sha256 ${got.module_sha256}, this proxy's config has ${want.sha256}`
            : got.config_sha256 !== want.config
              ? 'runs it with a different pluginConfig/vmConfig'
              : null;
      const key = `${d.server_id}\0${name}\0${problem}`;
      if (problem !== null && !this.mismatchLogged.has(key)) {
        this.mismatchLogged.add(key);
        this.logger.log(LogLevel.Error, name, `adapter server ${this.address} ${problem}; run proxy and server from the same config and .wasm files`, { code: 'REMOTE_CONFIG_MISMATCH' });
      }
    }
  }

  /** Follows the channel's state: logs outages once, describes the server after each (re)connect. */
  private watch(last: grpc.connectivityState): void {
    if (this.closed) return;
    const channel = this.stub.getChannel();
    const state = channel.getConnectivityState(false);
    if (state !== last) this.onState(state);
    channel.watchConnectivityState(state, Date.now() + 60_000, () => this.watch(state));
  }

  private onState(state: grpc.connectivityState): void {
    const ready = state === grpc.connectivityState.READY;
    if (ready && !this.connected) {
      this.connected = true;
      this.m.connectedGauge(1);
      if (this.warnedDown) this.logger.log(LogLevel.Info, 'remote', `adapter server ${this.address} is reachable again`);
      this.warnedDown = false;
      this.describe().catch(() => {});
    } else if (!ready && this.connected && state !== grpc.connectivityState.IDLE) {
      this.connected = false;
      this.m.connectedGauge(0);
    }
    if (state === grpc.connectivityState.TRANSIENT_FAILURE && !this.warnedDown) {
      this.warnedDown = true;
      this.connected = false;
      this.m.connectedGauge(0);
      this.logger.log(LogLevel.Warn, 'remote', `adapter server ${this.address} is unreachable; remote adapters follow their failStrategy until it is back (reconnecting every ${this.settings.reconnect.maxBackoffMs} ms at most)`, { code: 'REMOTE_UNAVAILABLE' });
    }
  }

  /** Sends queued reports and waits for them (bounded by the report deadline). */
  flush(): Promise<void> {
    return this.batcher.flush();
  }

  private closing: Promise<void> | null = null;

  /** Flushes queued reports, then closes the channel. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.flush().catch(() => {});
      this.closed = true;
      this.batcher.close();
      this.stub.close();
    })();
    return this.closing;
  }
}
