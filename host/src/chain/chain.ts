// Runs one request through an ordered chain of adapters: request callbacks in
// chain order, response callbacks in reverse (as Envoy's decoder/encoder filters),
// with pause/resume, local replies and each adapter's fail strategy.
// About 420 lines, one file: the request and response paths share the pause,
// body-holding and failure state of one HostStream.
//
// Every method returns a value synchronously when no adapter pauses, and a
// Promise only when one does, so the common path allocates no promises.

import { LogLevel } from '../abi/constants.js';
import type { HeaderPair } from '../abi/pairs.js';
import { HostError } from '../errors.js';
import { EMPTY, type HttpStream } from '../stream/http-stream.js';
import { CallResult, type Direction, type StreamContext } from '../stream/stream-context.js';
import type { Adapter } from './adapter.js';
import { BodyAccumulator } from './body-accumulator.js';

export interface ChainEntry {
  readonly name: string;
  readonly adapter: Adapter;
  readonly failStrategy: 'FAIL_CLOSE' | 'FAIL_OPEN';
  /** How long a paused adapter may hold a request before its fail strategy applies. */
  readonly pauseTimeoutMs: number;
  /** Most body bytes this adapter may make the proxy hold (StopIterationAndBuffer), per request and direction. */
  readonly maxBufferedBodyBytes: number;
}

/** limits.maxBufferedBodyBytes when a plugin does not set it. */
export const DEFAULT_MAX_BUFFERED_BODY_BYTES = 4 * 1024 * 1024;

export interface LocalReply {
  status: number;
  headers: HeaderPair[];
  body: Uint8Array;
  /** Why: `adapter:<name>:<details>` or a host error code. */
  details: string;
  adapter: string;
}

export type Decision =
  | { readonly action: 'continue' }
  | { readonly action: 'respond'; readonly reply: LocalReply }
  /** An adapter closed the stream: the proxy resets the connection. */
  | { readonly action: 'reset' };

export const CONTINUE: Decision = Object.freeze({ action: 'continue' });
const RESET: Decision = Object.freeze({ action: 'reset' });

export type Maybe<T> = T | Promise<T>;

const isPromise = <T>(v: Maybe<T>): v is Promise<T> => v instanceof Promise;

/** Which optional callbacks each adapter of a chain implements: the same for every request of that chain. */
interface ChainShape {
  readonly hasHeaders: Readonly<Record<Direction, boolean>>;
  readonly hasBody: Record<Direction, readonly boolean[]>;
  readonly hasTrailers: Record<Direction, readonly boolean[]>;
  readonly needsBody: Readonly<Record<Direction, boolean>>;
  readonly needsTrailers: Readonly<Record<Direction, boolean>>;
}

/**
 * The shape of each chain (entries array), made on its first request: implements() answers
 * do not change for an adapter's lifetime (chain/adapter.ts), and a reload makes new entries.
 */
const shapes = new WeakMap<readonly ChainEntry[], ChainShape>();

function shapeOf(entries: readonly ChainEntry[]): ChainShape {
  const known = shapes.get(entries);
  if (known !== undefined) return known;
  const n = entries.length;
  const hasBody = { request: new Array<boolean>(n), response: new Array<boolean>(n) };
  const hasTrailers = { request: new Array<boolean>(n), response: new Array<boolean>(n) };
  for (let i = 0; i < n; i++) {
    const a = entries[i]!.adapter;
    hasBody.request[i] = a.implements('request_body');
    hasBody.response[i] = a.implements('response_body');
    hasTrailers.request[i] = a.implements('request_trailers');
    hasTrailers.response[i] = a.implements('response_trailers');
  }
  const shape: ChainShape = {
    hasHeaders: Object.freeze({ request: entries.some((e) => e.adapter.implements('request_headers')), response: entries.some((e) => e.adapter.implements('response_headers')) }),
    hasBody,
    hasTrailers,
    needsBody: Object.freeze({ request: hasBody.request.some(Boolean), response: hasBody.response.some(Boolean) }),
    needsTrailers: Object.freeze({ request: hasTrailers.request.some(Boolean), response: hasTrailers.response.some(Boolean) }),
  };
  shapes.set(entries, shape);
  return shape;
}

export class HostStream {
  private readonly ctx: Array<StreamContext | null>;
  /** Adapters skipped for the rest of this request (fail-open, body too large); made on first use. */
  private skip: boolean[] | null = null;
  /** Body bytes each adapter holds (StopIterationAndBuffer); made on first use. */
  private held: Record<Direction, Array<BodyAccumulator | null>> | null = null;
  private readonly hasBody: Record<Direction, readonly boolean[]>;
  private readonly hasTrailers: Record<Direction, readonly boolean[]>;
  private failure: Decision | null = null;
  private finished = false;
  /** True when some adapter in the chain implements the headers callback for that direction. */
  readonly hasHeaders: Readonly<Record<Direction, boolean>>;
  /** True when some adapter in the chain implements a body callback for that direction. */
  readonly needsBody: Readonly<Record<Direction, boolean>>;
  /** True when some adapter in the chain implements a trailers callback for that direction. */
  readonly needsTrailers: Readonly<Record<Direction, boolean>>;

  constructor(
    readonly stream: HttpStream,
    private readonly entries: readonly ChainEntry[],
    /** The route's cap on buffered body bytes (routes[].maxBufferedBodyBytes); the lower of it and the adapter's applies. */
    private readonly routeMaxBufferedBodyBytes = Infinity,
  ) {
    const n = entries.length;
    const shape = shapeOf(entries);
    this.hasHeaders = shape.hasHeaders;
    this.hasBody = shape.hasBody;
    this.hasTrailers = shape.hasTrailers;
    this.needsBody = shape.needsBody;
    this.needsTrailers = shape.needsTrailers;
    this.ctx = new Array(n);
    for (let i = 0; i < n; i++) {
      const e = entries[i]!;
      const sc = e.adapter.createStream(stream);
      this.ctx[i] = sc;
      if (sc === null && this.failure === null) {
        const d = this.failAdapter(i, new HostError('VM_FAILED', `adapter ${e.name} is not running (${e.adapter.failed ?? 'stopped'})`, { adapter: e.name }));
        if (d !== null) this.failure = d;
      }
    }
  }

  private skipped(i: number): boolean {
    return this.skip !== null && this.skip[i] === true;
  }

  private skipFrom(i: number): void {
    (this.skip ??= new Array<boolean>(this.entries.length).fill(false))[i] = true;
  }

  private heldFor(dir: Direction): Array<BodyAccumulator | null> {
    const n = this.entries.length;
    return (this.held ??= { request: new Array<BodyAccumulator | null>(n).fill(null), response: new Array<BodyAccumulator | null>(n).fill(null) })[dir];
  }

  get adapters(): readonly string[] {
    return this.entries.map((e) => e.name);
  }

  // --- request path ------------------------------------------------------------

  requestHeaders(endOfStream: boolean): Maybe<Decision> {
    if (this.failure !== null) return this.respondWith(this.failure);
    this.stream.requestBody.endOfStream = endOfStream;
    return this.headersFrom('request', 0, endOfStream);
  }

  /**
   * requestHeaders() for several streams at once, adapter by adapter, as finishAll() does for
   * the log phase: the first adapter's callback for every stream, then the second's for the
   * streams still going, and so on. Each stream sees the same callbacks in the same order as
   * with requestHeaders() (a stream an adapter stops, pauses or answers leaves the batch at that
   * adapter); results[j] is streams[j]'s decision (headersAll).
   */
  static requestHeadersAll(streams: readonly HostStream[], endOfStream: readonly boolean[]): Array<Maybe<Decision>> {
    const results = new Array<Maybe<Decision> | undefined>(streams.length);
    for (let j = 0; j < streams.length; j++) {
      const s = streams[j]!;
      if (s.failure !== null) results[j] = s.respondWith(s.failure);
      else s.stream.requestBody.endOfStream = endOfStream[j]!;
    }
    return HostStream.headersAll('request', streams, endOfStream, results);
  }

  /** Returns the bytes to forward now (possibly empty while an adapter buffers), or a decision that ends the request. */
  requestBody(chunk: Uint8Array, endOfStream: boolean): Maybe<Uint8Array | Decision> {
    return this.bodyFrom('request', 0, chunk, endOfStream);
  }

  /**
   * Trailers end the request. Runs the trailer callbacks; body bytes adapters were
   * holding (StopIterationAndBuffer) are released through the rest of the chain.
   * Returns the bytes to forward before the trailers, or a decision that ends the request.
   */
  requestTrailers(trailers: HeaderPair[]): Maybe<Uint8Array | Decision> {
    this.stream.requestTrailers = trailers;
    return this.trailersFrom('request', 0, EMPTY);
  }

  // --- response path -------------------------------------------------------------

  responseHeaders(status: number, headers: HeaderPair[], endOfStream: boolean): Maybe<Decision> {
    this.startResponse(status, headers, endOfStream);
    return this.headersFrom('response', 0, endOfStream);
  }

  /** responseHeaders() for several streams at once, adapter by adapter (in response order), as requestHeadersAll(). */
  static responseHeadersAll(streams: readonly HostStream[], status: readonly number[], headers: readonly HeaderPair[][], endOfStream: readonly boolean[]): Array<Maybe<Decision>> {
    for (let j = 0; j < streams.length; j++) streams[j]!.startResponse(status[j]!, headers[j]!, endOfStream[j]!);
    return HostStream.headersAll('response', streams, endOfStream, new Array<Maybe<Decision> | undefined>(streams.length));
  }

  private startResponse(status: number, headers: HeaderPair[], endOfStream: boolean): void {
    this.inResponse = true;
    this.stream.responseHeaders = [[':status', String(status)], ...headers];
    this.stream.info.responseCode = status;
    this.stream.responseBody.endOfStream = endOfStream;
  }

  responseBody(chunk: Uint8Array, endOfStream: boolean): Maybe<Uint8Array | Decision> {
    return this.bodyFrom('response', 0, chunk, endOfStream);
  }

  /** As requestTrailers, for the response. */
  responseTrailers(trailers: HeaderPair[]): Maybe<Uint8Array | Decision> {
    this.stream.responseTrailers = trailers;
    return this.trailersFrom('response', 0, EMPTY);
  }

  /** Runs the log phase (proxy_on_done, proxy_on_log, proxy_on_delete) for every adapter. Idempotent. */
  finish(): void {
    HostStream.finishAll([this]);
  }

  /**
   * finish() for several streams at once, adapter by adapter: the first adapter's log phase
   * for every stream, then the second's, and so on. Each stream still sees its adapters in
   * chain order, but an adapter's code and memory stay in the CPU caches across the streams
   * instead of being evicted by the other adapters between them (proxy/batched-phases.ts).
   */
  static finishAll(streams: readonly HostStream[]): void {
    const todo: HostStream[] = [];
    let width = 0;
    for (const s of streams) {
      if (s.finished) continue;
      s.finished = true;
      if (s.stream.info.endMono === 0n) s.stream.info.endMono = process.hrtime.bigint();
      todo.push(s);
      width = Math.max(width, s.entries.length);
    }
    for (let i = 0; i < width; i++) {
      for (const s of todo) {
        const sc = i < s.ctx.length ? s.ctx[i] : null;
        if (sc) s.entries[i]!.adapter.finishStream(sc);
      }
    }
  }

  // --- machinery -------------------------------------------------------------------

  private index(dir: Direction, k: number): number {
    return dir === 'request' ? k : this.entries.length - 1 - k;
  }

  private headersFrom(dir: Direction, k: number, eos: boolean): Maybe<Decision> {
    const n = this.entries.length;
    for (; k < n; k++) {
      const d = this.headersAt(dir, k, eos);
      if (d !== null) return d;
    }
    return CONTINUE;
  }

  /**
   * The headers phase of `dir` for several streams, adapter by adapter: position k's callback
   * for every stream still going, then k + 1's. results[j] already set (a stream that failed
   * before the phase) keeps streams[j] out; an error thrown for one stream becomes its rejected
   * result, and the others go on.
   */
  private static headersAll(dir: Direction, streams: readonly HostStream[], eos: readonly boolean[], results: Array<Maybe<Decision> | undefined>): Array<Maybe<Decision>> {
    let width = 0;
    for (const s of streams) width = Math.max(width, s.entries.length);
    for (let k = 0; k < width; k++) {
      for (let j = 0; j < streams.length; j++) {
        const s = streams[j]!;
        if (results[j] !== undefined || k >= s.entries.length) continue;
        try {
          const d = s.headersAt(dir, k, eos[j]!);
          if (d !== null) results[j] = d;
        } catch (err) {
          results[j] = Promise.reject(err);
        }
      }
    }
    for (let j = 0; j < streams.length; j++) results[j] ??= CONTINUE;
    return results as Array<Maybe<Decision>>;
  }

  /** The headers callback of the adapter at position k: null to go on to k + 1, else how the headers phase ends. */
  private headersAt(dir: Direction, k: number, eos: boolean): Maybe<Decision> | null {
    const i = this.index(dir, k);
    if (this.skipped(i)) return null;
    const sc = this.ctx[i]!;
    const a = this.entries[i]!.adapter;
    const r = dir === 'request' ? a.onRequestHeaders(sc, eos) : a.onResponseHeaders(sc, eos);
    const d = this.settle(i, r);
    if (d !== null) return d;
    if (r === CallResult.Stop) {
      const next = k + 1;
      return this.waitThen(i, dir, () => this.headersFrom(dir, next, eos));
    }
    return null;
  }

  /** Trailer callbacks from position k; `out` collects the body bytes released so far. */
  private trailersFrom(dir: Direction, k: number, out: Uint8Array): Maybe<Uint8Array | Decision> {
    const n = this.entries.length;
    const map = dir === 'request' ? this.stream.requestTrailers : this.stream.responseTrailers;
    for (; k < n; k++) {
      const i = this.index(dir, k);
      if (!this.skipped(i) && this.hasTrailers[dir][i]) {
        const r = this.entries[i]!.adapter.onTrailers(this.ctx[i]!, dir, map?.length ?? 0);
        const d = this.settle(i, r);
        if (d !== null) return d;
        if (r === CallResult.Stop) {
          const at = k;
          return this.waitThen(i, dir, () => this.releaseThenTrailers(dir, at, out));
        }
      }
      const next = this.releaseHeld(dir, k, out);
      if (!(next instanceof Uint8Array)) return next;
      out = next;
    }
    return out;
  }

  private releaseThenTrailers(dir: Direction, k: number, out: Uint8Array): Maybe<Uint8Array | Decision> {
    const next = this.releaseHeld(dir, k, out);
    if (!(next instanceof Uint8Array)) return next;
    return this.trailersFrom(dir, k + 1, next);
  }

  /**
   * Bytes the adapter at position k held are passed to the body callbacks after it
   * (end_of_stream false: trailers follow); what passes them all joins `out`.
   */
  private releaseHeld(dir: Direction, k: number, out: Uint8Array): Uint8Array | Decision {
    const i = this.index(dir, k);
    const held = this.held === null ? null : this.held[dir][i];
    if (held === null || held === undefined || held.length === 0) return out;
    this.held![dir][i] = null;
    // With end_of_stream false no adapter waits, so this is synchronous.
    const r = this.bodyFrom(dir, k + 1, held.view(), false);
    if (isPromise(r)) throw new Error('unreachable: body callbacks do not wait before end of stream');
    return r instanceof Uint8Array ? concat(out, r) : r;
  }

  private bodyFrom(dir: Direction, k: number, data: Uint8Array, eos: boolean): Maybe<Uint8Array | Decision> {
    const n = this.entries.length;
    const buffer = dir === 'request' ? this.stream.requestBody : this.stream.responseBody;
    const held = this.heldFor(dir);
    for (; k < n; k++) {
      const i = this.index(dir, k);
      if (this.skipped(i) || !this.hasBody[dir][i]) continue;
      const prev = held[i];
      if (prev) {
        const limit = Math.min(this.entries[i]!.maxBufferedBodyBytes, this.routeMaxBufferedBodyBytes);
        if (prev.length + data.length > limit) return this.bodyTooLarge(i, dir, limit);
      }
      buffer.bytes = prev ? prev.append(data) : data;
      buffer.endOfStream = eos;
      const r = this.entries[i]!.adapter.onBody(this.ctx[i]!, dir, buffer.bytes.length, eos);
      const d = this.settle(i, r);
      if (d !== null) return d;
      if (r !== CallResult.Stop) {
        held[i] = null;
        data = buffer.bytes;
        continue;
      }
      // Keep appending to the same buffer, unless the adapter replaced it (proxy_set_buffer_bytes).
      if (prev === null || prev === undefined || buffer.bytes !== prev.view()) held[i] = new BodyAccumulator(buffer.bytes);
      if (!eos) return EMPTY;
      const next = k + 1;
      return this.waitThen(i, dir, () => {
        const buffered = held[i]?.view() ?? EMPTY;
        held[i] = null;
        return this.bodyFrom(dir, next, buffered, eos);
      });
    }
    return data;
  }

  /**
   * An adapter buffered more than its limit: 413 for a request body (the proxy's JSON error);
   * for a response body the headers are already sent, so the proxy resets the stream.
   */
  private bodyTooLarge(i: number, dir: Direction, limit: number): Decision {
    const e = this.entries[i]!;
    this.heldFor(dir)[i] = null;
    this.skipFrom(i);
    e.adapter.logger.log(LogLevel.Warn, e.name, `the ${dir} body buffered for adapter ${e.name} passed its limit of ${limit} bytes (limits.maxBufferedBodyBytes / the route's maxBufferedBodyBytes); ${dir === 'request' ? 'answering 413' : 'resetting the stream'}`, { code: 'BODY_TOO_LARGE' });
    e.adapter.metrics.counter('wasm_mixer_body_too_large_total', 'Requests stopped because an adapter buffered more body than its limit, by direction.', { adapter: e.name, direction: dir })();
    const request = dir === 'request';
    const body = Buffer.from(JSON.stringify({ error: 'BODY_TOO_LARGE', adapter: e.name, limit, message: `the ${dir} body is larger than the ${limit} bytes adapter ${e.name} may buffer` }));
    return this.respondWith({
      action: 'respond',
      reply: {
        status: request ? 413 : 502,
        headers: [['content-type', 'application/json'], ['x-wasm-mixer-error', 'body_too_large']],
        body,
        details: `BODY_TOO_LARGE:${e.name}`,
        adapter: '',
      },
    });
  }

  /** After a callback: a local reply, a reset, or a failed adapter may end the chain. */
  private settle(i: number, r: CallResult): Maybe<Decision> | null {
    if (this.stream.localResponse !== null) return this.localReply(i);
    if (this.stream.reset) return RESET;
    if (r === CallResult.Failed) {
      const e = this.entries[i]!;
      // The adapter says why it crashed (VM_TRAP, VM_BUDGET_EXCEEDED, VM_MEMORY_LIMIT) even after a restart.
      const a = e.adapter;
      const why = a.failed ?? (a.lastCrash ? `${a.lastCrash.callback}: ${a.lastCrash.reason} (VM replaced)` : 'its VM was replaced');
      return this.failAdapter(i, new HostError(a.failureCode, `adapter ${e.name} failed: ${why}`, { adapter: e.name }));
    }
    return null;
  }

  private waitThen<T>(i: number, dir: Direction, next: () => Maybe<T | Decision>): Promise<T | Decision> {
    const sc = this.ctx[i]!;
    const e = this.entries[i]!;
    return new Promise<T | Decision>((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        sc.waiter = null;
        const d = this.failAdapter(i, new HostError('ADAPTER_TIMEOUT', `adapter ${e.name} paused the ${dir} for more than ${e.pauseTimeoutMs} ms`, { adapter: e.name }));
        resolve(d ?? next());
      }, e.pauseTimeoutMs);
      timer.unref();
      sc.waitForResume(dir).then(
        () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const d = this.settle(i, CallResult.Continue);
          resolve(d ?? next());
        },
        (err: Error) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const d = this.failAdapter(i, err instanceof HostError ? err : new HostError('VM_TRAP', err.message, { adapter: e.name }));
          resolve(d ?? next());
        },
      );
    });
  }

  /** Applies an adapter's fail strategy. Returns the reply for fail-closed, or null after skipping it (fail-open). */
  private failAdapter(i: number, err: HostError): Decision | null {
    const e = this.entries[i]!;
    this.skipFrom(i);
    e.adapter.logger.log(LogLevel.Warn, e.name, `${err.message}; ${e.failStrategy === 'FAIL_OPEN' ? 'skipping it for this request (FAIL_OPEN)' : 'rejecting the request (FAIL_CLOSE)'}`, { code: err.code });
    e.adapter.metrics.counter('wasm_mixer_adapter_failures_total', 'Requests on which an adapter failed (trap, timeout, not running), by fail strategy.', {
      adapter: e.name,
      code: err.code,
      strategy: e.failStrategy,
    })();
    if (e.failStrategy === 'FAIL_OPEN') return null;
    const status = err.code === 'ADAPTER_TIMEOUT' ? 504 : 503;
    const body = Buffer.from(JSON.stringify({ error: err.code === 'ADAPTER_TIMEOUT' ? 'ADAPTER_TIMEOUT' : 'ADAPTER_FAILED', adapter: e.name }));
    this.stream.info.responseFlags = 'UAEX';
    return this.respondWith({
      action: 'respond',
      reply: {
        status,
        headers: [['content-type', 'application/json'], ['x-wasm-mixer-error', err.code === 'ADAPTER_TIMEOUT' ? 'adapter_timeout' : 'adapter_failed']],
        body,
        details: `${err.code}:${e.name}`,
        adapter: e.name,
      },
    });
  }

  /**
   * An adapter's local reply (proxy_send_local_response). As in Envoy, it runs through
   * the response callbacks of the adapter that sent it and of the adapters before it
   * in the chain (those that saw the request; reverse order), which may change its
   * status, headers and body. A local reply sent during that pass, or from a response
   * callback, is sent as it is.
   */
  private localReply(sender: number): Maybe<Decision> {
    const lr = this.stream.localResponse!;
    const headers = lr.headers.filter(([k]) => !k.startsWith(':'));
    const reply: LocalReply = { status: lr.status, headers, body: lr.body, details: `adapter:${lr.adapter}:${lr.details}`, adapter: lr.adapter };
    if (this.replying || this.stream.responseHeadersSent || this.inResponse) return this.respondWith({ action: 'respond', reply });
    return this.replyPass(sender, reply);
  }
  private replying = false;
  /** True once the response path started (a reply from a response callback skips the pass). */
  private inResponse = false;

  /** localReply's pass: response callbacks from `sender` back to the first adapter. */
  private replyPass(sender: number, reply: LocalReply): Maybe<Decision> {
    const s = this.stream;
    const sent = s.localResponse;
    this.replying = true;
    s.localResponse = null; // so a paused response callback waits for proxy_continue_stream, not for the reply
    s.responseHeaders = [[':status', String(reply.status)], ...reply.headers];
    s.info.responseCode = reply.status;
    const from = this.entries.length - 1 - sender;
    const body = reply.body;
    const done = (d: Decision | Uint8Array, bodyOut: Uint8Array): Maybe<Decision> => {
      this.replying = false;
      if (s.localResponse === null) s.localResponse = sent;
      if (!(d instanceof Uint8Array) && d.action !== 'continue') return d;
      const hs = s.responseHeaders ?? [];
      const status = Number(hs.find(([k]) => k === ':status')?.[1]) || reply.status;
      return this.respondWith({ action: 'respond', reply: { ...reply, status, headers: hs.filter(([k]) => !k.startsWith(':')), body: bodyOut } });
    };
    const afterHeaders = (d: Decision): Maybe<Decision> => {
      if (d.action !== 'continue') return done(d, body);
      const bodyRun = this.needsBody.response && body.length > 0;
      if (!bodyRun) return done(d, body);
      const b = this.bodyFrom('response', from, body, true);
      return isPromise(b) ? b.then((x) => done(x, x instanceof Uint8Array ? x : body)) : done(b, b instanceof Uint8Array ? b : body);
    };
    const h = this.headersFrom('response', from, body.length === 0);
    return isPromise(h) ? h.then(afterHeaders) : afterHeaders(h);
  }

  /** Records a reply as the response, so log-phase adapters see its status and headers. */
  private respondWith(d: Decision): Decision {
    if (d.action === 'respond') {
      const r = d.reply;
      this.stream.responseHeaders = [[':status', String(r.status)], ...r.headers];
      this.stream.info.responseCode = r.status;
      this.stream.info.responseCodeDetails = r.details;
      if (this.stream.info.responseFlags === '' && r.adapter !== '') this.stream.info.responseFlags = 'UAEX';
    }
    return d;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export { isPromise };
