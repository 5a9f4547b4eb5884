// What a call-out transport is given and answers (proxy_http_call). Types only.

import type { HeaderPair } from '../abi/pairs.js';

export interface HttpCallRequest {
  cluster: string;
  baseUrl: string;
  /** Includes :method, :path and :authority. */
  headers: HeaderPair[];
  body: Uint8Array;
  timeoutMs: number;
  signal: AbortSignal;
  /**
   * Called with the size of each response chunk as it arrives; false aborts the call
   * (the VM's bound on call-out bytes in flight, host/src/limits.ts).
   */
  account?: (bytes: number) => boolean;
}

export interface HttpCallResult {
  /** Includes :status first, as Envoy presents it. */
  headers: HeaderPair[];
  body: Uint8Array;
  trailers: HeaderPair[];
}

export type HttpCallTransport = (req: HttpCallRequest) => Promise<HttpCallResult>;
