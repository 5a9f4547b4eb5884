// Issue 5 benchmark (not a test): what the telemetry adapters cost per request.
//
//   node --expose-gc bench/telemetry/telemetry-cost.js [--runs 7] [--requests 20000] [--proxy-seconds 5] [--no-proxy]
//
// Needs `npm run build` (dist/) and, for the proxy part, wrk (`npm run system-deps`).
// Writes bench/results/telemetry.json and prints Markdown tables.
//
// 1. In-process, CPU time per request (process.cpuUsage) through the host's request
//    lifecycle (request headers, response headers, log phase), medians of --runs
//    interleaved runs, each configuration as a ratio against the baseline measured in the
//    same run: a host with no adapter. Also an SDK adapter that does nothing, so the
//    adapters' own work can be told apart from the SDK's per-callback cost. Access-log
//    entries go to a sink that keeps nothing (the sink's I/O is measured separately).
// 2. The host's own pieces: the per-callback timing hook in PluginVm.guard, a registry
//    histogram observation vs an OpenTelemetry histogram.record, and sink write rates.
// 3. Through the real proxy on loopback with wrk: throughput and latency with each adapter
//    against the proxy with no adapter, interleaved rounds, medians.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { WasmHost, MetricsRegistry } from '../../dist/host/src/index.js';
import { buildAdapter } from '../../dist/host/src/build/build-adapter.js';
import { AccessLogRouter } from '../../dist/host/src/log/access-log.js';
import { FileSink, StreamSink } from '../../dist/host/src/log/line-sinks.js';
import { median, percentile, round, spread } from '../core/stats.js';
import { benchArgs } from '../core/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: opt } = benchArgs({ runs: 7, requests: 20000, 'proxy-seconds': 5, 'no-proxy': false, out: resolve(root, 'bench/results/telemetry.json') });
const { runs: RUNS, requests: REQUESTS, 'proxy-seconds': PROXY_SECONDS, out: OUT } = opt;
const PROXY = !opt['no-proxy'];

const quiet = { level: 5, log() {} };
const build = resolve(root, 'bench/.build');
const loggingWasm = (await buildAdapter(resolve(root, 'adapters/logging'), { outDir: build })).wasmPath;
const prometheusWasm = (await buildAdapter(resolve(root, 'adapters/prometheus'), { outDir: build })).wasmPath;
// An SDK adapter with no work at all: the SDK's own cost per request.
const noopDir = await mkdtemp(join(os.tmpdir(), 'wm-noop-'));
await mkdir(join(noopDir, 'assembly'), { recursive: true });
await writeFile(join(noopDir, 'assembly', 'index.ts'), 'import { Adapter, register } from "wasm-mixer/sdk";\nexport * from "wasm-mixer/sdk/exports";\nclass Noop extends Adapter {}\nregister<Noop>();\n');
const noopWasm = (await buildAdapter(noopDir, { outDir: build })).wasmPath;
await rm(noopDir, { recursive: true, force: true });

/** Accepts and forgets entries; counts them so the benchmark can check the adapter wrote. */
class NullSink {
  name = 'null';
  buffered = 0;
  count = 0;
  write() {
    this.count++;
    return true;
  }
  flush() {
    return Promise.resolve();
  }
  close() {
    return Promise.resolve();
  }
}

const headers = [
  ['user-agent', 'curl/8.5.0'],
  ['accept', '*/*'],
  ['x-request-id', '2b1f6f3e-5a62-4f3c-9a4e-4c1d3f1f9e11'],
  ['content-type', 'application/json'],
  ['authorization', 'Bearer abc.def.ghi'],
  ['x-forwarded-for', '10.1.2.3'],
];
const respHeaders = [['content-type', 'application/json'], ['content-length', '12']];

function oneRequest(host) {
  const s = host.newStream({
    method: 'GET', path: '/api/v1/items?id=7&api_key=k', authority: 'example.com', headers: headers.slice(), route: 'backend',
    info: { sourceAddress: '10.0.0.7', sourcePort: 51234, clusterName: 'backend', upstreamAddress: '10.0.0.9:8080', routeName: 'backend' },
  });
  const d = s.requestHeaders(true);
  if (d.action !== 'continue') throw new Error('unexpected decision');
  s.stream.requestHeadersSent = true;
  s.responseHeaders(200, respHeaders.slice(), false);
  s.stream.responseHeadersSent = true;
  s.stream.info.responseBytes = 12;
  s.finish();
}

function timeLoop(host, n) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) oneRequest(host);
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n; // ns per request
}

const sinks = {};
async function hostWith(name, plugins) {
  const sink = new NullSink();
  sinks[name] = sink;
  return WasmHost.create({ plugins }, { logger: quiet, accessLogSinks: [sink] });
}
const L = (cfg) => ({ name: 'access', url: 'logging.wasm', phase: 'STATS', pluginConfig: cfg });
const P = (cfg) => ({ name: 'istio', url: 'prometheus.wasm', phase: 'STATS', pluginConfig: cfg });
const modules = { 'logging.wasm': loggingWasm, 'prometheus.wasm': prometheusWasm, 'noop.wasm': noopWasm };
const resolveModules = (plugins) => plugins.map((p) => ({ ...p, url: modules[p.url] }));

const configs = {
  baseline: [],
  'SDK adapter doing nothing': [{ name: 'noop', url: 'noop.wasm' }],
  'logging, JSON (default)': [L({})],
  'logging, Envoy text format': [L({ format: 'text' })],
  'logging, sample_ratio 0.01 (sampled out)': [L({ sample_ratio: 0.01 })],
  'prometheus, istio preset': [P({})],
  'prometheus + 2 tag overrides': [P({ overrides: [{ tagOverrides: { request_host: { value: 'request.host' }, tenant: { value: "request.headers['x-tenant']" } } }] })],
  'logging + prometheus': [L({}), P({})],
};
const hosts = {};
for (const [name, plugins] of Object.entries(configs)) hosts[name] = await hostWith(name, resolveModules(plugins));

// Check that each adapter really acted.
for (const h of Object.values(hosts)) oneRequest(h);
if (sinks['logging, JSON (default)'].count !== 1) throw new Error('the logging adapter wrote nothing');
if (hosts['prometheus, istio preset'].metrics.familyNames().indexOf('istio_requests_total') < 0) throw new Error('the prometheus adapter recorded nothing');

for (const h of Object.values(hosts)) timeLoop(h, REQUESTS); // warm up
const samples = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
for (let r = 0; r < RUNS; r++) for (const [name, h] of Object.entries(hosts)) samples[name].push(timeLoop(h, REQUESTS));
const base = samples.baseline;
const inProcess = {};
for (const [name, xs] of Object.entries(samples)) {
  const added = xs.map((x, i) => x - base[i]);
  inProcess[name] = {
    medianNs: round(median(xs)),
    spreadNs: spread(xs).map((x) => round(x)),
    addedNs: round(median(added)),
    addedP90Ns: round(percentile(added, 90)),
    ratio: round(median(xs.map((x, i) => x / base[i])), 2),
  };
}

// --- 2. the host's pieces ----------------------------------------------------------------
// The timing hook: an SDK adapter that does nothing (so the hook is a visible share of the
// request), with and without PluginVm's onGuestCall, interleaved.
const hooked = hosts['SDK adapter doing nothing'];
const unhooked = await hostWith('noop, no timing hook', resolveModules([{ name: 'noop', url: 'noop.wasm' }]));
// The hook is read once, when the VM is made: drop it from the VM itself.
for (const p of unhooked.plugins) p.vm.observerFor = undefined;
timeLoop(unhooked, REQUESTS);
const hookSamples = [];
for (let r = 0; r < RUNS * 3; r++) {
  const a = timeLoop(hooked, REQUESTS);
  const b = timeLoop(unhooked, REQUESTS);
  hookSamples.push(a - b);
}
const callbacksPerRequest = 6; // context_create, request_headers, response_headers, done, log, delete
const hook = { perRequestNs: round(median(hookSamples)), perCallbackNs: round(median(hookSamples) / callbacksPerRequest), spreadNs: spread(hookSamples).map((x) => round(x)), callbacksPerRequest };

// A registry observation (what proxy_record_metric does) vs OpenTelemetry's histogram.record.
const reg = new MetricsRegistry();
const obs = reg.histogram('bench_seconds', 'x', { a: 'b' }, { buckets: [0.001, 0.01, 0.1, 1] });
const { MeterProvider } = await import('@opentelemetry/sdk-metrics');
const otelHist = new MeterProvider().getMeter('bench').createHistogram('bench', { advice: { explicitBucketBoundaries: [0.001, 0.01, 0.1, 1] } });
const otelAttrs = { a: 'b' };
const N = 2_000_000;
const opNs = (f) => {
  const xs = [];
  for (let r = 0; r < RUNS; r++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) f(i);
    const c = process.cpuUsage(c0);
    xs.push(((c.user + c.system) * 1000) / N);
  }
  return round(median(xs), 1);
};
opNs((i) => obs((i & 1023) / 1e4));
const registryNs = opNs((i) => obs((i & 1023) / 1e4));
opNs((i) => otelHist.record((i & 1023) / 1e4, otelAttrs));
const otelNs = opNs((i) => otelHist.record((i & 1023) / 1e4, otelAttrs));

// Sinks: entries per second handed to stdout-like and file destinations (async, measured in wall time).
const line = Buffer.from(JSON.stringify({ start_time: '2026-11-25T00:54:40.252Z', level: 'info', method: 'GET', path: '/api/v1/items?id=7', response_code: 200, duration: 3, request_id: '2b1f6f3e-5a62-4f3c-9a4e-4c1d3f1f9e11', upstream_host: '10.0.0.9:8080' }));
const entry = { adapter: 'a', logName: 'access', level: 2, format: 'json', timeNs: 0n, line };
async function sinkRate(make) {
  const metrics = new MetricsRegistry();
  const router = new AccessLogRouter(metrics, quiet);
  const sink = make(router);
  router.add(sink);
  const total = 200_000;
  const t0 = performance.now();
  let accepted = 0;
  for (let i = 0; i < total; i++) {
    if (router.write(entry)) accepted++;
    if ((i & 1023) === 1023) await new Promise((r) => setImmediate(r)); // let the event loop run, as between requests
  }
  await router.flush();
  const ms = performance.now() - t0;
  await router.close();
  return { entriesPerSecond: Math.round((accepted / ms) * 1000), dropped: total - accepted };
}
const dir = await mkdtemp(join(os.tmpdir(), 'wm-bench-'));
const sinkRates = {
  'stream sink → /dev/null-like Writable': await sinkRate((r) => new StreamSink('s', new Writable({ write(_c, _e, cb) { cb(); } }), r.statsFor('s'))),
  'file sink (100 MiB rotation)': await sinkRate((r) => new FileSink('f', { path: join(dir, 'access.log') }, r.statsFor('f'))),
};
await rm(dir, { recursive: true, force: true });

for (const h of [...Object.values(hosts), unhooked]) await h.close();

// --- 3. through the proxy with wrk ---------------------------------------------------------
let proxyResults = null;
if (PROXY) {
  const run = (cmd, args) => new Promise((res, rej) => {
    const c = spawn(cmd, args);
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${cmd} exited ${code}: ${out}`))));
  });
  const start = (args) => new Promise((res, rej) => {
    const c = spawn(process.execPath, [resolve(here, 'servers.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    c.stdout.on('data', (d) => {
      const m = /ready (\d+)/.exec(String(d));
      if (m) res({ port: Number(m[1]), proc: c });
    });
    c.on('exit', (code) => rej(new Error(`server exited ${code}`)));
  });
  const upstream = await start(['upstream', '0']);
  const targets = {
    'proxy, no adapter': await start(['proxy', '0', String(upstream.port), '[]']),
    'proxy + logging (file sink)': await start(['proxy', '0', String(upstream.port), JSON.stringify([L({})].map((p) => ({ ...p, url: loggingWasm })))]),
    'proxy + prometheus': await start(['proxy', '0', String(upstream.port), JSON.stringify([P({})].map((p) => ({ ...p, url: prometheusWasm })))]),
    'proxy + logging + prometheus': await start(['proxy', '0', String(upstream.port), JSON.stringify([L({}), P({})].map((p) => ({ ...p, url: p.name === 'access' ? loggingWasm : prometheusWasm })))]),
  };
  const wrk = async (port) => {
    const out = await run('wrk', ['-t1', '-c10', `-d${PROXY_SECONDS}s`, '--latency', `http://127.0.0.1:${port}/`]);
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const lat = (p) => {
      const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
      if (!m) return NaN;
      const v = Number(m[1]);
      return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
    };
    return { rps, p50: lat(50), p99: lat(99) };
  };
  for (const t of Object.values(targets)) await run('wrk', ['-t1', '-c10', '-d1s', `http://127.0.0.1:${t.port}/`]); // warm up
  const rounds = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
  const proxyRuns = Math.max(3, Math.min(RUNS, 5));
  for (let r = 0; r < proxyRuns; r++) for (const [name, t] of Object.entries(targets)) rounds[name].push(await wrk(t.port));
  const b = rounds['proxy, no adapter'];
  proxyResults = { runs: proxyRuns, seconds: PROXY_SECONDS, connections: 10 };
  for (const [name, xs] of Object.entries(rounds)) {
    proxyResults[name] = {
      rps: round(median(xs.map((x) => x.rps)), 0),
      rpsRatio: round(median(xs.map((x, i) => x.rps / b[i].rps)), 3),
      p50ms: round(median(xs.map((x) => x.p50)), 3),
      p99ms: round(median(xs.map((x) => x.p99)), 3),
    };
  }
  for (const t of [...Object.values(targets), upstream]) t.proc.kill('SIGTERM');
}

const result = {
  command: `node --expose-gc bench/telemetry/telemetry-cost.js --runs ${RUNS} --requests ${REQUESTS} --proxy-seconds ${PROXY_SECONDS}${PROXY ? '' : ' --no-proxy'}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: round(os.totalmem() / 2 ** 30, 1), node: process.version, loadavg: os.loadavg().map((x) => round(x, 2)) },
  note: 'In-process: CPU ns per request through the host lifecycle, medians of interleaved runs; ratio = median of per-run ratios to the no-adapter baseline of the same run. Proxy: wrk -t1 -c10 on loopback, the proxy, upstream and wrk share the machine.',
  inProcess,
  timingHook: hook,
  histogramObserveNs: { registry: registryNs, openTelemetry: otelNs },
  sinks: sinkRates,
  proxy: proxyResults,
};
await mkdir(dirname(OUT), { recursive: true });
await writeFile(OUT, JSON.stringify(result, null, 2) + '\n');

console.log(`In-process, CPU per request (${RUNS} runs × ${REQUESTS} requests):\n`);
console.log('| configuration | ns/request | added vs baseline | ratio |\n|---|---|---|---|');
for (const [name, r] of Object.entries(inProcess)) console.log(`| ${name} | ${r.medianNs} | ${name === 'baseline' ? '' : `${r.addedNs} ns`} | ×${r.ratio} |`);
console.log(`\nTiming hook: ${hook.perRequestNs} ns per request, ${hook.perCallbackNs} ns per guest callback.`);
console.log(`Histogram observation: registry ${registryNs} ns, OpenTelemetry histogram.record ${otelNs} ns.`);
for (const [name, s] of Object.entries(sinkRates)) console.log(`Sink ${name}: ${s.entriesPerSecond} entries/s (${s.dropped} dropped)`);
if (proxyResults) {
  console.log(`\nThrough the proxy (wrk -t1 -c10, ${PROXY_SECONDS} s × ${proxyResults.runs} interleaved rounds):\n`);
  console.log('| target | req/s | ratio | p50 ms | p99 ms |\n|---|---|---|---|---|');
  for (const [name, r] of Object.entries(proxyResults)) if (typeof r === 'object') console.log(`| ${name} | ${r.rps} | ×${r.rpsRatio} | ${r.p50ms} | ${r.p99ms} |`);
}
