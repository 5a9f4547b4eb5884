// One VM's call-outs: proxy_http_call through the call-out transport, and gRPC
// call-outs (plugin/grpc-call.ts). Only clusters in the plugin's `clusters` grant
// may be called; calls in flight and their bytes are bounded per VM (limits.ts);
// answers are delivered on the root context, and only to the VM generation that
// made the call (a crash or stop aborts everything in flight).

import { LogLevel, MapType } from '../abi/constants.js';
import type { HeaderPair } from '../abi/pairs.js';
import type { HostLogger } from '../log/logger.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import { MAX_CALLOUT_BYTES, MAX_PENDING_CALLOUTS } from '../limits.js';
import { BodyBuffer, readOnlyBuffer } from '../stream/http-stream.js';
import { performHttpCall, type HttpCallResult, type HttpCallTransport } from '../transport/http-call.js';
import type { Denials } from './capabilities.js';
import { GrpcCallouts, type GrpcEvent, type GrpcRequest, type GrpcTarget } from './grpc-call.js';
import { CallPhase } from './guest-call.js';

/** What call-outs need from their VM. */
export interface CalloutOwner {
  readonly name: string;
  readonly metrics: MetricsRegistry;
  readonly logger: HostLogger;
  readonly denials: Denials;
  /** Bumped on every (re)start; answers to an older generation are dropped. */
  readonly generation: number;
  readonly healthy: boolean;
  /** proxy_get_status's answer in a call-out callback. */
  lastCallStatus: { code: number; message: string };
  /** Whether the module exports a callback. */
  has(exportName: string): boolean;
  /** Runs an exported callback on the root context in `phase` (a trap crashes the VM). */
  callRoot(phase: CallPhase, callback: string, call: (f: (...args: number[]) => number, rootId: number) => number | undefined): void;
}

const GRPC_CALLBACKS: Record<GrpcEvent['kind'], string> = {
  initial_metadata: 'proxy_on_grpc_receive_initial_metadata',
  message: 'proxy_on_grpc_receive',
  trailing_metadata: 'proxy_on_grpc_receive_trailing_metadata',
  close: 'proxy_on_grpc_close',
};

export class Callouts {
  private readonly pending = new Map<number, AbortController>();
  private nextToken = 1;
  private bytes = 0;
  private bytesHighWater = 0;
  /** The HTTP call-out answer, during proxy_on_http_call_response. */
  private response: { headers: HeaderPair[]; trailers: HeaderPair[]; body: BodyBuffer } | null = null;
  private grpc: GrpcCallouts | null = null;
  private grpcEvent: GrpcEvent | null = null;

  constructor(
    private readonly owner: CalloutOwner,
    /** Granted clusters: name → base URL. */
    private readonly clusters: Record<string, string>,
    private readonly transport: HttpCallTransport = performHttpCall,
  ) {}

  /** For the VM's host-memory accounting. */
  get inFlight(): { pendingCallouts: number; calloutBytes: number; calloutBytesHighWater: number } {
    return { pendingCallouts: this.pending.size, calloutBytes: this.bytes, calloutBytesHighWater: this.bytesHighWater };
  }

  /** Aborts every call-out in flight (the VM stopped or crashed). */
  abortAll(): void {
    for (const c of this.pending.values()) c.abort();
    this.pending.clear();
    this.grpc?.closeAll();
    this.grpc = null;
  }

  /** Starts an HTTP call-out; returns its token, or null for an unknown cluster or at the bound. */
  httpCall(cluster: string, headers: HeaderPair[], body: Uint8Array, timeoutMs: number): number | null {
    const o = this.owner;
    const base = Object.hasOwn(this.clusters, cluster) ? this.clusters[cluster] : undefined;
    if (base === undefined) {
      o.denials.denied('http_call', 'proxy_http_call', cluster.slice(0, 100));
      return null;
    }
    if (this.pending.size >= MAX_PENDING_CALLOUTS || this.bytes + body.length > MAX_CALLOUT_BYTES) {
      o.metrics.counter('wasm_mixer_adapter_host_limit_total', 'Guest requests refused at a host-memory bound, by kind.', { adapter: o.name, kind: 'callouts' })();
      if (o.denials.first('callout-limit')) {
        o.logger.log(LogLevel.Warn, o.name, `adapter ${o.name} has ${this.pending.size} HTTP call-outs (${this.bytes} bytes) in flight, the most a VM may (${MAX_PENDING_CALLOUTS} calls, ${MAX_CALLOUT_BYTES} bytes); refusing more`, { code: 'VM_HOST_LIMIT' });
      }
      return null;
    }
    const token = this.nextToken++;
    const ac = new AbortController();
    this.pending.set(token, ac);
    this.bytes += body.length;
    if (this.bytes > this.bytesHighWater) this.bytesHighWater = this.bytes;
    const gen = o.generation;
    let held = body.length;
    // Response bytes count against the same bound as they arrive; past it the call is aborted (answered as failed).
    const account = (n: number): boolean => {
      if (this.bytes + n > MAX_CALLOUT_BYTES) {
        o.metrics.counter('wasm_mixer_adapter_host_limit_total', 'Guest requests refused at a host-memory bound, by kind.', { adapter: o.name, kind: 'callout_response' })();
        return false;
      }
      this.bytes += n;
      held += n;
      if (this.bytes > this.bytesHighWater) this.bytesHighWater = this.bytes;
      return true;
    };
    const settle = (res: HttpCallResult | null) => {
      this.bytes -= held;
      this.deliverHttp(token, gen, res);
    };
    this.transport({ cluster, baseUrl: base, headers, body, timeoutMs, signal: ac.signal, account }).then(settle, () => settle(null));
    return token;
  }

  private deliverHttp(token: number, gen: number, res: HttpCallResult | null): void {
    const o = this.owner;
    if (!this.pending.delete(token) || gen !== o.generation || !o.healthy) return;
    if (!o.has('proxy_on_http_call_response')) return;
    const body = new BodyBuffer();
    body.writable = false;
    body.endOfStream = true;
    if (res !== null) body.bytes = res.body;
    this.response = res === null ? null : { headers: res.headers, trailers: res.trailers, body };
    o.lastCallStatus = res === null ? { code: 14, message: 'call-out failed' } : { code: 0, message: '' };
    try {
      o.callRoot(CallPhase.HttpCallResponse, 'proxy_on_http_call_response', (f, root) =>
        f(root, token, res === null ? 0 : res.headers.length, res === null ? 0 : res.body.length, res === null ? 0 : res.trailers.length),
      );
    } finally {
      this.response = null;
    }
  }

  /** The call-out answer's headers or trailers in proxy_on_http_call_response (read-only), else null. */
  responseMap(type: MapType, write: boolean, phase: CallPhase): HeaderPair[] | null {
    if (phase !== CallPhase.HttpCallResponse || this.response === null || write) return null;
    return type === MapType.HttpCallResponseHeaders ? this.response.headers : this.response.trailers;
  }

  responseBody(phase: CallPhase): BodyBuffer | null {
    return phase === CallPhase.HttpCallResponse && this.response !== null ? this.response.body : null;
  }

  // --- gRPC ------------------------------------------------------------------------

  /** The granted cluster's gRPC address, or null (logged and counted) when the plugin may not call it. */
  grpcTarget(cluster: string, fn: string): GrpcTarget | null {
    const base = Object.hasOwn(this.clusters, cluster) ? this.clusters[cluster] : undefined;
    if (base === undefined) {
      this.owner.denials.denied('grpc_call', fn, cluster.slice(0, 100));
      return null;
    }
    const url = new URL(base);
    return { address: url.host, tls: url.protocol === 'https:' };
  }

  /** The VM's gRPC call-outs (created on first use, per VM generation). */
  grpcCallouts(): GrpcCallouts {
    if (this.grpc === null) {
      const gen = this.owner.generation;
      this.grpc = new GrpcCallouts((e) => this.deliverGrpc(gen, e), () => this.nextToken++);
    }
    return this.grpc;
  }

  grpcCall(req: GrpcRequest, message: Uint8Array, timeoutMs: number): number | null {
    return this.grpcCallouts().call(req, message, timeoutMs);
  }

  grpcStream(req: GrpcRequest): number | null {
    return this.grpcCallouts().stream(req);
  }

  grpcMetadata(type: MapType, write: boolean, phase: CallPhase): HeaderPair[] | null {
    const e = this.grpcEvent;
    if (write || e === null || phase !== CallPhase.GrpcCallback) return null;
    if (type === MapType.GrpcReceiveInitialMetadata && e.kind === 'initial_metadata') return e.metadata;
    if (type === MapType.GrpcReceiveTrailingMetadata && e.kind === 'trailing_metadata') return e.metadata;
    return null;
  }

  grpcMessage(phase: CallPhase): BodyBuffer | null {
    const e = this.grpcEvent;
    return e !== null && e.kind === 'message' && phase === CallPhase.GrpcCallback ? readOnlyBuffer(e.message) : null;
  }

  /** Calls the module's proxy_on_grpc_* callback for an event, on the root context (as cpp-host does). */
  private deliverGrpc(gen: number, e: GrpcEvent): void {
    const o = this.owner;
    if (gen !== o.generation || !o.healthy) return;
    const name = GRPC_CALLBACKS[e.kind];
    if (!o.has(name)) return;
    const arg = e.kind === 'message' ? e.message.length : e.kind === 'close' ? e.status : e.metadata.length;
    this.grpcEvent = e;
    o.lastCallStatus = e.kind === 'close' ? { code: e.status, message: e.message } : { code: 0, message: '' };
    try {
      o.callRoot(CallPhase.GrpcCallback, name, (f, root) => f(root, e.token, arg));
    } finally {
      this.grpcEvent = null;
    }
  }
}
