// Where the proxy's CPU goes at saturation, by layer, from CPU-time samples (Linux perf),
// for the proxy with no adapters and with the four in process, side by side:
//
//   node bench/e2e/perf-layers.js [--variants none,inproc] [--reps 3] [--seconds 5]
//        [--connections 64] [--warmup 3] [--frequency 4000] [--json] [--out FILE]
//
// Why not node --cpu-prof: V8's sampler records where the main thread is on a wall clock, so
// on 2 shared cores a proxy descheduled inside writev() reads as 60-90 µs of "writev" per
// request, and every layer is inflated by how busy wrk and the upstream keep the other core.
// `perf record -e cpu-clock` samples only while the proxy's threads run, kernel included, and
// node --perf-basic-prof names its JIT code (JS functions, wasm functions, the wasm<->JS stubs).
// Each sample is counted once, by the layer of the code it landed in (self time):
//   wasm (adapters) · wasm<->JS stubs · host JS (dist/host) · node JS (node:*) · V8 builtins ·
//   GC (V8's heap: scavenges, marking, sweeping) · compilers (TurboFan, Liftoff, parser) ·
//   V8 runtime (the rest of V8's C++) · node C++ · libuv · libc · kernel · other
// µs per request = samples x (1 / frequency) / requests, medians over --reps runs of each
// variant (rotated order). The proxy's thread-pool threads (the access-log writes) count too.
//
// Needs `npm run build`, wrk and perf (Debian: linux-perf; not installed by system-deps:
// this is a diagnosis tool, not part of `npm run bench`). Run it on a quiet machine.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../core/args.js';
import { median, round } from '../core/stats.js';
import { benchConfig, makeCredentials, requestKinds } from './configs.js';
import { startRole, stopAll } from './procs.js';
import { runWrk, writeScript } from './wrk.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: opt } = benchArgs({ variants: 'none,inproc', reps: 3, seconds: 5, connections: 64, warmup: 3, frequency: 4000, json: false, out: undefined, help: false });
if (opt.help) {
  process.stdout.write('node bench/e2e/perf-layers.js [--variants none,inproc] [--reps 3] [--seconds 5] [--connections 64] [--warmup 3] [--frequency 4000] [--json] [--out FILE]\n');
  process.exit(0);
}
try {
  execFileSync('perf', ['--version'], { stdio: 'ignore' });
} catch {
  process.stderr.write('perf-layers: needs Linux perf (Debian: apt-get install linux-perf)\n');
  process.exit(2);
}

export const LAYERS = ['wasm (adapters)', 'wasm<->JS stubs', 'host JS', 'node JS', 'V8 builtins', 'GC', 'compilers', 'V8 runtime (C++)', 'node C++', 'libuv', 'libc', 'kernel', 'other'];

/** The layer of one sample, from perf's dso and symbol. */
export function layerOf(dso, sym) {
  if (dso.includes('kernel')) return 'kernel';
  if (/^libc[.-]/.test(dso)) return 'libc';
  if (/^perf-\d+\.map$/.test(dso) || dso.startsWith('[JIT]')) {
    if (/wasm-function\[/.test(sym)) return 'wasm (adapters)';
    if (/wasm-to-js|js-to-wasm/.test(sym)) return 'wasm<->JS stubs';
    if (sym.includes('/dist/host/')) return 'host JS';
    if (/ node:/.test(sym)) return 'node JS';
    return 'other';
  }
  if (dso === 'node') {
    if (sym.startsWith('Builtins_')) return 'V8 builtins';
    if (/^uv_|^uv__/.test(sym)) return 'libuv';
    if (/Scaveng|MarkCompact|Marking|Sweep|Evacuat|Heap::|HeapObject|GCTracer|MemoryAllocator|ArrayBufferSweeper|BackingStore/.test(sym)) return 'GC';
    if (/compiler::|Liftoff|Turbofan|TurboFan|Maglev|wasm::.*Compil|Parser|Compiler|Zone::/.test(sym)) return 'compilers';
    if (/v8::/.test(sym)) return 'V8 runtime (C++)';
    return 'node C++';
  }
  return 'other';
}

/** Samples per layer in a perf.data file. */
function layersOf(file) {
  const out = execFileSync('perf', ['report', '-i', file, '--stdio', '--no-children', '--sort', 'dso,sym', '-n', '--percent-limit', '0'], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20, stdio: ['ignore', 'pipe', 'ignore'] });
  const n = Object.fromEntries(LAYERS.map((l) => [l, 0]));
  for (const line of out.split('\n')) {
    // "  12.34%   567  dso  [.] symbol"; a JIT dso reads "[JIT] tid 123" or "perf-123.map"
    const m = /^\s*[\d.]+%\s+(\d+)\s+(\[JIT\] tid \d+|\S+)\s+\[[.k]\]\s+(.*)$/.exec(line);
    if (m) n[layerOf(m[2].split('/').at(-1), m[3])] += Number(m[1]);
  }
  return n;
}

// A variant may carry node flags for its proxy after '@', as in saturation.js: inproc@--wasm-tiering-budget=1800000
const variants = opt.variants.split(',');
for (const v of variants) if (!/^(none|inproc)(@|$)/.test(v)) throw new Error(`unknown variant ${v}: none or inproc, optionally @node-flags`);
const tmp = await mkdtemp(join(os.tmpdir(), 'wm-perf-layers-'));
const creds = await makeCredentials();
const script = writeScript(join(tmp, 'post.lua'), requestKinds(creds));
const upstream = await startRole('upstream', [], { logFile: join(tmp, 'upstream.log') });
const targets = [];
for (const [i, id] of variants.entries()) {
  const [mode, ...flags] = id.split('@');
  const f = join(tmp, `proxy-${i}.json`);
  await writeFile(f, JSON.stringify(benchConfig({ mode, n: 4, creds, wasmDir: join(root, 'wasm'), upstreamPort: upstream.port, logDir: tmp })));
  const proxy = await startRole('proxy', [f], { nodeArgs: ['--perf-basic-prof', ...flags], logFile: join(tmp, `proxy-${i}.log`) });
  targets.push({ mode: id, proxy, runs: [] });
}

const progress = (s) => process.stderr.write(`${s}\n`);
for (const t of targets) {
  progress(`warm-up ${t.mode}`);
  await runWrk({ port: t.proxy.port, connections: opt.connections, seconds: opt.warmup, script });
}
for (let r = 0; r < opt.reps; r++) {
  for (const t of r % 2 ? [...targets].reverse() : targets) {
    const data = join(tmp, `${targets.indexOf(t)}-${r}.data`);
    const perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', String(opt.frequency), '-p', String(t.proxy.pid), '-o', data, '--', 'sleep', String(opt.seconds)], { stdio: 'ignore' });
    const exited = new Promise((res) => perf.on('exit', res));
    const w = await runWrk({ port: t.proxy.port, connections: opt.connections, seconds: opt.seconds, script });
    await exited;
    const usPer = 1e6 / opt.frequency / w.requests;
    const samples = layersOf(data);
    const layers = Object.fromEntries(LAYERS.map((l) => [l, round(samples[l] * usPer, 2)]));
    const total = round(Object.values(samples).reduce((a, b) => a + b, 0) * usPer, 1);
    t.runs.push({ rps: w.rps, requests: w.requests, totalUsPerRequest: total, layers });
    progress(`rep ${r + 1} ${t.mode}: ${w.rps} req/s, ${total} µs/request sampled`);
  }
}
await stopAll();
await rm(tmp, { recursive: true, force: true });
// node --perf-basic-prof's symbol maps
for (const t of targets) await rm(`/tmp/perf-${t.proxy.pid}.map`, { force: true });

const summary = {};
for (const t of targets) {
  summary[t.mode] = {
    rps: median(t.runs.map((x) => x.rps)),
    totalUsPerRequest: median(t.runs.map((x) => x.totalUsPerRequest)),
    layers: Object.fromEntries(LAYERS.map((l) => [l, round(median(t.runs.map((x) => x.layers[l])), 2)])),
  };
}
const result = {
  command: `node bench/e2e/perf-layers.js --variants ${opt.variants} --reps ${opt.reps} --seconds ${opt.seconds} --connections ${opt.connections} --warmup ${opt.warmup} --frequency ${opt.frequency}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, node: process.version, loadAvgAtEnd: os.loadavg().map((x) => round(x, 2)) },
  summary,
  runs: Object.fromEntries(targets.map((t) => [t.mode, t.runs])),
};
if (opt.out) await writeFile(opt.out, JSON.stringify(result, null, 2) + '\n');
if (opt.json) process.stdout.write(JSON.stringify(result) + '\n');
else {
  const cols = variants;
  const diff = cols.length === 2 ? ` | ${cols[1]} − ${cols[0]}` : '';
  process.stdout.write(`\nCPU µs per request at saturation by layer (perf cpu-clock samples, medians of ${opt.reps})\n\n| layer | ${cols.join(' | ')}${diff} |\n|---|${cols.map(() => '---').join('|')}${diff ? '|---' : ''}|\n`);
  for (const l of [...LAYERS, 'total']) {
    const v = cols.map((c) => (l === 'total' ? summary[c].totalUsPerRequest : summary[c].layers[l]));
    process.stdout.write(`| ${l} | ${v.join(' | ')}${diff ? ` | ${round(v[1] - v[0], 2)}` : ''} |\n`);
  }
  process.stdout.write(`| req/s | ${cols.map((c) => summary[c].rps).join(' | ')}${diff ? ' | ' : ''}|\n`);
}
process.exit(0);
