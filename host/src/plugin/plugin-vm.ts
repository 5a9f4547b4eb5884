// One adapter's VM: a wasm instance from an already compiled module, its root
// context, its per-request contexts, and the host state its ABI calls act on.
//
// Discipline around every call into the guest (as in proxy-wasm-cpp-host):
// the current context is set before the call and cleared after it. Isolation
// (docs/operating.md):
//   * every outermost guest call gets a work budget (the module was rewritten
//     at load by vm/metering.ts); running past it traps with VM_BUDGET_EXCEEDED;
//   * linear memory is capped at load; a trap at the cap is VM_MEMORY_LIMIT;
//   * a trap marks the VM failed, is logged and counted with the adapter's name
//     and the reason, and the VM is re-created from the compiled module at once;
//     only a module crashing on most of its requests is held down, with
//     exponential backoff (plugin/restart-policy.ts);
//   * host functions charge the work budget for what they do, and logging and
//     host memory (shared data, queues, call-outs) are bounded per VM
//     (plugin/host-meter.ts, plugin/guest-log-budget.ts, plugin/accounting.ts, limits.ts);
//   * requests in flight that did not cause the crash carry on: their next
//     callback runs on a fresh context in the replacement VM ("migration");
//     only the request whose callback trapped, and requests paused inside the
//     crashed VM (their pending state died with it), follow the fail strategy;
//   * ABI functions outside the adapter's granted capabilities are linked to
//     stubs that return INTERNAL_FAILURE (WASI: ENOTCAPABLE) and log once.

import { BufferType, LogLevel, MapType, Status, StreamType } from '../abi/constants.js';
import { createImports, ProcExit } from '../abi/host-functions.js';
import { FUEL_EXPORT, GROW_REFUSED_EXPORT } from '../vm/metering.js';
import type { HeaderPair } from '../abi/pairs.js';
import { describeError, HostError, type HostErrorCode } from '../errors.js';
import type { HostLogger } from '../log/logger.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import type { SharedDataView, SharedStore } from '../shared/shared-store.js';
import type { CompiledModule } from '../vm/module.js';
import type { AdapterRuntime, OptionalCallback } from '../chain/adapter.js';
import { GuestMemory } from '../vm/guest-memory.js';
import { BodyBuffer, EMPTY, type HttpStream } from './http-stream.js';
import { dottedPath, getProperty, type PluginFacts, type PropertyValue } from './properties.js';
import { CallResult, StreamContext, type Direction } from './stream-context.js';
import { performHttpCall, type HttpCallResult, type HttpCallTransport } from './http-call.js';
import { defaultForeignFunctions, type ForeignCaller, type ForeignFunctionRegistry, type ForeignResult } from './foreign-functions.js';
import { GrpcCallouts, type GrpcEvent, type GrpcRequest, type GrpcTarget } from './grpc-call.js';
import { RestartTracker, type RestartPolicy, type RestartState } from './restart-policy.js';
import { HostBudgetExceeded, HostMeter, meterImports } from './host-meter.js';
import { cutLogLine, GuestLogBudget } from './guest-log-budget.js';
import { runningAdapter, watchdogId } from '../watchdog.js';
import { hostMemoryUsage, type HostMemoryUsage } from './accounting.js';
import { DEFAULT_FUEL_PER_CALLBACK, MAX_CALLOUT_BYTES, MAX_FD_WRITE_BYTES, MAX_FUEL, MAX_PENDING_CALLOUTS, MAX_TICK_PERIOD_MS, MIN_TICK_PERIOD_MS, START_FUEL_FACTOR } from '../limits.js';

export type FailStrategy = 'FAIL_CLOSE' | 'FAIL_OPEN';

/**
 * Host capabilities an adapter can be restricted to (plugin `capabilities`).
 * HTTP call-outs are governed separately by the plugin's `clusters` grant.
 */
export const CAPABILITY_GROUPS = {
  local_response: ['proxy_send_local_response', 'proxy_close_stream'],
  modify_headers: ['proxy_add_header_map_value', 'proxy_replace_header_map_value', 'proxy_remove_header_map_value', 'proxy_set_header_map_pairs'],
  modify_body: ['proxy_set_buffer_bytes'],
  shared_data: ['proxy_get_shared_data', 'proxy_set_shared_data'],
  shared_queue: ['proxy_register_shared_queue', 'proxy_resolve_shared_queue', 'proxy_enqueue_shared_queue', 'proxy_dequeue_shared_queue'],
  metrics: ['proxy_define_metric', 'proxy_increment_metric', 'proxy_record_metric', 'proxy_get_metric'],
  foreign_function: ['proxy_call_foreign_function'],
  timer: ['proxy_set_tick_period_milliseconds'],
  filter_state: ['proxy_set_property'],
} as const;
export type Capability = keyof typeof CAPABILITY_GROUPS;
export const CAPABILITIES = Object.keys(CAPABILITY_GROUPS) as Capability[];

export type { RestartPolicy } from './restart-policy.js';

// The work-budget defaults live with the other bounds in host/src/limits.ts.
export { DEFAULT_FUEL_PER_CALLBACK, START_FUEL_FACTOR } from '../limits.js';

export interface PluginVmSettings {
  /** The adapter's name in logs, metrics and errors. */
  name: string;
  rootId: string;
  vmId: string;
  pluginConfig: Uint8Array;
  vmConfig: Uint8Array;
  /** `NAME=value` strings the module sees through WASI environ_get (never the host's environment). */
  env: Record<string, string>;
  logLevel: LogLevel;
  /** Upstream clusters this adapter may call with proxy_http_call: name → base URL. */
  clusters: Record<string, string>;
  logger: HostLogger;
  metrics: MetricsRegistry;
  shared: SharedStore;
  httpTransport?: HttpCallTransport;
  /** Crash-loop rule: crashes tolerated per `restartWindowMs` before it applies (or see `restart`). */
  maxRestarts?: number;
  restartWindowMs?: number;
  restart?: RestartPolicy;
  /** Work budget per outermost guest call (metered modules only). */
  fuelPerCallback?: number;
  /** Work budget for initialisation + vm_start + configure (default START_FUEL_FACTOR x fuelPerCallback). */
  startFuel?: number;
  /** Capability groups granted; undefined grants all of them. */
  capabilities?: readonly Capability[];
  /** Host memory bounds for this VM's vm_id in the shared store (plugin limits.maxSharedDataMb / maxQueueMb), bytes. */
  sharedLimits?: { maxBytes?: number; maxQueueBytes?: number };
  /** This host's foreign functions (default: the process-wide defaultForeignFunctions). */
  foreign?: ForeignFunctionRegistry;
  /**
   * Called after every guest callback with its wall time in seconds (the adapter call latency
   * histogram). Timing is sampled: the first call of each callback and on average one in
   * CALL_TIMING_SAMPLE are timed, the others report their callback's last timed duration,
   * so counts are exact and the distribution is an estimate.
   */
  onGuestCall?: (callback: string, seconds: number) => void;
  /** In a worker of a multi-worker proxy: the cluster local quota limits lease from (property wasm_mixer.worker_quota_cluster). */
  workerQuotaCluster?: string;
}

/** A request's context re-created in a replacement VM; wakes and failures go to the chain's original context. */
class MigratedContext extends StreamContext {
  constructor(id: number, readonly origin: StreamContext, generation: number) {
    super(id, origin.stream, generation);
  }
  override wake(direction: Direction | null): void {
    this.origin.wake(direction);
  }
  override fail(err: Error): void {
    this.origin.fail(err);
  }
}

/** Why the VM last crashed. */
export interface CrashInfo {
  readonly code: HostErrorCode;
  readonly callback: string;
  readonly reason: string;
  readonly at: number;
}

const enum Phase {
  None,
  VmStart,
  Configure,
  RequestHeaders,
  RequestBody,
  RequestTrailers,
  ResponseHeaders,
  ResponseBody,
  ResponseTrailers,
  Log,
  Done,
  Tick,
  Queue,
  HttpCallResponse,
  GrpcCallback,
}

interface RootContext {
  readonly kind: 'root';
  readonly id: number;
}
type Context = RootContext | StreamContext;

/** A guest export called with i32 arguments; void callbacks return undefined. */
type GuestExport = (...args: number[]) => number | undefined;
type Exports = Record<string, ((...args: number[]) => number) | undefined> & { memory: WebAssembly.Memory };

let nextContextId = 1;
function newContextId(): number {
  const id = nextContextId;
  nextContextId = id >= 0xfffffff0 ? 1 : id + 1;
  return id;
}

const enc = new TextEncoder();

/** On average one guest callback in this many is timed for onGuestCall (guard). */
export const CALL_TIMING_SAMPLE = 8;

export class PluginVm implements PluginFacts, AdapterRuntime {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  get workerQuotaCluster(): string | undefined {
    return this.settings.workerQuotaCluster;
  }
  readonly metrics: MetricsRegistry;
  shared!: SharedDataView;
  memory!: GuestMemory;
  logLevel: LogLevel;
  environ: Uint8Array[];
  lastCallStatus = { code: 0, message: '' };

  private exports!: Exports;
  private allocator!: (size: number) => number;
  private root!: RootContext;
  private readonly streams = new Map<number, StreamContext>();
  private current: Context | null = null;
  private effective: Context | null = null;
  private phase = Phase.None;
  private callResponse: { headers: HeaderPair[]; trailers: HeaderPair[]; body: BodyBuffer } | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private readonly pendingCalls = new Map<number, AbortController>();
  private nextCallToken = 1;
  private stdio: Record<number, string> = { 1: '', 2: '' };
  private readonly queueListener = (queueId: number) => this.dispatchQueueReady(queueId);
  /** Bumped on every (re)start; contexts from an older generation are dead. */
  generation = 0;
  failed: string | null = null;
  /** The last crash (kept after the restart, for /adapters and the chain's error code). */
  lastCrash: CrashInfo | null = null;
  crashes = 0;
  /** The most fuel one callback used, for sizing the budget. */
  fuelHighWater = 0;
  private fuel: WebAssembly.Global | null = null;
  private growRefused: WebAssembly.Global | null = null;
  private depth = 0;
  private budget = 0;
  private readonly migrated = new WeakMap<StreamContext, StreamContext>();
  private readonly poisoned = new WeakSet<StreamContext>();
  private readonly deniedLogged = new Set<string>();
  private readonly restartPolicy: RestartTracker;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Host functions' charges against the work budget (plugin/host-meter.ts). */
  readonly hostMeter = new HostMeter();
  /** The per-callback log bounds (plugin/guest-log-budget.ts). */
  readonly logBudget = new GuestLogBudget();
  private calloutBytes = 0;
  private calloutHighWater = 0;
  /** This adapter's id for the watchdog's "running" slot. */
  private readonly watchdogId: number;
  private lastLogDropWarn = 0;
  private stopped = false;
  /** The error log line the adapter printed last, quoted in configure errors. */
  private lastErrorLog = '';
  private readonly onFailure: Array<(reason: string) => void> = [];

  constructor(
    readonly compiled: CompiledModule,
    readonly settings: PluginVmSettings,
  ) {
    this.name = settings.name;
    this.rootId = settings.rootId;
    this.vmId = settings.vmId;
    this.metrics = settings.metrics;
    this.logLevel = settings.logLevel;
    this.environ = Object.entries(settings.env).map(([k, v]) => enc.encode(`${k}=${v}`));
    this.watchdogId = watchdogId(settings.name);
    this.restartPolicy = new RestartTracker(settings.restart, { maxRestarts: settings.maxRestarts, windowMs: settings.restartWindowMs });
  }

  /** Instantiates the module and runs VM start and plugin configure. Throws a HostError on failure. */
  start(): void {
    this.generation++;
    this.failed = null;
    this.streams.clear();
    let instance: WebAssembly.Instance;
    this.deniedLogged.clear();
    try {
      instance = new WebAssembly.Instance(this.compiled.module, this.metered(this.restrict(createImports(this))));
    } catch (err) {
      const where = this.compiled.hasStart ? ' (in its wasm start function, which runs under the start budget: 10x limits.fuelPerCallback)' : '';
      throw new HostError('VM_START_FAILED', `adapter ${this.name} (${this.compiled.source}) failed to instantiate${where}: ${describeError(err)}`, { adapter: this.name, file: this.compiled.source, stage: 'instantiate' }, { cause: err });
    }
    this.exports = instance.exports as unknown as Exports;
    this.optionalCallbacks = null;
    this.memory = new GuestMemory(this.exports.memory, this.hostMeter);
    const fuel = (instance.exports as Record<string, unknown>)[FUEL_EXPORT];
    this.fuel = fuel instanceof WebAssembly.Global ? fuel : null;
    this.hostMeter.fuel = this.fuel;
    const refused = (instance.exports as Record<string, unknown>)[GROW_REFUSED_EXPORT];
    this.growRefused = refused instanceof WebAssembly.Global ? refused : null;
    const perCallback = Math.min(this.settings.fuelPerCallback ?? DEFAULT_FUEL_PER_CALLBACK, MAX_FUEL);
    this.budget = Math.min(this.settings.startFuel ?? perCallback * START_FUEL_FACTOR, MAX_FUEL);
    this.shared = this.settings.shared.forVm(this.vmId, this.settings.sharedLimits);
    const alloc = this.exports.proxy_on_memory_allocate ?? this.exports.malloc!;
    this.allocator = alloc;
    this.root = { kind: 'root', id: newContextId() };
    const startFailure = (what: string, err: unknown): HostError => {
      const c = this.classify(err);
      const code: HostErrorCode = c.code === 'VM_TRAP' ? 'VM_START_FAILED' : c.code;
      const hint = c.code === 'VM_BUDGET_EXCEEDED' ? '; raise limits.fuelPerCallback (start gets 10x) if the work is legitimate' : c.code === 'VM_MEMORY_LIMIT' ? '; raise limits.maxMemoryMb' : '';
      return new HostError(code, `adapter ${this.name} (${this.compiled.source}): ${what} trapped: ${c.reason}${hint}`, { adapter: this.name, file: this.compiled.source, stage: what === 'module initialisation' ? 'initialise' : 'configure' }, { cause: err });
    };
    try {
      this.withContext(this.root, Phase.None, () => {
        if (this.exports._initialize) {
          this.exports._initialize();
          this.exports.main?.(0, 0);
        } else {
          this.exports._start?.();
        }
      });
    } catch (err) {
      throw startFailure('module initialisation', err);
    }
    const e = this.exports;
    try {
      this.withContext(this.root, Phase.None, () => e.proxy_on_context_create?.(this.root.id, 0));
      const vmOk = this.withContext(this.root, Phase.VmStart, () => (e.proxy_on_vm_start ? e.proxy_on_vm_start(this.root.id, this.settings.vmConfig.length) : 1));
      if (!vmOk) {
        throw new HostError('VM_START_FAILED', `adapter ${this.name}: proxy_on_vm_start returned false${this.lastErrorLog ? `: ${this.lastErrorLog}` : ''}`, { adapter: this.name });
      }
      this.lastErrorLog = '';
      const cfgOk = this.withContext(this.root, Phase.Configure, () =>
        e.proxy_on_configure ? e.proxy_on_configure(this.root.id, this.settings.pluginConfig.length) : 1,
      );
      if (!cfgOk) {
        throw new HostError(
          'PLUGIN_CONFIGURE_FAILED',
          `adapter ${this.name} refused its configuration${this.lastErrorLog ? `: ${this.lastErrorLog}` : ' (proxy_on_configure returned false)'}; fix pluginConfig for ${this.name}`,
          { adapter: this.name },
        );
      }
    } catch (err) {
      if (err instanceof HostError) throw err;
      throw startFailure('start/configure', err);
    } finally {
      this.budget = perCallback;
    }
    this.metrics.gauge('wasm_mixer_vm_up', 'Whether the adapter VM is running (1) or failed (0).', { adapter: this.name })(1);
    this.metrics.gauge('wasm_mixer_vm_memory_bytes', 'Linear memory of the adapter VM, in bytes.', { adapter: this.name })(this.memory.byteLength);
  }

  /** Replaces the imports of capability groups the adapter was not granted by stubs that refuse and log. */
  private restrict(imports: WebAssembly.Imports): WebAssembly.Imports {
    const granted = this.settings.capabilities;
    if (granted === undefined) return imports;
    const env = imports.env as Record<string, unknown>;
    for (const cap of CAPABILITIES) {
      if (granted.includes(cap)) continue;
      for (const fn of CAPABILITY_GROUPS[cap]) {
        env[fn] = () => {
          this.denied(cap, fn);
          return Status.InternalFailure;
        };
      }
    }
    return imports;
  }

  /**
   * Every import (the capability stubs too) charges the work budget per call and per byte
   * (plugin/host-meter.ts). A module that charges its host calls at their call sites
   * (vm/metering.ts hostCallsCharged), or has no budget, needs no wrapper: bytes are charged
   * by GuestMemory.
   */
  private metered(imports: WebAssembly.Imports): WebAssembly.Imports {
    if (this.compiled.hostCallsCharged || !this.compiled.metered) return imports;
    const seen = new Set<object>();
    for (const ns of Object.values(imports)) {
      if (seen.has(ns)) continue; // both WASI module names share one object
      seen.add(ns);
      meterImports(ns as Record<string, (...args: never[]) => unknown>, this.hostMeter);
    }
    return imports;
  }

  /** Logs (once per function and VM generation) and counts a call outside the adapter's grant. */
  denied(capability: string, fn: string, detail = ''): void {
    this.metrics.counter('wasm_mixer_capability_denied_total', 'ABI calls refused because the adapter was not granted the capability.', { adapter: this.name, capability })();
    if (this.deniedLogged.has(fn + detail)) return;
    this.deniedLogged.add(fn + detail);
    const what = capability === 'http_call' || capability === 'grpc_call'
      ? `called ${fn} to cluster "${detail}", which is not in its clusters grant; add it to plugins[].clusters for ${this.name} if intended`
      : `called ${fn}, but capability "${capability}" is not granted; add "${capability}" to plugins[].capabilities for ${this.name} if intended`;
    this.settings.logger.log(LogLevel.Warn, this.name, `adapter ${what} (further denials are counted in wasm_mixer_capability_denied_total)`, { code: 'CAPABILITY_DENIED', capability });
  }

  /** Stops timers and call-outs; the VM is not called again. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    for (const c of this.pendingCalls.values()) c.abort();
    this.pendingCalls.clear();
    this.closeGrpc();
    this.settings.shared.unlisten(this.queueListener);
  }

  onFailed(listener: (reason: string) => void): void {
    this.onFailure.push(listener);
  }

  get healthy(): boolean {
    return this.failed === null && !this.stopped;
  }

  has(exportName: string): boolean {
    return this.exports[exportName] !== undefined;
  }

  /** Which optional callbacks the module exports, looked up once per instance (the chain asks on every request). */
  private optionalCallbacks: Record<OptionalCallback, boolean> | null = null;

  implements(callback: OptionalCallback): boolean {
    let o = this.optionalCallbacks;
    if (o === null) {
      o = this.optionalCallbacks = {
        request_body: this.has('proxy_on_request_body'),
        response_body: this.has('proxy_on_response_body'),
        request_trailers: this.has('proxy_on_request_trailers'),
        response_trailers: this.has('proxy_on_response_trailers'),
      };
    }
    return o[callback];
  }

  get logger(): HostLogger {
    return this.settings.logger;
  }

  // --- per-request callbacks, called by the chain -----------------------------

  createStream(stream: HttpStream): StreamContext | null {
    if (!this.healthy) return null;
    this.restartPolicy.request();
    const sc = new StreamContext(newContextId(), stream, this.generation);
    this.streams.set(sc.id, sc);
    const f = this.exports.proxy_on_context_create;
    if (f !== undefined && this.guard(sc, Phase.None, 'proxy_on_context_create', f, 2, sc.id, this.root.id) === null) return null;
    return sc;
  }

  /** The error code of the last failure, for the chain (VM_TRAP, VM_BUDGET_EXCEEDED, VM_MEMORY_LIMIT). */
  get failureCode(): HostErrorCode {
    return this.lastCrash?.code ?? 'VM_FAILED';
  }

  /**
   * The context to call for a request: its own while its VM lives; after a
   * restart, a fresh context in the replacement VM (created once), unless this
   * request caused the crash. Null when the adapter is not running.
   */
  private live(sc: StreamContext): StreamContext | null {
    if (this.failed !== null || this.stopped) return null;
    if (sc.generation === this.generation) return sc;
    const m = this.migrated.get(sc);
    if (m !== undefined && m.generation === this.generation) return m;
    if (this.poisoned.has(sc)) return null;
    const n = new MigratedContext(newContextId(), sc, this.generation);
    this.streams.set(n.id, n);
    this.migrated.set(sc, n);
    this.metrics.counter('wasm_mixer_vm_contexts_migrated_total', 'In-flight requests moved to a replacement VM after a crash caused by another request.', { adapter: this.name })();
    const f = this.exports.proxy_on_context_create;
    if (f !== undefined && this.guard(n, Phase.None, 'proxy_on_context_create', f, 2, n.id, this.root.id) === null) return null;
    return n;
  }

  onRequestHeaders(sc: StreamContext, endOfStream: boolean): CallResult {
    return this.headersCall(sc, Phase.RequestHeaders, 'proxy_on_request_headers', sc.stream.requestHeaders.length, endOfStream);
  }

  onResponseHeaders(sc: StreamContext, endOfStream: boolean): CallResult {
    return this.headersCall(sc, Phase.ResponseHeaders, 'proxy_on_response_headers', sc.stream.responseHeaders?.length ?? 0, endOfStream);
  }

  private headersCall(origin: StreamContext, phase: Phase, name: string, n: number, eos: boolean): CallResult {
    if (this.exports[name] === undefined) return CallResult.Continue;
    const sc = this.live(origin);
    if (sc === null) return CallResult.Failed;
    const f = this.exports[name]!;
    // ABI 0.1.0 header callbacks take (context_id, num_headers): no end_of_stream.
    const r = this.compiled.abiVersion === '0.1.0' ? this.guard(sc, phase, name, f, 2, sc.id, n) : this.guard(sc, phase, name, f, 3, sc.id, n, eos ? 1 : 0);
    if (r === null) return CallResult.Failed;
    // Continue and ContinueAndEndStream continue; every stop code (and any
    // unknown value, as cpp-host does) stops until the adapter resumes.
    return r === 0 || r === 2 ? CallResult.Continue : CallResult.Stop;
  }

  onBody(origin: StreamContext, direction: Direction, size: number, eos: boolean): CallResult {
    const name = direction === 'request' ? 'proxy_on_request_body' : 'proxy_on_response_body';
    if (this.exports[name] === undefined) return CallResult.Continue;
    const sc = this.live(origin);
    if (sc === null) return CallResult.Failed;
    const f = this.exports[name]!;
    const r = this.guard(sc, direction === 'request' ? Phase.RequestBody : Phase.ResponseBody, name, f, 3, sc.id, size, eos ? 1 : 0);
    if (r === null) return CallResult.Failed;
    return r === 0 ? CallResult.Continue : CallResult.Stop;
  }

  onTrailers(origin: StreamContext, direction: Direction, n: number): CallResult {
    const name = direction === 'request' ? 'proxy_on_request_trailers' : 'proxy_on_response_trailers';
    if (this.exports[name] === undefined) return CallResult.Continue;
    const sc = this.live(origin);
    if (sc === null) return CallResult.Failed;
    const f = this.exports[name]!;
    const r = this.guard(sc, direction === 'request' ? Phase.RequestTrailers : Phase.ResponseTrailers, name, f, 2, sc.id, n);
    if (r === null) return CallResult.Failed;
    return r === 0 ? CallResult.Continue : CallResult.Stop;
  }

  /**
   * End of stream: proxy_on_done, then (at once, or after the adapter calls
   * proxy_done) proxy_on_log and proxy_on_delete.
   */
  finishStream(origin: StreamContext): void {
    const e = this.exports;
    const sc = e.proxy_on_done === undefined && e.proxy_on_log === undefined && e.proxy_on_delete === undefined && origin.generation !== this.generation ? null : this.live(origin);
    if (sc === null) {
      this.streams.delete(origin.id);
      return;
    }
    if (this.memory.byteLength !== this.lastMemoryBytes) {
      this.lastMemoryBytes = this.memory.byteLength;
      this.metrics.gauge('wasm_mixer_vm_memory_bytes', 'Linear memory of the adapter VM, in bytes.', { adapter: this.name })(this.lastMemoryBytes);
    }
    const done = this.exports.proxy_on_done;
    const r = done === undefined ? 1 : this.guard(sc, Phase.Done, 'proxy_on_done', done, 1, sc.id);
    if (r === 0) {
      sc.donePending = true;
      sc.onDone = () => this.logAndDelete(sc);
      return;
    }
    this.logAndDelete(sc);
  }

  private alive(sc: StreamContext): boolean {
    return sc.generation === this.generation && this.failed === null && !this.stopped;
  }

  private logAndDelete(sc: StreamContext): void {
    sc.donePending = false;
    if (this.alive(sc)) {
      const log = this.exports.proxy_on_log;
      if (log !== undefined) this.guard(sc, Phase.Log, 'proxy_on_log', log, 1, sc.id);
    }
    if (this.alive(sc)) {
      const del = this.exports.proxy_on_delete;
      if (del !== undefined) this.guard(sc, Phase.None, 'proxy_on_delete', del, 1, sc.id);
    }
    this.streams.delete(sc.id);
  }

  // --- guest call discipline -------------------------------------------------------

  private withContext<T>(ctx: Context, phase: Phase, fn: () => T): T {
    const prevCurrent = this.current;
    const prevEffective = this.effective;
    const prevPhase = this.phase;
    const fuel = this.fuel;
    const outermost = this.enter(ctx, phase);
    try {
      return fn();
    } finally {
      this.leave(outermost, fuel, prevCurrent, prevEffective, prevPhase);
    }
  }

  /** Sets the current context for a guest call; true for an outermost call (which gets a fresh budget). */
  private enter(ctx: Context, phase: Phase): boolean {
    this.current = ctx;
    this.effective = null;
    this.phase = phase;
    const outermost = this.depth === 0;
    if (outermost) {
      runningAdapter[0] = this.watchdogId;
      if (this.fuel !== null) this.fuel.value = this.budget;
      this.hostMeter.pending = 0;
      this.logBudget.begin();
    }
    this.depth++;
    return outermost;
  }

  /** Undoes enter (the caller kept what it replaced), after the call returned or threw. */
  private leave(outermost: boolean, fuel: WebAssembly.Global | null, prevCurrent: Context | null, prevEffective: Context | null, prevPhase: Phase): void {
    this.depth--;
    if (outermost) {
      runningAdapter[0] = 0;
      const charged = this.hostMeter.take();
      if (fuel !== null) {
        const used = this.budget - (fuel.value as number) + charged;
        if (used > this.fuelHighWater) this.fuelHighWater = used;
      }
      if (this.logBudget.droppedLines > 0 || this.logBudget.droppedBytes > 0) this.reportDroppedLogs();
    }
    this.current = prevCurrent;
    this.effective = prevEffective;
    this.phase = prevPhase;
  }

  /** Names the reason for a trap: budget, memory cap, stack, proc_exit, or the engine's message. */
  private classify(err: unknown): { code: HostErrorCode; reason: string } {
    if ((this.fuel !== null && (this.fuel.value as number) < 0) || err instanceof HostBudgetExceeded) {
      return { code: 'VM_BUDGET_EXCEEDED', reason: `exceeded its work budget of ${this.budget} fuel units (limits.fuelPerCallback)` };
    }
    if (err instanceof ProcExit) return { code: 'VM_TRAP', reason: `proc_exit(${err.exitCode})` };
    const refused = this.growRefused === null ? 0 : (this.growRefused.value as number);
    if (refused > 0) {
      const max = this.compiled.memoryPages?.maximum ?? 0;
      return {
        code: 'VM_MEMORY_LIMIT',
        reason: `trapped after memory.grow was refused ${refused} time(s) at the cap of ${(max * 65536) / 1048576} MiB (limits.maxMemoryMb; memory was ${this.memory.byteLength / 1048576} MiB): ${describeError(err)}`,
      };
    }
    if (err instanceof RangeError && /call stack/i.test(err.message)) return { code: 'VM_TRAP', reason: 'stack overflow (Maximum call stack size exceeded)' };
    return { code: 'VM_TRAP', reason: describeError(err) };
  }

  /**
   * Runs guest callback `f` with `argc` i32 arguments (a, b, ...); a trap fails the VM and
   * returns null. The arguments are passed, not closed over: no closure per guest call.
   */
  private guard(ctx: Context, phase: Phase, callback: string, f: GuestExport, argc: number, a: number, b = 0, c = 0, d = 0, e = 0): number | null {
    const observe = this.settings.onGuestCall;
    // Timing is sampled (two clock reads cost more than many callbacks): see onGuestCall.
    let t0 = -1;
    let last: number | undefined;
    if (observe !== undefined && (--this.untimedCalls < 0 || (last = this.lastCallSeconds.get(callback)) === undefined)) {
      this.untimedCalls = (Math.random() * 2 * CALL_TIMING_SAMPLE) | 0;
      t0 = performance.now();
    }
    try {
      const prevCurrent = this.current;
      const prevEffective = this.effective;
      const prevPhase = this.phase;
      const fuel = this.fuel;
      const outermost = this.enter(ctx, phase);
      try {
        const r = argc === 1 ? f(a) : argc === 2 ? f(a, b) : argc === 3 ? f(a, b, c) : f(a, b, c, d, e);
        return r ?? 0;
      } finally {
        this.leave(outermost, fuel, prevCurrent, prevEffective, prevPhase);
      }
    } catch (err) {
      if (ctx instanceof StreamContext) this.poisoned.add(ctx instanceof MigratedContext ? ctx.origin : ctx);
      this.crash(callback, err);
      return null;
    } finally {
      if (observe !== undefined) {
        if (t0 >= 0) this.lastCallSeconds.set(callback, (last = (performance.now() - t0) / 1000));
        observe(callback, last!);
      }
    }
  }
  /** Callbacks left before the next timed one, and each callback's last timed duration (guard). */
  private untimedCalls = 0;
  private readonly lastCallSeconds = new Map<string, number>();

  private crash(callback: string, err: unknown): void {
    if (this.failed !== null) return;
    const { code, reason } = this.classify(err);
    this.failed = `${callback}: ${code === 'VM_TRAP' ? '' : `${code}: `}${reason}`;
    this.lastCrash = { code, callback, reason, at: Date.now() };
    this.crashes++;
    this.metrics.counter('wasm_mixer_vm_crashes_total', 'Adapter VM crashes, by reason (VM_TRAP, VM_BUDGET_EXCEEDED, VM_MEMORY_LIMIT).', { adapter: this.name, code })();
    this.metrics.gauge('wasm_mixer_vm_up', 'Whether the adapter VM is running (1) or failed (0).', { adapter: this.name })(0);
    const stack = err instanceof Error && err.stack ? err.stack.split('\n').slice(1, 21).map((l) => l.trim()).join(' | ') : undefined;
    this.settings.logger.log(LogLevel.Error, this.name, `adapter ${this.name} (${this.compiled.source}) crashed in ${callback}: ${reason}; the VM will be replaced`, { code, callback, generation: this.generation, ...(stack ? { stack } : {}) });
    const failure = new HostError(code, `adapter ${this.name} crashed in ${callback}: ${reason}`, { adapter: this.name });
    for (const sc of this.streams.values()) sc.fail(failure);
    this.streams.clear();
    for (const c of this.pendingCalls.values()) c.abort();
    this.pendingCalls.clear();
    this.closeGrpc();
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = null;
    for (const l of this.onFailure) l(this.failed);
    this.scheduleRestart();
  }

  private scheduleRestart(restartFailed = false): void {
    if (this.stopped || this.restartTimer !== null) return;
    const d = this.restartPolicy.crashed(Date.now(), restartFailed);
    if (d.delayMs === 0) return this.restartNow();
    if (!d.crashLooping) {
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        this.restartNow();
      }, d.delayMs);
      this.restartTimer.unref();
      return;
    }
    // Crash-looping: it crashed on most of the requests it was given; restarting at once would only fail them slower.
    this.settings.logger.log(
      LogLevel.Critical,
      this.name,
      `adapter ${this.name} is crash-looping: ${d.crashes} crashes on ${d.requests} requests within ${this.restartPolicy.windowMs} ms (more than restart.maxRestarts ${this.restartPolicy.maxRestarts}, and on most requests); it stays down for ${d.delayMs} ms and requests follow its failStrategy`,
      { code: 'VM_FAILED', crashes: d.crashes, requests: d.requests, downMs: d.delayMs },
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.restartNow();
    }, d.delayMs);
    this.restartTimer.unref();
  }

  private restartNow(): void {
    if (this.stopped) return;
    this.restartPolicy.restarted();
    try {
      this.start();
      this.settings.logger.log(LogLevel.Warn, this.name, `adapter ${this.name} VM restarted (generation ${this.generation})`, { code: 'VM_RESTARTED' });
      this.metrics.counter('wasm_mixer_vm_restarts_total', 'VM restarts after an adapter crash.', { adapter: this.name })();
    } catch (err) {
      this.failed = `restart: ${describeError(err)}`;
      this.settings.logger.log(LogLevel.Error, this.name, `adapter ${this.name} VM restart failed: ${describeError(err)}`, { code: 'VM_FAILED' });
      this.scheduleRestart(true);
    }
  }

  /** Restart state for /adapters: running, restarting, crash-looping (with the next restart time). */
  get restartState(): RestartState {
    return this.restartPolicy.state(this.healthy, this.stopped);
  }

  /** Host memory this VM holds (shared data and queues of its vm_id, call-outs, log buffers), for /adapters and /metrics. */
  get hostMemory(): HostMemoryUsage {
    return hostMemoryUsage(this.settings.shared.usage(this.vmId), {
      pendingCallouts: this.pendingCalls.size,
      calloutBytes: this.calloutBytes,
      calloutBytesHighWater: this.calloutHighWater,
      logBufferBytes: (this.stdio[1]?.length ?? 0) + (this.stdio[2]?.length ?? 0),
    });
  }

  /** Counts log lines dropped by the per-callback budget; says so at most once a minute per VM. */
  private reportDroppedLogs(): void {
    const b = this.logBudget;
    this.metrics.counter('wasm_mixer_adapter_log_dropped_total', 'Adapter log lines dropped by the per-callback log bounds.', { adapter: this.name })(b.droppedLines);
    this.metrics.counter('wasm_mixer_adapter_log_dropped_bytes_total', 'Adapter log bytes dropped or cut by the log bounds.', { adapter: this.name })(b.droppedBytes);
    const now = Date.now();
    if (now - this.lastLogDropWarn < 60_000) return;
    this.lastLogDropWarn = now;
    this.settings.logger.log(LogLevel.Warn, this.name, `adapter ${this.name} logged more than the per-callback bounds (lines, bytes) allow: ${b.droppedLines} lines and ${b.droppedBytes} bytes dropped or cut in one callback (counted in wasm_mixer_adapter_log_dropped_total; this warning repeats at most once a minute)`, { code: 'VM_HOST_LIMIT' });
  }

  private context(): Context | null {
    return this.effective ?? this.current;
  }

  private streamContext(): StreamContext | null {
    const c = this.context();
    return c !== null && c instanceof StreamContext ? c : null;
  }

  // --- state the ABI functions act on (called from abi/host-functions.ts) -----------

  allocate(size: number): number {
    try {
      const p = this.allocator(size) >>> 0;
      return p !== 0 && this.memory.inBounds(p, size) ? p : 0;
    } catch (err) {
      // A trapping allocator is a crash of the adapter; rethrow so the callback unwinds.
      throw err;
    }
  }

  /** proxy_log/stdio: whether a line of `size` bytes is logged at all (level, and the callback's log budget). */
  admitLog(level: LogLevel, size: number): boolean {
    if (level < this.logLevel && level < LogLevel.Error) return false;
    return this.logBudget.admit(size);
  }

  guestLog(level: LogLevel, message: string): void {
    if (level < this.logLevel && level < LogLevel.Error) return;
    // An adapter that logs the request's credentials does not leak them: the
    // values of this request's authorization/cookie/API-key headers are masked.
    const sc = this.streamContext();
    if (sc !== null) message = scrubRequestCredentials(message, sc.stream.requestHeaders);
    if (level >= LogLevel.Error) this.lastErrorLog = message;
    if (level < this.logLevel) return;
    this.settings.logger.log(level, this.name, message);
  }

  /** WASI stdout/stderr: whole lines are logged (at info/error) within the callback's log budget. `dropped`: bytes past fd_write's per-call bound. */
  stdioWrite(fd: number, chunks: Uint8Array[], dropped = 0): void {
    const level = fd === 1 ? LogLevel.Info : LogLevel.Error;
    if (dropped > 0) this.logBudget.dropBytes(dropped);
    let text = this.stdio[fd]! + chunks.map((c) => Buffer.from(c).toString('utf8')).join('');
    let nl: number;
    let from = 0;
    while ((nl = text.indexOf('\n', from)) >= 0) {
      if (this.admitLog(level, nl - from)) this.guestLog(level, cutLogLine(text.slice(from, nl)));
      from = nl + 1;
    }
    text = text.slice(from);
    if (text.length >= MAX_FD_WRITE_BYTES) {
      if (this.admitLog(level, text.length)) this.guestLog(level, cutLogLine(text));
      text = '';
    }
    this.stdio[fd] = text;
  }

  setTickPeriod(ms: number): void {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = null;
    if (ms === 0 || this.stopped) return;
    // Node runs a timer of more than 2^31-1 ms after 1 ms (TimeoutOverflowWarning): clamp both ends.
    const period = Math.min(Math.max(ms, MIN_TICK_PERIOD_MS), MAX_TICK_PERIOD_MS);
    const gen = this.generation;
    this.tickTimer = setInterval(() => {
      const f = this.exports.proxy_on_tick;
      if (f === undefined || gen !== this.generation || !this.healthy) return;
      this.guard(this.root, Phase.Tick, 'proxy_on_tick', f, 1, this.root.id);
    }, period);
    this.tickTimer.unref();
  }

  setEffectiveContext(id: number): boolean {
    if (id === this.root.id) {
      this.effective = this.root;
      return true;
    }
    const sc = this.streams.get(id);
    if (sc === undefined) return false;
    this.effective = sc;
    return true;
  }

  markDone(): boolean {
    const sc = this.streamContext();
    if (sc === null || !sc.donePending || sc.onDone === null) return false;
    const cb = sc.onDone;
    sc.onDone = null;
    queueMicrotask(cb);
    return true;
  }

  continueStream(type: StreamType): boolean {
    const sc = this.streamContext();
    if (sc === null) return false;
    sc.wake(type === StreamType.HttpRequest ? 'request' : 'response');
    return true;
  }

  closeStream(): boolean {
    const sc = this.streamContext();
    if (sc === null) return false;
    sc.stream.reset = true;
    sc.wake(null);
    return true;
  }

  sendLocalResponse(status: number, details: string, body: Uint8Array, headers: HeaderPair[], grpcStatus: number): boolean {
    const sc = this.streamContext();
    if (sc === null || sc.stream.responseHeadersSent || this.phase === Phase.Log) return false;
    sc.stream.localResponse = {
      status,
      details,
      body,
      headers: headers.map(([k, v]) => [k.toLowerCase(), v]),
      grpcStatus,
      adapter: this.name,
    };
    sc.wake(null);
    return true;
  }

  /** undefined: unknown map type; null: not available here. */
  headerMap(type: number, write: boolean): HeaderPair[] | null | undefined {
    if (type < MapType.HttpRequestHeaders || type > MapType.HttpCallResponseTrailers) return undefined;
    if (type === MapType.HttpCallResponseHeaders || type === MapType.HttpCallResponseTrailers) {
      if (this.phase !== Phase.HttpCallResponse || this.callResponse === null || write) return null;
      return type === MapType.HttpCallResponseHeaders ? this.callResponse.headers : this.callResponse.trailers;
    }
    if (type === MapType.GrpcReceiveInitialMetadata || type === MapType.GrpcReceiveTrailingMetadata) return this.grpcMetadata(type, write);
    const sc = this.streamContext();
    if (sc === null) return null;
    const s = sc.stream;
    const readOnly = this.phase === Phase.Log;
    switch (type) {
      case MapType.HttpRequestHeaders:
        return write && (readOnly || s.requestHeadersSent) ? null : s.requestHeaders;
      case MapType.HttpRequestTrailers:
        if (write && readOnly) return null;
        if (write && s.requestTrailers === null && this.phase === Phase.RequestBody && s.requestBody.endOfStream) s.requestTrailers = [];
        return s.requestTrailers;
      case MapType.HttpResponseHeaders:
        return write && (readOnly || s.responseHeadersSent) ? null : s.responseHeaders;
      case MapType.HttpResponseTrailers:
        if (write && readOnly) return null;
        if (write && s.responseTrailers === null && this.phase === Phase.ResponseBody && s.responseBody.endOfStream) s.responseTrailers = [];
        return s.responseTrailers;
      default:
        return null; // gRPC metadata: no gRPC call-outs in this host yet
    }
  }

  headersChanged(_type: MapType): void {
    // Header maps are read by the proxy when it forwards; nothing is cached.
  }

  /** The buffer of a type in the current callback, or null when it is not available here. */
  buffer(type: BufferType): BodyBuffer | null {
    switch (type) {
      case BufferType.HttpRequestBody: {
        const sc = this.streamContext();
        return sc !== null && this.phase === Phase.RequestBody ? sc.stream.requestBody : null;
      }
      case BufferType.HttpResponseBody: {
        const sc = this.streamContext();
        return sc !== null && this.phase === Phase.ResponseBody ? sc.stream.responseBody : null;
      }
      case BufferType.HttpCallResponseBody:
        return this.phase === Phase.HttpCallResponse && this.callResponse !== null ? this.callResponse.body : null;
      case BufferType.GrpcReceiveBuffer:
        return this.grpcMessage();
      case BufferType.VmConfiguration:
        return this.phase === Phase.VmStart ? readOnlyBuffer(this.settings.vmConfig) : null;
      case BufferType.PluginConfiguration:
        return this.phase === Phase.Configure ? readOnlyBuffer(this.settings.pluginConfig) : null;
      default:
        return null;
    }
  }

  /** ABI 0.1.0 proxy_get_configuration: the VM configuration in proxy_on_vm_start, the plugin's in proxy_on_configure. */
  configuration(): Uint8Array {
    if (this.phase === Phase.VmStart) return this.settings.vmConfig;
    if (this.phase === Phase.Configure) return this.settings.pluginConfig;
    return EMPTY;
  }

  replaceBuffer(type: BufferType, bytes: Uint8Array): void {
    const buf = this.buffer(type);
    if (buf !== null) buf.bytes = bytes;
  }

  getProperty(path: string): PropertyValue | null {
    return getProperty(path, this.streamContext()?.stream ?? null, this);
  }

  setProperty(path: string, value: Uint8Array): boolean {
    const sc = this.streamContext();
    if (sc === null) return false;
    sc.stream.filterState.set(dottedPath(path), value);
    return true;
  }

  registerQueue(name: string): number {
    return this.settings.shared.registerQueue(this.vmId, name, this.queueListener);
  }

  private dispatchQueueReady(queueId: number): void {
    const f = this.exports.proxy_on_queue_ready;
    if (f === undefined || !this.healthy) return;
    this.guard(this.root, Phase.Queue, 'proxy_on_queue_ready', f, 2, this.root.id, queueId);
  }

  /** proxy_call_foreign_function: bytes for OK, or the status to return (NOT_FOUND for unknown or ungranted names). */
  callForeign(name: string, args: Uint8Array): ForeignResult {
    const caller = (this.foreignCaller ??= {
      adapter: this.name,
      warn: (m) => this.settings.logger.log(LogLevel.Warn, this.name, m, { code: 'CAPABILITY_DENIED' }),
      property: (path) => this.getProperty(path), // the current context's, at call time
    });
    return (this.settings.foreign ?? defaultForeignFunctions).call(caller, name, args);
  }
  private foreignCaller: ForeignCaller | null = null;

  /** Starts an HTTP call-out; returns its token, or null for an unknown cluster. */
  httpCall(cluster: string, headers: HeaderPair[], body: Uint8Array, timeoutMs: number): number | null {
    const base = Object.hasOwn(this.settings.clusters, cluster) ? this.settings.clusters[cluster] : undefined;
    if (base === undefined) {
      this.denied('http_call', 'proxy_http_call', cluster.slice(0, 100));
      return null;
    }
    if (this.pendingCalls.size >= MAX_PENDING_CALLOUTS || this.calloutBytes + body.length > MAX_CALLOUT_BYTES) {
      this.metrics.counter('wasm_mixer_adapter_host_limit_total', 'Guest requests refused at a host-memory bound, by kind.', { adapter: this.name, kind: 'callouts' })();
      if (!this.deniedLogged.has('callout-limit')) {
        this.deniedLogged.add('callout-limit');
        this.settings.logger.log(LogLevel.Warn, this.name, `adapter ${this.name} has ${this.pendingCalls.size} HTTP call-outs (${this.calloutBytes} bytes) in flight, the most a VM may (${MAX_PENDING_CALLOUTS} calls, ${MAX_CALLOUT_BYTES} bytes); refusing more`, { code: 'VM_HOST_LIMIT' });
      }
      return null;
    }
    const token = this.nextCallToken++;
    const ac = new AbortController();
    this.pendingCalls.set(token, ac);
    this.calloutBytes += body.length;
    if (this.calloutBytes > this.calloutHighWater) this.calloutHighWater = this.calloutBytes;
    const gen = this.generation;
    const transport = this.settings.httpTransport ?? performHttpCall;
    let held = body.length;
    // Response bytes count against the same bound as they arrive; past it the call is aborted (answered as failed).
    const account = (n: number): boolean => {
      if (this.calloutBytes + n > MAX_CALLOUT_BYTES) {
        this.metrics.counter('wasm_mixer_adapter_host_limit_total', 'Guest requests refused at a host-memory bound, by kind.', { adapter: this.name, kind: 'callout_response' })();
        return false;
      }
      this.calloutBytes += n;
      held += n;
      if (this.calloutBytes > this.calloutHighWater) this.calloutHighWater = this.calloutBytes;
      return true;
    };
    const settle = (res: HttpCallResult | null) => {
      this.calloutBytes -= held;
      this.deliverCallResponse(token, gen, res);
    };
    transport({ cluster, baseUrl: base, headers, body, timeoutMs, signal: ac.signal, account }).then(settle, () => settle(null));
    return token;
  }

  private deliverCallResponse(token: number, gen: number, res: HttpCallResult | null): void {
    if (!this.pendingCalls.delete(token) || gen !== this.generation || !this.healthy) return;
    const f = this.exports.proxy_on_http_call_response;
    if (f === undefined) return;
    const body = new BodyBuffer();
    body.writable = false;
    body.endOfStream = true;
    if (res !== null) body.bytes = res.body;
    this.callResponse = res === null ? null : { headers: res.headers, trailers: res.trailers, body };
    this.lastCallStatus = res === null ? { code: 14, message: 'call-out failed' } : { code: 0, message: '' };
    try {
      this.guard(this.root, Phase.HttpCallResponse, 'proxy_on_http_call_response', f, 5, this.root.id, token, res === null ? 0 : res.headers.length, res === null ? 0 : res.body.length, res === null ? 0 : res.trailers.length);
    } finally {
      this.callResponse = null;
    }
  }

  // --- gRPC call-outs (plugin/grpc-call.ts) ---------------------------------------

  private grpc: GrpcCallouts | null = null;
  private grpcEvent: GrpcEvent | null = null;

  /** The granted cluster's gRPC address, or null (logged and counted) when the plugin may not call it. */
  grpcTarget(cluster: string, fn: string): GrpcTarget | null {
    const base = Object.hasOwn(this.settings.clusters, cluster) ? this.settings.clusters[cluster] : undefined;
    if (base === undefined) {
      this.denied('grpc_call', fn, cluster.slice(0, 100));
      return null;
    }
    const url = new URL(base);
    return { address: url.host, tls: url.protocol === 'https:' };
  }

  /** The VM's call-outs (created on first use, per VM generation). */
  grpcCallouts(): GrpcCallouts {
    if (this.grpc === null) {
      const gen = this.generation;
      this.grpc = new GrpcCallouts((e) => this.deliverGrpc(gen, e), () => this.nextCallToken++);
    }
    return this.grpc;
  }

  grpcCall(req: GrpcRequest, message: Uint8Array, timeoutMs: number): number | null {
    return this.grpcCallouts().call(req, message, timeoutMs);
  }

  grpcStream(req: GrpcRequest): number | null {
    return this.grpcCallouts().stream(req);
  }

  private closeGrpc(): void {
    this.grpc?.closeAll();
    this.grpc = null;
  }

  private grpcMetadata(type: MapType, write: boolean): HeaderPair[] | null {
    const e = this.grpcEvent;
    if (write || e === null || this.phase !== Phase.GrpcCallback) return null;
    if (type === MapType.GrpcReceiveInitialMetadata && e.kind === 'initial_metadata') return e.metadata;
    if (type === MapType.GrpcReceiveTrailingMetadata && e.kind === 'trailing_metadata') return e.metadata;
    return null;
  }

  private grpcMessage(): BodyBuffer | null {
    const e = this.grpcEvent;
    return e !== null && e.kind === 'message' && this.phase === Phase.GrpcCallback ? readOnlyBuffer(e.message) : null;
  }

  /** Calls the module's proxy_on_grpc_* callback for an event, on the root context (as cpp-host does). */
  private deliverGrpc(gen: number, e: GrpcEvent): void {
    if (gen !== this.generation || !this.healthy) return;
    const name = GRPC_CALLBACKS[e.kind];
    const f = this.exports[name];
    if (f === undefined) return;
    const arg = e.kind === 'message' ? e.message.length : e.kind === 'close' ? e.status : e.metadata.length;
    this.grpcEvent = e;
    this.lastCallStatus = e.kind === 'close' ? { code: e.status, message: e.message } : { code: 0, message: '' };
    try {
      this.guard(this.root, Phase.GrpcCallback, name, f, 3, this.root.id, e.token, arg);
    } finally {
      this.grpcEvent = null;
    }
  }

  private lastMemoryBytes = 0;

  get liveStreams(): number {
    return this.streams.size;
  }

  get memoryBytes(): number {
    return this.memory.byteLength;
  }
}

const GRPC_CALLBACKS: Record<GrpcEvent['kind'], string> = {
  initial_metadata: 'proxy_on_grpc_receive_initial_metadata',
  message: 'proxy_on_grpc_receive',
  trailing_metadata: 'proxy_on_grpc_receive_trailing_metadata',
  close: 'proxy_on_grpc_close',
};

const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'api-key', 'x-auth-token']);

function scrubRequestCredentials(message: string, headers: readonly HeaderPair[]): string {
  let out = message;
  for (const [k, v] of headers) {
    if (!CREDENTIAL_HEADERS.has(k) || v.length < 4) continue;
    const parts = [v];
    if (k === 'cookie') for (const c of v.split(';')) parts.push(c.trim(), c.slice(c.indexOf('=') + 1).trim());
    else {
      const sp = v.indexOf(' ');
      if (sp > 0) parts.push(v.slice(sp + 1));
    }
    for (const p of parts) if (p.length >= 4 && out.includes(p)) out = out.split(p).join('[redacted]');
  }
  return out;
}

function readOnlyBuffer(bytes: Uint8Array): BodyBuffer {
  const b = new BodyBuffer();
  b.bytes = bytes.length === 0 ? EMPTY : bytes;
  b.endOfStream = true;
  b.writable = false;
  return b;
}

export { Status, CallResult, StreamContext, type Direction };
