// HTTP/1.1 conformance and slow-client limits of the real proxy: headers named in
// Connection are not forwarded (RFC 9110 §7.6.1), oversized heads get the proxy's own
// JSON 431 (counted and access-logged), local replies are logged without an upstream,
// and slow clients are cut off at headersTimeoutMs / requestTimeoutMs.
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { startDemoUpstream, startProxy, type RunningProxy } from '../../host/src/index.js';
import { MemorySink } from '../telemetry/helpers.js';
import { request } from '../resilience/helpers.js';

async function proxyWithLogging(t: Tap.Test, extra: Record<string, unknown> = {}): Promise<{ proxy: RunningProxy; sink: MemorySink; upstreamPort: number }> {
  const upstream = await startDemoUpstream(0);
  const sink = new MemorySink();
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }],
      plugins: [
        { name: 'header-check', url: 'wasm/header-check.wasm', phase: 'AUTHZ', pluginConfig: { header: 'x-user' } },
        { name: 'logging', url: 'wasm/logging.wasm', phase: 'STATS', failStrategy: 'FAIL_OPEN', pluginConfig: {} },
      ],
      ...extra,
    },
    { accessLogSinks: [sink] },
  );
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  return { proxy, sink, upstreamPort: upstream.port };
}

t.test('headers named in Connection are removed before forwarding, both ways (RFC 9110 §7.6.1)', async (t) => {
  const { proxy } = await proxyWithLogging(t);
  const res = await request(proxy.port, '/x', { fresh: true, headers: { 'x-user': 'ann', connection: 'keep-alive, X-Hop, x-other', 'x-hop': 'secret', 'x-other': '1', 'x-keep': 'yes' } });
  t.equal(res.status, 200);
  const seen = (JSON.parse(res.body) as { headers: Record<string, string> }).headers;
  t.equal(seen['x-hop'], undefined, 'x-hop (named in Connection) is not forwarded');
  t.equal(seen['x-other'], undefined);
  t.equal(seen['x-keep'], 'yes', 'other headers are');

  // And on the response: an upstream that names a header in its Connection header.
  const up = http.createServer((_req, res) => res.writeHead(200, { connection: 'x-resp-hop', 'x-resp-hop': '1', 'x-resp-keep': '1' }).end('ok'));
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => up.close(() => r())));
  const p2 = await startProxy({ listen: { port: 0 }, routes: [{ name: 'r', upstream: `http://127.0.0.1:${(up.address() as net.AddressInfo).port}` }] });
  t.teardown(() => p2.close());
  const r2 = await request(p2.port, '/', { fresh: true });
  t.equal(r2.headers['x-resp-hop'], undefined, 'x-resp-hop is not sent to the client');
  t.equal(r2.headers['x-resp-keep'], '1');
});

t.test('local replies are access-logged without upstream_host / upstream_cluster; forwarded ones with them', async (t) => {
  const { proxy, sink, upstreamPort } = await proxyWithLogging(t);
  t.equal((await request(proxy.port, '/denied', { fresh: true })).status, 403);
  t.equal((await request(proxy.port, '/allowed', { fresh: true, headers: { 'x-user': 'ann' } })).status, 200);
  await sink.waitFor(2);
  const [denied, allowed] = sink.json();
  t.equal(denied!.response_code, 403);
  t.equal(denied!.upstream_host, null, 'no upstream was contacted for the 403');
  t.equal(denied!.upstream_cluster, null);
  t.equal(allowed!.response_code, 200);
  t.equal(allowed!.upstream_host, `127.0.0.1:${upstreamPort}`);
  t.equal(allowed!.upstream_cluster, 'default');
});

t.test('oversized request headers: 431 with the proxy JSON error, counted in /metrics and the access log', async (t) => {
  const { proxy, sink } = await proxyWithLogging(t);
  const big = await request(proxy.port, '/big', { fresh: true, headers: { 'x-user': 'ann', 'x-big': 'a'.repeat(20_000) } }).catch((e: Error) => e);
  t.notOk(big instanceof Error, 'the client gets an answer, not a reset');
  const r = big as Awaited<ReturnType<typeof request>>;
  t.equal(r.status, 431);
  t.equal(r.headers['content-type'], 'application/json');
  const body = JSON.parse(r.body) as { error: string; message: string };
  t.equal(body.error, 'HEADERS_TOO_LARGE');
  t.match(body.message, /larger than 16384 bytes/);
  await sink.waitFor(1);
  const entry = sink.json()[0]!;
  t.equal(entry.response_code, 431, 'the access log has the 431');
  t.equal(entry.method, 'GET');
  t.equal(entry.response_code_details, 'http1.headers_too_large');
  const metrics = await request(proxy.adminPort!, '/metrics');
  t.match(metrics.body, /wasm_mixer_proxy_responses_total\{route="",code="431"\} 1/);
  t.equal((await request(proxy.port, '/ok', { fresh: true, headers: { 'x-user': 'ann' } })).status, 200, 'the proxy keeps serving');
});

/** The value, or Infinity when it takes longer than ms (so a missing bound fails fast). */
function within(p: Promise<number>, ms: number): Promise<number> {
  return Promise.race([p, new Promise<number>((r) => setTimeout(() => r(Infinity), ms).unref())]);
}

/** A connection that sends a request head (or body) one line every `everyMs` and never finishes. */
function slowClient(port: number, everyMs: number, body = false): { closedAt: Promise<number>; reply: () => string; socket: net.Socket } {
  const socket = net.connect(port, '127.0.0.1');
  let got = '';
  socket.on('data', (d) => (got += d.toString()));
  socket.on('error', () => {});
  socket.write(body ? 'POST / HTTP/1.1\r\nHost: x\r\nx-user: a\r\nContent-Length: 100000\r\n\r\n' : 'GET / HTTP/1.1\r\nHost: x\r\n');
  let n = 0;
  const timer = setInterval(() => socket.write(body ? 'a' : `x-slow-${n++}: 1\r\n`), everyMs);
  const t0 = performance.now();
  const closedAt = new Promise<number>((r) => socket.on('close', () => {
    clearInterval(timer);
    r(performance.now() - t0);
  }));
  return { closedAt, reply: () => got, socket };
}

t.test('slowloris: connections past headersTimeoutMs / requestTimeoutMs are answered 408 and closed; normal requests are served meanwhile', async (t) => {
  const headersTimeoutMs = 1500;
  const requestTimeoutMs = 3000;
  const { proxy } = await proxyWithLogging(t, { listen: { port: 0, headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs: 500 } });
  const heads = Array.from({ length: 100 }, () => slowClient(proxy.port, 200));
  const bodies = Array.from({ length: 20 }, () => slowClient(proxy.port, 200, true));
  t.teardown(() => [...heads, ...bodies].forEach((c) => c.socket.destroy()));
  // Normal requests while the slow ones hang on.
  let worst = 0;
  let served = 0;
  const until = performance.now() + 2000;
  while (performance.now() < until) {
    const r = await request(proxy.port, '/', { fresh: true, headers: { 'x-user': 'ann' } });
    t.equal(r.status, 200);
    worst = Math.max(worst, r.ms);
    served++;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(served >= 5, `normal requests served during the attack (${served})`);
  t.ok(worst < 3000, `no normal request waited long (worst ${worst.toFixed(0)} ms; generous for a loaded CI machine)`);
  // Bound: the timeout plus Node's check interval (1 s), with slack for a loaded machine.
  const headClosed = await Promise.all(heads.map((c) => within(c.closedAt, 15_000)));
  t.ok(Math.max(...headClosed) < headersTimeoutMs + 1000 + 2500, `slow heads closed by ${Math.max(...headClosed).toFixed(0)} ms`);
  t.ok(Math.min(...headClosed) >= headersTimeoutMs - 100, 'not before headersTimeoutMs');
  t.match(heads[0]!.reply(), /^HTTP\/1\.1 408 Request Timeout\r\n[^]*"error":"REQUEST_TIMEOUT"/);
  const bodyClosed = await Promise.all(bodies.map((c) => within(c.closedAt, 15_000)));
  t.ok(Math.max(...bodyClosed) < requestTimeoutMs + 1000 + 2500, `slow bodies closed by ${Math.max(...bodyClosed).toFixed(0)} ms`);
  for (const b of bodies) {
    t.match(b.reply(), /^HTTP\/1\.1 408 Request Timeout\r\n/, 'a slow body gets 408 through its own response');
    t.equal(b.reply().split('HTTP/1.1 ').length, 2, 'exactly one response');
  }

});

t.test('an idle keep-alive connection is closed after keepAliveTimeoutMs', async (t) => {
  const { proxy } = await proxyWithLogging(t, { listen: { port: 0, keepAliveTimeoutMs: 500 } });
  const idle = net.connect(proxy.port, '127.0.0.1');
  idle.on('error', () => {});
  let got = '';
  idle.on('data', (d) => (got += d.toString()));
  idle.write('GET / HTTP/1.1\r\nHost: x\r\nx-user: a\r\n\r\n');
  const t0 = performance.now();
  const idleMs = await within(new Promise<number>((r) => idle.on('close', () => r(performance.now() - t0))), 15_000);
  t.match(got, /^HTTP\/1\.1 200 OK/);
  // Node adds a 1 s grace to the keep-alive timeout.
  t.ok(idleMs < 500 + 1000 + 2500, `idle keep-alive connection closed after ${idleMs.toFixed(0)} ms`);
});

t.test('defaults: the proxy port has header, request and keep-alive timeouts', async (t) => {
  const proxy = await startProxy({ listen: { port: 0 }, routes: [] });
  t.teardown(() => proxy.close());
  t.equal(proxy.server.headersTimeout, 10_000);
  t.equal(proxy.server.requestTimeout, 120_000);
  t.equal(proxy.server.keepAliveTimeout, 5_000);
  // http.Server has maxHeaderSize at run time; @types/node 20 does not declare it.
  t.equal(Reflect.get(proxy.server, 'maxHeaderSize'), 16_384);
});
