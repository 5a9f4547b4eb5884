// What isolation costs: the work-budget instrumentation (fuel metering) and the
// memory cap, measured against the same module uninstrumented, in the same run.
//
//   npm run build:host && node bench/isolation/metering.js [--runs 7] [--out bench/results/isolation.json]
//
// 1. compute: a hot wasm loop (FNV-1a over 1 KiB, looped) called from JS: worst
//    case, every iteration pays the fuel check.
// 2. adapter: the real header-check adapter (AssemblyScript SDK) on request
//    headers + log, through WasmHost: what a request pays.
// 3. compile: load time (rewrite + compile) of header-check.wasm.
// 4. budget: how long the default budget lets a runaway loop spin before the
//    trap, i.e. the worst-case stall one runaway callback causes.
// Each number is the median of --runs runs (each the median of 7 timed batches
// after warm-up); metered and plain alternate within a run.

import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../core/args.js';
import os from 'node:os';
import wabtInit from 'wabt';
import { compileModule, WasmHost } from '../../dist/host/src/index.js';
import { DEFAULT_FUEL_PER_CALLBACK } from '../../dist/host/src/plugin/plugin-vm.js';

// "compile" measures the rewrite itself: the instrumented-module cache (on by default) would
// turn every run after the first into a cache hit.
process.env.WASM_MIXER_INSTRUMENTED_CACHE = 'off';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const { values: opt } = benchArgs({ runs: 7, out: 'bench/results/isolation.json' });
const RUNS = opt.runs;
const OUT = resolve(root, opt.out);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

const wabt = await wabtInit();
const wat = (text) => {
  const m = wabt.parseWat('b.wat', text, { mutable_globals: true });
  m.resolveNames();
  m.validate();
  const b = m.toBinary({}).buffer.slice();
  m.destroy();
  return b;
};

// 1. compute
const COMPUTE = wat(`(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 2048))
  (func $fnv (param $p i32) (param $n i32) (result i32) (local $h i32)
    (local.set $h (i32.const 0x811c9dc5))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $h (i32.mul (i32.xor (local.get $h) (i32.load8_u (local.get $p))) (i32.const 0x01000193)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $h))
  (func (export "work") (param $reps i32) (result i32) (local $acc i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $reps)))
      (local.set $acc (i32.add (local.get $acc) (call $fnv (i32.const 0) (i32.const 1024))))
      (local.set $reps (i32.sub (local.get $reps) (i32.const 1)))
      (br $next)))
    (local.get $acc)))`);

function instance(bytes, metering) {
  const c = compileModule(bytes, 'bench', undefined, { metering, maxMemoryMb: metering ? 128 : 0 });
  const inst = new WebAssembly.Instance(c.module, {});
  const fuel = inst.exports.__wasm_mixer_fuel;
  return { work: inst.exports.work, fuel };
}

function timeBatch(fn, iters) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) fn();
  return Number(process.hrtime.bigint() - t0) / iters;
}

function computeRun() {
  const plain = instance(COMPUTE, false);
  const metered = instance(COMPUTE, true);
  const p = () => plain.work(10);
  const m = () => {
    metered.fuel.value = 2_000_000_000;
    metered.work(10);
  };
  for (let i = 0; i < 2000; i++) (p(), m());
  const ps = [];
  const ms = [];
  for (let b = 0; b < 7; b++) {
    ps.push(timeBatch(p, 2000));
    ms.push(timeBatch(m, 2000));
  }
  return { plainNs: median(ps), meteredNs: median(ms) };
}

// 2. adapter
const HC = await readFile(resolve(root, 'wasm/header-check.wasm'));
async function hostFor(metering) {
  return WasmHost.create(
    { logLevel: 'error', plugins: [{ name: 'hc', url: 'hc.wasm', pluginConfig: { header: 'x-user' }, limits: { metering, maxMemoryMb: metering ? 128 : 0 } }] },
    { modules: { 'hc.wasm': new Uint8Array(HC) } },
  );
}
function oneRequest(host) {
  const s = host.newStream({ method: 'GET', path: '/api/x', authority: 'example.com', headers: [['x-user', 'ann'], ['accept', '*/*'], ['user-agent', 'bench']] });
  s.requestHeaders(true);
  s.responseHeaders(200, [['content-type', 'application/json']], true);
  s.finish();
}
async function adapterRun() {
  const plain = await hostFor(false);
  const metered = await hostFor(true);
  for (let i = 0; i < 3000; i++) (oneRequest(plain), oneRequest(metered));
  const ps = [];
  const ms = [];
  for (let b = 0; b < 7; b++) {
    ps.push(timeBatch(() => oneRequest(plain), 3000));
    ms.push(timeBatch(() => oneRequest(metered), 3000));
  }
  await plain.close();
  await metered.close();
  return { plainNs: median(ps), meteredNs: median(ms) };
}

// 3. compile
function compileRun() {
  const ps = [];
  const ms = [];
  for (let b = 0; b < 7; b++) {
    // unique bytes each time (a custom section) so V8's module cache cannot help
    const tag = new Uint8Array([0, 7, 5, 0x62, 0x65, 0x6e, 0x63, 0x68, b + Math.floor(Math.random() * 200)]);
    const bytes = new Uint8Array(HC.length + tag.length);
    bytes.set(HC);
    bytes.set(tag, HC.length);
    let t0 = performance.now();
    compileModule(bytes, 'hc', undefined, { metering: false, maxMemoryMb: 0 });
    ps.push(performance.now() - t0);
    t0 = performance.now();
    compileModule(bytes, 'hc', undefined, {});
    ms.push(performance.now() - t0);
  }
  return { plainMs: median(ps), meteredMs: median(ms) };
}

// 4. budget
const SPIN = wat(`(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 0))
  (func (export "work") (param i32) (result i32) (loop $l (br $l)) (i32.const 0)))`);
function budgetRun() {
  const { work, fuel } = instance(SPIN, true);
  const t0 = performance.now();
  fuel.value = DEFAULT_FUEL_PER_CALLBACK;
  try {
    work(0);
  } catch {
    // the budget trap
  }
  const spinMs = performance.now() - t0;
  // units per ms on the dense compute loop, for the docs
  const m = instance(COMPUTE, true);
  m.fuel.value = 2_000_000_000;
  const t1 = performance.now();
  m.work(2000);
  const ms = performance.now() - t1;
  const used = 2_000_000_000 - m.fuel.value;
  return { spinMs, computeUnitsPerMs: used / ms, computeBudgetMs: DEFAULT_FUEL_PER_CALLBACK / (used / ms) };
}

const runs = [];
for (let r = 0; r < RUNS; r++) {
  runs.push({ compute: computeRun(), adapter: await adapterRun(), compile: compileRun(), budget: budgetRun() });
  process.stderr.write(`run ${r + 1}/${RUNS}\n`);
}
const med = (f) => median(runs.map(f));
const result = {
  command: `node bench/isolation/metering.js --runs ${RUNS}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  runs: RUNS,
  compute: {
    what: 'hot wasm loop (FNV-1a over 1 KiB x 10 per call); every loop iteration pays the fuel check (worst case)',
    plainNsPerCall: round(med((r) => r.compute.plainNs)),
    meteredNsPerCall: round(med((r) => r.compute.meteredNs)),
    ratio: round(med((r) => r.compute.meteredNs / r.compute.plainNs), 3),
  },
  adapter: {
    what: 'header-check adapter (AssemblyScript SDK): request headers + response headers + log, in-process WasmHost, per request',
    plainNsPerRequest: round(med((r) => r.adapter.plainNs)),
    meteredNsPerRequest: round(med((r) => r.adapter.meteredNs)),
    ratio: round(med((r) => r.adapter.meteredNs / r.adapter.plainNs), 3),
  },
  compile: {
    what: 'compileModule(header-check.wasm): validate + compile, and with metering + memory cap: + rewrite + compile again',
    plainMs: round(med((r) => r.compile.plainMs), 3),
    meteredMs: round(med((r) => r.compile.meteredMs), 3),
    ratio: round(med((r) => r.compile.meteredMs / r.compile.plainMs), 3),
  },
  budget: {
    what: `default budget (${DEFAULT_FUEL_PER_CALLBACK} units per callback): how long a runaway callback can stall the event loop`,
    emptyLoopMs: round(med((r) => r.budget.spinMs), 1),
    denseLoopMs: round(med((r) => r.budget.computeBudgetMs), 1),
    denseLoopUnitsPerMs: Math.round(med((r) => r.budget.computeUnitsPerMs)),
  },
  raw: runs,
};
await mkdir(dirname(OUT), { recursive: true });
await writeFile(OUT, JSON.stringify(result, null, 2) + '\n');
const { raw: _raw, ...summary } = result;
console.log(JSON.stringify(summary, null, 2));
