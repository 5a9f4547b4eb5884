// Forwarding a routed request to its upstream over keep-alive connections (config
// `upstream`), and relaying the answer back through the chain's response phase
// (upstream-response.ts). The client is undici's Pool, one per upstream origin,
// driven by dispatch() with a handler (upstream-dispatch.ts): measured faster than
// node:http's Agent (README, design notes). A request whose body arrives chunked may
// end in trailers, which undici cannot send: those go through node:http instead.
// Bodies are relayed untouched unless some adapter in the chain has a body or trailer
// callback; then they go through the BodyPump.

import http from 'node:http';
import https from 'node:https';
import { PassThrough, type Writable } from 'node:stream';
import { Pool } from 'undici';
import { LogLevel } from '../abi/constants.js';
import type { HeaderPair } from '../abi/pairs.js';
import type { MixerConfig } from '../config/schema.js';
import { UPSTREAM_WHOLE_BODY_BYTES } from '../limits.js';
import { pumpBody } from './body-pump.js';
import { HOP_BY_HOP, trailerPairs } from './headers.js';
import { relay } from './relay.js';
import { RequestFraming } from './request-framing.js';
import { DispatchHandler } from './upstream-dispatch.js';
import { ResponseRelay } from './upstream-response.js';
import type { Exchange } from './exchange.js';
import type { Route } from './routes.js';

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const noop = () => {};

/** The keep-alive connections to the upstreams, shared by every route: a Pool per origin. */
export class Upstream {
  private readonly pools = new Map<string, Pool>();
  private readonly poolOptions: Pool.Options;
  private readonly agentOptions: http.AgentOptions;
  private agents: { http: http.Agent | null; https: https.Agent | null } = { http: null, https: null };
  /** Set by close(): requests it aborts are the proxy's doing, not upstream failures. */
  closed = false;

  constructor(config: MixerConfig) {
    const maxSockets = config.upstream?.maxSockets ?? 256;
    const keepAliveMs = config.upstream?.keepAliveMs ?? 1000;
    // keepAliveMaxTimeout caps what an upstream's "Keep-Alive: timeout=N" hint may extend it to.
    this.poolOptions = { connections: maxSockets, keepAliveTimeout: keepAliveMs, keepAliveMaxTimeout: keepAliveMs };
    this.agentOptions = { keepAlive: true, maxSockets, timeout: keepAliveMs };
  }

  pool(origin: string): Pool {
    let p = this.pools.get(origin);
    if (p === undefined) {
      p = new Pool(origin, this.poolOptions);
      this.pools.set(origin, p);
    }
    return p;
  }

  /**
   * After a reload: closes the pools of origins no route names any more, so the pools the proxy
   * keeps are bounded by its routes rather than by every origin it was ever configured with.
   * undici's close() lets requests already on those connections finish first. A request routed
   * before the reload that reaches forward() later makes a new pool for its old origin, closed
   * at the next reload.
   */
  retain(origins: ReadonlySet<string>): void {
    for (const [origin, p] of this.pools) {
      if (origins.has(origin)) continue;
      this.pools.delete(origin);
      p.close().catch(noop);
    }
  }

  /** node:http's pool, for requests with chunked bodies (trailers). */
  agent(protocol: string): http.Agent {
    if (protocol === 'https:') return (this.agents.https ??= new https.Agent(this.agentOptions));
    return (this.agents.http ??= new http.Agent(this.agentOptions));
  }

  /** Closes every upstream connection (in-flight requests are aborted). */
  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    this.agents.http?.destroy();
    this.agents.https?.destroy();
    this.agents = { http: null, https: null };
    await Promise.all(pools.map((p) => p.destroy().catch(noop)));
  }
}

export function forward(upstream: Upstream, ex: Exchange, route: Route, endOfStream: boolean): void {
  const { host, stream, req, res, reply, reset, fail } = ex;
  const s = stream.stream;
  const info = s.info;
  info.upstreamAddress = route.target.host;
  // Raw header pairs for the upstream; framing (content-length / chunked) is added below.
  const headers: string[] = [];
  let method = 'GET';
  let path = '/';
  let listedLength: string | null = null;
  let lengths = 0;
  for (const [k, v] of s.requestHeaders) {
    if (k[0] === ':') {
      if (k === ':method') method = v;
      else if (k === ':path') path = v;
      else if (k === ':authority') headers.push('host', v);
    } else if (k === 'content-length') {
      listedLength ??= v;
      lengths++;
    } else if (k !== 'host' && k !== 'x-forwarded-for' && k !== 'x-forwarded-proto' && k !== 'expect' && !HOP_BY_HOP.has(k)) {
      // Hop-by-hop fields an adapter added stay on this hop; Expect was answered by this proxy's server.
      headers.push(k, v);
    }
  }
  // A chunked body may end in trailers: node:http sends them, undici cannot.
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const xff = req.headers['x-forwarded-for'];
  headers.push('x-forwarded-for', xff ? `${xff}, ${info.sourceAddress}` : info.sourceAddress, 'x-forwarded-proto', 'http');
  // Adapters that see the body keep the Content-Length the request headers still carry (RequestFraming).
  const keepLength = stream.needsBody.request && !endOfStream && !chunked && listedLength !== null && lengths === 1;
  let contentLength: string | null = listedLength;
  if (req.headers['content-length'] !== undefined && !stream.needsBody.request) contentLength = req.headers['content-length'];
  else if (!endOfStream && !keepLength) contentLength = null; // body adapters may change the length: chunked
  s.requestHeadersSent = true;

  const timeoutMs = route.config.timeoutMs ?? 30_000;
  const response = new ResponseRelay(ex, method);
  const failed = (timedOut: boolean, message: string) => {
    if (upstream.closed) return void res.destroy(); // shutting down: client connections are closed too
    if (timedOut) info.responseFlags = 'UT';
    else if (info.responseFlags === '') info.responseFlags = 'UF';
    host.logger.log(LogLevel.Warn, 'proxy', `upstream ${route.url.host} failed: ${message}`, { code: 'UPSTREAM_UNAVAILABLE' });
    if (res.headersSent) return void res.destroy();
    reply({
      status: timedOut ? 504 : 503,
      headers: [['content-type', 'text/plain']],
      body: Buffer.from(timedOut ? 'upstream request timeout\n' : 'upstream connect error\n'),
      details: timedOut ? 'upstream_timeout' : 'upstream_connect_error',
      adapter: '',
    });
  };
  const timeoutMessage = `upstream timed out after ${timeoutMs} ms`;

  // A small body no adapter reads goes upstream in one piece, collected first (limits.ts).
  const whole = !chunked && !endOfStream && !stream.needsBody.request && !stream.needsTrailers.request && contentLength !== null && Number(contentLength) <= UPSTREAM_WHOLE_BODY_BYTES;
  // The outbound request: where its body goes, how it ends, and how the proxy drops it.
  let body: Writable | null;
  let open: (length: number | null, data?: Buffer) => void;
  let endBody: (trailers: HeaderPair[] | null) => void;
  let abandonUpstream: () => void;
  if (chunked) {
    const t = route.target;
    headers.push('transfer-encoding', 'chunked');
    const up = http.request({ protocol: t.protocol, hostname: t.hostname, port: t.port, method, path: route.basePath + path, headers, agent: upstream.agent(t.protocol) });
    let timedOut = false;
    let dropped = false;
    up.setTimeout(timeoutMs, () => {
      timedOut = true;
      up.destroy(new Error(timeoutMessage));
    });
    up.on('error', (err) => void (dropped || failed(timedOut, err.message)));
    up.on('response', (ures) => {
      response.resume = () => void ures.resume();
      if (!response.headers(ures.statusCode ?? 502, ures.rawHeaders)) ures.pause();
      ures.on('data', (c: Buffer) => void (response.data(c) || ures.pause()));
      ures.on('end', () => response.end(trailerPairs(ures.rawTrailers)));
    });
    body = up;
    open = noop;
    endBody = (trailers) => {
      if (trailers !== null && trailers.length > 0) up.addTrailers(trailers);
      up.end();
    };
    abandonUpstream = () => {
      dropped = true;
      up.destroy();
    };
  } else {
    const handler = new DispatchHandler(response, (err) => {
      const timedOut = TIMEOUT_CODES.has((err as { code?: string }).code ?? '');
      failed(timedOut, timedOut ? timeoutMessage : err.message);
    });
    const pt = endOfStream || whole ? null : new PassThrough();
    pt?.on('error', noop); // undici destroys the body with the request's error, reported through the handler
    const pool = upstream.pool(route.target.origin);
    body = pt;
    open = (length, data) => {
      if (length !== null) headers.push('content-length', String(length));
      pool.dispatch({ method, path: route.basePath + path, headers, body: data ?? pt, headersTimeout: timeoutMs, bodyTimeout: timeoutMs }, handler);
    };
    endBody = () => pt?.end();
    abandonUpstream = () => handler.abandon();
  }

  // Set when the proxy itself ends the upstream request (a local reply, a reset, the client left):
  // the resulting abort is not an upstream failure.
  let abandoned = false;
  const abandon = () => {
    abandoned = true;
    abandonUpstream();
  };
  // Also when the response went out but the request never completed (the client left mid-body and
  // the proxy answered 400/408 for it): that upstream request cannot complete either.
  res.on('close', () => {
    if (!res.writableFinished || !req.complete) abandon();
  });

  // Request body, then trailers (forwarded; adapters see them if they ask).
  if (whole) {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => void chunks.push(c));
    req.on('end', () => {
      if (abandoned) return;
      s.requestTrailers = trailerPairs(req.rawTrailers);
      open(Number(contentLength), chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
    req.resume(); // paused in handleRequest()
  } else if (body === null) {
    open(contentLength === null ? null : Number(contentLength));
    endBody(null);
  } else if (!stream.needsBody.request && !stream.needsTrailers.request) {
    open(contentLength === null ? null : Number(contentLength));
    relay(req, body, null, () => {
      s.requestTrailers = trailerPairs(req.rawTrailers);
      endBody(s.requestTrailers);
    });
  } else {
    const framing = keepLength ? RequestFraming.forRequest(s.requestHeaders, open) : null;
    if (framing === null) open(contentLength === null ? null : Number(contentLength));
    const out = body;
    pumpBody(req, {
      process: (chunk, eos) => {
        framing?.input(chunk.length);
        return stream.requestBody(chunk, eos);
      },
      trailers: (trailers) => stream.requestTrailers(trailers),
      emit: (data, eos) => {
        if (abandoned) return;
        if (framing !== null && !framing.output(data.length, eos)) {
          host.logger.log(LogLevel.Error, 'proxy', 'an adapter changed the length of a request body after its Content-Length was sent upstream; remove content-length in on_request_headers to rewrite a streamed body', { code: 'BODY_LENGTH_CHANGED' });
          abandon();
          info.responseFlags = 'UAEX';
          return reply({ status: 502, headers: [['content-type', 'text/plain']], body: Buffer.from('request body changed length in flight\n'), details: 'body_length_changed', adapter: '' });
        }
        if (data.length > 0) out.write(data);
        if (eos) endBody(s.requestTrailers);
      },
      stop: (d) => (d.action === 'respond' ? (abandon(), reply(d.reply)) : (abandon(), reset())),
      fail,
    });
    req.resume(); // paused in handleRequest(); relay() resumes by itself
  }
}
