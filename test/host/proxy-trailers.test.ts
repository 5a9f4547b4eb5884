// HTTP/1.1 trailers through the real proxy: forwarded both ways, with and without
// adapters that implement the trailer callbacks.
import http from 'node:http';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startProxy } from '../../host/src/index.js';
import { compileGuest } from '../fixtures/guests/index.js';

interface Seen { body: string; trailers: Record<string, string> }

async function trailerUpstream(t: Tap.Test): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ body, trailers: { ...req.trailers } as Record<string, string> });
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-up-trailer' });
      res.write('part1-');
      res.addTrailers({ 'x-up-trailer': 'done' });
      res.end('part2');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return { port: (server.address() as { port: number }).port, seen };
}

function post(port: number, path: string): Promise<{ status: number; body: string; trailers: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked', trailer: 'x-client-trailer' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, trailers: { ...res.trailers } as Record<string, string> }));
    });
    req.on('error', reject);
    req.write('hello ');
    req.addTrailers({ 'x-client-trailer': 'yes' });
    req.end('world');
  });
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Tap { type Test = import('tap').Test }
}

t.test('trailers pass through a proxy with no adapters', async (t) => {
  const up = await trailerUpstream(t);
  const proxy = await startProxy({ listen: { port: 0 }, routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }] });
  t.teardown(() => proxy.close());
  const r = await post(proxy.port, '/plain');
  t.equal(r.status, 200);
  t.equal(r.body, 'part1-part2');
  t.same(r.trailers, { 'x-up-trailer': 'done' }, 'response trailers reach the client');
  t.equal(up.seen[0]?.body, 'hello world');
  t.same(up.seen[0]?.trailers, { 'x-client-trailer': 'yes' }, 'request trailers reach the upstream');
});

t.test('trailers pass through adapters that buffer bodies and read trailers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-trailers-'));
  await writeFile(join(dir, 'body.wasm'), await compileGuest('abi-body'));
  const up = await trailerUpstream(t);
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }], plugins: [{ name: 'body', url: 'body.wasm' }] },
    { baseDir: dir },
  );
  t.teardown(() => proxy.close());
  const r = await post(proxy.port, '/pass');
  t.equal(r.status, 200);
  t.equal(r.body, 'part1-part2', 'the response body is complete');
  t.equal(r.trailers['x-up-trailer'], 'done', 'response trailers reach the client');
  t.equal(up.seen[0]?.body, 'hello world', 'the request body is complete');
  t.equal(up.seen[0]?.trailers['x-client-trailer'], 'yes', 'request trailers reach the upstream');
});
