// The contract between the chain and one adapter. An in-process VM
// (plugin/plugin-vm.ts) and a remote adapter reached over gRPC (oop/) both
// implement it, so a benchmark or a config switch swaps one for the other, and
// the host, the admin port, the reloader and the chain need nothing else.
//
// Names: a *plugin* is a configured entry (PluginConfig, WasmHost.plugins); its
// running *adapter* is this contract (LoadedPlugin.adapter, ChainEntry.adapter),
// implemented by PluginVm in process and RemoteAdapter out of process.

import type { HostErrorCode } from '../errors.js';
import type { HostLogger } from '../log/logger.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import type { HostMemoryUsage } from '../plugin/accounting.js';
import type { RestartState } from '../plugin/restart-policy.js';
import type { HttpStream } from '../stream/http-stream.js';
import type { CallResult, Direction, StreamContext } from '../stream/stream-context.js';

export type OptionalCallback = 'request_headers' | 'response_headers' | 'request_body' | 'response_body' | 'request_trailers' | 'response_trailers';

/** Why an adapter last crashed (kept after the restart, for /adapters and the chain's error code). */
export interface CrashInfo {
  readonly code: HostErrorCode;
  readonly callback: string;
  readonly reason: string;
  readonly at: number;
}

/** What /adapters shows about where and how the adapter runs. */
export interface AdapterDetails {
  /** The most fuel one callback used (0 out of process: the VM runs in the adapter server). */
  readonly fuelHighWater: number;
  /** Linear memory of the VM, bytes (0 out of process). */
  readonly memoryBytes: number;
  /** Host memory held outside linear memory (null out of process). */
  readonly hostMemory: HostMemoryUsage | null;
  /** Restart state (null out of process). */
  readonly restart: RestartState | null;
  /** The adapter server's address out of process; null in process. */
  readonly remote: string | null;
}

/** One loaded adapter, as the chain and the host see it. */
export interface Adapter {
  readonly name: string;
  /** Why the adapter is not running, or null when it is. */
  readonly failed: string | null;
  /** Running and not stopped. */
  readonly healthy: boolean;
  /** Bumped on every (re)start of the adapter's VM in this process (a remote adapter is never restarted here: 1). */
  readonly generation: number;
  /** Crashes in this process since load. */
  readonly crashes: number;
  /** The last crash, kept after the restart; null if none. */
  readonly lastCrash: CrashInfo | null;
  /** The error code the chain reports when a callback failed (VM_TRAP, VM_BUDGET_EXCEEDED, VM_MEMORY_LIMIT, VM_FAILED). */
  readonly failureCode: HostErrorCode;
  /** Request contexts alive in the adapter. */
  readonly liveStreams: number;
  readonly logger: HostLogger;
  readonly metrics: MetricsRegistry;
  details(): AdapterDetails;
  /** Stops timers and calls in flight; the adapter is not called again. */
  stop(): void;
  /**
   * Whether the adapter wants this callback (bodies are only buffered for adapters that do; the
   * proxy batches a header phase only for chains with an adapter that wants it).
   * The answer must not change for the adapter's lifetime: the chain asks once per chain.
   */
  implements(callback: OptionalCallback): boolean;
  /** A context for one request, or null when the adapter is not running. */
  createStream(stream: HttpStream): StreamContext | null;
  /** Stop means: wait until the adapter wakes the context (StreamContext.wake) or replies locally. */
  onRequestHeaders(sc: StreamContext, endOfStream: boolean): CallResult;
  onResponseHeaders(sc: StreamContext, endOfStream: boolean): CallResult;
  onBody(sc: StreamContext, direction: Direction, size: number, endOfStream: boolean): CallResult;
  onTrailers(sc: StreamContext, direction: Direction, count: number): CallResult;
  /** The log phase: called once per request, after the response. */
  finishStream(sc: StreamContext): void;
}

/** @deprecated The former name of Adapter. */
export type AdapterRuntime = Adapter;
