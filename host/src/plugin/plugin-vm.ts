// One adapter's VM: a wasm instance from an already compiled module, its root
// context, its per-request contexts, and the host state its ABI calls act on.
//
// Discipline around every call into the guest (as in proxy-wasm-cpp-host):
// the current context is set before the call and cleared after it; a trap
// marks the VM failed, is logged with the adapter's name, and the VM is
// re-created from the compiled module with a crash-rate limit.

import { BufferType, LogLevel, MapType, Status, StreamType } from '../abi/constants.js';
import { createImports, ProcExit } from '../abi/host-functions.js';
import type { HeaderPair } from '../abi/pairs.js';
import { describeError, HostError } from '../errors.js';
import type { HostLogger } from '../log/logger.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import type { SharedDataView, SharedStore } from '../shared/shared-store.js';
import type { CompiledModule } from '../vm/module.js';
import type { AdapterRuntime, OptionalCallback } from '../chain/adapter.js';
import { GuestMemory } from '../vm/guest-memory.js';
import { BodyBuffer, EMPTY, type HttpStream } from './http-stream.js';
import { getProperty, type PluginFacts } from './properties.js';
import { CallResult, StreamContext, type Direction } from './stream-context.js';
import { performHttpCall, type HttpCallResult, type HttpCallTransport } from './http-call.js';
import { defaultForeignFunctions } from './foreign-functions.js';

export type FailStrategy = 'FAIL_CLOSE' | 'FAIL_OPEN';

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
  /** Crash-rate limit: at most this many restarts per `restartWindowMs`. */
  maxRestarts?: number;
  restartWindowMs?: number;
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
}

interface RootContext {
  readonly kind: 'root';
  readonly id: number;
}
type Context = RootContext | StreamContext;

type Exports = Record<string, ((...args: number[]) => number) | undefined> & { memory: WebAssembly.Memory };

let nextContextId = 1;
function newContextId(): number {
  const id = nextContextId;
  nextContextId = id >= 0xfffffff0 ? 1 : id + 1;
  return id;
}

const enc = new TextEncoder();

export class PluginVm implements PluginFacts, AdapterRuntime {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
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
  private restarts: number[] = [];
  private restartTimer: NodeJS.Timeout | null = null;
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
  }

  /** Instantiates the module and runs VM start and plugin configure. Throws a HostError on failure. */
  start(): void {
    this.generation++;
    this.failed = null;
    this.streams.clear();
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(this.compiled.module, createImports(this));
    } catch (err) {
      throw new HostError('VM_START_FAILED', `adapter ${this.name} (${this.compiled.source}) failed to instantiate: ${describeError(err)}`, { adapter: this.name, file: this.compiled.source }, { cause: err });
    }
    this.exports = instance.exports as unknown as Exports;
    this.memory = new GuestMemory(this.exports.memory);
    this.shared = this.settings.shared.forVm(this.vmId);
    const alloc = this.exports.proxy_on_memory_allocate ?? this.exports.malloc!;
    this.allocator = alloc;
    this.root = { kind: 'root', id: newContextId() };
    const startFailure = (what: string, err: unknown): HostError =>
      new HostError('VM_START_FAILED', `adapter ${this.name}: ${what} trapped: ${describeError(err)}`, { adapter: this.name, file: this.compiled.source }, { cause: err });
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
    }
  }

  /** Stops timers and call-outs; the VM is not called again. */
  stop(): void {
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    for (const c of this.pendingCalls.values()) c.abort();
    this.pendingCalls.clear();
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

  implements(callback: OptionalCallback): boolean {
    return this.has(`proxy_on_${callback}`);
  }

  get logger(): HostLogger {
    return this.settings.logger;
  }

  // --- per-request callbacks, called by the chain -----------------------------

  createStream(stream: HttpStream): StreamContext | null {
    if (!this.healthy) return null;
    const sc = new StreamContext(newContextId(), stream, this.generation);
    this.streams.set(sc.id, sc);
    const f = this.exports.proxy_on_context_create;
    if (f !== undefined && this.guard(sc, Phase.None, 'proxy_on_context_create', () => f(sc.id, this.root.id)) === null) return null;
    return sc;
  }

  private alive(sc: StreamContext): boolean {
    return sc.generation === this.generation && this.failed === null;
  }

  onRequestHeaders(sc: StreamContext, endOfStream: boolean): CallResult {
    return this.headersCall(sc, Phase.RequestHeaders, 'proxy_on_request_headers', sc.stream.requestHeaders.length, endOfStream);
  }

  onResponseHeaders(sc: StreamContext, endOfStream: boolean): CallResult {
    return this.headersCall(sc, Phase.ResponseHeaders, 'proxy_on_response_headers', sc.stream.responseHeaders?.length ?? 0, endOfStream);
  }

  private headersCall(sc: StreamContext, phase: Phase, name: string, n: number, eos: boolean): CallResult {
    if (!this.alive(sc)) return CallResult.Failed;
    const f = this.exports[name];
    if (f === undefined) return CallResult.Continue;
    const r = this.guard(sc, phase, name, () => f(sc.id, n, eos ? 1 : 0));
    if (r === null) return CallResult.Failed;
    // Continue and ContinueAndEndStream continue; every stop code (and any
    // unknown value, as cpp-host does) stops until the adapter resumes.
    return r === 0 || r === 2 ? CallResult.Continue : CallResult.Stop;
  }

  onBody(sc: StreamContext, direction: Direction, size: number, eos: boolean): CallResult {
    if (!this.alive(sc)) return CallResult.Failed;
    const name = direction === 'request' ? 'proxy_on_request_body' : 'proxy_on_response_body';
    const f = this.exports[name];
    if (f === undefined) return CallResult.Continue;
    const r = this.guard(sc, direction === 'request' ? Phase.RequestBody : Phase.ResponseBody, name, () => f(sc.id, size, eos ? 1 : 0));
    if (r === null) return CallResult.Failed;
    return r === 0 ? CallResult.Continue : CallResult.Stop;
  }

  onTrailers(sc: StreamContext, direction: Direction, n: number): CallResult {
    if (!this.alive(sc)) return CallResult.Failed;
    const name = direction === 'request' ? 'proxy_on_request_trailers' : 'proxy_on_response_trailers';
    const f = this.exports[name];
    if (f === undefined) return CallResult.Continue;
    const r = this.guard(sc, direction === 'request' ? Phase.RequestTrailers : Phase.ResponseTrailers, name, () => f(sc.id, n));
    if (r === null) return CallResult.Failed;
    return r === 0 ? CallResult.Continue : CallResult.Stop;
  }

  /**
   * End of stream: proxy_on_done, then (at once, or after the adapter calls
   * proxy_done) proxy_on_log and proxy_on_delete.
   */
  finishStream(sc: StreamContext): void {
    if (!this.alive(sc)) {
      this.streams.delete(sc.id);
      return;
    }
    const done = this.exports.proxy_on_done;
    const r = done === undefined ? 1 : this.guard(sc, Phase.Done, 'proxy_on_done', () => done(sc.id));
    if (r === 0) {
      sc.donePending = true;
      sc.onDone = () => this.logAndDelete(sc);
      return;
    }
    this.logAndDelete(sc);
  }

  private logAndDelete(sc: StreamContext): void {
    sc.donePending = false;
    if (this.alive(sc)) {
      const log = this.exports.proxy_on_log;
      if (log !== undefined) this.guard(sc, Phase.Log, 'proxy_on_log', () => log(sc.id));
    }
    if (this.alive(sc)) {
      const del = this.exports.proxy_on_delete;
      if (del !== undefined) this.guard(sc, Phase.None, 'proxy_on_delete', () => del(sc.id));
    }
    this.streams.delete(sc.id);
  }

  // --- guest call discipline -------------------------------------------------------

  private withContext<T>(ctx: Context, phase: Phase, fn: () => T): T {
    const prevCurrent = this.current;
    const prevEffective = this.effective;
    const prevPhase = this.phase;
    this.current = ctx;
    this.effective = null;
    this.phase = phase;
    try {
      return fn();
    } finally {
      this.current = prevCurrent;
      this.effective = prevEffective;
      this.phase = prevPhase;
    }
  }

  /** Runs a guest callback; a trap fails the VM and returns null. */
  private guard(ctx: Context, phase: Phase, callback: string, fn: () => number | undefined): number | null {
    try {
      return this.withContext(ctx, phase, fn) ?? 0;
    } catch (err) {
      this.crash(callback, err);
      return null;
    }
  }

  private crash(callback: string, err: unknown): void {
    const reason = err instanceof ProcExit ? `proc_exit(${err.exitCode})` : describeError(err);
    this.failed = `${callback}: ${reason}`;
    this.settings.logger.log(LogLevel.Error, this.name, `adapter crashed in ${callback}: ${reason}; the VM will be restarted`, { code: 'VM_TRAP' });
    for (const sc of this.streams.values()) sc.fail(new HostError('VM_TRAP', `adapter ${this.name} crashed in ${callback}: ${reason}`, { adapter: this.name }));
    this.streams.clear();
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = null;
    for (const l of this.onFailure) l(this.failed);
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopped || this.restartTimer !== null) return;
    const windowMs = this.settings.restartWindowMs ?? 60_000;
    const max = this.settings.maxRestarts ?? 10;
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < windowMs);
    // Exponential backoff with the crash rate: 0 ms for the first crash, then 100 ms doubling, capped at the window.
    const delay = this.restarts.length === 0 ? 0 : Math.min(100 * 2 ** (this.restarts.length - 1), windowMs);
    if (this.restarts.length >= max) {
      this.settings.logger.log(LogLevel.Critical, this.name, `adapter crashed ${this.restarts.length} times in ${windowMs} ms; waiting ${windowMs} ms before the next restart`, { code: 'VM_FAILED' });
    }
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.restarts.push(Date.now());
      try {
        this.start();
        this.settings.logger.log(LogLevel.Warn, this.name, `adapter VM restarted (generation ${this.generation})`, {});
        this.metrics.counter('wasm_mixer_vm_restarts_total', 'VM restarts after an adapter crash.', { adapter: this.name })();
      } catch (err) {
        this.failed = `restart: ${describeError(err)}`;
        this.settings.logger.log(LogLevel.Error, this.name, `adapter VM restart failed: ${describeError(err)}`, { code: 'VM_FAILED' });
        this.scheduleRestart();
      }
    }, this.restarts.length >= max ? windowMs : delay);
    this.restartTimer.unref();
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

  guestLog(level: LogLevel, message: string): void {
    if (level >= LogLevel.Error) this.lastErrorLog = message;
    if (level < this.logLevel) return;
    this.settings.logger.log(level, this.name, message);
  }

  stdioWrite(fd: number, chunks: Uint8Array[]): void {
    let text = this.stdio[fd]! + chunks.map((c) => Buffer.from(c).toString('utf8')).join('');
    let nl: number;
    while ((nl = text.indexOf('\n')) >= 0) {
      this.guestLog(fd === 1 ? LogLevel.Info : LogLevel.Error, text.slice(0, nl));
      text = text.slice(nl + 1);
    }
    if (text.length > 64 * 1024) {
      this.guestLog(fd === 1 ? LogLevel.Info : LogLevel.Error, text);
      text = '';
    }
    this.stdio[fd] = text;
  }

  setTickPeriod(ms: number): void {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = null;
    if (ms === 0 || this.stopped) return;
    const gen = this.generation;
    this.tickTimer = setInterval(() => {
      const f = this.exports.proxy_on_tick;
      if (f === undefined || gen !== this.generation || !this.healthy) return;
      this.guard(this.root, Phase.Tick, 'proxy_on_tick', () => f(this.root.id));
    }, Math.max(ms, 1));
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
    const sc = this.streamContext();
    if (sc === null) return null;
    const s = sc.stream;
    const readOnly = this.phase === Phase.Log;
    switch (type) {
      case MapType.HttpRequestHeaders:
        return write && (readOnly || s.requestHeadersSent) ? null : s.requestHeaders;
      case MapType.HttpRequestTrailers:
        if (write && (readOnly || s.requestHeadersSent && s.requestBody.endOfStream)) return null;
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
      case BufferType.VmConfiguration:
        return this.phase === Phase.VmStart ? readOnlyBuffer(this.settings.vmConfig) : null;
      case BufferType.PluginConfiguration:
        return this.phase === Phase.Configure ? readOnlyBuffer(this.settings.pluginConfig) : null;
      default:
        return null;
    }
  }

  replaceBuffer(type: BufferType, bytes: Uint8Array): void {
    const buf = this.buffer(type);
    if (buf !== null) buf.bytes = bytes;
  }

  getProperty(path: string): Uint8Array | null {
    return getProperty(path, this.streamContext()?.stream ?? null, this);
  }

  setProperty(path: string, value: Uint8Array): boolean {
    const sc = this.streamContext();
    if (sc === null) return false;
    sc.stream.filterState.set(path.replace(/\0/g, '.'), value);
    return true;
  }

  registerQueue(name: string): number {
    return this.settings.shared.registerQueue(this.vmId, name, this.queueListener);
  }

  private dispatchQueueReady(queueId: number): void {
    const f = this.exports.proxy_on_queue_ready;
    if (f === undefined || !this.healthy) return;
    this.guard(this.root, Phase.Queue, 'proxy_on_queue_ready', () => f(this.root.id, queueId));
  }

  /** proxy_call_foreign_function: bytes for OK, or the status to return (NOT_FOUND for unknown or ungranted names). */
  callForeign(name: string, args: Uint8Array): Uint8Array | Status {
    return defaultForeignFunctions.call({ adapter: this.name, warn: (m) => this.settings.logger.log(LogLevel.Warn, this.name, m, { code: 'CAPABILITY_DENIED' }) }, name, args);
  }

  /** Starts an HTTP call-out; returns its token, or null for an unknown cluster. */
  httpCall(cluster: string, headers: HeaderPair[], body: Uint8Array, timeoutMs: number): number | null {
    const base = this.settings.clusters[cluster];
    if (base === undefined) {
      this.settings.logger.log(LogLevel.Warn, this.name, `proxy_http_call to unknown or ungranted cluster "${cluster}"; add it to the adapter's clusters`, { code: 'BAD_ARGUMENT' });
      return null;
    }
    const token = this.nextCallToken++;
    const ac = new AbortController();
    this.pendingCalls.set(token, ac);
    const gen = this.generation;
    const transport = this.settings.httpTransport ?? performHttpCall;
    transport({ cluster, baseUrl: base, headers, body, timeoutMs, signal: ac.signal }).then(
      (res) => this.deliverCallResponse(token, gen, res),
      () => this.deliverCallResponse(token, gen, null),
    );
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
      this.guard(this.root, Phase.HttpCallResponse, 'proxy_on_http_call_response', () =>
        f(this.root.id, token, res === null ? 0 : res.headers.length, res === null ? 0 : res.body.length, res === null ? 0 : res.trailers.length),
      );
    } finally {
      this.callResponse = null;
    }
  }

  get liveStreams(): number {
    return this.streams.size;
  }

  get memoryBytes(): number {
    return this.memory.byteLength;
  }
}

function readOnlyBuffer(bytes: Uint8Array): BodyBuffer {
  const b = new BodyBuffer();
  b.bytes = bytes.length === 0 ? EMPTY : bytes;
  b.endOfStream = true;
  b.writable = false;
  return b;
}

export { Status, CallResult, StreamContext, type Direction };
