// One adapter's VM: a wasm instance from an already compiled module, its root
// context, its per-request contexts, its lifecycle (start, crash, restart, stop)
// and the per-request callbacks the chain calls. The state the ABI acts on
// (abi/context.ts) is its base class, plugin/abi-state.ts; the concerns around
// it live next to this file: the guest call discipline (guest-call.ts), capability stubs
// (capabilities.ts), call-outs (callouts.ts), ticks and queues
// (timers-queues.ts), stdio and log scrubbing (stdio.ts), restart backoff
// (restart-policy.ts).
//
// Isolation (docs/operating.md):
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
//
// About 460 lines, one file: start, crash, restart and the per-request callbacks
// all act on the VM's generation, streams and migration state.

import { LogLevel } from '../abi/constants.js';
import { createImports } from '../abi/imports.js';
import type { Adapter, AdapterDetails, CrashInfo, OptionalCallback } from '../chain/adapter.js';
import { describeError, HostError, type HostErrorCode } from '../errors.js';
import type { HttpStream } from '../stream/http-stream.js';
import { CallResult, StreamContext, type Direction } from '../stream/stream-context.js';
import { FUEL_EXPORT, GROW_REFUSED_EXPORT } from '../vm/metering.js';
import type { CompiledModule } from '../vm/module.js';
import { DEFAULT_FUEL_PER_CALLBACK, MAX_FUEL, START_FUEL_FACTOR } from '../limits.js';
import { defaultGuestMemory, VmAbiState, type Exports, type GuestFn, type PluginVmSettings } from './abi-state.js';
import { hostMemoryUsage, type HostMemoryUsage } from './accounting.js';
import { restrictImports } from './capabilities.js';
import { fuelCounter } from './fuel-counter.js';
import { CallPhase, MigratedContext, newContextId, type GuestContext } from './guest-call.js';
import { meterImports, type HostMeter } from './host-meter.js';
import { RestartTracker, type RestartState } from './restart-policy.js';

export type FailStrategy = 'FAIL_CLOSE' | 'FAIL_OPEN';

export { CAPABILITY_GROUPS, CAPABILITIES, type Capability } from './capabilities.js';
export type { RestartPolicy } from './restart-policy.js';
export type { GuestMemoryFactory, PluginVmSettings } from './abi-state.js';
export type { CrashInfo } from '../chain/adapter.js';

// The work-budget defaults live with the other bounds in host/src/limits.ts.
export { DEFAULT_FUEL_PER_CALLBACK, START_FUEL_FACTOR } from '../limits.js';

/** On average one guest callback in this many is timed for onGuestCall (guard). */
export const CALL_TIMING_SAMPLE = 8;

/**
 * The per-request callbacks by index (Cb): guard() keeps each one's last timed duration
 * in an array slot and start() looks their exports up once, not on every request.
 * Root callbacks (ticks, queues, call-out answers) get indexes after these (callbackId).
 */
const STREAM_CALLBACKS = [
  'proxy_on_context_create',
  'proxy_on_request_headers',
  'proxy_on_response_headers',
  'proxy_on_request_body',
  'proxy_on_response_body',
  'proxy_on_request_trailers',
  'proxy_on_response_trailers',
  'proxy_on_done',
  'proxy_on_log',
  'proxy_on_delete',
] as const;
const enum Cb {
  ContextCreate,
  RequestHeaders,
  ResponseHeaders,
  RequestBody,
  ResponseBody,
  RequestTrailers,
  ResponseTrailers,
  Done,
  Log,
  Delete,
}

export class PluginVm extends VmAbiState implements Adapter {
  /** Bumped on every (re)start; contexts from an older generation are dead. */
  generation = 0;
  failed: string | null = null;
  /** The last crash (kept after the restart, for /adapters and the chain's error code). */
  lastCrash: CrashInfo | null = null;
  crashes = 0;
  private readonly migrated = new WeakMap<StreamContext, StreamContext>();
  private readonly poisoned = new WeakSet<StreamContext>();
  private readonly restartPolicy: RestartTracker;
  private restartTimer: NodeJS.Timeout | null = null;
  private readonly onFailure: Array<(reason: string) => void> = [];
  private lastMemoryBytes = 0;
  /** This instance's per-request callback exports, by Cb (undefined: not exported). */
  private fns: Array<GuestFn | undefined> = [];
  /** ABI 0.1.0 header callbacks take no end_of_stream. */
  private readonly v010: boolean;
  /** Makes the observer of one callback's duration (settings.onGuestCall). */
  private readonly observerFor: ((callback: string) => (seconds: number, times?: number) => void) | undefined;
  /** Each callback's duration observer by guard() index, made on its first call: no lookup by name per call. */
  private readonly callObservers: Array<((seconds: number, times?: number) => void) | undefined> = [];
  /** Removes the collector that reports untimed calls before the registry is read. */
  private readonly dropCollector: (() => void) | null = null;

  constructor(compiled: CompiledModule, settings: PluginVmSettings) {
    super(compiled, settings);
    this.restartPolicy = new RestartTracker(settings.restart, { maxRestarts: settings.maxRestarts, windowMs: settings.restartWindowMs });
    this.v010 = compiled.abiVersion === '0.1.0';
    this.observerFor = settings.onGuestCall;
    if (this.observerFor !== undefined) this.dropCollector = settings.metrics.addCollector(() => this.reportUntimedCalls());
  }

  /** Host functions' charges against the work budget (plugin/host-meter.ts). */
  get hostMeter(): HostMeter {
    return this.calls.hostMeter;
  }

  /** The most fuel one callback used, for sizing the budget. */
  get fuelHighWater(): number {
    return this.calls.fuelHighWater;
  }

  /** Instantiates the module and runs VM start and plugin configure. Throws a HostError on failure. */
  start(): void {
    this.generation++;
    this.failed = null;
    this.streams.clear();
    let instance: WebAssembly.Instance;
    this.denials.reset();
    try {
      const imports = restrictImports(createImports(this), this.settings.capabilities, this.denials);
      // A module that charges its host calls itself (vm/metering.ts hostCallsCharged), or has no budget, needs no wrapper: GuestMemory charges the bytes.
      instance = new WebAssembly.Instance(this.compiled.module, this.compiled.hostCallsCharged || !this.compiled.metered ? imports : meterAll(imports, this.calls.hostMeter));
    } catch (err) {
      const where = this.compiled.hasStart ? ' (in its wasm start function, which runs under the start budget: 10x limits.fuelPerCallback)' : '';
      throw new HostError('VM_START_FAILED', `adapter ${this.name} (${this.compiled.source}) failed to instantiate${where}: ${describeError(err)}`, { adapter: this.name, file: this.compiled.source, stage: 'instantiate' }, { cause: err });
    }
    const exports = instance.exports;
    const memory = exports.memory;
    // vm/module.ts refused modules without a memory export; WebAssembly gives exports no static shape.
    if (!(memory instanceof WebAssembly.Memory)) throw new HostError('VM_START_FAILED', `adapter ${this.name} (${this.compiled.source}) exports no memory`, { adapter: this.name });
    this.exports = exports as Exports;
    this.fns = STREAM_CALLBACKS.map((n) => this.exports[n]);
    this.optionalCallbacks = null;
    this.memory = (this.settings.guestMemory ?? defaultGuestMemory)(memory, this.calls.hostMeter);
    const fuel = exports[FUEL_EXPORT];
    this.calls.fuel = fuel instanceof WebAssembly.Global ? fuelCounter(fuel) : null;
    this.calls.hostMeter.fuel = this.calls.fuel;
    const refused = exports[GROW_REFUSED_EXPORT];
    this.calls.growRefused = refused instanceof WebAssembly.Global ? refused : null;
    const perCallback = Math.min(this.settings.fuelPerCallback ?? DEFAULT_FUEL_PER_CALLBACK, MAX_FUEL);
    this.calls.budget = Math.min(this.settings.startFuel ?? perCallback * START_FUEL_FACTOR, MAX_FUEL);
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
      this.calls.run(this.root, CallPhase.None, () => {
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
      this.calls.run(this.root, CallPhase.None, () => e.proxy_on_context_create?.(this.root.id, 0));
      const vmOk = this.calls.run(this.root, CallPhase.VmStart, () => (e.proxy_on_vm_start ? e.proxy_on_vm_start(this.root.id, this.settings.vmConfig.length) : 1));
      if (!vmOk) {
        throw new HostError('VM_START_FAILED', `adapter ${this.name}: proxy_on_vm_start returned false${this.lastErrorLog ? `: ${this.lastErrorLog}` : ''}`, { adapter: this.name });
      }
      this.lastErrorLog = '';
      const cfgOk = this.calls.run(this.root, CallPhase.Configure, () =>
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
      this.calls.budget = perCallback;
    }
    this.metrics.gauge('wasm_mixer_vm_up', 'Whether the adapter VM is running (1) or failed (0).', { adapter: this.name })(1);
    this.metrics.gauge('wasm_mixer_vm_memory_bytes', 'Linear memory of the adapter VM, in bytes.', { adapter: this.name })(this.memory.byteLength);
  }

  /** Logs (once per function and VM generation) and counts a call outside the adapter's grant. */
  denied(capability: string, fn: string, detail = ''): void {
    this.denials.denied(capability, fn, detail);
  }

  /** Stops timers and call-outs; the VM is not called again. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.reportUntimedCalls();
    this.dropCollector?.();
    this.timers.stop();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.callouts.abortAll();
  }

  onFailed(listener: (reason: string) => void): void {
    this.onFailure.push(listener);
  }

  get healthy(): boolean {
    return this.failed === null && !this.stopped;
  }

  /** Which optional callbacks the module exports, looked up once per instance (the chain asks on every request). */
  private optionalCallbacks: Record<OptionalCallback, boolean> | null = null;

  implements(callback: OptionalCallback): boolean {
    let o = this.optionalCallbacks;
    if (o === null) {
      o = this.optionalCallbacks = {
        request_headers: this.has('proxy_on_request_headers'),
        response_headers: this.has('proxy_on_response_headers'),
        request_body: this.has('proxy_on_request_body'),
        response_body: this.has('proxy_on_response_body'),
        request_trailers: this.has('proxy_on_request_trailers'),
        response_trailers: this.has('proxy_on_response_trailers'),
      };
    }
    return o[callback];
  }

  /** The error code of the last failure, for the chain (VM_TRAP, VM_BUDGET_EXCEEDED, VM_MEMORY_LIMIT). */
  get failureCode(): HostErrorCode {
    return this.lastCrash?.code ?? 'VM_FAILED';
  }

  get liveStreams(): number {
    return this.streams.size;
  }

  get memoryBytes(): number {
    return this.memory.byteLength;
  }

  /** Restart state for /adapters: running, restarting, crash-looping (with the next restart time). */
  get restartState(): RestartState {
    return this.restartPolicy.state(this.healthy, this.stopped);
  }

  /** Host memory this VM holds (shared data and queues of its vm_id, call-outs, log buffers), for /adapters and /metrics. */
  get hostMemory(): HostMemoryUsage {
    return hostMemoryUsage(this.settings.shared.usage(this.vmId), { ...this.callouts.inFlight, logBufferBytes: this.stdio.bufferedBytes });
  }

  details(): AdapterDetails {
    return { fuelHighWater: this.fuelHighWater, memoryBytes: this.memoryBytes, hostMemory: this.hostMemory, restart: this.restartState, remote: null };
  }

  // --- per-request callbacks, called by the chain -----------------------------

  createStream(stream: HttpStream): StreamContext | null {
    if (!this.healthy) return null;
    this.restartPolicy.request();
    const sc = new StreamContext(newContextId(), stream, this.generation);
    this.streams.set(sc.id, sc);
    const f = this.fns[Cb.ContextCreate];
    if (f !== undefined && this.guard(sc, CallPhase.None, Cb.ContextCreate, f, 2, sc.id, this.root.id) === null) return null;
    return sc;
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
    const f = this.fns[Cb.ContextCreate];
    if (f !== undefined && this.guard(n, CallPhase.None, Cb.ContextCreate, f, 2, n.id, this.root.id) === null) return null;
    return n;
  }

  onRequestHeaders(sc: StreamContext, endOfStream: boolean): CallResult {
    return this.headersCall(sc, CallPhase.RequestHeaders, Cb.RequestHeaders, sc.stream.requestHeaders.length, endOfStream);
  }

  onResponseHeaders(sc: StreamContext, endOfStream: boolean): CallResult {
    return this.headersCall(sc, CallPhase.ResponseHeaders, Cb.ResponseHeaders, sc.stream.responseHeaders?.length ?? 0, endOfStream);
  }

  private headersCall(origin: StreamContext, phase: CallPhase, cb: Cb, n: number, eos: boolean): CallResult {
    const f = this.fns[cb];
    if (f === undefined) return CallResult.Continue;
    const sc = this.live(origin);
    if (sc === null) return CallResult.Failed;
    // ABI 0.1.0 header callbacks take (context_id, num_headers): no end_of_stream.
    const r = this.v010 ? this.guard(sc, phase, cb, f, 2, sc.id, n) : this.guard(sc, phase, cb, f, 3, sc.id, n, eos ? 1 : 0);
    if (r === null) return CallResult.Failed;
    // Continue and ContinueAndEndStream continue; every stop code (and any
    // unknown value, as cpp-host does) stops until the adapter resumes.
    return r === 0 || r === 2 ? CallResult.Continue : CallResult.Stop;
  }

  onBody(origin: StreamContext, direction: Direction, size: number, eos: boolean): CallResult {
    const cb = direction === 'request' ? Cb.RequestBody : Cb.ResponseBody;
    const f = this.fns[cb];
    if (f === undefined) return CallResult.Continue;
    const sc = this.live(origin);
    if (sc === null) return CallResult.Failed;
    const r = this.guard(sc, direction === 'request' ? CallPhase.RequestBody : CallPhase.ResponseBody, cb, f, 3, sc.id, size, eos ? 1 : 0);
    if (r === null) return CallResult.Failed;
    return r === 0 ? CallResult.Continue : CallResult.Stop;
  }

  onTrailers(origin: StreamContext, direction: Direction, n: number): CallResult {
    const cb = direction === 'request' ? Cb.RequestTrailers : Cb.ResponseTrailers;
    const f = this.fns[cb];
    if (f === undefined) return CallResult.Continue;
    const sc = this.live(origin);
    if (sc === null) return CallResult.Failed;
    const r = this.guard(sc, direction === 'request' ? CallPhase.RequestTrailers : CallPhase.ResponseTrailers, cb, f, 2, sc.id, n);
    if (r === null) return CallResult.Failed;
    return r === 0 ? CallResult.Continue : CallResult.Stop;
  }

  /**
   * End of stream: proxy_on_done, then (at once, or after the adapter calls
   * proxy_done) proxy_on_log and proxy_on_delete.
   */
  finishStream(origin: StreamContext): void {
    const fns = this.fns;
    const done = fns[Cb.Done];
    const sc = done === undefined && fns[Cb.Log] === undefined && fns[Cb.Delete] === undefined && origin.generation !== this.generation ? null : this.live(origin);
    if (sc === null) {
      this.streams.delete(origin.id);
      return;
    }
    // The memory's size is a field read (vm/guest-memory.ts); the gauge is set only when it changed.
    const bytes = this.memory.byteLength;
    if (bytes !== this.lastMemoryBytes) {
      this.lastMemoryBytes = bytes;
      this.metrics.gauge('wasm_mixer_vm_memory_bytes', 'Linear memory of the adapter VM, in bytes.', { adapter: this.name })(bytes);
    }
    const r = done === undefined ? 1 : this.guard(sc, CallPhase.Done, Cb.Done, done, 1, sc.id);
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
      const log = this.fns[Cb.Log];
      if (log !== undefined) this.guard(sc, CallPhase.Log, Cb.Log, log, 1, sc.id);
    }
    if (this.alive(sc)) {
      const del = this.fns[Cb.Delete];
      if (del !== undefined) this.guard(sc, CallPhase.None, Cb.Delete, del, 1, sc.id);
    }
    this.streams.delete(sc.id);
  }

  // --- guest calls, crashes and restarts ---------------------------------------------

  /** Runs an exported callback on the root context (ticks, queues, call-out answers). */
  callRoot(phase: CallPhase, callback: string, call: (f: GuestFn, rootId: number) => number | undefined): void {
    const f = this.exports[callback];
    if (f === undefined) return;
    // Not per request: a closure is fine here.
    this.guard(this.root, phase, this.callbackId(callback), (id: number) => call(f, id), 1, this.root.id);
  }

  /** guard()'s index for a root callback's name (after the per-request ones). */
  private callbackId(name: string): number {
    let id = this.rootCallbackIds.get(name);
    if (id === undefined) {
      id = this.callbackNames.length;
      this.callbackNames.push(name);
      this.lastCallSeconds.push(-1);
      this.untimedCounts.push(0);
      this.rootCallbackIds.set(name, id);
    }
    return id;
  }
  private readonly rootCallbackIds = new Map<string, number>();
  /** Callback names by guard() index: the per-request ones (Cb), then root callbacks as they are first called. */
  private readonly callbackNames: string[] = [...STREAM_CALLBACKS];

  private classify(err: unknown): { code: HostErrorCode; reason: string } {
    return this.calls.classify(err, this.compiled.memoryPages?.maximum ?? 0, this.memory.byteLength);
  }

  /**
   * Runs guest callback f (callback index cb) with argc (1 to 3) i32 arguments, passed rather
   * than closed over (no closure per guest call); a trap fails the VM and returns null.
   */
  private guard(ctx: GuestContext, phase: CallPhase, cb: number, f: (...args: number[]) => number | undefined, argc: number, a: number, b = 0, c = 0): number | null {
    const observerFor = this.observerFor;
    if (observerFor === undefined) {
      try {
        return this.calls.call(ctx, phase, f, argc, a, b, c) ?? 0;
      } catch (err) {
        this.trapped(ctx, cb, err);
        return null;
      }
    }
    // Timing is sampled (two clock reads cost more than many callbacks): see onGuestCall.
    const last = this.lastCallSeconds;
    let t0 = -1;
    if (--this.untimedCalls < 0 || last[cb]! < 0) {
      this.untimedCalls = (Math.random() * 2 * CALL_TIMING_SAMPLE) | 0;
      t0 = performance.now();
    }
    try {
      return this.calls.call(ctx, phase, f, argc, a, b, c) ?? 0;
    } catch (err) {
      this.trapped(ctx, cb, err);
      return null;
    } finally {
      // An untimed call is only counted: observing each one cost a bucket search per callback.
      if (t0 < 0) this.untimedCounts[cb]!++;
      else this.timed(cb, (performance.now() - t0) / 1000, observerFor);
    }
  }
  /** Callbacks left before the next timed one, and each callback's last timed duration by guard() index (-1: never timed). */
  private untimedCalls = 0;
  private readonly lastCallSeconds: number[] = STREAM_CALLBACKS.map(() => -1);
  /** Calls of each callback since its last timed one, not yet reported (they count with that duration). */
  private readonly untimedCounts: number[] = STREAM_CALLBACKS.map(() => 0);

  private timed(cb: number, seconds: number, observerFor: (callback: string) => (seconds: number, times?: number) => void): void {
    const observe = (this.callObservers[cb] ??= observerFor(this.callbackNames[cb]!));
    const untimed = this.untimedCounts[cb]!;
    if (untimed > 0) {
      observe(this.lastCallSeconds[cb]!, untimed);
      this.untimedCounts[cb] = 0;
    }
    this.lastCallSeconds[cb] = seconds;
    observe(seconds);
  }

  /** Reports the untimed calls waiting (before the metrics are read, and when the VM stops). */
  private reportUntimedCalls(): void {
    const counts = this.untimedCounts;
    for (let cb = 0; cb < counts.length; cb++) {
      const observe = this.callObservers[cb];
      if (counts[cb]! > 0 && observe !== undefined) observe(this.lastCallSeconds[cb]!, counts[cb]!);
      counts[cb] = 0;
    }
  }

  private trapped(ctx: GuestContext, cb: number, err: unknown): void {
    if (ctx instanceof StreamContext) this.poisoned.add(ctx instanceof MigratedContext ? ctx.origin : ctx);
    this.crash(this.callbackNames[cb]!, err);
  }

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
    this.callouts.abortAll();
    this.timers.clearTick();
    for (const l of this.onFailure) l(this.failed);
    this.scheduleRestart();
  }

  private scheduleRestart(restartFailed = false): void {
    if (this.stopped || this.restartTimer !== null) return;
    const d = this.restartPolicy.crashed(Date.now(), restartFailed);
    if (d.delayMs === 0) return this.restartNow();
    if (d.crashLooping) {
      // It crashed on most of the requests it was given; restarting at once would only fail them slower.
      this.settings.logger.log(
        LogLevel.Critical,
        this.name,
        `adapter ${this.name} is crash-looping: ${d.crashes} crashes on ${d.requests} requests within ${this.restartPolicy.windowMs} ms (more than restart.maxRestarts ${this.restartPolicy.maxRestarts}, and on most requests); it stays down for ${d.delayMs} ms and requests follow its failStrategy`,
        { code: 'VM_FAILED', crashes: d.crashes, requests: d.requests, downMs: d.delayMs },
      );
    }
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

}

/** Every import (the capability stubs too) charges the work budget per call and per byte (plugin/host-meter.ts). */
function meterAll(imports: WebAssembly.Imports, meter: HostMeter): WebAssembly.Imports {
  const seen = new Set<object>();
  for (const ns of Object.values(imports)) {
    if (seen.has(ns)) continue; // both WASI module names share one object
    seen.add(ns);
    meterImports(ns as Record<string, (...args: never[]) => unknown>, meter);
  }
  return imports;
}

export { Status } from '../abi/constants.js';
export { CallResult, StreamContext, type Direction };
