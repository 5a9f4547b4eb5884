// An adapter that runs in the adapter server: the proxy side of the out-of-process
// mode. It implements the chain's Adapter contract, so a config switch swaps a
// PluginVm for it and nothing else in the proxy changes.
// About 410 lines, one file: the segment call, the quota prefetch path and the
// report share one SegmentCall per request.
//
// Consecutive remote adapters of a chain form a segment that is checked with ONE
// call (as Mixer checked all its adapters at once): the first member sends the
// Check for every member of the segment that matched the request; the server runs
// them in order on one stream, exactly as the in-process chain would; the first
// member applies the net result (header changes, filter state, or the local
// reply of whichever member denied); the others continue. If the call fails, every
// member applies its own failStrategy. A quota adapter (remote.prefetch) is a
// segment of its own, served from prefetched units when it can.
//
// Bodies and trailers are not sent: remote adapters see headers only (like
// Mixer and ext_authz without with_request_body).

import type { HeaderPair } from '../abi/pairs.js';
import type { Adapter, AdapterDetails, OptionalCallback } from '../chain/adapter.js';
import type { MixerConfig, PluginConfig } from '../config/schema.js';
import { HostError, type HostErrorCode } from '../errors.js';
import type { HostLogger } from '../log/logger.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import type { HttpStream } from '../stream/http-stream.js';
import { CallResult, StreamContext, type Direction } from '../stream/stream-context.js';
import type { CompiledModule } from '../vm/module.js';
import { bagFromStream, encodeBag, WordEncoder } from './attributes.js';
import { RemoteClient } from './client.js';
import { checkRemoteConfig, pluginRemote, type ResolvedPluginRemote } from '../config/remote.js';
import { applyHeaderOps } from './header-ops.js';
import { applyRequestSide, decodeOutcome, type Outcome } from './outcome.js';
import { durationToMs, type PbCheckRequest, type PbEffect, type PbQuotaResult } from './protos.js';
import type { Pool, QuotaPools } from './quota.js';
import { clients } from './remote-clients.js';

export { closeRemote, flushRemote, remoteClientOf } from './remote-clients.js';

/** What a RemoteAdapter needs from the host that loads it. */
export interface RemoteHostView {
  readonly config: MixerConfig;
  readonly logger: HostLogger;
  readonly metrics: MetricsRegistry;
  /** Folder that relative paths in the config are resolved against. */
  readonly baseDir?: string;
  /** The loaded plugins in chain order (entries are filled in as plugins load). */
  readonly plugins: ReadonlyArray<{ readonly entry: { readonly adapter: Adapter } }>;
}

/** Creates the proxy-side stand-in for a plugin that runs in the adapter server. */
export function createRemoteAdapter(host: RemoteHostView, plugin: PluginConfig, compiled: Pick<CompiledModule, 'sha256'>, config: MixerConfig = host.config): RemoteAdapter {
  let client = clients.get(host);
  if (client === undefined) {
    const problems = checkRemoteConfig(config);
    if (problems.length > 0) throw new HostError('CONFIG_INVALID', `config is invalid:\n  - ${problems.join('\n  - ')}`, { problems });
    client = new RemoteClient(config, host.logger, host.metrics, host.baseDir);
    clients.set(host, client);
  }
  client.retain(plugin, compiled.sha256);
  return new RemoteAdapter(host, plugin, client, config);
}

const enum State {
  New,
  Pending,
  Done,
  Failed,
}

/** One request's call for one segment. */
class SegmentCall {
  readonly members: RemoteAdapter[] = [];
  state = State.New;
  outcome: Outcome | null = null;
  error: HostError | null = null;
  sessionId = '';
  replay: readonly PbEffect[] = [];
  responseApplied = false;
  reported = false;
  /** finishStream came while the call was in flight: report when it settles. */
  finishPending = false;
}

const streams = new WeakMap<HttpStream, Map<object, SegmentCall>>();

const EMPTY_EFFECTS: readonly PbEffect[] = [];

export class RemoteAdapter implements Adapter {
  readonly name: string;
  readonly settings: ResolvedPluginRemote;
  failed: string | null = null;
  /** The VM runs in the adapter server; this process never restarts it. */
  readonly generation = 1;
  liveStreams = 0;
  private stopped = false;
  /** Identity of the segment this adapter belongs to (computed on first use). */
  private segment: object | null = null;
  private nextId = 1;

  /** Crashes of the VM happen in the adapter server, which reports them; none here. */
  readonly lastCrash = null;
  readonly crashes = 0;
  /** Never consulted: a remote adapter does not return CallResult.Failed (its failures reach the chain through StreamContext.fail, with their own codes). */
  readonly failureCode: HostErrorCode = 'REMOTE_ERROR';

  constructor(
    private readonly host: RemoteHostView,
    readonly plugin: PluginConfig,
    readonly client: RemoteClient,
    config: MixerConfig = host.config,
  ) {
    this.name = plugin.name;
    this.settings = pluginRemote(config, plugin);
  }

  get logger(): HostLogger {
    return this.host.logger;
  }

  get metrics(): MetricsRegistry {
    return this.host.metrics;
  }

  get healthy(): boolean {
    return !this.stopped;
  }

  get address(): string {
    return this.client.address;
  }

  /** /adapters: the VM's figures are the adapter server's business. */
  details(): AdapterDetails {
    return { fuelHighWater: 0, memoryBytes: 0, hostMemory: null, restart: null, remote: this.client.address };
  }

  /** The adapter server runs the header callbacks (Check, header operations); bodies and trailers stay here. */
  implements(callback: OptionalCallback): boolean {
    return callback === 'request_headers' || callback === 'response_headers';
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.client.release();
  }

  /** Consecutive remote adapters of the same client (and response phase) form one segment; a quota adapter is alone. */
  private segmentKey(): object {
    if (this.segment !== null) return this.segment;
    const list = this.host.plugins.map((p) => p.entry.adapter);
    const i = list.indexOf(this);
    let start = i;
    const joinable = (a: Adapter | undefined): a is RemoteAdapter =>
      a instanceof RemoteAdapter && a.client === this.client && !a.settings.prefetch && a.settings.responsePhase === this.settings.responsePhase;
    if (!this.settings.prefetch && i >= 0) while (start > 0 && joinable(list[start - 1])) start--;
    const first = list[start];
    const head = i < 0 || !(first instanceof RemoteAdapter) ? this : first;
    if (head.segment === null) head.segment = {};
    this.segment = head.segment;
    return this.segment;
  }

  private call(stream: HttpStream): SegmentCall {
    let m = streams.get(stream);
    if (m === undefined) {
      m = new Map();
      streams.set(stream, m);
    }
    const key = this.segmentKey();
    let c = m.get(key);
    if (c === undefined) {
      c = new SegmentCall();
      m.set(key, c);
    }
    return c;
  }

  createStream(stream: HttpStream): StreamContext | null {
    if (this.stopped) return null;
    this.call(stream).members.push(this);
    this.liveStreams++;
    return new StreamContext(this.nextId++, stream, this.generation);
  }

  onRequestHeaders(sc: StreamContext, _endOfStream: boolean): CallResult {
    const c = this.call(sc.stream);
    switch (c.state) {
      case State.Done:
        return CallResult.Continue;
      case State.Failed:
        return this.failLater(sc, c.error!);
      case State.Pending:
        return CallResult.Continue;
      default:
        return this.settings.prefetch && this.client.settings.quotaPrefetch.enabled ? this.quotaCheck(sc, c) : this.check(sc, c);
    }
  }

  onResponseHeaders(sc: StreamContext, _endOfStream: boolean): CallResult {
    const c = this.call(sc.stream);
    if (c.state === State.Done && !c.responseApplied && c.outcome !== null) {
      c.responseApplied = true;
      if (c.outcome.responseOps.length > 0) {
        const s = sc.stream;
        if (s.responseHeaders === null) s.responseHeaders = [];
        applyHeaderOps(s.responseHeaders, c.outcome.responseOps);
      }
    }
    return CallResult.Continue;
  }

  onBody(_sc: StreamContext, _direction: Direction, _size: number, _endOfStream: boolean): CallResult {
    return CallResult.Continue;
  }

  onTrailers(_sc: StreamContext, _direction: Direction, _count: number): CallResult {
    return CallResult.Continue;
  }

  finishStream(sc: StreamContext): void {
    this.liveStreams--;
    const c = this.call(sc.stream);
    if (c.reported) return;
    if (c.state === State.Pending) {
      c.finishPending = true;
      return;
    }
    this.sendReport(c, sc.stream);
  }

  private sendReport(c: SegmentCall, stream: HttpStream): void {
    if (c.reported) return;
    c.reported = true;
    this.client.report({ bag: bagFromStream(stream, 'report'), adapters: c.members.map((a) => a.name), sessionId: c.sessionId, replay: c.replay });
  }

  // --- the check -------------------------------------------------------------------------------

  private groupName(c: SegmentCall): string {
    return c.members.map((a) => a.name).join(',');
  }

  private timeout(c: SegmentCall): number {
    let t = Infinity;
    for (const a of c.members) t = Math.min(t, a.settings.timeoutMs);
    return t;
  }

  private request(stream: HttpStream, adapters: string[]): PbCheckRequest {
    const enc = new WordEncoder(this.client.globalCount);
    const attributes = encodeBag(bagFromStream(stream, 'check'), enc);
    attributes.words = enc.words;
    return { attributes, adapters, keep_session: adapters.length > 0 };
  }

  private check(sc: StreamContext, c: SegmentCall): CallResult {
    const stream = sc.stream;
    const group = this.groupName(c);
    const cache = this.client.cache;
    if (cache !== null) {
      const hit = cache.lookup(group, stream);
      this.client.countCache(hit !== null);
      if (hit !== null) {
        c.replay = hit.effects;
        this.settle(c, hit, stream);
        return CallResult.Continue;
      }
    }
    c.state = State.Pending;
    const req = this.request(stream, c.members.map((a) => a.name));
    this.client.check(req, this.timeout(c), group).then(
      (res) => {
        const o = decodeOutcome(res.precondition, this.client.globalCount);
        c.sessionId = res.session_id ?? '';
        if (cache !== null && o.validDurationMs > 0 && o.validUseCount > 0) cache.insert(group, stream, o);
        this.resume(sc, c, o);
      },
      (err: HostError) => this.fail(sc, c, err),
    );
    return CallResult.Stop;
  }

  /** Records the outcome and applies it to the stream. */
  private settle(c: SegmentCall, o: Outcome, stream: HttpStream): void {
    c.outcome = o;
    c.state = State.Done;
    // Header changes and filter state also when the segment denied: the log phase sees them, as in process.
    applyRequestSide(o, stream.requestHeaders, stream.filterState);
    if (o.reset) stream.reset = true;
    else if (o.reply !== null) {
      const r = o.reply;
      stream.localResponse = { status: r.status, details: r.details, body: r.body, headers: r.headers.map(([k, v]) => [k, v] as HeaderPair), grpcStatus: r.grpcStatus, adapter: r.adapter || this.name };
    }
  }

  /** The answer came: apply it unless the chain gave up waiting, then wake the chain. */
  private resume(sc: StreamContext, c: SegmentCall, o: Outcome): void {
    const abandoned = sc.waiter === null;
    if (abandoned) {
      // The chain timed out (the plugin's timeoutMs is shorter than the deadline): the request moved on.
      c.outcome = o;
      c.state = State.Failed;
      c.error = new HostError('ADAPTER_TIMEOUT', `adapter ${this.name}: the chain stopped waiting before the adapter server answered`, { adapter: this.name });
    } else {
      c.replay = EMPTY_EFFECTS;
      this.settle(c, o, sc.stream);
    }
    if (c.finishPending) this.sendReport(c, sc.stream);
    if (!abandoned) sc.wake(o.reply !== null || o.reset ? null : 'request');
  }

  private fail(sc: StreamContext, c: SegmentCall, err: HostError): void {
    c.state = State.Failed;
    c.error = err;
    if (c.finishPending) this.sendReport(c, sc.stream);
    sc.fail(new HostError(err.code, `adapter ${this.name}: ${err.message}`, { ...err.detail, adapter: this.name }));
  }

  /** A later member of a failed segment: report the failure through the chain with its code. */
  private failLater(sc: StreamContext, err: HostError): CallResult {
    const e = new HostError(err.code, `adapter ${this.name}: ${err.message}`, { ...err.detail, adapter: this.name });
    queueMicrotask(() => sc.fail(e));
    return CallResult.Stop;
  }

  // --- quota adapters ----------------------------------------------------------------------------

  private quotaCheck(sc: StreamContext, c: SegmentCall): CallResult {
    const stream = sc.stream;
    const pools = this.client.quotaPools(this.name);
    const d = pools.decide(stream);
    if (d.kind === 'grant') {
      this.client.countQuota('grant');
      this.settle(c, d.outcome, stream);
      this.maybePrefetch(pools, d.pool, d.desired, stream);
      return CallResult.Continue;
    }
    if (d.kind === 'deny') {
      this.client.countQuota('deny');
      this.settle(c, d.outcome, stream);
      return CallResult.Continue;
    }
    c.state = State.Pending;
    const req = this.request(stream, [this.name]);
    if (d.allocate) req.quotas = { [this.name]: { amount: d.desired, best_effort: true } };
    this.client.check(req, this.timeout(c), this.name).then(
      (res) => {
        const o = decodeOutcome(res.precondition, this.client.globalCount);
        c.sessionId = res.session_id ?? '';
        const q = res.quotas?.[this.name];
        if (o.reply !== null) pools.denied(d.pool ?? pools.poolFor(stream, o.refs), o);
        else if (q !== undefined) {
          const qo = q.precondition !== undefined ? decodeOutcome(q.precondition, this.client.globalCount) : o;
          const granted = q.granted_amount ?? 0;
          const pool = d.pool ?? pools.poolFor(stream, qo.refs.length > 0 ? qo.refs : o.refs);
          pools.granted(pool, d.desired, granted, durationToMs(q.valid_duration) || this.settings.quotaValidDurationMs, granted > 0 ? allowPart(qo) : null, this.denialOf(q, qo));
        }
        this.resume(sc, c, o);
      },
      (err: HostError) => this.fail(sc, c, err),
    );
    return CallResult.Stop;
  }

  /** The denial an allocation ended with (for local denials during close-wait), if any. */
  private denialOf(q: PbQuotaResult, result: Outcome): Outcome | null {
    if (result.reply !== null) return result;
    return q.denial !== undefined ? decodeOutcome(q.denial, this.client.globalCount) : null;
  }

  private maybePrefetch(pools: QuotaPools, pool: Pool, desired: number, stream: HttpStream): void {
    if (!pools.wantsPrefetch(pool, desired)) return;
    pool.inflight = true;
    const asked = Math.max(1, desired - pool.tokens);
    const req = this.request(stream, []);
    req.quotas = { [this.name]: { amount: asked, best_effort: true } };
    this.client.check(req, this.settings.timeoutMs, `${this.name} (quota prefetch)`).then(
      (res) => {
        pool.inflight = false;
        const q = res.quotas?.[this.name];
        const granted = q?.granted_amount ?? 0;
        const qo = q?.precondition !== undefined ? decodeOutcome(q.precondition, this.client.globalCount) : null;
        pools.granted(pool, asked, granted, durationToMs(q?.valid_duration) || this.settings.quotaValidDurationMs, granted > 0 && qo !== null ? allowPart(qo) : null, q !== undefined && qo !== null ? this.denialOf(q, qo) : null);
        this.client.countPrefetch(granted >= asked ? 'granted' : granted > 0 ? 'partial' : 'refused');
      },
      () => {
        pool.inflight = false;
        this.client.countPrefetch('error');
      },
    );
  }
}

/** The part of an allocation's result every request using a unit gets: header changes and filter state, no effects. */
function allowPart(o: Outcome): Outcome {
  return { ...o, reply: null, reset: false, effects: [] };
}
