// The per-request state every adapter in a chain sees: header maps, bodies,
// connection and timing facts (served as properties), and values adapters hand
// to each other through proxy_set_property ("filter state").

import type { HeaderPair } from '../abi/pairs.js';
import type { PropertyMemo } from './property-memo.js';

export interface LocalResponse {
  status: number;
  details: string;
  body: Uint8Array;
  headers: HeaderPair[];
  grpcStatus: number;
  /** The adapter that sent it. */
  adapter: string;
}

/**
 * Connection and request facts the embedding proxy knows. A type (not an
 * interface) so it is a Record<string, unknown> too: the out-of-process mode
 * sends its fields by name (oop/attributes.ts).
 */
export type StreamInfo = {
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
  connectionId: number;
  protocol: string;
  /** Wall-clock start, nanoseconds since the epoch. */
  startTimeNs: bigint;
  /** Monotonic start, for durations. */
  startMono: bigint;
  routeName: string;
  clusterName: string;
  upstreamAddress: string;
  tls: boolean;
  requestBytes: number;
  requestHeaderBytes: number;
  responseBytes: number;
  responseHeaderBytes: number;
  responseCode: number;
  responseCodeDetails: string;
  /** Envoy-style response flags, e.g. UF (upstream failure), UT (timeout), UAEX (denied by an adapter). */
  responseFlags: string;
  /** Monotonic end of the stream; 0 while in flight. */
  endMono: bigint;
  /** Monotonic time the first upstream response byte arrived; 0 if none. */
  upstreamFirstByteMono: bigint;
};

export class BodyBuffer {
  bytes: Uint8Array = EMPTY;
  endOfStream = false;
  writable = true;
}

export const EMPTY = new Uint8Array(0);

/** A complete, read-only buffer (configuration, call-out answers). */
export function readOnlyBuffer(bytes: Uint8Array): BodyBuffer {
  const b = new BodyBuffer();
  b.bytes = bytes.length === 0 ? EMPTY : bytes;
  b.endOfStream = true;
  b.writable = false;
  return b;
}

export class HttpStream {
  /** Lower-case names; pseudo-headers :method, :path, :authority, :scheme first. */
  readonly requestHeaders: HeaderPair[];
  requestTrailers: HeaderPair[] | null = null;
  responseHeaders: HeaderPair[] | null = null;
  responseTrailers: HeaderPair[] | null = null;
  readonly requestBody = new BodyBuffer();
  readonly responseBody = new BodyBuffer();
  /** Values set with proxy_set_property, visible to later adapters in the chain. */
  readonly filterState = new Map<string, Uint8Array>();
  localResponse: LocalResponse | null = null;
  /** Set by proxy_close_stream: the proxy resets the connection. */
  reset = false;
  requestHeadersSent = false;
  responseHeadersSent = false;
  readonly info: StreamInfo;
  /** Property values computed for this request, shared by the adapters of its chain (made on first use). */
  propertyMemo: PropertyMemo | null = null;

  constructor(requestHeaders: HeaderPair[], info: Partial<StreamInfo> = {}) {
    this.requestHeaders = requestHeaders;
    // Field by field rather than `{ ...defaults, ...info }`: copying properties by spread is a
    // generic runtime call on every request, and this way every info has the same shape.
    const startMono = info.startMono ?? process.hrtime.bigint();
    this.info = {
      sourceAddress: info.sourceAddress ?? '127.0.0.1',
      sourcePort: info.sourcePort ?? 0,
      destinationAddress: info.destinationAddress ?? '127.0.0.1',
      destinationPort: info.destinationPort ?? 0,
      connectionId: info.connectionId ?? 0,
      protocol: info.protocol ?? 'HTTP/1.1',
      startTimeNs: info.startTimeNs ?? BigInt(Date.now()) * 1_000_000n,
      startMono,
      routeName: info.routeName ?? '',
      clusterName: info.clusterName ?? '',
      upstreamAddress: info.upstreamAddress ?? '',
      tls: info.tls ?? false,
      requestBytes: info.requestBytes ?? 0,
      requestHeaderBytes: info.requestHeaderBytes ?? 0,
      responseBytes: info.responseBytes ?? 0,
      responseHeaderBytes: info.responseHeaderBytes ?? 0,
      responseCode: info.responseCode ?? 0,
      responseCodeDetails: info.responseCodeDetails ?? '',
      responseFlags: info.responseFlags ?? '',
      endMono: info.endMono ?? 0n,
      upstreamFirstByteMono: info.upstreamFirstByteMono ?? 0n,
    };
  }

  requestHeader(name: string): string | undefined {
    const h = this.requestHeaders;
    for (let i = 0; i < h.length; i++) if (h[i]![0] === name) return h[i]![1];
    return undefined;
  }

  responseHeader(name: string): string | undefined {
    const h = this.responseHeaders;
    if (h === null) return undefined;
    for (let i = 0; i < h.length; i++) if (h[i]![0] === name) return h[i]![1];
    return undefined;
  }
}
