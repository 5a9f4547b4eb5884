// Cost of the out-of-process mode on this machine (a measurement, not a test).
//
//   npm run build && node test/oop/bench-check.mjs [N]
//
// 1. Check round trip: RemoteClient.check() -> wasm-mixer server (header-check adapter)
//    -> answer, sequential and 32 in flight, for a request bag of 12 headers.
// 2. Per-request latency through the proxy, sequential keep-alive requests:
//    header-check in process / remote with the check cache off / remote answered from cache.
// Client and server share this process. The Describe round trip is printed as the floor
// (grpc-js itself: ~240 µs per unary call in one process on an idle 2-core machine,
// ../shared/reference/baseline.md §3).

import http from 'node:http';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const dist = (p) => join(ROOT, 'dist/host/src', p);
if (!existsSync(dist('oop/server.js')) || !existsSync(join(ROOT, 'wasm/header-check.wasm'))) {
  console.error('run "npm run build" first (dist/ and wasm/header-check.wasm are needed)');
  process.exit(1);
}
const { startAdapterServer } = await import(dist('oop/server.js'));
const { startProxy } = await import(dist('proxy/proxy.js'));
const { startDemoUpstream } = await import(dist('proxy/demo-upstream.js'));
const { createLogger } = await import(dist('log/logger.js'));
const { remoteClientOf } = await import(dist('oop/remote-adapter.js'));
const { bagFromStream, encodeBag, WordEncoder } = await import(dist('oop/attributes.js'));
const { HttpStream } = await import(dist('stream/http-stream.js'));

const N = Number(process.argv[2] ?? 3000);
const quiet = createLogger(5, () => {});
const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const fmt = (xs) => {
  xs.sort((a, b) => a - b);
  return `p50 ${pct(xs, 50).toFixed(0)} µs  p90 ${pct(xs, 90).toFixed(0)} µs  p99 ${pct(xs, 99).toFixed(0)} µs`;
};

const plugin = { name: 'hc', url: join(ROOT, 'wasm/header-check.wasm'), pluginConfig: { header: 'x-user' } };
const upstream = await startDemoUpstream(0);
const server = await startAdapterServer({ plugins: [plugin] }, { listen: '127.0.0.1:0', adminPort: null, logger: quiet });
const routes = [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }];

// --- 1. Check round trip --------------------------------------------------------------------------
{
  const proxy = await startProxy({ listen: { port: 0 }, routes, plugins: [plugin], remote: { address: server.address, plugins: 'all', checkCache: { enabled: false } } }, { port: 0, logger: quiet });
  const client = remoteClientOf(proxy.host);
  const headers = [[':method', 'GET'], [':path', '/api/orders?page=2'], [':authority', 'api.example.com'], [':scheme', 'http'], ['user-agent', 'curl/8.5.0'], ['accept', '*/*'], ['x-user', 'ann'], ['x-request-id', 'b7c1e0f2-1111-2222-3333-444455556666'], ['x-forwarded-for', '10.0.0.1'], ['authorization', 'Bearer abc.def.ghi'], ['content-type', 'application/json'], ['cookie', 'a=1; b=2']];
  const s = new HttpStream(headers, { sourceAddress: '10.0.0.1', sourcePort: 50000, routeName: 'default' });
  const req = () => {
    const enc = new WordEncoder();
    const attributes = encodeBag(bagFromStream(s, 'check'), enc);
    attributes.words = enc.words;
    return { attributes, adapters: ['hc'], keep_session: false };
  };
  for (let i = 0; i < 500; i++) await client.check(req(), 5000, 'hc');
  // The floor: a Describe call (tiny request, the server does almost nothing) on the same channel.
  const floor = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await client.describe();
    floor.push((performance.now() - t0) * 1000);
  }
  console.log(`grpc-js floor (Describe), sequential (${N}): ${fmt(floor)}`);
  const seq = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await client.check(req(), 5000, 'hc');
    seq.push((performance.now() - t0) * 1000);
  }
  console.log(`Check round trip, sequential (${N}): ${fmt(seq)}`);
  const t0 = performance.now();
  let done = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (done < N * 2) {
      done++;
      await client.check(req(), 5000, 'hc');
    }
  }));
  console.log(`Check throughput, 32 in flight: ${((N * 2) / ((performance.now() - t0) / 1000)).toFixed(0)} checks/s`);
  const sum = server.host.metrics.histogramValue('wasm_mixer_server_call_duration_ms', { method: 'Check' });
  if (sum) console.log(`server time per Check (decode, run the adapter, encode): ${((sum.sum / sum.count) * 1000).toFixed(0)} µs mean`);
  await proxy.close();
}

// --- 2. Per-request latency through the proxy --------------------------------------------------------
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const get = (port) =>
  new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, path: '/api/orders', headers: { 'x-user': 'ann' }, agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    r.on('error', reject);
    r.end();
  });
async function latency(label, config) {
  const proxy = await startProxy({ listen: { port: 0 }, routes, ...config }, { port: 0, logger: quiet });
  for (let i = 0; i < 300; i++) await get(proxy.port);
  const xs = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await get(proxy.port);
    xs.push((performance.now() - t0) * 1000);
  }
  console.log(`${label.padEnd(34)} ${fmt(xs)}`);
  await proxy.close();
}
await latency('no adapter', { plugins: [] });
await latency('header-check in process', { plugins: [plugin] });
await latency('header-check remote, cache off', { plugins: [plugin], remote: { address: server.address, plugins: 'all', checkCache: { enabled: false } } });
await latency('header-check remote, cache hits', { plugins: [plugin], remote: { address: server.address, plugins: 'all' } });

await server.close();
await upstream.close();
