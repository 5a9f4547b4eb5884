// Forwarding a routed request to its upstream over a keep-alive pool (config
// `upstream`), and relaying the answer back through the chain's response phase.
// Bodies are piped untouched unless some adapter in the chain has a body or
// trailer callback; then they go through pumpBody.

import http, { type IncomingMessage } from 'node:http';
import { LogLevel } from '../abi/constants.js';
import type { HeaderPair } from '../abi/pairs.js';
import type { MixerConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import { pumpBody, then } from './body-pump.js';
import { addHeader, endToEndHeaders, headBytes, trailerPairs, type OutHeaders } from './headers.js';
import { relay } from './relay.js';
import { RequestFraming } from './request-framing.js';
import type { Exchange } from './exchange.js';
import type { Route } from './routes.js';

/** The keep-alive pool to the upstreams, shared by every route. */
export class Upstream {
  readonly agent: http.Agent;

  constructor(config: MixerConfig) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: config.upstream?.maxSockets ?? 256, keepAliveMsecs: config.upstream?.keepAliveMs ?? 1000 });
  }

  close(): void {
    this.agent.destroy();
  }
}

export function forward(upstream: Upstream, ex: Exchange, route: Route, endOfStream: boolean): void {
  const { host, stream, req, res, reply, reset, fail } = ex;
  const s = stream.stream;
  const info = s.info;
  info.upstreamAddress = route.target.host;
  const outHeaders: OutHeaders = {};
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
  const t = route.target;
  const up = http.request({
    protocol: t.protocol,
    hostname: t.hostname,
    port: t.port,
    method,
    path: route.basePath + path,
    headers: outHeaders,
    agent: upstream.agent,
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
    relay(req, up, null, () => {
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
    req.resume(); // paused in handleRequest(); pipe() resumes by itself
  }

  up.on('response', (ures) => relayResponse(ex, ures, method));
}

/** The upstream's answer: response headers through the chain, then the body piped or pumped downstream. */
function relayResponse(ex: Exchange, ures: IncomingMessage, method: string): void {
  const { host, stream, res, reply, reset, fail } = ex;
  const s = stream.stream;
  const info = s.info;
  info.upstreamFirstByteMono = process.hrtime.bigint();
  if (info.responseCodeDetails === '') info.responseCodeDetails = 'via_upstream'; // as Envoy reports it
  const headers: HeaderPair[] = endToEndHeaders(ures.rawHeaders, ures.headers.connection);
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
    const out: OutHeaders = {};
    let status = ures.statusCode ?? 502;
    for (const [k, v] of s.responseHeaders ?? []) {
      if (k === ':status') status = Number(v) || status;
      else if (k[0] !== ':') addHeader(out, k, v);
    }
    if (stream.needsBody.response) delete out['content-length'];
    s.responseHeadersSent = true;
    info.responseHeaderBytes = headBytes(out);
    res.writeHead(status, out);
    const endResponse = () => {
      const t = s.responseTrailers;
      if (t !== null && t.length > 0) res.addTrailers(t);
      res.end();
    };
    if (!stream.needsBody.response && !stream.needsTrailers.response) {
      relay(ures, res, (n) => void (info.responseBytes += n), () => {
        s.responseTrailers = trailerPairs(ures.rawTrailers);
        endResponse();
      });
      return;
    }
    ures.on('data', (c: Buffer) => void (info.responseBytes += c.length));
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
}
