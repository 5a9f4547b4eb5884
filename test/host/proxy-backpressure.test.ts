// Bodies no adapter looks at are relayed with backpressure (proxy/relay.ts): a reader that
// stops reading stops the writer on the other side of the proxy, in both directions,
// instead of the proxy buffering the whole body; and everything arrives once reading resumes.
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { startProxy } from '../../host/src/index.js';

const BIG = 64 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'z');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function proxyTo(port: number) {
  const proxy = await startProxy({ listen: { port: 0 }, logLevel: 'error', routes: [{ name: 'r', upstream: `http://127.0.0.1:${port}` }], plugins: [] });
  return proxy;
}

t.test('a response body: the upstream is held back while the client does not read', async (t) => {
  let written = 0;
  let finished = false;
  const upstream = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
    const pump = () => {
      while (written < BIG) {
        written += CHUNK.length;
        if (!res.write(CHUNK)) return void res.once('drain', pump);
      }
      res.end(() => (finished = true));
    };
    pump();
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const proxy = await proxyTo((upstream.address() as net.AddressInfo).port);
  t.teardown(async () => {
    await proxy.close();
    upstream.close();
    upstream.closeAllConnections();
  });

  const sock = net.connect(proxy.port, '127.0.0.1');
  await once(sock, 'connect');
  sock.pause(); // read nothing yet
  sock.write('GET /big HTTP/1.1\r\nhost: x\r\n\r\n');
  await sleep(1500);
  t.notOk(finished, 'the upstream has not finished writing');
  t.ok(written < BIG / 2, `the upstream wrote ${(written / 2 ** 20).toFixed(1)} MiB of ${BIG / 2 ** 20} MiB while nobody read`);

  let got = 0;
  sock.on('data', (c: Buffer) => (got += c.length));
  sock.resume();
  const until = Date.now() + 60_000;
  while (got < BIG && Date.now() < until) await sleep(50);
  t.ok(got > BIG, `the whole body arrives once the client reads (${got} bytes with the head)`);
  sock.destroy();
});

t.test('a request body: the client is held back while the upstream does not read', async (t) => {
  let upstreamReq: http.IncomingMessage | null = null;
  let received = 0;
  const upstream = http.createServer((req, res) => {
    upstreamReq = req;
    req.pause();
    req.on('data', (c: Buffer) => (received += c.length));
    req.on('end', () => res.end(String(received)));
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const proxy = await proxyTo((upstream.address() as net.AddressInfo).port);
  t.teardown(async () => {
    await proxy.close();
    upstream.close();
    upstream.closeAllConnections();
  });

  const req = http.request({ host: '127.0.0.1', port: proxy.port, method: 'POST', path: '/up', agent: false, headers: { 'content-length': String(BIG) } });
  const answer = new Promise<string>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
  });
  let sent = 0;
  let blocked = false;
  const pump = () => {
    while (sent < BIG) {
      sent += CHUNK.length;
      if (!req.write(CHUNK)) {
        blocked = true;
        return void req.once('drain', pump);
      }
    }
    req.end();
  };
  pump();
  await sleep(1500);
  t.ok(upstreamReq !== null, 'the request reached the upstream');
  t.ok(blocked, 'the client was told to wait');
  t.ok(sent < BIG / 2, `the client got ${(sent / 2 ** 20).toFixed(1)} MiB of ${BIG / 2 ** 20} MiB out while the upstream read nothing`);
  upstreamReq!.resume();
  t.equal(await answer, String(BIG), 'the whole body reaches the upstream once it reads');
});
