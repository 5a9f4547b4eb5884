// Issue 11, "buffered bodies": an adapter that buffers the whole body (StopIterationAndBuffer)
// can make the proxy hold at most limits.maxBufferedBodyBytes (default 4 MiB) per request;
// past it the request gets the proxy's JSON 413. Buffering is linear in the body size, a
// 50 MB upload does not delay other requests, and memory stays bounded.
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import t from 'tap';
import { startDemoUpstream, startProxy, type MixerConfig } from '../../host/src/index.js';
import { request, wat } from './helpers.js';

// Buffers request and response bodies until end of stream (StopIterationAndBuffer = 1), then continues.
const BUFFERING = `(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32) (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (select (i32.const 0) (i32.const 1) (local.get $eos)))
  (func (export "proxy_on_response_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (select (i32.const 0) (i32.const 1) (local.get $eos))))`;

async function bufferingProxy(t: Tap.Test, extra: Partial<MixerConfig> & { limit?: number } = {}) {
  const upstream = await startDemoUpstream(0);
  const { limit, ...rest } = extra;
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }],
      plugins: [{ name: 'buffer', url: 'buffer.wasm', ...(limit !== undefined ? { limits: { maxBufferedBodyBytes: limit } } : {}) }],
      ...rest,
    },
    { modules: { 'buffer.wasm': await wat(BUFFERING) } },
  );
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  return proxy;
}

/** Streams `total` bytes as a POST body (honouring backpressure); resolves with the response, or what the client saw. */
function upload(port: number, total: number): Promise<{ status: number; body: string; sent: number }> {
  return new Promise((resolve) => {
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    let sent = 0;
    let done = false;
    const req = http.request({ host: '127.0.0.1', port, path: '/upload', method: 'POST', agent: false, headers: { 'content-length': String(total) } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        done = true;
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body, sent });
      });
    });
    req.on('error', () => {
      if (!done) resolve({ status: 0, body: '', sent });
    });
    const pump = () => {
      while (!done && sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        const more = req.write(n === chunk.length ? chunk : chunk.subarray(0, n));
        if (sent >= total) return void req.end();
        if (!more) return void req.once('drain', pump);
      }
    };
    pump();
  });
}

t.test('a 50 MB upload through a body-buffering adapter: 413 at the default 4 MiB, other requests not delayed, memory bounded', async (t) => {
  const proxy = await bufferingProxy(t);
  const rss0 = process.memoryUsage().rss;
  let rssHigh = rss0;
  const sampler = setInterval(() => (rssHigh = Math.max(rssHigh, process.memoryUsage().rss)), 10);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  // Other requests keep flowing while the upload is refused.
  let stop = false;
  let worst = 0;
  let others = 0;
  const background = (async () => {
    while (!stop) {
      const r = await request(proxy.port, '/other', { fresh: true });
      if (r.status === 200) others++;
      worst = Math.max(worst, r.ms);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const t0 = performance.now();
  const big = await upload(proxy.port, 50 * 1024 * 1024);
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await background;
  clearInterval(sampler);
  loop.disable();

  t.equal(big.status, 413, `the upload is refused with 413 (after ${ms.toFixed(0)} ms)`);
  const body = JSON.parse(big.body) as { error: string; adapter: string; limit: number };
  t.same([body.error, body.adapter, body.limit], ['BODY_TOO_LARGE', 'buffer', 4 * 1024 * 1024]);
  t.ok(ms < 5000, `refused in ${ms.toFixed(0)} ms`);
  t.ok(others >= 3, `other requests served meanwhile (${others})`);
  t.ok(worst < 1000, `no other request waited long (worst ${worst.toFixed(0)} ms)`);
  const maxStallMs = loop.max / 1e6;
  t.ok(maxStallMs < 500, `event loop never blocked long (max ${maxStallMs.toFixed(0)} ms)`);
  const grewMb = (rssHigh - rss0) / 1024 / 1024;
  t.ok(grewMb < 96, `memory high-water grew ${grewMb.toFixed(0)} MB (the whole body is 50 MB)`);
  t.comment(`50 MB upload: 413 in ${ms.toFixed(0)} ms, worst other request ${worst.toFixed(0)} ms, max loop stall ${maxStallMs.toFixed(0)} ms, RSS +${grewMb.toFixed(0)} MB`);

  const m = await request(proxy.adminPort!, '/metrics');
  t.match(m.body, /wasm_mixer_body_too_large_total\{adapter="buffer",direction="request"\} 1/);
  t.match(m.body, /wasm_mixer_proxy_responses_total\{route="default",code="413"\} 1/);
  t.equal((await request(proxy.port, '/after', { method: 'POST', body: 'small' })).status, 200, 'the proxy keeps serving');
});

t.test('under the limit the whole body is buffered and forwarded; buffering is linear in the body size', async (t) => {
  const proxy = await bufferingProxy(t, { limit: 64 * 1024 * 1024 });
  // 32 MB in 64 KiB chunks: ~512 appends. Concatenating each onto the whole (quadratic) copies ~8 GB.
  const t0 = performance.now();
  const r = await upload(proxy.port, 32 * 1024 * 1024);
  const ms = performance.now() - t0;
  t.equal(r.status, 200);
  t.equal((JSON.parse(r.body) as { bodyBytes: number }).bodyBytes, 32 * 1024 * 1024, 'the upstream got every byte');
  t.ok(ms < 8000, `32 MB buffered and forwarded in ${ms.toFixed(0)} ms`);
  t.comment(`32 MB buffered in ${ms.toFixed(0)} ms`);
});

t.test('a route can lower the limit; past the limit on a response the stream is reset', async (t) => {
  const big = http.createServer((_req, res) => res.end(Buffer.alloc(1024 * 1024, 0x62)));
  await new Promise<void>((r) => big.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => big.close(() => r())));
  const upstream = `http://127.0.0.1:${(big.address() as { port: number }).port}`;
  const proxy = await bufferingProxy(t, {
    routes: [
      { name: 'small', match: { prefix: '/small' }, upstream, maxBufferedBodyBytes: 64 * 1024 },
      { name: 'rest', upstream },
    ],
  });
  const small = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/small', method: 'POST', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(Buffer.alloc(512 * 1024));
  });
  t.equal(small.status, 413, 'the route cap (64 KiB) applies below the adapter default');
  t.equal((JSON.parse(small.body) as { limit: number }).limit, 64 * 1024);
  // Response: 1 MB is under the default 4 MiB: forwarded whole.
  const whole = await request(proxy.port, '/rest', { fresh: true });
  t.equal(whole.body.length, 1024 * 1024);
  // Response on the small route: the headers are already out, so the stream is reset.
  const cut = await request(proxy.port, '/small-get', { fresh: true }).then((x) => x.body.length, (e: Error) => e.message);
  t.not(cut, 1024 * 1024, `the 1 MB response is not delivered past the 64 KiB cap (${cut})`);
  const m = await request(proxy.adminPort!, '/metrics');
  t.match(m.body, /wasm_mixer_body_too_large_total\{adapter="buffer",direction="response"\} 1/);
});
