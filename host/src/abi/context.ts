// The state the ABI's host functions act on: one VM's memory, its current
// context's header maps and buffers, its call-outs, timers and output. The
// in-process VM (plugin/plugin-vm.ts) implements it; abi/ depends only on this
// interface, never on the VM class.

import type { GrpcCallouts, GrpcRequest, GrpcTarget } from '../plugin/grpc-call.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import type { SharedDataView } from '../shared/shared-store.js';
import type { BodyBuffer } from '../stream/http-stream.js';
import type { GuestMemory } from '../vm/guest-memory.js';
import type { AbiVersion, BufferType, LogLevel, MapType, Status, StreamType } from './constants.js';
import type { HeaderPair } from './pairs.js';

export interface AbiContext {
  readonly name: string;
  readonly vmId: string;
  readonly compiled: { readonly abiVersion: AbiVersion };
  /** The guest's linear memory (replaced on every VM restart). */
  readonly memory: GuestMemory;
  readonly metrics: MetricsRegistry;
  /** Shared data of this VM's vm_id. */
  readonly shared: SharedDataView;
  readonly logLevel: LogLevel;
  /** `NAME=value` strings for WASI environ_get. */
  readonly environ: readonly Uint8Array[];
  /** proxy_get_status: the last call-out's status. */
  readonly lastCallStatus: { readonly code: number; readonly message: string };

  /** Allocates in the guest (its proxy_on_memory_allocate / malloc); 0 when that failed. */
  allocate(size: number): number;
  /** Whether a log line of `size` bytes at `level` is logged at all (level, and the callback's log budget). */
  admitLog(level: LogLevel, size: number): boolean;
  guestLog(level: LogLevel, message: string): void;
  /** WASI fd_write to stdout/stderr; `dropped`: bytes past the per-call bound. */
  stdioWrite(fd: number, chunks: Uint8Array[], dropped?: number): void;

  /** undefined: unknown map type; null: not available in this callback (or not writable). */
  headerMap(type: number, write: boolean): HeaderPair[] | null | undefined;
  headersChanged(type: MapType): void;
  /** The buffer of a type in the current callback, or null when it is not available here. */
  buffer(type: BufferType): BodyBuffer | null;
  /** ABI 0.1.0 proxy_get_configuration. */
  configuration(): Uint8Array;
  replaceBuffer(type: BufferType, bytes: Uint8Array): void;
  getProperty(path: string): Uint8Array | string | null;
  setProperty(path: string, value: Uint8Array): boolean;

  registerQueue(name: string): number;
  setTickPeriod(ms: number): void;
  setEffectiveContext(id: number): boolean;
  markDone(): boolean;
  continueStream(type: StreamType): boolean;
  closeStream(): boolean;
  sendLocalResponse(status: number, details: string, body: Uint8Array, headers: HeaderPair[], grpcStatus: number): boolean;

  /** bytes for OK, or the status to return. */
  callForeign(name: string, args: Uint8Array): Uint8Array | Status;
  /** A call-out token, or null for a cluster outside the grant or at the bound. */
  httpCall(cluster: string, headers: HeaderPair[], body: Uint8Array, timeoutMs: number): number | null;
  grpcTarget(cluster: string, fn: string): GrpcTarget | null;
  grpcCall(req: GrpcRequest, message: Uint8Array, timeoutMs: number): number | null;
  grpcStream(req: GrpcRequest): number | null;
  grpcCallouts(): GrpcCallouts;
}
