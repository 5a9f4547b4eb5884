// A request body must reach the upstream when an adapter holds the request before
// forwarding it (an HTTP call-out here; a remote Check in the out-of-process mode):
// the proxy must not let the body flow while the chain is paused.
import http from 'node:http';
import t from 'tap';
import { startDemoUpstream, startProxy } from '../../host/src/index.js';
import { compileGuest } from '../fixtures/guests/index.js';

function post(port: number, path: string, body: Buffer, chunked: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (!chunked) headers['content-length'] = String(body.length);
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out: the upstream never got the whole body')));
    req.on('error', reject);
    if (chunked) {
      req.write(body.subarray(0, 1000));
      setTimeout(() => req.end(body.subarray(1000)), 20);
    } else req.end(body);
  });
}

t.test('bodies of requests paused by an adapter reach the upstream', async (t) => {
  const upstream = await startDemoUpstream(0);
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }],
      clusters: { authz: { url: `http://127.0.0.1:${upstream.port}` } },
      plugins: [{ name: 'async', url: 'abi-async.wasm', clusters: ['authz'], vmConfig: { vmId: 'paused-body' } }],
      logLevel: 'error',
    },
    { modules: { 'abi-async.wasm': await compileGuest('abi-async') } },
  );
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const body = Buffer.alloc(10_000, 'b');
  for (const chunked of [false, true]) {
    const r = await post(proxy.port, '/call-allow', body, chunked);
    t.equal(r.status, 200, `${chunked ? 'chunked' : 'content-length'}: answered`);
    t.equal((JSON.parse(r.body) as { bodyBytes: number }).bodyBytes, 10_000, `${chunked ? 'chunked' : 'content-length'}: the whole body was forwarded`);
  }
  const plain = await post(proxy.port, '/not-paused', body, false);
  t.equal((JSON.parse(plain.body) as { bodyBytes: number }).bodyBytes, 10_000, 'unpaused requests still stream their body');
});

t.test('a request whose client leaves while an adapter holds it is not forwarded', async (t) => {
  // authz answers the call-out after 200 ms; the route's upstream records what reaches it
  const authz = http.createServer((req, res) => void req.resume().on('end', () => setTimeout(() => res.end('ok'), 200)));
  const reached: string[] = [];
  const origin = http.createServer((req, res) => {
    reached.push(req.url ?? '');
    req.resume().on('end', () => res.end('origin'));
  });
  await Promise.all([authz, origin].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
  const portOf = (s: http.Server) => (s.address() as { port: number }).port;
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      routes: [{ name: 'default', upstream: `http://127.0.0.1:${portOf(origin)}` }],
      clusters: { authz: { url: `http://127.0.0.1:${portOf(authz)}` } },
      plugins: [{ name: 'async', url: 'abi-async.wasm', clusters: ['authz'], vmConfig: { vmId: 'client-left' } }],
      logLevel: 'error',
    },
    { modules: { 'abi-async.wasm': await compileGuest('abi-async') } },
  );
  t.teardown(async () => {
    await proxy.close();
    authz.closeAllConnections();
    origin.closeAllConnections();
    await Promise.all([authz, origin].map((s) => new Promise((r) => s.close(r))));
  });
  const left = http.get({ host: '127.0.0.1', port: proxy.port, path: '/call-left' });
  left.on('error', () => {});
  await new Promise((r) => setTimeout(r, 50));
  left.destroy(); // while the adapter waits for authz
  await new Promise((r) => setTimeout(r, 400)); // authz has answered and the adapter continued
  const stayed = await new Promise<number>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: proxy.port, path: '/call-stayed' }, (res) => void res.resume().on('end', () => resolve(res.statusCode ?? 0))).on('error', reject);
  });
  t.equal(stayed, 200, 'a client that waits is answered');
  t.same(reached, ['/call-stayed'], 'the request of the client that left never reached the upstream');
});
