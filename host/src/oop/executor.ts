// Runs adapters for the adapter server: the same host core (WasmHost, the chain,
// the VMs) on a stream rebuilt from the request's attributes, observed by the
// tracker so the result can say what it depended on and whether it may be cached.

import type { HeaderPair } from '../abi/pairs.js';
import { HostStream, isPromise, type Decision } from '../chain/chain.js';
import type { MixerConfig } from '../config/schema.js';
import type { LoadedPlugin } from '../host.js';
import type { HttpStream } from '../stream/http-stream.js';
import { newStreamFromBag, type Bag } from './attributes.js';
import { pluginRemote } from './config.js';
import { diffHeaders } from './header-ops.js';
import { EMPTY_OUTCOME, type Outcome } from './outcome.js';
import { Track, TrackedStream, type Tracker } from './tracker.js';

export interface Execution {
  readonly outcome: Outcome;
  readonly hostStream: HostStream;
  readonly stream: HttpStream;
  readonly track: Track;
  /** The check ended with a local reply made by the host because an adapter failed (fail-closed). */
  readonly adapterFailed: boolean;
}

export interface ExecuteOptions {
  /** Run proxy_on_response_headers against a placeholder response and return its header changes. */
  probeResponse: boolean;
  /** Filter state to set before the adapters run (e.g. envoy.ratelimit.hits_addend). */
  state?: ReadonlyArray<readonly [string, string]>;
  /** Upper bound for a paused adapter, ms (the chain also applies the plugin's own timeoutMs). */
  maxWaitMs?: number;
}

const PLACEHOLDER_STATUS: HeaderPair = [':status', '200'];

/** Whether the request headers end the request (no body follows), as the proxy decides it. */
function headersEndStream(headers: readonly HeaderPair[]): boolean {
  let cl: string | undefined;
  for (const [k, v] of headers) {
    if (k === 'transfer-encoding') return false;
    if (k === 'content-length') cl = v;
  }
  return cl === undefined || cl === '0';
}

export class Executor {
  constructor(
    private readonly config: MixerConfig,
    private readonly tracker: Tracker,
  ) {}

  /** Runs the request phase of `plugins` (in order) for a bag. */
  async execute(bag: Bag, plugins: readonly LoadedPlugin[], opts: ExecuteOptions): Promise<Execution> {
    const tracker = this.tracker;
    const stream = newStreamFromBag(bag, (h, i) => new TrackedStream(h, i, tracker)) as TrackedStream;
    for (const [k, v] of opts.state ?? []) stream.filterState.set(k, Buffer.from(v));
    const before = stream.rawHeaders.map(([k, v]) => [k, v] as HeaderPair);
    const stateBefore = new Map(Map.prototype.entries.call(stream.filterState) as Iterable<[string, Uint8Array]>);
    const track = new Track(stream, tracker);
    const hs = new HostStream(stream, plugins.map((p) => p.entry));
    let d: Decision | Promise<Decision> = tracker.run(track, () => hs.requestHeaders(headersEndStream(stream.rawHeaders)));
    if (isPromise(d)) {
      track.setHidden('paused for an asynchronous operation');
      d = await d;
    }
    let responseOps: Outcome['responseOps'] = [];
    if (d.action === 'continue' && opts.probeResponse) {
      let r: Decision | Promise<Decision> = tracker.run(track, () => hs.responseHeaders(200, [], false));
      if (isPromise(r)) {
        track.setHidden('paused in the response phase');
        r = await r;
      }
      const after = stream.responseHeaders ?? [];
      responseOps = diffHeaders([PLACEHOLDER_STATUS], after);
      // The placeholder response must not be seen later (the log phase gets the real one).
      stream.responseHeaders = null;
      stream.info.responseCode = 0;
      stream.info.responseCodeDetails = '';
      if (r.action !== 'continue') {
        track.setHidden('replied in the response phase');
        stream.localResponse = null;
        stream.reset = false;
      }
    }
    const refs = track.referenced();
    const dynamicState: Array<[string, Uint8Array]> = [];
    for (const [k, v] of Map.prototype.entries.call(stream.filterState) as Iterable<[string, Uint8Array]>) {
      const old = stateBefore.get(k);
      if (old === undefined || !Buffer.from(old).equals(Buffer.from(v))) dynamicState.push([k, v]);
    }
    let reply: Outcome['reply'] = null;
    let adapterFailed = false;
    if (d.action === 'respond') {
      const r = d.reply;
      const lr = stream.localResponse;
      // A reply from an adapter (proxy_send_local_response), or from the chain applying a fail-closed strategy.
      adapterFailed = lr === null || lr.adapter !== r.adapter;
      reply = {
        status: r.status,
        headers: r.headers.map(([k, v]) => [k, v] as HeaderPair),
        body: r.body,
        adapter: r.adapter,
        details: lr !== null && !adapterFailed ? lr.details : r.details,
        grpcStatus: lr?.grpcStatus ?? -1,
      };
    }
    const outcome: Outcome = {
      ...EMPTY_OUTCOME,
      reply,
      reset: d.action === 'reset',
      // Also for a denial: the log phase sees the headers the adapters changed before it.
      requestOps: diffHeaders(before, stream.rawHeaders),
      responseOps,
      dynamicState,
      effects: track.effects,
      refs,
      ...this.cacheability(plugins, track, adapterFailed),
    };
    return { outcome, hostStream: hs, stream, track, adapterFailed };
  }

  /** How long the result may be cached (Mixer: minimum duration and use count over the adapters). */
  private cacheability(plugins: readonly LoadedPlugin[], t: Track, adapterFailed: boolean): Pick<Outcome, 'validDurationMs' | 'validUseCount' | 'uncacheable'> {
    const no = (uncacheable: string) => ({ validDurationMs: 0, validUseCount: 0, uncacheable });
    if (adapterFailed || t.failed !== null) return no(`an adapter failed${t.failed ? `: ${t.failed}` : ''}`);
    let duration = Infinity;
    let uses = Infinity;
    let always = true;
    for (const p of plugins) {
      const r = pluginRemote(this.config, p.config);
      if (r.cacheMode === 'off') return no(`remote.cache.mode is off for ${p.config.name}`);
      if (r.prefetch) return no(`${p.config.name} is a quota adapter`);
      if (r.cacheMode !== 'always') always = false;
      duration = Math.min(duration, r.validDurationMs);
      uses = Math.min(uses, r.validUseCount);
    }
    if (!always) {
      if (t.hidden !== null) return no(t.hidden);
      if (t.sideEffect !== null) return no(t.sideEffect);
    }
    if (t.hintDurationMs !== undefined) duration = Math.min(duration, t.hintDurationMs);
    if (t.hintUseCount !== undefined) uses = Math.min(uses, t.hintUseCount);
    if (!Number.isFinite(duration) || !Number.isFinite(uses) || duration <= 0 || uses <= 0) return no(duration <= 0 || uses <= 0 ? 'validity is zero' : 'no adapter');
    return { validDurationMs: duration, validUseCount: uses, uncacheable: '' };
  }
}
