// Issue 2 micro benchmark: the host's cost per request for one adapter that reads a few
// headers and properties and adds a header, against the same request lifecycle with no
// adapter (the baseline, measured in the same process and interleaved). The adapter is
// measured twice: written with our AssemblyScript SDK (what adapter authors get), and
// as a minimal WAT module doing the same ABI calls with no SDK or GC (what the host
// itself costs). Also: load + compile + configure time of one adapter, and memory per VM.
//
//   node bench/core/host-overhead.js [--runs 7] [--requests 20000] [--out bench/results/core-host.json]
//
// Needs `npm run build` first (dist/ and the SDK). Prints a Markdown table.
// Times are CPU time per request (process.cpuUsage), medians of --runs interleaved runs.

import { writeFile, readFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { WasmHost } from '../../dist/host/src/index.js';
import { buildAdapter } from '../../dist/host/src/build/build-adapter.js';
import { median, percentile, spread, round } from './stats.js';
import { benchArgs } from './args.js';

const here = dirname(fileURLToPath(import.meta.url));
// --vm-memory N FILE.wasm: the child run that measures memory per VM (started below).
const { values: opt, positionals } = benchArgs({ runs: 7, requests: 20000, out: resolve(here, '../results/core-host.json'), 'vm-memory': undefined }, { positionals: true });
const { runs: RUNS, requests: REQUESTS, out: OUT } = opt;

const quiet = { level: 5, log() {} };

const built = await buildAdapter(resolve(here, '../adapters/attrs'), { outDir: resolve(here, '../.build') });
const wasm = await readFile(built.wasmPath);
const { default: wabtInit } = await import('wabt');
const wabt = await wabtInit();
const watModule = wabt.parseWat('attrs.wat', await readFile(resolve(here, '../adapters/attrs.wat'), 'utf8'));
const watWasm = new Uint8Array(watModule.toBinary({}).buffer);
watModule.destroy();

const headers = [
  ['user-agent', 'curl/8.5.0'],
  ['accept', '*/*'],
  ['x-request-id', '2b1f6f3e-5a62-4f3c-9a4e-4c1d3f1f9e11'],
  ['content-type', 'application/json'],
  ['authorization', 'Bearer abc.def.ghi'],
  ['x-forwarded-proto', 'http'],
];
const respHeaders = [['content-type', 'application/json'], ['content-length', '12']];

function oneRequest(host) {
  const s = host.newStream({ method: 'GET', path: '/api/v1/items?id=7', authority: 'example.com', headers: headers.slice(), info: { sourceAddress: '10.0.0.7', sourcePort: 51234 } });
  const d = s.requestHeaders(true);
  if (d.action !== 'continue') throw new Error('unexpected decision');
  s.stream.requestHeadersSent = true;
  s.responseHeaders(200, respHeaders.slice(), false);
  s.stream.responseHeadersSent = true;
  s.finish();
}

if (opt['vm-memory'] !== undefined) {
  const n = Number(opt['vm-memory']);
  const bytes = await readFile(positionals[0]);
  // Warm up: one host, so code and shared structures are in place before the baseline.
  (await WasmHost.create({ plugins: [{ name: 'w', url: 'a.wasm' }] }, { logger: quiet, modules: { 'a.wasm': bytes } })).close();
  globalThis.gc?.();
  globalThis.gc?.();
  const rss0 = process.memoryUsage().rss;
  const hosts = [];
  for (let i = 0; i < n; i++) {
    const h = await WasmHost.create({ plugins: [{ name: `a${i}`, url: 'a.wasm' }] }, { logger: quiet, modules: { 'a.wasm': bytes } });
    oneRequest(h);
    hosts.push(h);
  }
  globalThis.gc?.();
  globalThis.gc?.();
  const rssPerVm = (process.memoryUsage().rss - rss0) / n;
  console.log(JSON.stringify({ rssPerVm, linear: hosts[0].plugins[0].vm.memoryBytes }));
  process.exit(0);
}
// CPU time of this process (user + system), not wall time: on a shared machine other
// processes' load shows up as wall-clock stalls, not as CPU time spent here.
function timeLoop(host, n) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) oneRequest(host);
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n; // ns per request
}

const empty = await WasmHost.create({}, { logger: quiet });
const withAdapter = await WasmHost.create({ plugins: [{ name: 'attrs', url: 'attrs.wasm' }] }, { logger: quiet, modules: { 'attrs.wasm': wasm } });
const withWat = await WasmHost.create({ plugins: [{ name: 'attrs-wat', url: 'attrs-wat.wasm' }] }, { logger: quiet, modules: { 'attrs-wat.wasm': watWasm } });

// Check that each adapter really acted.
for (const h of [withAdapter, withWat]) {
  const s = h.newStream({ method: 'GET', path: '/', authority: 'x', headers: headers.slice() });
  s.requestHeaders(true);
  if (!s.stream.requestHeaders.some(([k]) => k === 'x-attrs')) throw new Error('adapter did not add its header');
  s.finish();
}

// Warm up (lazy wasm compilation, JIT).
for (const h of [empty, withAdapter, withWat]) timeLoop(h, REQUESTS);

const base = [];
const adapter = [];
const wat = [];
for (let r = 0; r < RUNS; r++) {
  // Interleave so machine noise hits every side alike.
  base.push(timeLoop(empty, REQUESTS));
  adapter.push(timeLoop(withAdapter, REQUESTS));
  wat.push(timeLoop(withWat, REQUESTS));
}
const added = adapter.map((a, i) => a - base[i]);
const addedWat = wat.map((a, i) => a - base[i]);

// Load + compile + configure, fresh bytes each time so V8 cannot reuse a compiled module.
const loadMs = [];
for (let r = 0; r < Math.max(RUNS, 10); r++) {
  const bytes = new Uint8Array(wasm.length + 12);
  bytes.set(wasm);
  // A custom section (id 0) with a unique name: same module, new bytes.
  bytes.set([0, 10, 9, ...Buffer.from(`nonce${String(r).padStart(4, '0')}`)], wasm.length);
  const t0 = performance.now();
  const h = await WasmHost.create({ plugins: [{ name: 'attrs', url: 'a.wasm' }] }, { logger: quiet, modules: { 'a.wasm': bytes } });
  loadMs.push(performance.now() - t0);
  h.close();
}

// Memory per VM: in a fresh child process (so this process's garbage does not blur it),
// N VMs of the same module are created and kept, each after one request.
const N = 200;
const memJson = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--vm-memory', String(N), built.wasmPath], { encoding: 'utf8' });
const { rssPerVm, linear } = JSON.parse(memJson);

const result = {
  command: `node --expose-gc bench/core/host-overhead.js --runs ${RUNS} --requests ${REQUESTS}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: round(os.totalmem() / 2 ** 30, 1), node: process.version },
  adapterBytes: wasm.length,
  perRequestNs: {
    baselineNoAdapter: { median: round(median(base)), spread: spread(base).map((x) => round(x)) },
    withAdapter: { median: round(median(adapter)), spread: spread(adapter).map((x) => round(x)) },
    addedByAdapter: { median: round(median(added)), p90: round(percentile(added, 90)), spread: spread(added).map((x) => round(x)) },
    ratio: round(median(adapter) / median(base), 2),
    withWatAdapter: { median: round(median(wat)), spread: spread(wat).map((x) => round(x)) },
    addedByWatAdapter: { median: round(median(addedWat)), p90: round(percentile(addedWat, 90)), spread: spread(addedWat).map((x) => round(x)) },
  },
  loadCompileConfigureMs: { median: round(median(loadMs), 3), p90: round(percentile(loadMs, 90), 3), spread: spread(loadMs).map((x) => round(x, 3)) },
  memoryPerVm: { rssKiB: round(rssPerVm / 1024, 1), linearMemoryKiB: linear / 1024, vms: N },
  targets: { addedPerRequestNs: 2000, loadMs: 10, memoryPerVmKiB: 1024 },
};
await mkdir(dirname(OUT), { recursive: true });
await writeFile(OUT, JSON.stringify(result, null, 2) + '\n');
const pr = result.perRequestNs;
console.log(`| measure | median | spread (min–max of ${RUNS} runs) | target |
|---|---|---|---|
| request lifecycle, no adapter (baseline) | ${pr.baselineNoAdapter.median} ns | ${pr.baselineNoAdapter.spread.join('–')} ns | |
| request lifecycle, one adapter | ${pr.withAdapter.median} ns | ${pr.withAdapter.spread.join('–')} ns | |
| **added by the adapter, AssemblyScript SDK** | **${pr.addedByAdapter.median} ns** (×${pr.ratio} of baseline) | ${pr.addedByAdapter.spread.join('–')} ns | ≤ 2000 ns |
| **added by the adapter, minimal WAT (host cost)** | **${pr.addedByWatAdapter.median} ns** | ${pr.addedByWatAdapter.spread.join('–')} ns | ≤ 2000 ns |
| load + compile + configure | ${result.loadCompileConfigureMs.median} ms | ${result.loadCompileConfigureMs.spread.join('–')} ms | ≤ 10 ms |
| memory per VM (RSS, ${N} VMs) | ${result.memoryPerVm.rssKiB} KiB (linear memory ${result.memoryPerVm.linearMemoryKiB} KiB) | | ≤ 1024 KiB |`);
empty.close();
withAdapter.close();
withWat.close();
