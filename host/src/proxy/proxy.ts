// The HTTP/1.1 reverse proxy: routes each request to an upstream over a
// keep-alive pool, runs the adapter chain around it, streams bodies, and
// serves the admin port. Bodies are piped untouched unless some adapter in
// the chain implements a body callback.

import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { LogLevel } from '../abi/constants.js';
import type { HeaderPair } from '../abi/pairs.js';
import { RequestFraming } from './request-framing.js';
import { isPromise, type Decision, type HostStream, type LocalReply, type Maybe } from '../chain/chain.js';
import type { MixerConfig, RouteConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import { WasmHost, type HostOptions } from '../host.js';
import { EMPTY } from '../stream/http-stream.js';
import { startAdmin } from './admin.js';
import { listenOn } from './listen.js';
import { loadConfigFile } from '../config/load.js';
import { prepareReload, reloadHost, type PreparedReload, type ReloadResult } from '../reload/reloader.js';
import { watchFiles, type FileWatcher } from '../reload/watch.js';

// RFC 9110 §7.6.1 connection-specific fields (Trailer is end-to-end and is forwarded).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'transfer-encoding', 'upgrade', 'proxy-connection']);

export interface ProxyOptions extends HostOptions {
  /** Override the listen port (0 picks a free one). */
  port?: number;
  adminPort?: number;
  /** How long shutdown waits for in-flight requests. */
  drainMs?: number;
  /** The config file that reload (SIGHUP, admin POST /reload, file watch) re-reads; without it reload re-reads the modules only. */
  configFile?: string;
  /** Applied to the config file each time it is (re)read: the command line's overrides (--port, --to, …). */
  configOverride?: (config: MixerConfig) => MixerConfig;
}

export interface RunningProxy {
  readonly host: WasmHost;
  readonly port: number;
  readonly adminPort: number | null;
  readonly server: http.Server;
  /** Stops accepting, drains in-flight requests (up to drainMs), then closes everything. */
  close(): Promise<void>;
  /**
   * Reloads adapters (and routes) from `config`, else from the config file, else
   * re-reads the current modules. Requests in flight finish on the old VMs.
   * Rejects with RELOAD_FAILED, and then the old config keeps serving.
   */
  reload(opts?: { config?: MixerConfig; reason?: string }): Promise<ReloadResult>;
  /** Two-phase reload for a multi-worker proxy (host/src/workers): new VMs ready, not yet serving; commit() swaps adapters and routes. */
  prepareReload(config: MixerConfig, reason: string): Promise<PreparedReload>;
}

interface Route {
  readonly config: RouteConfig;
  readonly url: URL;
  readonly prefix: string;
  readonly hosts: string[] | null;
}

export async function startProxy(config: MixerConfig, options: ProxyOptions = {}): Promise<RunningProxy> {
  const host = await WasmHost.create(config, options);
  const buildRoutes = (c: MixerConfig): Route[] => (c.routes ?? []).map((r) => ({
    config: r,
    url: new URL(r.upstream),
    prefix: r.match?.prefix ?? '/',
    hosts: r.match?.hosts ?? null,
  }));
  let routes = buildRoutes(config);
  const agent = new http.Agent({ keepAlive: true, maxSockets: config.upstream?.maxSockets ?? 256, keepAliveMsecs: config.upstream?.keepAliveMs ?? 1000 });
  const countResponse = new Map<string, () => void>();
  const responses = (route: string, code: number) => {
    const key = `${route}\0${code}`;
    let f = countResponse.get(key);
    if (f === undefined) {
      f = host.metrics.counter('wasm_mixer_proxy_responses_total', 'Responses sent downstream by the proxy, by route and status code.', { route, code: String(code) });
      countResponse.set(key, f);
    }
    f();
  };
  let connectionIds = 0;
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | null = null;

  const limits = serverLimits(config);
  const server = http.createServer({
    keepAlive: true,
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // How often Node looks for connections past headersTimeout/requestTimeout (default 30 s, which would stretch the bounds).
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs, limits.requestTimeoutMs),
  }, (req, res) => {
    inFlight++;
    res.on('close', () => {
      inFlight--;
      if (draining && inFlight === 0) drained?.();
    });
    if (draining) res.setHeader('connection', 'close');
    current.set(req.socket, { req, res });
    handle(req, res);
  });
  /** The latest request on each connection: a timeout while its body is still arriving is answered through it. */
  const current = new WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>();
  server.keepAliveTimeout = limits.keepAliveTimeoutMs; // not a createServer option on Node 20
  server.on('connection', (s: Socket & { wmConnId?: number }) => {
    s.wmConnId = ++connectionIds;
  });
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket & { _httpMessage?: ServerResponse | null }) => {
    // Oversized headers (431), a slow client past headersTimeout/requestTimeout (408), malformed
    // HTTP (400): answer with the proxy's JSON error, count it, run the log phase, keep serving.
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !socket.writable || socket._httpMessage?.headersSent) return void socket.destroy();
    const e = clientErrorReply(err.code, limits);
    host.logger.log(LogLevel.Debug, 'proxy', `${e.message} (from ${socket.remoteAddress ?? '?'}: ${err.message})`, { code: e.error });
    const body = JSON.stringify({ error: e.error, message: e.message });
    const cur = current.get(socket);
    if (cur !== undefined && !cur.req.complete) {
      // The body of a request already in the chain is too slow: answer through its response (one access-log
      // entry, from its log phase), or just close if a response already went out (e.g. an early 413).
      if (cur.res.headersSent) return void socket.destroy();
      cur.res.once('finish', () => socket.destroy());
      cur.res.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
      return;
    }
    socket.end(`HTTP/1.1 ${e.status} ${http.STATUS_CODES[e.status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    responses('', e.status);
    logClientError(socket, err.rawPacket, e.status, e.details, Buffer.byteLength(body));
  });

  /** Telemetry for a request Node's parser refused: the log phase runs (access log, istio metrics) with what is known. */
  function logClientError(sock: Socket & { wmConnId?: number }, raw: Buffer | undefined, status: number, details: string, bodyBytes: number): void {
    const line = raw !== undefined ? /^([A-Z]{1,20}) (\S{1,2048}) HTTP\/1\.[01]\r?\n/.exec(raw.subarray(0, 2100).toString('latin1')) : null;
    try {
      const stream = host.newStream({
        method: line?.[1] ?? '',
        path: line?.[2] ?? '',
        authority: '',
        headers: [],
        info: {
          sourceAddress: sock.remoteAddress ?? '',
          sourcePort: sock.remotePort ?? 0,
          destinationAddress: sock.localAddress ?? '',
          destinationPort: sock.localPort ?? 0,
          connectionId: sock.wmConnId ?? 0,
        },
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

  function pickRoute(authority: string, path: string): Route | null {
    const h = authority.replace(/:\d+$/, '').toLowerCase();
    for (const r of routes) {
      if (!path.startsWith(r.prefix)) continue;
      if (r.hosts !== null && !r.hosts.some((x) => x === '*' || x === h || (x.startsWith('*.') && h.endsWith(x.slice(1))))) continue;
      return r;
    }
    return null;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const authority = req.headers.host ?? '';
    const path = req.url ?? '/';
    const route = pickRoute(authority, path);
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
    const sock = req.socket as Socket & { wmConnId?: number };
    const stream = host.newStream({
      method: req.method ?? 'GET',
      path,
      authority,
      scheme: 'http',
      headers,
      route: route?.config.name,
      maxBufferedBodyBytes: route?.config.maxBufferedBodyBytes,
      info: {
        sourceAddress: sock.remoteAddress ?? '',
        sourcePort: sock.remotePort ?? 0,
        destinationAddress: sock.localAddress ?? '',
        destinationPort: sock.localPort ?? 0,
        connectionId: sock.wmConnId ?? 0,
        protocol: `HTTP/${req.httpVersion}`,
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
      stream.finish();
      responses(route?.config.name ?? '', info.responseCode);
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
      const hs: Record<string, string | string[]> = {};
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

    const contentLength = req.headers['content-length'];
    const endOfStream = req.headers['transfer-encoding'] === undefined && (contentLength === undefined || contentLength === '0');
    then(stream.requestHeaders(endOfStream), (d) => {
      if (d.action === 'respond') return reply(d.reply);
      if (d.action === 'reset') return reset();
      if (route === null) {
        info.responseFlags = 'NR';
        return reply({ status: 404, headers: [['content-type', 'text/plain']], body: Buffer.from('no route for this request\n'), details: 'route_not_found', adapter: '' });
      }
      forward(route, stream, req, res, reply, reset, fail, endOfStream);
    }, fail);
  }

  function forward(
    route: Route, stream: HostStream, req: IncomingMessage, res: ServerResponse,
    reply: (r: LocalReply) => void, reset: () => void, fail: (e: unknown) => void, endOfStream: boolean,
  ): void {
    const s = stream.stream;
    const info = s.info;
    info.upstreamAddress = route.url.host;
    const outHeaders: Record<string, string | string[]> = {};
    let method = 'GET';
    let path = '/';
    for (const [k, v] of s.requestHeaders) {
      if (k === ':method') method = v;
      else if (k === ':path') path = v;
      else if (k === ':authority') outHeaders.host = v;
      else if (k[0] !== ':') addHeader(outHeaders, k, v);
    }
    const xff = req.headers['x-forwarded-for'];
    outHeaders['x-forwarded-for'] = xff ? `${xff}, ${info.sourceAddress}` : info.sourceAddress;
    outHeaders['x-forwarded-proto'] = 'http';
    // Adapters that see the body keep the Content-Length the request headers still carry (RequestFraming).
    const keepLength = stream.needsBody.request && !endOfStream && outHeaders['content-length'] !== undefined && !Array.isArray(outHeaders['content-length']);
    if (req.headers['content-length'] !== undefined && !stream.needsBody.request) outHeaders['content-length'] = req.headers['content-length'];
    else if (!endOfStream && !keepLength) {
      // Body adapters may change the length: send it chunked, never with the client's content-length too.
      delete outHeaders['content-length'];
      outHeaders['transfer-encoding'] = 'chunked';
    }
    s.requestHeadersSent = true;
    const upstreamPath = route.url.pathname === '/' ? path : route.url.pathname.replace(/\/$/, '') + path;
    const up = http.request({
      protocol: route.url.protocol,
      hostname: route.url.hostname,
      port: route.url.port,
      method,
      path: upstreamPath,
      headers: outHeaders,
      agent,
    });
    const timeoutMs = route.config.timeoutMs ?? 30_000;
    up.setTimeout(timeoutMs, () => {
      info.responseFlags = 'UT';
      up.destroy(new Error(`upstream timed out after ${timeoutMs} ms`));
    });
    // Set when the proxy itself ends the upstream request (a local reply, a reset, the client left):
    // the resulting "socket hang up" is not an upstream failure.
    let abandoned = false;
    const abandon = () => {
      abandoned = true;
      up.destroy();
    };
    up.on('error', (err) => {
      if (abandoned) return;
      if (info.responseFlags === '') info.responseFlags = 'UF';
      host.logger.log(LogLevel.Warn, 'proxy', `upstream ${route.url.host} failed: ${err.message}`, { code: 'UPSTREAM_UNAVAILABLE' });
      if (res.headersSent) return void res.destroy();
      const timedOut = info.responseFlags === 'UT';
      reply({
        status: timedOut ? 504 : 503,
        headers: [['content-type', 'text/plain']],
        body: Buffer.from(timedOut ? 'upstream request timeout\n' : 'upstream connect error\n'),
        details: timedOut ? 'upstream_timeout' : 'upstream_connect_error',
        adapter: '',
      });
    });
    res.on('close', () => {
      if (!res.writableFinished) abandon();
    });

    // Request body, then trailers (forwarded; adapters see them if they ask).
    const endRequest = () => {
      const t = s.requestTrailers;
      if (t !== null && t.length > 0) up.addTrailers(t);
      up.end();
    };
    if (endOfStream) {
      up.end();
    } else if (!stream.needsBody.request && !stream.needsTrailers.request) {
      req.pipe(up, { end: false });
      req.on('end', () => {
        s.requestTrailers = trailerPairs(req.rawTrailers);
        endRequest();
      });
    } else {
      const framing = keepLength ? RequestFraming.forRequest(up, s.requestHeaders) : null;
      pumpBody(
        req,
        (chunk, eos) => {
          framing?.input(chunk.length);
          return stream.requestBody(chunk, eos);
        },
        (trailers) => stream.requestTrailers(trailers),
        (data, eos) => {
          if (abandoned) return;
          if (framing !== null && !framing.output(data.length, eos)) {
            host.logger.log(LogLevel.Error, 'proxy', 'an adapter changed the length of a request body after its Content-Length was sent upstream; remove content-length in on_request_headers to rewrite a streamed body', { code: 'BODY_LENGTH_CHANGED' });
            abandon();
            info.responseFlags = 'UAEX';
            return reply({ status: 502, headers: [['content-type', 'text/plain']], body: Buffer.from('request body changed length in flight\n'), details: 'body_length_changed', adapter: '' });
          }
          if (data.length > 0) up.write(data);
          if (eos) endRequest();
        },
        (d) => (d.action === 'respond' ? (abandon(), reply(d.reply)) : (abandon(), reset())),
        fail,
      );
      req.resume(); // paused in handle(); pipe() resumes by itself
    }

    up.on('response', (ures) => {
      info.upstreamFirstByteMono = process.hrtime.bigint();
      if (info.responseCodeDetails === '') info.responseCodeDetails = 'via_upstream'; // as Envoy reports it
      const headers: HeaderPair[] = [];
      const named = connectionTokens(ures.headers.connection);
      for (let i = 0; i < ures.rawHeaders.length; i += 2) {
        const k = ures.rawHeaders[i]!.toLowerCase();
        if (HOP_BY_HOP.has(k) || named?.has(k)) continue;
        headers.push([k, ures.rawHeaders[i + 1]!]);
      }
      const cl = ures.headers['content-length'];
      const resEos = method === 'HEAD' || ures.statusCode === 204 || ures.statusCode === 304 || (cl === '0' && ures.headers['transfer-encoding'] === undefined);
      then(stream.responseHeaders(ures.statusCode ?? 502, headers, resEos), (d) => {
        if (d.action === 'respond') {
          ures.resume();
          return reply(d.reply);
        }
        if (d.action === 'reset') {
          ures.destroy();
          return reset();
        }
        const out: Record<string, string | string[]> = {};
        let status = ures.statusCode ?? 502;
        for (const [k, v] of s.responseHeaders ?? []) {
          if (k === ':status') status = Number(v) || status;
          else if (k[0] !== ':') addHeader(out, k, v);
        }
        if (stream.needsBody.response) delete out['content-length'];
        s.responseHeadersSent = true;
        info.responseHeaderBytes = headBytes(out);
        res.writeHead(status, out);
        ures.on('data', (c: Buffer) => void (info.responseBytes += c.length));
        const endResponse = () => {
          const t = s.responseTrailers;
          if (t !== null && t.length > 0) res.addTrailers(t);
          res.end();
        };
        if (!stream.needsBody.response && !stream.needsTrailers.response) {
          ures.pipe(res, { end: false });
          ures.on('end', () => {
            s.responseTrailers = trailerPairs(ures.rawTrailers);
            endResponse();
          });
          return;
        }
        pumpBody(
          ures,
          (chunk, eos) => stream.responseBody(chunk, eos),
          (trailers) => stream.responseTrailers(trailers),
          (data, eos) => {
            if (data.length > 0) res.write(data);
            if (eos) endResponse();
          },
          () => res.destroy(),
          (e) => {
            host.logger.log(LogLevel.Error, 'proxy', `response body processing failed: ${describeError(e)}`, { code: 'INTERNAL' });
            res.destroy();
          },
        );
      }, fail);
    });
  }

  const listenAddr = config.listen?.address ?? '127.0.0.1';
  await listenOn(server, options.port ?? config.listen?.port ?? 8080, listenAddr, 'the proxy port', 'choose another port with --port N (listen.port in the config)').catch(async (err) => {
    agent.destroy();
    await host.close();
    throw err;
  });
  const port = (server.address() as AddressInfo).port;

  let watcher: FileWatcher | null = null;
  const reload = async (opts: { config?: MixerConfig; reason?: string } = {}): Promise<ReloadResult> => {
    const file = options.configFile;
    const override = options.configOverride ?? ((c: MixerConfig) => c);
    const source = opts.config ?? (file !== undefined ? async () => override((await loadConfigFile(file)).config) : host.config);
    const result = await reloadHost(host, source, { reason: opts.reason });
    routes = buildRoutes(host.config);
    watcher?.update(host.config);
    return result;
  };
  if (config.reload?.watch) {
    watcher = watchFiles(options.configFile ?? null, config, options.baseDir ?? process.cwd(), config.reload.debounceMs ?? 300, (file) => {
      reload({ reason: `file change: ${file}` }).catch(() => {}); // logged by the reloader
    });
  }
  const admin = config.admin || options.adminPort !== undefined
    ? await startAdmin(
        host,
        { address: config.admin?.address ?? '127.0.0.1', port: options.adminPort ?? config.admin?.port ?? 9901, allowRemote: config.admin?.allowRemote ?? false, allowRemoteReload: config.admin?.allowRemoteReload ?? false },
        () => !draining,
        (reason) => reload({ reason }),
      ).catch(async (err) => {
        // e.g. ADMIN_FORBIDDEN, EADDRINUSE: do not leave the proxy port and the VMs running.
        watcher?.close();
        server.close();
        agent.destroy();
        await host.close();
        throw err;
      })
    : null;
  host.logger.log(LogLevel.Info, 'proxy', `listening on ${listenAddr}:${port}${admin ? `, admin on ${admin.address}:${admin.port}` : ''}; ${host.plugins.length} adapter(s): ${host.plugins.map((p) => p.config.name).join(', ') || 'none'}`);

  return {
    host,
    port,
    adminPort: admin?.port ?? null,
    server,
    reload,
    async prepareReload(next, reason) {
      const p = await prepareReload(host, next, { reason });
      return {
        abort: () => p.abort(),
        commit: () => {
          const r = p.commit();
          routes = buildRoutes(host.config);
          return r;
        },
      };
    },
    async close() {
      draining = true;
      watcher?.close();
      server.close();
      server.closeIdleConnections();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          setTimeout(resolve, options.drainMs ?? 10_000).unref();
        });
      }
      server.closeAllConnections();
      await admin?.close();
      agent.destroy();
      await host.close(); // flushes access logs, last OTLP export
    },
  };
}

/** Proxy-port limits against slow or oversized requests (docs/operating.md "Proxy port limits"). */
export const DEFAULT_SERVER_LIMITS = { headersTimeoutMs: 10_000, requestTimeoutMs: 120_000, keepAliveTimeoutMs: 5_000, maxHeaderBytes: 16_384 } as const;
type ServerLimits = { -readonly [K in keyof typeof DEFAULT_SERVER_LIMITS]: number };

function serverLimits(config: MixerConfig): ServerLimits {
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

/**
 * The field names listed in a Connection header (RFC 9110 §7.6.1): connection-specific,
 * so a proxy removes them along with the fixed hop-by-hop set. Null when there are none.
 */
function connectionTokens(v: string | undefined): Set<string> | null {
  if (v === undefined || v === '') return null;
  const out = new Set<string>();
  for (const t of v.split(',')) {
    const name = t.trim().toLowerCase();
    if (name !== '' && name !== 'close' && name !== 'keep-alive') out.add(name);
  }
  return out.size > 0 ? out : null;
}

/** Runs `k` on a value now, or when its promise settles. */
function then<T>(v: Maybe<T>, k: (t: T) => void, onError: (e: unknown) => void): void {
  if (isPromise(v)) v.then(k, onError);
  else {
    try {
      k(v);
    } catch (e) {
      onError(e);
    }
  }
}

function trailerPairs(raw: string[]): HeaderPair[] {
  const out: HeaderPair[] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}

/**
 * Feeds a readable through the chain's body callbacks, honouring backpressure while an
 * adapter is paused. At the end, trailers (if the message has any) go through the
 * trailer callbacks instead of a last empty body chunk, as the spec orders it.
 */
function pumpBody(
  src: IncomingMessage,
  process: (chunk: Uint8Array, eos: boolean) => Maybe<Uint8Array | Decision>,
  trailers: (t: HeaderPair[]) => Maybe<Uint8Array | Decision>,
  emit: (data: Uint8Array, eos: boolean) => void,
  stop: (d: Decision) => void,
  fail: (e: unknown) => void,
): void {
  let stopped = false;
  const handle = (r: Uint8Array | Decision, eos: boolean): boolean => {
    if (r instanceof Uint8Array) {
      emit(r, eos);
      return true;
    }
    stopped = true;
    src.resume();
    stop(r);
    return false;
  };
  src.on('data', (chunk: Buffer) => {
    if (stopped) return;
    const r = process(chunk, false);
    if (isPromise(r)) {
      src.pause();
      r.then((v) => handle(v, false) && src.resume(), fail);
    } else handle(r, false);
  });
  src.on('end', () => {
    if (stopped) return;
    const t = trailerPairs(src.rawTrailers);
    then(t.length > 0 ? trailers(t) : process(EMPTY, true), (v) => void handle(v, true), fail);
  });
}

/** Approximate bytes of a response head: status line, header lines, blank line. */
function headBytes(h: Record<string, string | string[]>): number {
  let n = 17 + 2;
  for (const k in h) {
    const v = h[k]!;
    if (Array.isArray(v)) for (const x of v) n += k.length + x.length + 4;
    else n += k.length + v.length + 4;
  }
  return n;
}

function addHeader(h: Record<string, string | string[]>, k: string, v: string): void {
  const cur = h[k];
  if (cur === undefined) h[k] = v;
  else if (Array.isArray(cur)) cur.push(v);
  else h[k] = [cur, v];
}
