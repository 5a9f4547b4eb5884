// One downstream request: its stream through the chain (request headers first),
// the proxy's local replies (an adapter's, a 404, a 500), then forwarding.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LogLevel } from '../abi/constants.js';
import type { HeaderPair } from '../abi/pairs.js';
import type { Decision, LocalReply, Maybe } from '../chain/chain.js';
import { describeError } from '../errors.js';
import type { WasmHost } from '../host.js';
import { then } from './body-pump.js';
import { connectionInfo } from './connection.js';
import type { Exchange } from './exchange.js';
import { finishSoon, startSoon } from './batched-phases.js';
import { addHeader, connectionTokens, headBytes, HOP_BY_HOP, type OutHeaders } from './headers.js';
import type { RouteTable } from './routes.js';
import { forward, type Upstream } from './upstream.js';

/** What every request on the proxy port shares. */
export interface ProxyContext {
  readonly host: WasmHost;
  readonly routes: RouteTable;
  readonly upstream: Upstream;
  readonly responses: (route: string, code: number) => void;
}

export function handleRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  const { host } = ctx;
  const authority = req.headers.host ?? '';
  const path = req.url ?? '/';
  const route = ctx.routes.pick(authority, path);
  const headers: HeaderPair[] = [];
  const raw = req.rawHeaders;
  let hasRequestId = false;
  // Bytes of the request head as received: request line, "name: value\r\n" lines, blank line.
  let headerBytes = (req.method?.length ?? 0) + path.length + 13;
  const named = connectionTokens(req.headers.connection);
  for (let i = 0; i < raw.length; i += 2) {
    headerBytes += raw[i]!.length + raw[i + 1]!.length + 4;
    const k = raw[i]!.toLowerCase();
    if (k === 'host' || HOP_BY_HOP.has(k) || named?.has(k)) continue;
    if (k === 'x-request-id') hasRequestId = true;
    headers.push([k, raw[i + 1]!]);
  }
  if (!hasRequestId) headers.push(['x-request-id', randomUUID()]);
  const conn = connectionInfo(req.socket);
  const stream = host.newStream({
    method: req.method ?? 'GET',
    path,
    authority,
    scheme: 'http',
    headers,
    route: route?.config.name,
    maxBufferedBodyBytes: route?.config.maxBufferedBodyBytes,
    info: {
      sourceAddress: conn.sourceAddress,
      sourcePort: conn.sourcePort,
      destinationAddress: conn.destinationAddress,
      destinationPort: conn.destinationPort,
      connectionId: conn.connectionId,
      protocol: req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`,
      requestHeaderBytes: headerBytes,
      // The route's cluster, as Envoy's cluster_name (known once the route is; Istio's
      // destination_service). upstreamAddress is set in forward(): a request answered
      // locally (an adapter's 401/403/429, a 404) never had an upstream host.
      clusterName: route?.config.name ?? '',
    },
  });
  const info = stream.stream.info;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    info.endMono = process.hrtime.bigint();
    if (info.responseCode === 0) info.responseCode = res.statusCode;
    finishSoon(stream);
    ctx.responses(route?.config.name ?? '', info.responseCode);
  };
  res.on('close', finish);
  req.on('data', (c: Buffer) => void (info.requestBytes += c.length));
  // That listener switches the body to flowing mode: while an adapter holds the request
  // (a remote Check, a JWKS fetch) the body would stream past and never reach the
  // upstream. Stay paused until forward() pipes or pumps it, or reply() drains it.
  req.pause();

  const reply = (r: LocalReply) => {
    req.resume();
    if (res.headersSent) {
      res.destroy();
      return;
    }
    stream.stream.responseHeadersSent = true;
    if (info.responseCodeDetails === '') info.responseCodeDetails = r.details; // proxy-made replies (adapter replies set it in the chain)
    const hs: OutHeaders = {};
    // The reply is framed here: framing and hop-by-hop headers an adapter passed on (say, from a
    // call-out's answer) are dropped, never sent next to our Content-Length (RFC 9112 §6.1).
    for (const [k, v] of r.headers) if (!HOP_BY_HOP.has(k) && k !== 'content-length') addHeader(hs, k, v);
    hs['content-length'] = String(r.body.length);
    info.responseBytes = r.body.length;
    info.responseHeaderBytes = headBytes(hs);
    res.writeHead(r.status, hs);
    res.end(r.body);
  };
  const reset = () => {
    info.responseFlags = 'DC';
    req.destroy();
    res.destroy();
  };
  const fail = (err: unknown) => {
    host.logger.log(LogLevel.Error, 'proxy', `request failed in the proxy: ${describeError(err)}`, { code: 'INTERNAL' });
    reply({ status: 500, headers: [['content-type', 'text/plain']], body: Buffer.from('internal proxy error\n'), details: 'internal', adapter: '' });
  };
  const exchange: Exchange = { host, stream, req, res, reply, reset, fail };

  const contentLength = req.headers['content-length'];
  const endOfStream = req.headers['transfer-encoding'] === undefined && (contentLength === undefined || contentLength === '0');
  const decided = (decision: Maybe<Decision>) => then(decision, (d) => {
    if (finished) return; // the client left before the adapters decided: nothing to forward or answer
    if (d.action === 'respond') return reply(d.reply);
    if (d.action === 'reset') return reset();
    if (route === null) {
      info.responseFlags = 'NR';
      return reply({ status: 404, headers: [['content-type', 'text/plain']], body: Buffer.from('no route for this request\n'), details: 'route_not_found', adapter: '' });
    }
    forward(ctx.upstream, exchange, route, endOfStream);
  }, fail);
  // With the other requests of this turn, adapter by adapter (batched-phases.ts), if an adapter looks at request headers.
  if (stream.hasHeaders.request) startSoon(stream, endOfStream, decided);
  else decided(stream.requestHeaders(endOfStream));
}
