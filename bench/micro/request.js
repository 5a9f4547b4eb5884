// The request both micro-tier scripts drive through WasmHost: the e2e load generators'
// POST /api/v1/orders (bench/e2e/configs.js requestKinds) as a stream description.
import { randomUUID } from 'node:crypto';

export const RESPONSE_HEADERS = [['content-type', 'application/octet-stream'], ['content-length', '1024']];

/** newStream() arguments for one request with the given credential header, from client connection c (0..15). */
export function benchStream(credential, c) {
  return {
    method: 'POST',
    path: '/api/v1/orders?page=2',
    authority: 'orders.bench.local',
    headers: [
      ['user-agent', 'wasm-mixer-bench/1'],
      ['accept', '*/*'],
      ['content-type', 'application/octet-stream'],
      ['content-length', '1024'],
      credential,
      ['x-request-id', randomUUID()],
    ],
    route: 'orders',
    // 16 client connections, as in the e2e runs (the check cache sees their source ports).
    info: { sourceAddress: '127.0.0.1', sourcePort: 40000 + c, destinationAddress: '127.0.0.1', destinationPort: 8080, connectionId: c + 1, protocol: 'HTTP/1.1', clusterName: 'orders', upstreamAddress: '127.0.0.1:9' },
  };
}

/**
 * One request's whole lifecycle through host `h` (request headers, response headers with a
 * 1 KiB body each way, log phase), as the proxy drives it. Returns the request-header
 * decision's action: 'continue', or what stopped it (then only the log phase ran).
 */
export function driveRequest(h, credential, c) {
  const s = h.newStream(benchStream(credential, c));
  const d = s.requestHeaders(false);
  if (d instanceof Promise) throw new Error('in-process chain returned a promise');
  if (d.action !== 'continue') {
    s.finish();
    return d.action;
  }
  s.stream.requestHeadersSent = true;
  s.stream.info.requestBytes = 1024;
  s.responseHeaders(200, RESPONSE_HEADERS.slice(), false);
  s.stream.responseHeadersSent = true;
  s.stream.info.responseBytes = 1024;
  s.finish();
  return d.action;
}
