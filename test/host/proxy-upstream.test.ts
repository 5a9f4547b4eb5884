// The proxy's upstream client (undici Pool, node:http for chunked bodies) against real
// upstream servers: keep-alive reuse within upstream.maxSockets, an upstream that closes
// idle connections, route timeouts (504, UT), client aborts (not upstream failures),
// repeated headers, Expect, streaming both ways, and no sockets left after close().
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import type { MixerConfig } from '../../host/src/config/schema.js';
import { startProxy, type RunningProxy } from '../../host/src/index.js';
import { createLogger, type LogRecord } from '../../host/src/log/logger.js';
import { UPSTREAM_WHOLE_BODY_BYTES } from '../../host/src/limits.js';
import { buildOnce, MemorySink, request } from '../telemetry/helpers.js';

const logging = await buildOnce('logging');

interface Up {
  port: number;
  server: http.Server;
  /** Connections the upstream accepted, and requests it received. */
  connections: number;
  requests: number;
  /** The most requests it had open at once. */
  maxOpen: number;
}

async function upstream(t: Test, handler: (req: http.IncomingMessage, res: http.ServerResponse, up: Up) => void): Promise<Up> {
  const up: Up = { port: 0, server: null as unknown as http.Server, connections: 0, requests: 0, maxOpen: 0 };
  let open = 0;
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    up.requests++;
    up.maxOpen = Math.max(up.maxOpen, ++open);
    res.on('close', () => open--);
    handler(req, res, up);
  });
  server.on('connection', () => up.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  up.port = (server.address() as AddressInfo).port;
  up.server = server;
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return up;
}

interface Running { proxy: RunningProxy; sink: MemorySink; logs: LogRecord[] }

async function proxyTo(t: Test, up: Up, extra: Partial<MixerConfig> = {}, route: { timeoutMs?: number } = {}): Promise<Running> {
  const sink = new MemorySink();
  const logs: LogRecord[] = [];
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}`, ...route }],
      plugins: [{ name: 'access', url: logging, pluginConfig: {} }],
      ...extra,
    },
    { accessLogSinks: [sink], logger: createLogger(LogLevel.Info, (r) => logs.push(r)) },
  );
  t.teardown(() => proxy.close());
  return { proxy, sink, logs };
}

const upstreamFailures = (logs: LogRecord[]) => logs.filter((l) => l.code === 'UPSTREAM_UNAVAILABLE');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('keep-alive: many requests over at most upstream.maxSockets upstream connections', async (t) => {
  const up = await upstream(t, (req, res) => {
    req.resume();
    setTimeout(() => res.end('ok'), 2);
  });
  const { proxy, logs } = await proxyTo(t, up, { upstream: { maxSockets: 4, keepAliveMs: 5000 } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
  t.teardown(() => agent.destroy());
  const one = () =>
    new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: proxy.port, path: '/k', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }).on('error', reject);
    });
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push(...(await Promise.all(Array.from({ length: 20 }, one))));
  t.equal(statuses.filter((s) => s === 200).length, 200, 'every request answered 200');
  t.equal(up.requests, 200, 'every request reached the upstream');
  t.ok(up.connections <= 4, `${up.connections} upstream connections for 200 requests (maxSockets 4)`);
  t.ok(up.maxOpen <= 4, `at most ${up.maxOpen} requests open at the upstream at once`);
  t.same(upstreamFailures(logs), []);
});

t.test('an upstream that closes idle keep-alive connections: the next request opens a new one', async (t) => {
  // Closes each connection 20 ms after answering, without saying so (no Connection: close).
  const up = await upstream(t, (req, res) => {
    req.resume();
    res.end('ok');
    res.on('finish', () => setTimeout(() => req.socket.destroy(), 20));
  });
  const { proxy, logs } = await proxyTo(t, up, { upstream: { maxSockets: 2, keepAliveMs: 10_000 } });
  for (let i = 0; i < 3; i++) {
    const r = await request(proxy.port, '/again', i === 1 ? { method: 'POST', body: 'x'.repeat(1000) } : {});
    t.equal(r.status, 200, `request ${i + 1}: 200`);
    t.equal(r.body, 'ok');
    await sleep(100);
  }
  t.equal(up.connections, 3, 'one upstream connection per request');
  t.same(upstreamFailures(logs), [], 'no upstream failure');
});

t.test("route timeoutMs: no answer in time is 504 with flag UT; a stalled body is cut off with UT", async (t) => {
  const up = await upstream(t, (req, res) => {
    req.resume();
    if (req.url === '/stall') {
      res.writeHead(200, { 'content-length': '10' });
      res.write('12345');
    }
    // otherwise never answers
  });
  const { proxy, sink, logs } = await proxyTo(t, up, {}, { timeoutMs: 300 });
  const r = await request(proxy.port, '/hang');
  t.equal(r.status, 504);
  t.equal(r.body, 'upstream request timeout\n');
  await sink.waitFor(1);
  t.equal(sink.json()[0]!.response_flags, 'UT');
  t.equal(sink.json()[0]!.response_code_details, 'upstream_timeout');
  t.match(upstreamFailures(logs)[0]?.message ?? '', /timed out after 300 ms/);

  const stalled = await new Promise<{ status: number; aborted: boolean }>((resolve) => {
    http.get({ host: '127.0.0.1', port: proxy.port, path: '/stall', agent: false }, (res) => {
      res.resume();
      res.on('error', () => {});
      res.on('close', () => resolve({ status: res.statusCode ?? 0, aborted: !res.complete }));
    });
  });
  t.same(stalled, { status: 200, aborted: true }, 'the headers went out; the body is cut off');
  await sink.waitFor(2);
  t.equal(sink.json()[1]!.response_flags, 'UT');
});

t.test('upstream down: 503 with flag UF', async (t) => {
  const up = await upstream(t, (_req, res) => res.end());
  const port = up.port;
  await new Promise<void>((r) => { up.server.closeAllConnections(); up.server.close(() => r()); });
  const { proxy, sink } = await proxyTo(t, { ...up, port });
  const r = await request(proxy.port, '/x');
  t.equal(r.status, 503);
  await sink.waitFor(1);
  t.equal(sink.json()[0]!.response_flags, 'UF');
  t.equal(sink.json()[0]!.response_code_details, 'upstream_connect_error');
});

t.test('a client that leaves abandons the upstream request; not an upstream failure', async (t) => {
  const upstreamClosed: Promise<void>[] = [];
  const up = await upstream(t, (req, res) => {
    req.resume();
    upstreamClosed.push(new Promise((r) => res.on('close', () => r())));
    if (req.url === '/ok') res.end('ok');
  });
  const { proxy, sink, logs } = await proxyTo(t, up);
  for (const method of ['GET', 'POST']) {
    const before = up.requests;
    // A body past UPSTREAM_WHOLE_BODY_BYTES streams: the upstream sees the request before the body ends.
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/hang', method, agent: false, headers: method === 'POST' ? { 'content-length': String(UPSTREAM_WHOLE_BODY_BYTES + 100) } : {} });
    req.on('error', () => {});
    req.write(method === 'POST' ? 'x'.repeat(50) : '');
    if (method === 'GET') req.end();
    while (up.requests === before) await sleep(5);
    req.destroy();
    await upstreamClosed.at(-1);
    t.pass(`${method}: the upstream request was closed when the client left`);
  }
  await sink.waitFor(2);
  t.notOk(sink.json().some((e) => e.response_flags === 'UF'), 'no UF flag');
  t.same(upstreamFailures(logs), [], 'no upstream failure logged');
  t.equal((await request(proxy.port, '/ok')).status, 200, 'still serving');
});

t.test('repeated headers pass both ways; Expect: 100-continue is answered by the proxy', async (t) => {
  let seen: string[] = [];
  let body = '';
  const up = await upstream(t, (req, res) => {
    seen = req.rawHeaders;
    body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end('ok');
    });
  });
  const { proxy } = await proxyTo(t, up);
  const r = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/m', method: 'POST', agent: false, headers: [['host', 'localhost'], ['x-multi', 'one'], ['x-multi', 'two'], ['content-length', '5']].flat() as unknown as http.OutgoingHttpHeaders }, resolve);
    req.on('error', reject);
    req.end('hello');
  });
  r.resume();
  t.equal(r.statusCode, 200);
  t.same(r.headers['set-cookie'], ['a=1', 'b=2'], 'both set-cookie fields reach the client');
  const multi = seen.filter((_, i) => i % 2 === 1 && seen[i - 1]!.toLowerCase() === 'x-multi');
  t.same(multi, ['one', 'two'], 'both x-multi fields reach the upstream');

  const cont = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
    let continued = false;
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/e', method: 'POST', agent: false, headers: { expect: '100-continue', 'content-length': '5' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, continued }));
    });
    req.on('continue', () => {
      continued = true;
      req.end('12345');
    });
    req.on('error', reject);
  });
  t.same(cont, { status: 200, continued: true });
  t.equal(body, '12345');
  t.notOk(seen.some((h) => h.toLowerCase() === 'expect'), 'Expect stays on the client hop');
});

t.test('bodies stream both ways: the upstream sees bytes before the client finishes, and the client before the upstream does', async (t) => {
  let gotFirst: () => void = () => {};
  let sendRest: () => void = () => {};
  const up = await upstream(t, (req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => {
      if (n === 0) gotFirst();
      n += c.length;
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(`got ${n};`);
      sendRest = () => res.end('rest');
    });
  });
  const { proxy } = await proxyTo(t, up);
  for (const framing of ['content-length', 'chunked']) {
    const first = new Promise<void>((r) => (gotFirst = r));
    // Past UPSTREAM_WHOLE_BODY_BYTES, so a content-length body streams too.
    const half = 'x'.repeat(UPSTREAM_WHOLE_BODY_BYTES);
    const total = 2 * half.length;
    const headers = framing === 'chunked' ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(total) };
    let text = '';
    const done = new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/s', method: 'POST', agent: false, headers }, (res) => {
        res.on('data', (c: Buffer) => {
          text += c.toString();
          if (text === `got ${total};`) sendRest();
        });
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.write(half);
      void first.then(() => req.end(half));
    });
    t.equal(await done, `got ${total};rest`, `${framing}: the request body streamed up, the response streamed down`);
  }
});

t.test('a small content-length body goes upstream whole: nothing reaches the upstream until it is complete', async (t) => {
  const bodies: number[] = [];
  const up = await upstream(t, (req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => void (n += c.length));
    req.on('end', () => {
      bodies.push(n);
      res.end(`got ${n}`);
    });
  });
  const { proxy, sink, logs } = await proxyTo(t, up);
  const size = UPSTREAM_WHOLE_BODY_BYTES;
  let answer = '';
  const done = new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/w', method: 'POST', agent: false, headers: { 'content-length': String(size) } }, (res) => {
      res.on('data', (c: Buffer) => void (answer += c.toString()));
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.write('x'.repeat(size / 2));
    void sleep(200).then(() => {
      t.equal(up.requests, 0, 'half the body sent: the upstream has seen no request');
      req.end('x'.repeat(size / 2));
    });
  });
  t.equal(await done, 200);
  t.equal(answer, `got ${size}`, 'the whole body reached the upstream');
  t.same(bodies, [size]);

  // A client that leaves before its small body is complete never reaches the upstream.
  const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/w', method: 'POST', agent: false, headers: { 'content-length': '100' } });
  req.on('error', () => {});
  req.write('x'.repeat(50));
  await sleep(100);
  req.destroy();
  await sink.waitFor(2);
  t.equal(up.requests, 1, 'the abandoned request never reached the upstream');
  t.notOk(sink.json().some((e) => e.response_flags === 'UF'), 'no UF flag');
  t.same(upstreamFailures(logs), [], 'no upstream failure logged');
});

t.test('a reload that drops an upstream closes its connections; a request in flight to it still finishes', async (t) => {
  let release: () => void = () => {};
  const a = await upstream(t, (req, res) => {
    req.resume();
    if (req.url === '/slow') release = () => res.end('a-slow');
    else res.end('a');
  });
  const b = await upstream(t, (req, res) => {
    req.resume();
    res.end('b');
  });
  const closedAtA: number[] = [];
  a.server.on('connection', (socket) => socket.on('close', () => closedAtA.push(Date.now())));
  // keepAliveMs far past the test: only the reload can close A's idle connection.
  const { proxy } = await proxyTo(t, a, { upstream: { maxSockets: 4, keepAliveMs: 60_000 } });
  t.equal((await request(proxy.port, '/x')).body, 'a', 'served by A');
  const slow = request(proxy.port, '/slow');
  while (a.requests < 2) await sleep(5);

  await proxy.reload({ config: { ...proxy.host.config, routes: [{ name: 'r', upstream: `http://127.0.0.1:${b.port}` }] } });
  t.equal((await request(proxy.port, '/x')).body, 'b', 'after the reload, served by B');
  t.same(closedAtA, [], 'the connection with a request in flight is not cut');
  release();
  t.equal((await slow).body, 'a-slow', 'the request in flight to A finishes');
  for (let i = 0; i < 100 && closedAtA.length < a.connections; i++) await sleep(10);
  t.equal(closedAtA.length, a.connections, `every connection to A is closed (${a.connections}), without waiting for keepAliveMs`);
  t.equal((await request(proxy.port, '/y')).body, 'b', 'B keeps serving');
});

t.test('close() leaves no upstream connection open', async (t) => {
  const up = await upstream(t, (req, res) => {
    req.resume();
    res.end('ok');
  });
  const { proxy } = await proxyTo(t, up, { upstream: { keepAliveMs: 60_000 } });
  await Promise.all(Array.from({ length: 5 }, () => request(proxy.port, '/a')));
  await request(proxy.port, '/c', { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'abc' });
  const open = () => new Promise<number>((r) => up.server.getConnections((_e, n) => r(n)));
  t.ok((await open()) > 0, 'idle keep-alive connections before close');
  await proxy.close();
  for (let i = 0; i < 100 && (await open()) > 0; i++) await sleep(10);
  t.equal(await open(), 0, 'none after close');
});

t.test('https:// upstreams are reached over TLS with certificate checks (a self-signed one is refused: 503, UF)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-up-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
  const server = https.createServer({ key: await readFile(join(dir, 'k.pem')), cert: await readFile(join(dir, 'c.pem')) }, (_req, res) => res.end('ok'));
  let handshakes = 0;
  server.on('tlsClientError', () => handshakes++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const sink = new MemorySink();
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [{ name: 'tls', upstream: `https://127.0.0.1:${(server.address() as AddressInfo).port}` }], plugins: [{ name: 'access', url: logging, pluginConfig: {} }] },
    { accessLogSinks: [sink], logger: createLogger(LogLevel.Error, () => {}) },
  );
  t.teardown(() => proxy.close());
  t.equal((await request(proxy.port, '/get')).status, 503, 'undici Pool: refused');
  t.equal((await request(proxy.port, '/post', { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'x' })).status, 503, 'node:https (chunked body): refused');
  await sink.waitFor(2);
  t.same(sink.json().map((e) => e.response_flags), ['UF', 'UF']);
  for (let i = 0; i < 100 && handshakes < 2; i++) await sleep(10);
  t.ok(handshakes >= 2, 'both spoke TLS to the upstream');
});
