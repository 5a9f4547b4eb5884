// proxy_http_call transport: a real HTTP/1.1 request to a configured cluster.
// The transport is an interface so the test harness can answer call-outs in-process.

import http from 'node:http';
import https from 'node:https';
import type { HeaderPair } from '../abi/pairs.js';
import { MAX_CALLOUT_RESPONSE_BYTES } from '../limits.js';

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

const MAX_RESPONSE_BYTES = MAX_CALLOUT_RESPONSE_BYTES;
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const tlsAgent = new https.Agent({ keepAlive: true, maxSockets: 16 });

export const performHttpCall: HttpCallTransport = (req) => {
  // redis:// clusters serve the quota lease protocol (host/src/quota/lease.ts); loaded on first use.
  if (req.baseUrl.startsWith('redis')) return import('../quota/lease.js').then((m) => m.redisLeaseCall(req)); // redis(s)://, redis+cluster://, redis+sentinel://
  // A worker's local quota limits lease from the primary over IPC (host/src/workers/lease-client.ts).
  if (req.baseUrl.startsWith('wasm-mixer-primary:')) return import('../workers/lease-client.js').then((m) => m.primaryLeaseCall(req));
  return performHttp(req);
};

const performHttp: HttpCallTransport = (req) =>
  new Promise((resolve, reject) => {
    const base = new URL(req.baseUrl);
    const pseudo = (k: string) => req.headers.find(([n]) => n === k)?.[1] ?? '';
    const headers: Record<string, string> = {};
    for (const [k, v] of req.headers) if (!k.startsWith(':')) headers[k] = v;
    headers.host = pseudo(':authority');
    const mod = base.protocol === 'https:' ? https : http;
    const r = mod.request(
      {
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port,
        method: pseudo(':method'),
        path: pseudo(':path'),
        headers,
        agent: base.protocol === 'https:' ? tlsAgent : agent,
        timeout: req.timeoutMs,
        signal: req.signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            res.destroy(new Error(`call-out response over ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          if (req.account !== undefined && !req.account(c.length)) {
            res.destroy(new Error('the adapter has more call-out bytes in flight than its bound'));
            return;
          }
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const out: HeaderPair[] = [[':status', String(res.statusCode ?? 0)]];
          for (let i = 0; i < res.rawHeaders.length; i += 2) out.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
          const trailers: HeaderPair[] = [];
          for (let i = 0; i < res.rawTrailers.length; i += 2) trailers.push([res.rawTrailers[i]!.toLowerCase(), res.rawTrailers[i + 1]!]);
          resolve({ headers: out, body: Buffer.concat(chunks), trailers });
        });
      },
    );
    const timer = setTimeout(() => r.destroy(new Error(`call-out timed out after ${req.timeoutMs} ms`)), req.timeoutMs);
    timer.unref();
    r.on('close', () => clearTimeout(timer));
    r.on('error', reject);
    r.end(req.body.length > 0 ? req.body : undefined);
  });
