// The proxy port's HTTP server: its limits against slow or oversized requests,
// and the proxy's own answer (plus a log phase) when Node's parser refuses one.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { LogLevel } from '../abi/constants.js';
import type { MixerConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import type { WasmHost } from '../host.js';
import { connectionInfo, numberConnections } from './connection.js';
import type { Drain } from './drain.js';

/** Proxy-port limits against slow or oversized requests (docs/operating.md "Proxy port limits"). */
export const DEFAULT_SERVER_LIMITS = { headersTimeoutMs: 10_000, requestTimeoutMs: 120_000, keepAliveTimeoutMs: 5_000, maxHeaderBytes: 16_384 } as const;
type ServerLimits = { -readonly [K in keyof typeof DEFAULT_SERVER_LIMITS]: number };

export function serverLimits(config: MixerConfig): ServerLimits {
  const l = config.listen ?? { port: 8080 };
  const headersTimeoutMs = l.headersTimeoutMs ?? DEFAULT_SERVER_LIMITS.headersTimeoutMs;
  return {
    headersTimeoutMs,
    // Node requires requestTimeout >= headersTimeout (0 disables it).
    requestTimeoutMs: Math.max(l.requestTimeoutMs ?? DEFAULT_SERVER_LIMITS.requestTimeoutMs, headersTimeoutMs),
    keepAliveTimeoutMs: l.keepAliveTimeoutMs ?? DEFAULT_SERVER_LIMITS.keepAliveTimeoutMs,
    maxHeaderBytes: l.maxHeaderBytes ?? DEFAULT_SERVER_LIMITS.maxHeaderBytes,
  };
}

/**
 * The latest response on a connection, kept on the socket itself: a timeout while its request
 * body is still arriving is answered through it. (A WeakMap keyed by socket was set and cleared
 * on every request: its table was reallocated as it churned, and lived long enough to be promoted.)
 */
const CURRENT = Symbol('wasm-mixer current response');
type ProxySocket = Socket & { [CURRENT]?: ServerResponse | null };

/**
 * The proxy port's server (not yet listening). `handle` gets each request; `responses`
 * counts the answers to requests the parser refused (handled ones count themselves).
 */
export function createProxyServer(
  host: WasmHost,
  config: MixerConfig,
  drain: Drain,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  responses: (route: string, code: number) => void,
): http.Server {
  const limits = serverLimits(config);
  // Once a request is complete and answered, the connection's reference only kept the whole request
  // (its stream, the adapters' contexts) alive while the keep-alive connection waits for the next one.
  const forget = function (this: ServerResponse): void {
    const req = this.req;
    const socket = req.socket as ProxySocket;
    if (req.complete && socket[CURRENT] === this) socket[CURRENT] = null;
  };
  const server = http.createServer({
    keepAlive: true,
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // How often Node looks for connections past headersTimeout/requestTimeout (default 30 s, which would stretch the bounds).
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs, limits.requestTimeoutMs),
  }, (req, res) => {
    drain.track(res);
    (req.socket as ProxySocket)[CURRENT] = res;
    res.on('close', forget);
    handle(req, res);
  });
  server.keepAliveTimeout = limits.keepAliveTimeoutMs; // not a createServer option on Node 20
  numberConnections(server);
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: ProxySocket & { _httpMessage?: ServerResponse | null }) => {
    // Oversized headers (431), a slow client past headersTimeout/requestTimeout (408), malformed
    // HTTP (400): answer with the proxy's JSON error, count it, run the log phase, keep serving.
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable || socket._httpMessage?.headersSent) return void socket.destroy();
    const e = clientErrorReply(err.code, limits);
    host.logger.log(LogLevel.Debug, 'proxy', `${e.message} (from ${socket.remoteAddress ?? '?'}: ${err.message})`, { code: e.error });
    const body = JSON.stringify({ error: e.error, message: e.message });
    const cur = socket[CURRENT];
    if (cur != null && !cur.req.complete) {
      // The body of a request already in the chain is too slow: answer through its response (one access-log
      // entry, from its log phase), or just close if a response already went out (e.g. an early 413).
      if (cur.headersSent) return void socket.destroy();
      cur.once('finish', () => socket.destroy());
      cur.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
      return;
    }
    socket.end(`HTTP/1.1 ${e.status} ${http.STATUS_CODES[e.status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    responses('', e.status);
    logClientError(host, socket, err.rawPacket, e.status, e.details, Buffer.byteLength(body));
  });
  return server;
}

/** The proxy's own answer to a request Node's HTTP parser refused. */
function clientErrorReply(code: string | undefined, limits: ServerLimits): { status: number; error: string; message: string; details: string } {
  if (code === 'HPE_HEADER_OVERFLOW') {
    return { status: 431, error: 'HEADERS_TOO_LARGE', message: `the request line and headers are larger than ${limits.maxHeaderBytes} bytes (listen.maxHeaderBytes)`, details: 'http1.headers_too_large' };
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, error: 'REQUEST_TIMEOUT', message: `the request was not received in time (headers within ${limits.headersTimeoutMs} ms, the whole request within ${limits.requestTimeoutMs} ms)`, details: 'request_timeout' };
  }
  return { status: 400, error: 'BAD_REQUEST', message: 'malformed HTTP/1.1 request', details: 'http1.codec_error' };
}

/** Telemetry for a request Node's parser refused: the log phase runs (access log, istio metrics) with what is known. */
function logClientError(host: WasmHost, sock: Socket, raw: Buffer | undefined, status: number, details: string, bodyBytes: number): void {
  const line = raw !== undefined ? /^([A-Z]{1,20}) (\S{1,2048}) HTTP\/1\.[01]\r?\n/.exec(raw.subarray(0, 2100).toString('latin1')) : null;
  try {
    const stream = host.newStream({
      method: line?.[1] ?? '',
      path: line?.[2] ?? '',
      authority: '',
      headers: [],
      info: connectionInfo(sock),
    });
    const info = stream.stream.info;
    stream.stream.responseHeaders = [[':status', String(status)], ['content-type', 'application/json']];
    info.responseCode = status;
    info.responseCodeDetails = details;
    info.responseBytes = bodyBytes;
    info.endMono = process.hrtime.bigint();
    stream.finish();
  } catch (err) {
    host.logger.log(LogLevel.Error, 'proxy', `log phase for a refused request failed: ${describeError(err)}`, { code: 'INTERNAL' });
  }
}
