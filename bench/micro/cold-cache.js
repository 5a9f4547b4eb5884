// Why an adapter costs more inside the proxy than in bench/micro/adapters.js: there, request
// follows request through the same few functions and data, so the CPU caches stay warm;
// in the proxy each request runs between the HTTP server, the upstream client and the
// kernel, which evict the adapters' code and data. This runs the same request as
// adapters.js (API key; through WasmHost) two ways, interleaved:
//
//   warm   requests back to back (adapters.js's situation)
//   cold   between requests the process reads --mb MiB of other memory (one load per
//          64-byte line), as the proxy's own work would
//
// Each request is timed on its own (hrtime around it: the reading is not in the figure; the
// access log's file writes, on the thread pool, are not either), so the figures are time on
// the CPU only on an otherwise idle machine: run it quiet. The median of --rounds slices of
// --requests requests, for each variant and way.
//
// for the no-adapter host, each adapter alone and the chain of four, and reports each
// variant's medians over --rounds and the cold ÷ warm ratio. At saturation the proxy spends
// about 2.5 times the warm figure on the four (bench/e2e/perf-layers.js); the cold figure
// is the micro-tier stand-in for that, for trying a change without wrk.
//
//   node bench/micro/cold-cache.js [--mb 1] [--rounds 7] [--requests 4000] [--only v1,v2] [--json] [--out FILE]
//
// Needs `npm run build`.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WasmHost } from '../../dist/host/src/index.js';
import { validateConfig } from '../../dist/host/src/config/load.js';
import { benchConfig, chainPlugins, makeCredentials } from '../e2e/configs.js';
import { benchArgs } from '../core/args.js';
import { median, round } from '../core/stats.js';
import { driveRequest } from './request.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values: opt } = benchArgs({ mb: 1, rounds: 7, requests: 4000, only: undefined, json: false, out: undefined, help: false });
if (opt.help) {
  process.stdout.write('node bench/micro/cold-cache.js [--mb 1] [--rounds 7] [--requests 4000] [--only v1,v2] [--json] [--out FILE]\n');
  process.exit(0);
}

const tmp = await mkdtemp(join(os.tmpdir(), 'wm-bench-cold-'));
const creds = await makeCredentials();
const wasmDir = resolve(root, 'wasm');
const quiet = { level: 5, log() {} };
const all = chainPlugins(4, creds, wasmDir);

async function host(plugins) {
  const c = benchConfig({ mode: 'inproc', n: 4, creds, wasmDir, upstreamPort: 9, logDir: tmp });
  c.plugins = plugins.map((p) => structuredClone(p));
  return WasmHost.create(validateConfig(c, 'bench cold-cache'), { logger: quiet, baseDir: tmp });
}
const variants = { none: await host([]) };
for (const p of all) variants[p.name] = await host([p]);
variants.chain4 = await host(all);
const names = Object.keys(variants).filter((n) => !opt.only || n === 'none' || opt.only.split(',').includes(n));

// The "other work": one load per cache line of a buffer larger than the L2 caches of the
// machines this runs on, so what a request touched is mostly gone when the next one starts.
const other = new Int32Array(opt.mb * 262144);
let sink = 0;
function evict() {
  for (let i = 0; i < other.length; i += 16) sink += other[i]++;
}

const credential = ['x-api-key', creds.apiKey];
const SETTLE_MS = 150; // the access log's file writes happen between slices, not inside the next one
const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS));
/** µs per request of `h` over n requests, each timed on its own; `cold`: evict() between them. */
async function measure(h, n, cold) {
  await settle();
  let ns = 0n;
  for (let i = 0; i < n; i++) {
    if (cold) evict();
    const t0 = process.hrtime.bigint();
    if (driveRequest(h, credential.slice(), i % 16) !== 'continue') throw new Error('request denied: the bench config is broken');
    ns += process.hrtime.bigint() - t0;
    if ((i & 63) === 63) await new Promise(setImmediate);
  }
  return Number(ns) / 1000 / n;
}

const progress = (s) => process.stderr.write(`  cold-cache: ${s}\n`);
for (const n of names) await measure(variants[n], 3000, false); // warm-up: JIT tiers
const warm = Object.fromEntries(names.map((n) => [n, []]));
const cold = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < opt.rounds; r++) {
  progress(`round ${r + 1}/${opt.rounds}`);
  for (const n of r % 2 ? [...names].reverse() : names) {
    warm[n].push(await measure(variants[n], opt.requests, false));
    cold[n].push(await measure(variants[n], opt.requests, true));
  }
}
const rows = names.map((n) => {
  const w = median(warm[n]);
  const c = median(cold[n]);
  return { variant: n, warmUsPerRequest: round(w, 2), coldUsPerRequest: round(c, 2), coldOverWarm: round(c / w, 2), coldMinusWarmUs: round(c - w, 2) };
});
for (const h of Object.values(variants)) await h.close();
await rm(tmp, { recursive: true, force: true });

const result = {
  command: `node bench/micro/cold-cache.js ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, node: process.version, loadAvgAtEnd: os.loadavg().map((x) => round(x, 2)) },
  evictedMiB: opt.mb,
  rounds: opt.rounds,
  requestsPerSlice: opt.requests,
  rows,
};
if (opt.out) await writeFile(opt.out, JSON.stringify(result, null, 1) + '\n');
if (opt.json) process.stdout.write(JSON.stringify(result) + '\n');
else {
  process.stdout.write(`| variant | warm µs/request | cold µs/request (${opt.mb} MiB read between requests) | cold − warm | cold ÷ warm |\n|---|---|---|---|---|\n`);
  for (const r of rows) process.stdout.write(`| ${r.variant} | ${r.warmUsPerRequest} | ${r.coldUsPerRequest} | ${r.coldMinusWarmUs >= 0 ? '+' : ''}${r.coldMinusWarmUs} | ×${r.coldOverWarm} |\n`);
}
if (sink === 0.5) process.stdout.write(''); // keeps the reads observable
