// The state the ABI's host functions act on (abi/context.ts), for one in-process
// VM: its memory, the current context's header maps and buffers (by callback
// phase), property access, output, call-outs, ticks and queues. PluginVm
// (plugin-vm.ts) extends it with the lifecycle and the per-request callbacks.

import { BufferType, LogLevel, MapType, Status, StreamType } from '../abi/constants.js';
import type { AbiContext } from '../abi/context.js';
import type { HeaderPair } from '../abi/pairs.js';
import type { HostLogger } from '../log/logger.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import type { SharedDataView, SharedStore } from '../shared/shared-store.js';
import { EMPTY, readOnlyBuffer, type BodyBuffer } from '../stream/http-stream.js';
import type { StreamContext } from '../stream/stream-context.js';
import type { HttpCallTransport } from '../transport/http-call.js';
import { GuestMemory } from '../vm/guest-memory.js';
import type { CompiledModule } from '../vm/module.js';
import { watchdogId } from '../watchdog.js';
import { Callouts } from './callouts.js';
import { Denials, type Capability } from './capabilities.js';
import { ContextTable } from './context-table.js';
import { defaultForeignFunctions, type ForeignCaller, type ForeignFunctionRegistry, type ForeignResult } from './foreign-functions.js';
import type { GrpcCallouts, GrpcRequest, GrpcTarget } from './grpc-call.js';
import { CallPhase, GuestCalls, type RootContext } from './guest-call.js';
import { cutLogLine } from './guest-log-budget.js';
import type { HostMeter } from './host-meter.js';
import { dottedPath, getProperty, type PluginFacts, type PropertyValue } from './properties.js';
import type { RestartPolicy } from './restart-policy.js';
import { DroppedLogReporter, scrubRequestCredentials, StdioLines } from './stdio.js';
import { TimersQueues } from './timers-queues.js';

/** Makes the GuestMemory a VM's ABI calls read through (oop/tracker.ts observes the strings read). */
export type GuestMemoryFactory = (memory: WebAssembly.Memory, meter: HostMeter) => GuestMemory;

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
   * The observer of one callback's wall time in seconds (the adapter call latency histogram),
   * asked for once per callback name. Timing is sampled: the first call of each callback and
   * on average one in CALL_TIMING_SAMPLE are timed; the calls in between count with their
   * callback's last timed duration, reported together (`times`) when the next call is timed
   * or before the metrics registry is read (a collector), so counts are exact when read and
   * the distribution is an estimate.
   */
  onGuestCall?: (callback: string) => (seconds: number, times?: number) => void;
  /** In a worker of a multi-worker proxy: the cluster local quota limits lease from (property wasm_mixer.worker_quota_cluster). */
  workerQuotaCluster?: string;
  /** Makes the VM's GuestMemory on every (re)start (default: a plain GuestMemory). */
  guestMemory?: GuestMemoryFactory;
}

/** The default: a plain GuestMemory. */
export const defaultGuestMemory: GuestMemoryFactory = (memory, meter) => new GuestMemory(memory, meter);

export type GuestFn = (...args: number[]) => number;
export type Exports = Record<string, GuestFn | undefined> & { memory: WebAssembly.Memory };

const enc = new TextEncoder();

export abstract class VmAbiState implements PluginFacts, AbiContext {
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

  protected exports!: Exports;
  protected allocator!: (size: number) => number;
  protected root!: RootContext;
  protected readonly streams = new ContextTable<StreamContext>();
  /** The current context, phase and work budget of guest calls (plugin/guest-call.ts). */
  protected readonly calls: GuestCalls;
  /** Refused calls outside the grants, logged once per generation (plugin/capabilities.ts). */
  readonly denials: Denials;
  protected readonly callouts: Callouts;
  protected readonly timers: TimersQueues;
  protected readonly stdio = new StdioLines();
  protected stopped = false;
  /** The error log line the adapter printed last, quoted in configure errors. */
  protected lastErrorLog = '';

  /** Bumped on every (re)start; call-out answers and ticks for an older generation are dropped. */
  abstract readonly generation: number;
  abstract readonly healthy: boolean;
  /** Runs an exported callback on the root context (ticks, queues, call-out answers); a trap crashes the VM. */
  abstract callRoot(phase: CallPhase, callback: string, call: (f: GuestFn, rootId: number) => number | undefined): void;

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
    const dropped = new DroppedLogReporter(settings.name, settings.metrics, settings.logger);
    this.calls = new GuestCalls(watchdogId(settings.name), (b) => dropped.report(b));
    this.denials = new Denials(settings.name, settings.metrics, settings.logger);
    this.callouts = new Callouts(this, settings.clusters, settings.httpTransport);
    this.timers = new TimersQueues(this, settings.shared, settings.vmId);
  }

  get logger(): HostLogger {
    return this.settings.logger;
  }

  has(exportName: string): boolean {
    return this.exports[exportName] !== undefined;
  }

  allocate(size: number): number {
    // A trapping allocator is a crash of the adapter: it propagates so the callback unwinds.
    const p = this.allocator(size) >>> 0;
    return p !== 0 && this.memory.inBounds(p, size) ? p : 0;
  }

  /** proxy_log/stdio: whether a line of `size` bytes is logged at all (level, and the callback's log budget). */
  admitLog(level: LogLevel, size: number): boolean {
    if (level < this.logLevel && level < LogLevel.Error) return false;
    return this.calls.logBudget.admit(size);
  }

  guestLog(level: LogLevel, message: string): void {
    if (level < this.logLevel && level < LogLevel.Error) return;
    // An adapter that logs the request's credentials does not leak them: the
    // values of this request's authorization/cookie/API-key headers are masked.
    const sc = this.calls.streamContext();
    if (sc !== null) message = scrubRequestCredentials(message, sc.stream.requestHeaders);
    if (level >= LogLevel.Error) this.lastErrorLog = message;
    if (level < this.logLevel) return;
    this.settings.logger.log(level, this.name, message);
  }

  /** WASI stdout/stderr: whole lines are logged (at info/error) within the callback's log budget. `dropped`: bytes past fd_write's per-call bound. */
  stdioWrite(fd: number, chunks: Uint8Array[], dropped = 0): void {
    const level = fd === 1 ? LogLevel.Info : LogLevel.Error;
    if (dropped > 0) this.calls.logBudget.dropBytes(dropped);
    this.stdio.write(fd, chunks, (line) => {
      if (this.admitLog(level, line.length)) this.guestLog(level, cutLogLine(line));
    });
  }

  setTickPeriod(ms: number): void {
    this.timers.setTickPeriod(ms, this.stopped);
  }

  registerQueue(name: string): number {
    return this.timers.registerQueue(name);
  }

  setEffectiveContext(id: number): boolean {
    if (id === this.root.id) {
      this.calls.effective = this.root;
      return true;
    }
    const sc = this.streams.get(id);
    if (sc === undefined) return false;
    this.calls.effective = sc;
    return true;
  }

  markDone(): boolean {
    const sc = this.calls.streamContext();
    if (sc === null || !sc.donePending || sc.onDone === null) return false;
    const cb = sc.onDone;
    sc.onDone = null;
    queueMicrotask(cb);
    return true;
  }

  continueStream(type: StreamType): boolean {
    const sc = this.calls.streamContext();
    if (sc === null) return false;
    sc.wake(type === StreamType.HttpRequest ? 'request' : 'response');
    return true;
  }

  closeStream(): boolean {
    const sc = this.calls.streamContext();
    if (sc === null) return false;
    sc.stream.reset = true;
    sc.wake(null);
    return true;
  }

  sendLocalResponse(status: number, details: string, body: Uint8Array, headers: HeaderPair[], grpcStatus: number): boolean {
    const sc = this.calls.streamContext();
    if (sc === null || sc.stream.responseHeadersSent || this.calls.phase === CallPhase.Log) return false;
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
    const phase = this.calls.phase;
    if (type === MapType.HttpCallResponseHeaders || type === MapType.HttpCallResponseTrailers) return this.callouts.responseMap(type, write, phase);
    if (type === MapType.GrpcReceiveInitialMetadata || type === MapType.GrpcReceiveTrailingMetadata) return this.callouts.grpcMetadata(type, write, phase);
    const sc = this.calls.streamContext();
    if (sc === null) return null;
    const s = sc.stream;
    const readOnly = phase === CallPhase.Log;
    switch (type) {
      case MapType.HttpRequestHeaders:
        return write && (readOnly || s.requestHeadersSent) ? null : s.requestHeaders;
      case MapType.HttpRequestTrailers:
        if (write && readOnly) return null;
        if (write && s.requestTrailers === null && phase === CallPhase.RequestBody && s.requestBody.endOfStream) s.requestTrailers = [];
        return s.requestTrailers;
      case MapType.HttpResponseHeaders:
        return write && (readOnly || s.responseHeadersSent) ? null : s.responseHeaders;
      case MapType.HttpResponseTrailers:
        if (write && readOnly) return null;
        if (write && s.responseTrailers === null && phase === CallPhase.ResponseBody && s.responseBody.endOfStream) s.responseTrailers = [];
        return s.responseTrailers;
      default:
        return null;
    }
  }

  headersChanged(_type: MapType): void {
    // Header maps are read by the proxy when it forwards; nothing is cached.
  }

  /** The buffer of a type in the current callback, or null when it is not available here. */
  buffer(type: BufferType): BodyBuffer | null {
    const phase = this.calls.phase;
    switch (type) {
      case BufferType.HttpRequestBody: {
        const sc = this.calls.streamContext();
        return sc !== null && phase === CallPhase.RequestBody ? sc.stream.requestBody : null;
      }
      case BufferType.HttpResponseBody: {
        const sc = this.calls.streamContext();
        return sc !== null && phase === CallPhase.ResponseBody ? sc.stream.responseBody : null;
      }
      case BufferType.HttpCallResponseBody:
        return this.callouts.responseBody(phase);
      case BufferType.GrpcReceiveBuffer:
        return this.callouts.grpcMessage(phase);
      case BufferType.VmConfiguration:
        return phase === CallPhase.VmStart ? readOnlyBuffer(this.settings.vmConfig) : null;
      case BufferType.PluginConfiguration:
        return phase === CallPhase.Configure ? readOnlyBuffer(this.settings.pluginConfig) : null;
      default:
        return null;
    }
  }

  /** ABI 0.1.0 proxy_get_configuration: the VM configuration in proxy_on_vm_start, the plugin's in proxy_on_configure. */
  configuration(): Uint8Array {
    const phase = this.calls.phase;
    if (phase === CallPhase.VmStart) return this.settings.vmConfig;
    if (phase === CallPhase.Configure) return this.settings.pluginConfig;
    return EMPTY;
  }

  replaceBuffer(type: BufferType, bytes: Uint8Array): void {
    const buf = this.buffer(type);
    if (buf !== null) buf.bytes = bytes;
  }

  getProperty(path: string): PropertyValue | null {
    return getProperty(path, this.calls.streamContext()?.stream ?? null, this);
  }

  setProperty(path: string, value: Uint8Array): boolean {
    const sc = this.calls.streamContext();
    if (sc === null) return false;
    sc.stream.filterState.set(dottedPath(path), value);
    return true;
  }

  /** proxy_call_foreign_function: bytes for OK, or the status to return (NOT_FOUND for unknown or ungranted names). */
  callForeign(name: string, args: Uint8Array): ForeignResult {
    const caller = (this.foreignCaller ??= {
      adapter: this.name,
      warn: (m) => this.settings.logger.log(LogLevel.Warn, this.name, m, { code: 'CAPABILITY_DENIED' }),
      property: (path) => this.getProperty(path), // the current context's, at call time
      stream: () => this.calls.streamContext()?.stream ?? null,
      facts: this,
    });
    return (this.settings.foreign ?? defaultForeignFunctions).call(caller, name, args);
  }
  private foreignCaller: ForeignCaller | null = null;

  httpCall(cluster: string, headers: HeaderPair[], body: Uint8Array, timeoutMs: number): number | null {
    return this.callouts.httpCall(cluster, headers, body, timeoutMs);
  }

  grpcTarget(cluster: string, fn: string): GrpcTarget | null {
    return this.callouts.grpcTarget(cluster, fn);
  }

  grpcCallouts(): GrpcCallouts {
    return this.callouts.grpcCallouts();
  }

  grpcCall(req: GrpcRequest, message: Uint8Array, timeoutMs: number): number | null {
    return this.callouts.grpcCall(req, message, timeoutMs);
  }

  grpcStream(req: GrpcRequest): number | null {
    return this.callouts.grpcStream(req);
  }
}
