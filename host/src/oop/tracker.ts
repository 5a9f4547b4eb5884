// What a check depended on and what it did, observed by the adapter server while
// the host runs the adapters (Mixer recorded attribute lookups in its attribute
// bag the same way: istio/istio@release-1.1 mixer/pkg/attribute/protoBag.go).
// About 500 lines, one file: the tracked stream, shared store and guest-memory hook all
// record into one dependency set per check, which the check cache keys on.
//
// The server gives the adapters a TrackedStream: its header list, StreamInfo and
// filter state record every read made while a check runs; the host's shared
// data, metrics, logger and HTTP call-out transport are wrapped to record effects.
// No hook in the ABI layer is needed: whatever path an ABI function takes, it
// ends up reading the stream's data; the one hook is the VMs' GuestMemory, which
// reports the strings read (the header name a failed lookup looked for).
//
//   reads of request headers / facts / filter state  -> referenced attributes (cache key)
//   metric updates and adapter log lines            -> replayable effects (sent back on cache hits)
//   shared data / metric reads, call-outs            -> hidden inputs: the result is not cacheable
//   shared data writes, queue operations             -> effects a cache hit would skip: not cacheable
//   monotonic clock facts (request.duration)         -> time-dependent: not cacheable
// Wall-clock reads (proxy_get_current_time_nanoseconds) are not visible here;
// that is why a cacheable result's validity is short by default.

import { LogLevel, MetricType, Status } from '../abi/constants.js';
import type { HeaderPair } from '../abi/pairs.js';
import type { HostLogger } from '../log/logger.js';
import { MetricsRegistry } from '../metrics/registry.js';
import type { GuestMemoryFactory } from '../plugin/plugin-vm.js';
import type { HostMeter } from '../plugin/host-meter.js';
import type { HttpCallTransport } from '../transport/http-call.js';
import { GuestMemory } from '../vm/guest-memory.js';
import { HttpStream, type StreamInfo } from '../stream/http-stream.js';
import { SharedStore, type SharedDataView } from '../shared/shared-store.js';
import { factAttribute, FILTER_STATE_PREFIX, isMonoField, REQUEST_HEADERS } from './attributes.js';
import type { PbEffect } from './protos.js';

/** One referenced attribute: a whole attribute, or one key of a map attribute. */
export interface Ref {
  readonly name: string;
  /** Map key (request.headers), or undefined for the whole attribute. */
  readonly key?: string;
  readonly present: boolean;
}

export const HINT_DURATION = 'wasm_mixer.cache.valid_duration_ms';
export const HINT_USE_COUNT = 'wasm_mixer.cache.valid_use_count';
export const HITS_ADDEND = 'envoy.ratelimit.hits_addend';

interface Segment {
  /** Tracker.stringSeq when the scan started, and the string read just before it (the name looked up). */
  seq: number;
  key: string | null;
  /** Another guest string was read during the scan: `key` is not the name being looked up. */
  moved: boolean;
  count: number;
  lastIndex: number;
  value: HeaderPair | null;
  values: number;
  write: boolean;
}

/** The observations of one check. */
export class Track {
  private readonly refs = new Map<string, Ref>();
  readonly effects: PbEffect[] = [];
  /** Why the decision may depend on something other than the referenced attributes. */
  hidden: string | null = null;
  /** Why a cache hit would miss an effect the check had. */
  sideEffect: string | null = null;
  /** An adapter failed (trap, timeout, refused call): never cache. */
  failed: string | null = null;
  hintDurationMs: number | undefined;
  hintUseCount: number | undefined;
  /** The quota adapter read envoy.ratelimit.hits_addend: it charges the whole amount at once. */
  readsHitsAddend = false;
  private seg: Segment | null = null;

  constructor(
    readonly stream: TrackedStream,
    private readonly tracker: Tracker,
  ) {}

  ref(name: string, key: string | undefined, present: boolean): void {
    const id = key === undefined ? name : `${name}\0${key}`;
    if (!this.refs.has(id)) this.refs.set(id, { name, key, present });
  }

  setHidden(reason: string): void {
    this.hidden ??= reason;
  }

  setSideEffect(reason: string): void {
    this.sideEffect ??= reason;
  }

  /** Closes pending observations and returns the referenced attributes. */
  referenced(): Ref[] {
    this.closeSegment();
    const all = [...this.refs.values()];
    // A whole-map reference makes its single-key references redundant.
    const whole = new Set(all.filter((r) => r.key === undefined).map((r) => r.name));
    return all.filter((r) => r.key === undefined || !whole.has(r.name));
  }

  // --- request header list scans (see TrackedStream) ---

  /** @internal an element of the header list was read. */
  index(i: number): void {
    let s = this.seg;
    // A scan starts at element 0 (every ABI header function reads from the start).
    if (i === 0 && s !== null && (s.lastIndex !== 0 || s.values > 0 || s.write)) {
      this.closeSegment();
      s = null;
    }
    if (s === null) s = this.seg = { seq: this.tracker.stringSeq, key: this.tracker.lastString, moved: false, count: 0, lastIndex: -1, value: null, values: 0, write: false };
    else if (s.seq !== this.tracker.stringSeq) s.moved = true;
    s.count++;
    s.lastIndex = i;
  }

  /** @internal the value of a header pair was read. */
  value(pair: HeaderPair): void {
    const s = this.seg;
    if (s === null) {
      // Read through a reference kept from an earlier scan: the key was known.
      this.ref(REQUEST_HEADERS, pair[0], true);
      return;
    }
    if (s.value !== pair) s.values++;
    s.value = pair;
  }

  /** @internal the header list was modified. */
  write(length: number): void {
    const s = this.seg;
    if (s === null || s.write) return;
    if (s.values === 0 && s.count <= 2 && s.count < length) {
      // remove_header_map_value's scan: it writes as it reads.
      s.write = true;
      return;
    }
    this.closeSegment();
    this.seg = { seq: this.tracker.stringSeq, key: null, moved: true, count: 0, lastIndex: -1, value: null, values: 0, write: true };
  }

  private closeSegment(): void {
    const s = this.seg;
    this.seg = null;
    if (s === null || s.write) return;
    if (s.values === 1 && s.value !== null) {
      // get_header_map_value found the header: its first value was read.
      this.ref(REQUEST_HEADERS, s.value[0], true);
      return;
    }
    const list = this.stream.rawHeaders;
    const key = s.key?.toLowerCase();
    if (s.values === 0 && s.count >= list.length && !s.moved && key !== undefined && HEADER_NAME.test(key) && !list.some(([k]) => k === key)) {
      // get_header_map_value scanned the whole list without finding the name it
      // read from guest memory just before: that header is absent.
      this.ref(REQUEST_HEADERS, key, false);
    } else {
      // All pairs read (get_header_map_pairs, request.headers), or a lookup that
      // found nothing: which name was looked up is not visible, so the whole map counts.
      this.ref(REQUEST_HEADERS, undefined, true);
    }
  }
}

/** The server's single observer: at most one check runs synchronously at a time (one JS thread). */
export class Tracker {
  current: Track | null = null;
  /** The last string an adapter's ABI call read from guest memory (a header name, a property path). */
  lastString: string | null = null;
  stringSeq = 0;

  /** Runs `fn` with `track` observing; nested calls restore the outer track. */
  run<T>(track: Track, fn: () => T): T {
    const prev = this.current;
    this.current = track;
    try {
      return fn();
    } finally {
      this.current = prev;
    }
  }

  /** Runs `fn` with nothing observed (e.g. the log phase). */
  quiet<T>(fn: () => T): T {
    const prev = this.current;
    this.current = null;
    try {
      return fn();
    } finally {
      this.current = prev;
    }
  }
}

/**
 * A GuestMemory that reports the strings ABI calls read from it (string,
 * latin1: every GuestMemory method that decodes one), so a header lookup that
 * finds nothing can be attributed to the name it looked for. The server's host
 * makes every VM's memory with it (WasmHost option `guestMemory`).
 */
class StringObservingMemory extends GuestMemory {
  constructor(memory: WebAssembly.Memory, meter: HostMeter, private readonly tracker: Tracker) {
    super(memory, meter);
  }

  private seen(s: string | null): string | null {
    if (s !== null && this.tracker.current !== null) {
      this.tracker.lastString = s;
      this.tracker.stringSeq++;
    }
    return s;
  }

  override string(ptr: number, len: number): string | null {
    return this.seen(super.string(ptr, len));
  }

  override latin1(ptr: number, len: number): string | null {
    return this.seen(super.latin1(ptr, len));
  }
}

/** The memory hook for WasmHost's `guestMemory` option: VMs report the strings they read to `tracker`. */
export function observeGuestStrings(tracker: Tracker): GuestMemoryFactory {
  return (memory, meter) => new StringObservingMemory(memory, meter, tracker);
}

const HEADER_NAME = /^:?[!#$%&'*+.^_`|~0-9a-z-]+$/;

const isIndex = (p: string | symbol): p is string => typeof p === 'string' && p.length > 0 && p.charCodeAt(0) >= 48 && p.charCodeAt(0) <= 57;

/**
 * An HttpStream whose request header list, StreamInfo and filter state report
 * reads to the tracker while a check of this stream is being observed.
 */
export class TrackedStream extends HttpStream {
  /** The header list itself (requestHeaders is a recording view of it). */
  readonly rawHeaders: HeaderPair[];

  constructor(
    headers: HeaderPair[],
    info: Partial<StreamInfo>,
    private readonly tracker: Tracker,
  ) {
    const tuples = new WeakMap<HeaderPair, HeaderPair>();
    const unwrap = new WeakMap<object, HeaderPair>();
    let self: TrackedStream | null = null;
    const active = (): Track | null => {
      const t = tracker.current;
      return t !== null && t.stream === self ? t : null;
    };
    const tupleProxy = (pair: HeaderPair): HeaderPair => {
      let p = tuples.get(pair);
      if (p === undefined) {
        p = new Proxy(pair, {
          get(target, prop, receiver) {
            if (prop === '1') active()?.value(target);
            return Reflect.get(target, prop, receiver);
          },
        });
        tuples.set(pair, p);
        unwrap.set(p, pair);
      }
      return p;
    };
    const view = new Proxy(headers, {
      get(target, prop, receiver) {
        const t = active();
        if (t !== null && isIndex(prop)) {
          const i = Number(prop);
          t.index(i);
          const el = target[i];
          return el === undefined ? el : tupleProxy(el);
        }
        return Reflect.get(target, prop, receiver);
      },
      set(target, prop, value) {
        const t = active();
        if (t !== null) t.write(target.length);
        const v = typeof value === 'object' && value !== null ? (unwrap.get(value as object) ?? value) : value;
        Reflect.set(target, prop, v);
        return true;
      },
    });
    super(view, info);
    self = this;
    this.rawHeaders = headers;
    const rawInfo: Record<string, unknown> = this.info;
    const stream = this;
    Object.defineProperty(this, 'info', {
      value: new Proxy(rawInfo, {
        get(target, prop, receiver) {
          const t = tracker.current;
          if (t !== null && t.stream === stream && typeof prop === 'string') {
            if (isMonoField(prop)) t.setHidden('reads the request duration');
            else {
              const v = target[prop];
              t.ref(factAttribute(prop), undefined, v !== undefined && v !== '' && v !== 0);
            }
          }
          return Reflect.get(target, prop, receiver);
        },
      }),
      writable: false,
      enumerable: true,
    });
    Object.defineProperty(this, 'filterState', { value: new TrackedState(tracker, this), writable: false, enumerable: true });
  }

  override requestHeader(name: string): string | undefined {
    const h = this.rawHeaders;
    for (let i = 0; i < h.length; i++) {
      if (h[i]![0] === name) {
        this.observe()?.ref(REQUEST_HEADERS, name, true);
        return h[i]![1];
      }
    }
    this.observe()?.ref(REQUEST_HEADERS, name, false);
    return undefined;
  }

  /** The track observing this stream right now, if any. */
  observe(): Track | null {
    const t = this.tracker.current;
    return t !== null && t.stream === this ? t : null;
  }
}

/** Filter state that records lookups, and the cache hints adapters set. */
class TrackedState extends Map<string, Uint8Array> {
  constructor(
    private readonly tracker: Tracker,
    private readonly owner: TrackedStream,
  ) {
    super();
  }

  private track(): Track | null {
    const t = this.tracker.current;
    return t !== null && t.stream === this.owner ? t : null;
  }

  override get(key: string): Uint8Array | undefined {
    const v = super.get(key);
    const t = this.track();
    if (t !== null) {
      t.ref(FILTER_STATE_PREFIX + key, undefined, v !== undefined);
      if (key === HITS_ADDEND) t.readsHitsAddend = true;
    }
    return v;
  }

  override has(key: string): boolean {
    const v = super.has(key);
    this.track()?.ref(FILTER_STATE_PREFIX + key, undefined, v);
    return v;
  }

  override set(key: string, value: Uint8Array): this {
    const t = this.track();
    if (t !== null && (key === HINT_DURATION || key === HINT_USE_COUNT)) {
      const n = parseHint(value);
      if (n !== null) {
        if (key === HINT_DURATION) t.hintDurationMs = Math.min(t.hintDurationMs ?? Infinity, n);
        else t.hintUseCount = Math.min(t.hintUseCount ?? Infinity, n);
      }
    }
    return super.set(key, value);
  }
}

/** A hint value: decimal text, or a little-endian int64 (8 bytes). */
export function parseHint(value: Uint8Array): number | null {
  const text = Buffer.from(value).toString('latin1').trim();
  if (/^\d+$/.test(text)) return Number(text);
  if (value.length === 8) {
    const n = new DataView(value.buffer, value.byteOffset, 8).getBigInt64(0, true);
    return n >= 0n ? Number(n) : null;
  }
  return null;
}

// --- host services that report effects ----------------------------------------------------------

/** Shared data: reads are hidden inputs, writes and queue operations are effects a cache hit would skip. */
export class TrackingSharedStore extends SharedStore {
  constructor(private readonly tracker: Tracker) {
    super();
  }

  override forVm(vmId: string): SharedDataView {
    const view = super.forVm(vmId);
    const t = this.tracker;
    const get = view.get.bind(view);
    const set = view.set.bind(view);
    const enqueue = view.enqueue.bind(view);
    const dequeue = view.dequeue.bind(view);
    view.get = (key) => {
      t.current?.setHidden(`reads shared data (${vmId})`);
      return get(key);
    };
    view.set = (key, value, cas) => {
      t.current?.setSideEffect(`writes shared data (${vmId})`);
      return set(key, value, cas);
    };
    const setFrom = view.setFrom.bind(view);
    view.setFrom = (key, size, cas, fill) => {
      t.current?.setSideEffect(`writes shared data (${vmId})`);
      return setFrom(key, size, cas, fill);
    };
    view.enqueue = (id, value) => {
      t.current?.setSideEffect('enqueues to a shared queue');
      return enqueue(id, value);
    };
    view.dequeue = (id) => {
      t.current?.setSideEffect('dequeues from a shared queue');
      return dequeue(id);
    };
    return view;
  }
}

const METRIC_TYPE_PB: Record<number, number> = { [MetricType.Counter]: 0, [MetricType.Gauge]: 1, [MetricType.Histogram]: 2 };

/** Metrics: adapters' updates are recorded as replayable effects; reads are hidden inputs. */
export class TrackingMetrics extends MetricsRegistry {
  private readonly adapterSeries = new Map<number, { adapter: string; name: string; type: MetricType }>();
  private readonly byAdapterName = new Map<string, number>();

  constructor(
    private readonly tracker: Tracker,
    options?: ConstructorParameters<typeof MetricsRegistry>[0],
  ) {
    super(options);
  }

  override define(type: MetricType, fullName: string, owner = 'host', help?: string): number | null {
    const id = super.define(type, fullName, owner, help);
    if (id !== null && owner !== 'host' && !this.adapterSeries.has(id)) {
      this.adapterSeries.set(id, { adapter: owner, name: fullName, type });
      this.byAdapterName.set(`${owner}\0${type}\0${fullName}`, id);
    }
    return id;
  }

  override increment(id: number, delta: number): Status {
    const s = this.tracker.current !== null ? this.adapterSeries.get(id) : undefined;
    if (s !== undefined) this.tracker.current!.effects.push({ metric: { adapter: s.adapter, name: s.name, type: METRIC_TYPE_PB[s.type], op: 0, value: delta } });
    return super.increment(id, delta);
  }

  override record(id: number, value: number): Status {
    const s = this.tracker.current !== null ? this.adapterSeries.get(id) : undefined;
    if (s !== undefined) this.tracker.current!.effects.push({ metric: { adapter: s.adapter, name: s.name, type: METRIC_TYPE_PB[s.type], op: 1, value } });
    return super.record(id, value);
  }

  override get(id: number): ReturnType<MetricsRegistry['get']> {
    if (this.adapterSeries.has(id)) this.tracker.current?.setHidden('reads a metric');
    return super.get(id);
  }

  /**
   * Re-applies a replayed metric effect (a cache hit's share of a check's updates).
   * Only series an adapter defined in this server are accepted, so a client cannot
   * create metrics (the server trusts its clients otherwise: see docs/out-of-process.md).
   */
  replay(m: { adapter?: string; name?: string; type?: number; op?: number; value?: number }): boolean {
    const type = m.type === 1 ? MetricType.Gauge : m.type === 2 ? MetricType.Histogram : MetricType.Counter;
    const id = this.byAdapterName.get(`${m.adapter ?? ''}\0${type}\0${m.name ?? ''}`);
    if (id === undefined || typeof m.value !== 'number' || !Number.isFinite(m.value)) return false;
    const st = m.op === 1 ? super.record(id, m.value) : super.increment(id, m.value);
    return st === Status.Ok;
  }
}

/**
 * The server's logger: adapters' own lines during a check become replayable
 * effects; the host's warnings about an adapter (with a code) mark the check failed.
 */
export function trackingLogger(inner: HostLogger, tracker: Tracker, adapters: () => ReadonlySet<string>): HostLogger {
  return {
    get level() {
      return inner.level;
    },
    log(level: LogLevel, source: string, message: string, extra?: Record<string, unknown>) {
      const t = tracker.current;
      if (t !== null && adapters().has(source)) {
        if (extra !== undefined && extra.code !== undefined) {
          if (level >= LogLevel.Warn) t.failed ??= `${String(extra.code)}: ${message}`;
        } else {
          t.effects.push({ log: { adapter: source, level, message } });
        }
      }
      inner.log(level, source, message, extra);
    },
  };
}

/** HTTP call-outs: a check that makes one depends on its answer and causes it: not cacheable. */
export function trackingTransport(inner: HttpCallTransport, tracker: Tracker): HttpCallTransport {
  return (req) => {
    tracker.current?.setSideEffect(`calls cluster ${req.cluster}`);
    return inner(req);
  };
}
