// The real reverse proxy on real sockets, with a spec-conventions adapter in the chain.
import http from 'node:http';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startDemoUpstream, startProxy } from '../../host/src/index.js';
import { compileGuest } from '../fixtures/guests/index.js';

interface Res { status: number; headers: http.IncomingHttpHeaders; body: string }

function request(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

t.test('proxy forwards, runs the adapter, and answers locally', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-proxy-'));
  await writeFile(join(dir, 'spec.wasm'), await compileGuest('spec-filter'));
  const upstream = await startDemoUpstream(0);
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }],
      plugins: [{ name: 'spec', url: 'spec.wasm', pluginConfig: 'ok' }],
    },
    { baseDir: dir },
  );
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });

  const ok = await request(proxy.port, '/hello?x=1', { headers: { 'x-client': 'yes' } });
  t.equal(ok.status, 200);
  const echoed = JSON.parse(ok.body) as { url: string; headers: Record<string, string> };
  t.equal(echoed.url, '/hello?x=1', 'path and query reach the upstream');
  t.equal(echoed.headers['x-spec-filter'], 'seen', 'adapter-added header reaches the upstream');
  t.equal(echoed.headers['x-client'], 'yes', 'client headers are forwarded');
  t.match(echoed.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'the proxy adds x-request-id');
  t.equal(echoed.headers['x-forwarded-for'], '127.0.0.1');
  t.equal(ok.headers['x-spec-response'], '1', 'adapter-set response header reaches the client');

  const posted = await request(proxy.port, '/upload', { method: 'POST', body: 'a'.repeat(100_000), headers: { 'content-type': 'text/plain' } });
  t.equal((JSON.parse(posted.body) as { bodyBytes: number }).bodyBytes, 100_000, 'request bodies stream through');

  const denied = await request(proxy.port, '/deny');
  t.equal(denied.status, 403);
  t.equal(denied.body, 'denied by spec-filter');

  const metrics = await request(proxy.adminPort!, '/metrics');
  t.match(metrics.body, /spec_filter_requests_total 3/, 'adapter metrics are served on the admin port');
  t.match(metrics.body, /wasm_mixer_proxy_responses_total\{route="default",code="403"\} 1/);
  const adapters = JSON.parse((await request(proxy.adminPort!, '/adapters')).body) as Array<{ name: string; healthy: boolean; abi: string }>;
  t.same(adapters.map((a) => [a.name, a.healthy, a.abi]), [['spec', true, '0.2.1']]);
  t.equal((await request(proxy.adminPort!, '/ready')).status, 200);
});

t.test('upstream down gives 503 and the proxy keeps serving', async (t) => {
  const srv = http.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const deadPort = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const proxy = await startProxy({ listen: { port: 0 }, routes: [{ name: 'dead', upstream: `http://127.0.0.1:${deadPort}` }] });
  t.teardown(() => proxy.close());
  const r1 = await request(proxy.port, '/');
  t.equal(r1.status, 503);
  t.match(r1.body, /upstream connect error/);
  const r2 = await request(proxy.port, '/');
  t.equal(r2.status, 503, 'still serving after an upstream failure');
});

t.test('no matching route gives 404', async (t) => {
  const upstream = await startDemoUpstream(0);
  const proxy = await startProxy({ listen: { port: 0 }, routes: [{ name: 'api', match: { prefix: '/api' }, upstream: `http://127.0.0.1:${upstream.port}` }] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  t.equal((await request(proxy.port, '/other')).status, 404);
  t.equal((await request(proxy.port, '/api/x')).status, 200);
});

t.test('malformed HTTP gets 400 and the proxy keeps serving', async (t) => {
  const upstream = await startDemoUpstream(0);
  const proxy = await startProxy({ listen: { port: 0 }, routes: [{ name: 'd', upstream: `http://127.0.0.1:${upstream.port}` }] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const net = await import('node:net');
  const raw = await new Promise<string>((resolve) => {
    const s = net.connect(proxy.port, '127.0.0.1', () => s.write('GARBAGE / NOT-HTTP\r\n\r\n'));
    let buf = '';
    s.on('data', (d) => (buf += d.toString()));
    s.on('close', () => resolve(buf));
  });
  t.match(raw, /^HTTP\/1\.1 400/);
  t.equal((await request(proxy.port, '/')).status, 200);
});
