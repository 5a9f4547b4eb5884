// The contract between the chain and one adapter. An in-process VM
// (plugin/plugin-vm.ts) and a remote adapter reached over gRPC (oop/) both
// implement it, so a benchmark or a config switch swaps one for the other.

import type { HostLogger } from '../log/logger.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import type { HttpStream } from '../plugin/http-stream.js';
import type { CallResult, Direction, StreamContext } from '../plugin/stream-context.js';

export type OptionalCallback = 'request_body' | 'response_body' | 'request_trailers' | 'response_trailers';

export interface AdapterRuntime {
  readonly name: string;
  /** Why the adapter is not running, or null when it is. */
  readonly failed: string | null;
  readonly logger: HostLogger;
  readonly metrics: MetricsRegistry;
  /** Whether the adapter wants this callback (bodies are only buffered for adapters that do). */
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
