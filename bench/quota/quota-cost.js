// Benchmark (not a test): the quota adapter's cost per request, local and global
// mode, against a baseline measured in the same process, interleaved run by run:
//
//   baseline      the host's request lifecycle with no adapter
//   header-check  the example adapter (reads one header, adds one): "any adapter"
//   quota …       one or two limits, never over the limit (the common case), or
//                 over the limit (every request answered 429 by the adapter)
//   global …      the same limit shared through Redis: leases of up to 500 tokens,
//                 prefetched in the background; redis-server runs on a free loopback
//                 port, started and stopped by this script
//
//   node bench/quota/quota-cost.js [--runs 21] [--requests 5000] [--out bench/results/quota.json]
//
// Needs `npm run build` first (dist/) and redis-server. Times are CPU time of this
// process per request (process.cpuUsage; for global mode that includes the Redis
// client's work in this process, not redis-server's), medians of --runs runs (many
// short interleaved runs, so load from other processes hits every variant alike).
// Prints a Markdown table and writes the JSON (with the command) to --out.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WasmHost } from '../../dist/host/src/index.js';
import { buildAdapter } from '../../dist/host/src/build/build-adapter.js';
import { closeRedisClients } from '../../dist/host/src/quota/lease.js';
import { median, percentile, spread, round } from '../core/stats.js';
import { benchArgs } from '../core/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: opt } = benchArgs({ runs: 21, requests: 5000, out: resolve(root, 'bench/results/quota.json') });
const { runs: RUNS, requests: REQUESTS, out: OUT } = opt;

const quiet = { level: 5, log() {} };
const tmp = await mkdtemp(join(os.tmpdir(), 'quota-bench-'));
const quotaWasm = await readFile((await buildAdapter(resolve(root, 'adapters/quota'), { outDir: tmp })).wasmPath);
const checkWasm = await readFile((await buildAdapter(resolve(root, 'adapters/header-check'), { outDir: tmp })).wasmPath);

// --- redis-server on a free port ---------------------------------------------------------------
const port = await new Promise((res) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => res(p));
  });
});
const redis = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', tmp], { stdio: 'ignore' });
for (let i = 0; i < 100; i++) {
  const up = await new Promise((res) => {
    const c = net.connect(port, '127.0.0.1', () => (c.destroy(), res(true)));
    c.on('error', () => res(false));
  });
  if (up) break;
  await new Promise((r) => setTimeout(r, 20));
}

const headers = [
  ['user-agent', 'curl/8.5.0'],
  ['accept', '*/*'],
  ['x-user', 'ann'],
  ['x-tenant', 'acme'],
  ['content-type', 'application/json'],
];
const respHeaders = [['content-type', 'application/json'], ['content-length', '12']];

const BIG = 1_000_000_000_000;
const variants = {
  baseline: null,
  'header-check': { wasm: checkWasm, config: { header: 'x-user' } },
  'quota local, fixed window': { config: { limits: [{ name: 'per_ip', limit: BIG, window: '1h', dimensions: { ip: 'source.ip' } }] } },
  'quota local, sliding window (10 buckets)': { config: { limits: [{ name: 'per_ip', algorithm: 'sliding_window', limit: BIG, window: '1h', dimensions: { ip: 'source.ip' } }] } },
  'quota local, token bucket': { config: { limits: [{ name: 'per_ip', algorithm: 'token_bucket', limit: BIG, window: '1s', dimensions: { ip: 'source.ip' } }] } },
  'quota local, 2 limits (per tenant + global)': {
    config: { limits: [{ name: 'per_tenant', limit: BIG, window: '1h', dimensions: { tenant: 'header:x-tenant' } }, { name: 'all', limit: BIG, window: '1h' }] },
  },
  'quota local, over the limit (429)': { config: { limits: [{ name: 'blocked', limit: 0, window: '1h' }] }, deny: true },
  'quota global (Redis), fixed window': {
    config: { global: { cluster: 'redis', lease: 500 }, limits: [{ name: 'g', limit: BIG, window: '1h', mode: 'global', dimensions: { ip: 'source.ip' } }] },
    redis: true,
  },
  'quota global (Redis), token bucket': {
    config: { global: { cluster: 'redis', lease: 500 }, limits: [{ name: 'g', algorithm: 'token_bucket', limit: BIG, window: '1s', mode: 'global', dimensions: { ip: 'source.ip' } }] },
    redis: true,
  },
  'quota global (Redis), over the limit (429, cached)': {
    config: { global: { cluster: 'redis', lease: 500 }, limits: [{ name: 'g', limit: 1, window: '1d', mode: 'global' }] },
    redis: true,
    deny: true,
  },
};

const hosts = {};
for (const [name, v] of Object.entries(variants)) {
  if (v === null) {
    hosts[name] = await WasmHost.create({}, { logger: quiet });
    continue;
  }
  hosts[name] = await WasmHost.create(
    {
      clusters: { redis: { url: `redis://127.0.0.1:${port}` } },
      plugins: [{ name: 'a', url: 'a.wasm', pluginConfig: v.config, clusters: v.redis ? ['redis'] : undefined }],
    },
    { logger: quiet, modules: { 'a.wasm': v.wasm ?? quotaWasm } },
  );
}

async function oneRequest(host, deny) {
  const s = host.newStream({ method: 'GET', path: '/api/v1/items?id=7', authority: 'example.com', headers: headers.slice(), info: { sourceAddress: '10.0.0.7', sourcePort: 51234 } });
  let d = s.requestHeaders(true);
  if (d instanceof Promise) d = await d;
  if (!deny && d.action !== 'continue') throw new Error(`unexpected decision ${d.action}`);
  if (d.action === 'continue') {
    s.stream.requestHeadersSent = true;
    let r = s.responseHeaders(200, respHeaders.slice(), false);
    if (r instanceof Promise) await r;
    s.stream.responseHeadersSent = true;
  }
  s.finish();
}

const tick = () => new Promise((r) => setImmediate(r));

// CPU time per request (ns); yields to the event loop every 64 requests so lease
// answers (global mode) are delivered, the same way for every variant.
async function timeLoop(name, n) {
  const host = hosts[name];
  const deny = variants[name]?.deny === true;
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    await oneRequest(host, deny);
    if ((i & 63) === 63) await tick();
  }
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n;
}

const names = Object.keys(variants);
for (const name of names) await timeLoop(name, Math.min(REQUESTS, 5000)); // warm-up: JIT, lazy wasm compilation, first leases

const samples = Object.fromEntries(names.map((n) => [n, []]));
const leases0 = {};
const waits0 = {};
for (const n of names) {
  leases0[n] = leaseCount(hosts[n]);
  waits0[n] = waitCount(hosts[n]);
}
for (let r = 0; r < RUNS; r++) for (const name of names) samples[name].push(await timeLoop(name, REQUESTS));

function waitCount(host) {
  return host.metrics.value('quota_lease_waits_total', { limit: 'g' }) ?? 0;
}

function leaseCount(host) {
  let sum = 0;
  for (const result of ['granted', 'partial', 'exhausted', 'failed']) sum += host.metrics.value('quota_leases_total', { limit: 'g', result }) ?? 0;
  return sum;
}

const base = samples.baseline;
const check = samples['header-check'];
const rows = {};
for (const name of names) {
  const xs = samples[name];
  const added = xs.map((x, i) => x - base[i]);
  const v = variants[name];
  const waits = v?.redis ? waitCount(hosts[name]) - waits0[name] : 0;
  rows[name] = {
    perRequestNs: { median: round(median(xs)), spread: spread(xs).map((x) => round(x)) },
    addedNs: { median: round(median(added)), p90: round(percentile(added, 90)) },
    ratioToBaseline: round(median(xs) / median(base), 2),
    ratioToHeaderCheck: round(median(xs) / median(check), 2),
    ...(v?.redis
      ? { redisLeasesPerRequest: round((leaseCount(hosts[name]) - leases0[name]) / (RUNS * REQUESTS), 5), requestsThatWaitedForALease: `${waits} of ${RUNS * REQUESTS}` }
      : {}),
  };
}

const result = {
  command: `node bench/quota/quota-cost.js --runs ${RUNS} --requests ${REQUESTS}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: round(os.totalmem() / 2 ** 30, 1), node: process.version },
  adapterBytes: quotaWasm.length,
  note: 'CPU ns per request of this process (host + adapter + Redis client), medians of interleaved runs; ratios of medians; added = variant - baseline, same run.',
  variants: rows,
};
await mkdir(dirname(OUT), { recursive: true });
await writeFile(OUT, JSON.stringify(result, null, 2) + '\n');

console.log(`| variant | CPU per request (median, spread of ${RUNS} runs) | added vs baseline | × baseline | × header-check | Redis leases / request |
|---|---|---|---|---|---|`);
for (const name of names) {
  const r = rows[name];
  console.log(
    `| ${name} | ${r.perRequestNs.median} ns (${r.perRequestNs.spread.join('–')}) | ${name === 'baseline' ? '' : `${r.addedNs.median} ns`} | ×${r.ratioToBaseline} | ×${r.ratioToHeaderCheck} | ${r.redisLeasesPerRequest ?? ''} |`,
  );
}

for (const h of Object.values(hosts)) h.close();
await closeRedisClients();
redis.kill('SIGKILL');
await rm(tmp, { recursive: true, force: true });
