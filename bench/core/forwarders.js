// Minimal reverse proxies for bench/core/upstream-pool.js that differ only in the
// upstream client: node:http with a keep-alive http.Agent (what host/src/proxy/upstream.ts
// used until session 7), undici 7's Pool through pool.request() (a Readable body and a
// promise per response), or the same Pool through dispatch() with a handler (what
// host/src/proxy/upstream.ts uses now). All do the proxy's header work with its own helpers
// (hop-by-hop removal, X-Forwarded-For) and stream bodies both ways, so the difference
// between them is the client's cost per request.
import http from 'node:http';
import { Pool } from 'undici';
import { endToEndHeaders } from '../../dist/host/src/proxy/headers.js';

const MAX_SOCKETS = 128; // as the wasm-mixer role's upstream.maxSockets

function requestHeaders(req) {
  const out = {};
  for (const [k, v] of endToEndHeaders(req.rawHeaders, req.headers.connection)) {
    if (k === 'host') continue;
    out[k] = out[k] === undefined ? v : [].concat(out[k], v);
  }
  out.host = req.headers.host ?? '';
  out['x-forwarded-for'] = req.socket.remoteAddress ?? '';
  out['x-forwarded-proto'] = 'http';
  return out;
}

function responseHeaders(rawHeaders, connection) {
  const out = {};
  for (const [k, v] of endToEndHeaders(rawHeaders, connection)) out[k] = out[k] === undefined ? v : [].concat(out[k], v);
  return out;
}

function viaAgent(upstream) {
  const url = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS, keepAliveMsecs: 1000 });
  return (req, res) => {
    const up = http.request({ hostname: url.hostname, port: url.port, method: req.method, path: req.url, headers: requestHeaders(req), agent });
    up.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(503).end()));
    up.on('response', (ures) => {
      res.writeHead(ures.statusCode ?? 502, responseHeaders(ures.rawHeaders, ures.headers.connection));
      ures.pipe(res);
    });
    req.pipe(up);
  };
}

function viaUndici(upstream) {
  const pool = new Pool(upstream, { connections: MAX_SOCKETS, keepAliveTimeout: 4000 });
  return (req, res) => {
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    pool.request({ method: req.method, path: req.url, headers: requestHeaders(req), body: hasBody ? req : null }).then(
      (ures) => {
        // undici gives headers as an object; rebuild the raw pairs the proxy's helper takes.
        const raw = [];
        for (const [k, v] of Object.entries(ures.headers)) for (const x of [].concat(v)) raw.push(k, x);
        res.writeHead(ures.statusCode, responseHeaders(raw, ures.headers.connection));
        ures.body.pipe(res);
      },
      () => (res.headersSent ? res.destroy() : res.writeHead(503).end()),
    );
    if (!hasBody) req.resume();
  };
}

function viaDispatch(upstream) {
  const pool = new Pool(upstream, { connections: MAX_SOCKETS, keepAliveTimeout: 4000 });
  return (req, res) => {
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    pool.dispatch(
      { method: req.method, path: req.url, headers: requestHeaders(req), body: hasBody ? req : null },
      {
        onConnect() {},
        onHeaders(status, rawBuffers, resume) {
          const raw = rawBuffers.map((b) => b.toString('latin1'));
          const c = raw.findIndex((x, i) => i % 2 === 0 && x.toLowerCase() === 'connection');
          res.writeHead(status, responseHeaders(raw, c < 0 ? undefined : raw[c + 1]));
          res.on('drain', resume);
          return true;
        },
        onData: (chunk) => res.write(chunk),
        onComplete: () => res.end(),
        onError: () => (res.headersSent ? res.destroy() : res.writeHead(503).end()),
      },
    );
    if (!hasBody) req.resume();
  };
}

const KINDS = { agent: viaAgent, undici: viaUndici, dispatch: viaDispatch };

/** Starts a forwarder on 127.0.0.1:`port` (0 picks one); resolves with its port. */
export function startForwarder(kind, port, upstream) {
  const server = http.createServer({ keepAlive: true }, KINDS[kind](upstream));
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server.address().port)));
}
