// Micro tier: the adapter chain alone, without HTTP. The four adapters (auth, quota,
// logging, prometheus; bench/e2e/configs.js) run a request's whole lifecycle (request
// headers, response headers, log phase) through WasmHost, the way the proxy drives it:
//
//   in-process     the chain in this process's wasm VMs
//   remote naive   the same chain in an adapter server (child process): one Check and
//                  one Report per request, no cache, no batching, no prefetch
//   remote prod    check cache + report batching + quota prefetch (Mixer's production setting)
//   bare Check     one gRPC Check round trip that runs no adapter: the transport's floor
//
// each with an API-key request and with a JWT request (verified once, then cached by the
// auth adapter), sequentially (one request at a time) and concurrently (K in flight).
// Times: wall-clock per request (hrtime) and CPU time of this process and of the adapter
// server (/proc/<pid>/stat) per request. Variants are interleaved, each repeated --reps
// times; the runner takes medians.
//
//   node bench/micro/chain.js [--reps 3] [--seq-ms 1500] [--conc-ms 1500] [--conc 16,64] [--json]
//
// Needs `npm run build`. Prints JSON on stdout with --json (what bench/run.js uses),
// else a Markdown table. Progress on stderr.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WasmHost } from '../../dist/host/src/index.js';
import { validateConfig } from '../../dist/host/src/config/load.js';
import { remoteClientOf } from '../../dist/host/src/oop/remote-adapter.js';
import { benchConfig, makeCredentials } from '../e2e/configs.js';
import { startRole, stopAll } from '../e2e/procs.js';
import { cpuTicks, CLK_TCK } from '../e2e/procstat.js';
import { benchStream, RESPONSE_HEADERS } from './request.js';
import { median, percentile, spread, round } from '../core/stats.js';
import { benchArgs } from '../core/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: opt } = benchArgs({ reps: 3, 'seq-ms': 1500, 'conc-ms': 1500, conc: '16', json: false });
const { reps: REPS, 'seq-ms': SEQ_MS, 'conc-ms': CONC_MS } = opt;
const CONC = opt.conc.split(',').map(Number);
const JSON_OUT = opt.json;
const progress = (s) => process.stderr.write(`  micro: ${s}\n`);

const tmp = await mkdtemp(join(os.tmpdir(), 'wm-bench-micro-'));
const creds = await makeCredentials();
const quiet = { level: 5, log() {} };
const wasmDir = resolve(root, 'wasm');

async function hostFor(mode, serverAddress, n = 4) {
  const c = validateConfig(benchConfig({ mode, n, creds, wasmDir, upstreamPort: 9, remoteAddress: serverAddress, logDir: tmp }), `micro ${mode}`);
  return WasmHost.create(c, { logger: quiet, baseDir: tmp });
}
async function serverFor(mode) {
  const file = join(tmp, `server-${mode}.json`);
  await writeFile(file, JSON.stringify(benchConfig({ mode, n: 4, creds, wasmDir, upstreamPort: 9, logDir: tmp })));
  return startRole('server', [file], { logFile: join(tmp, `server-${mode}.log`) });
}

const servers = { naive: await serverFor('naive'), prod: await serverFor('prod') };
const hosts = {
  inproc: await hostFor('inproc'),
  naive: await hostFor('naive', `127.0.0.1:${servers.naive.port}`),
  prod: await hostFor('prod', `127.0.0.1:${servers.prod.port}`),
  // In-process chains of 1, 2 and 8 adapters (bench/e2e/configs.js): what each adapter adds.
  inproc1: await hostFor('inproc', undefined, 1),
  inproc2: await hostFor('inproc', undefined, 2),
  inproc8: await hostFor('inproc', undefined, 8),
};

const credHeader = { api_key: ['x-api-key', creds.apiKey], jwt: ['authorization', `Bearer ${creds.jwt}`] };
let conn = 0;
let lastError = null;

/** One request's lifecycle, as the proxy drives it; resolves when the chain has decided and the log phase ran. */
async function oneRequest(host, kind) {
  const c = conn++ % 16;
  const s = host.newStream(benchStream(credHeader[kind], c));
  let d = s.requestHeaders(false);
  if (d instanceof Promise) d = await d;
  if (d.action !== 'continue') {
    // A denial or a failure (e.g. ADAPTER_TIMEOUT when the adapter server is overloaded): counted, not fatal.
    lastError = `${d.action} ${d.reply?.status ?? ''} ${d.reply ? Buffer.from(d.reply.body).toString().slice(0, 120) : ''}`;
    s.finish();
    return false;
  }
  s.stream.requestHeadersSent = true;
  s.stream.info.requestBytes = 1024;
  let r = s.responseHeaders(200, RESPONSE_HEADERS.slice(), false);
  if (r instanceof Promise) r = await r;
  s.stream.responseHeadersSent = true;
  s.stream.info.responseBytes = 1024;
  s.finish();
  return true;
}

/** One gRPC Check that runs no adapter: the transport round trip alone. */
function bareCheck() {
  return remoteClientOf(hosts.naive).check({ attributes: { words: [] }, adapters: [], keep_session: false }, 2000, 'bench');
}

const serverPid = (variant) => (variant.startsWith('prod') ? servers.prod.pid : variant.startsWith('inproc') ? null : servers.naive.pid);

const dropped = (h) => {
  const v = (reason) => h.metrics.value('wasm_mixer_remote_report_dropped_total', { reason }) ?? 0;
  return v('backlog') + v('queue_full');
};
const cacheCounts = (h) => ({ hits: h.metrics.value('wasm_mixer_remote_check_cache_hits_total') ?? 0, misses: h.metrics.value('wasm_mixer_remote_check_cache_misses_total') ?? 0 });

const variants = {
  'inproc api_key': () => oneRequest(hosts.inproc, 'api_key'),
  'inproc jwt': () => oneRequest(hosts.inproc, 'jwt'),
  'naive api_key': () => oneRequest(hosts.naive, 'api_key'),
  'naive jwt': () => oneRequest(hosts.naive, 'jwt'),
  'prod api_key': () => oneRequest(hosts.prod, 'api_key'),
  'prod jwt': () => oneRequest(hosts.prod, 'jwt'),
  bare: () =>
    bareCheck().then(
      () => true,
      (e) => {
        lastError = e.message;
        return false;
      },
    ),
  'inproc, 1 adapter (auth) api_key': () => oneRequest(hosts.inproc1, 'api_key'),
  'inproc, 2 adapters (+quota) api_key': () => oneRequest(hosts.inproc2, 'api_key'),
  'inproc, 8 adapters api_key': () => oneRequest(hosts.inproc8, 'api_key'),
};
// In process the chain never waits: concurrency changes nothing, so these run sequentially only.
const SEQUENTIAL_ONLY = new Set(['inproc, 1 adapter (auth) api_key', 'inproc, 2 adapters (+quota) api_key', 'inproc, 8 adapters api_key']);

async function measure(name, fn, inFlight, ms) {
  const spid = serverPid(name);
  const h = name.startsWith('prod') ? hosts.prod : hosts.naive;
  const d0 = dropped(h);
  const cc0 = cacheCounts(h);
  const lat = [];
  const c0 = process.cpuUsage();
  const s0 = spid ? cpuTicks(spid) : null;
  const t0 = performance.now();
  const end = t0 + ms;
  let n = 0;
  let errors = 0;
  const loop = async () => {
    while (performance.now() < end) {
      const a = process.hrtime.bigint();
      if ((await fn()) === false) errors++;
      lat.push(Number(process.hrtime.bigint() - a) / 1000);
      n++;
      // Back to the event loop after each request, as a server would be: timers and I/O the
      // chain scheduled (access-log file writes, report batches) run inside the measurement.
      await new Promise(setImmediate);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, loop));
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  // Let queued reports go out before the server's CPU is read (naive: one Report per request).
  await remoteClientOf(hosts.naive)?.flush();
  await remoteClientOf(hosts.prod)?.flush();
  const serverMs = spid ? (((cpuTicks(spid) ?? 0) - (s0 ?? 0)) * 1000) / CLK_TCK : 0;
  const cc1 = cacheCounts(h);
  const lookups = cc1.hits - cc0.hits + cc1.misses - cc0.misses;
  return {
    errors,
    lastError: errors ? lastError : null,
    reportsDropped: name.startsWith('inproc') ? 0 : dropped(h) - d0,
    cacheHitRatio: name.startsWith('prod') && lookups > 0 ? round((cc1.hits - cc0.hits) / lookups, 4) : null,
    requests: n,
    perSecond: round((n / wall) * 1000, 0),
    wallUsP50: round(percentile(lat, 50), 1),
    wallUsP99: round(percentile(lat, 99), 1),
    clientCpuUs: round(((c.user + c.system) / n), 2),
    serverCpuUs: spid ? round((serverMs * 1000) / n, 2) : 0,
  };
}

// Warm-up: JIT, lazy wasm compilation, JWT verified once into the auth cache, gRPC channel up, quota prefetched.
for (const [name, fn] of Object.entries(variants)) {
  progress(`warm-up ${name}`);
  await measure(name, fn, 4, 600);
}

const runs = {};
const modes = [['sequential', 1, SEQ_MS], ...CONC.map((k) => [`concurrent ${k}`, k, CONC_MS])];
for (let rep = 0; rep < REPS; rep++) {
  for (const [mode, k, ms] of modes) {
    const names = Object.keys(variants).filter((v) => k === 1 || !SEQUENTIAL_ONLY.has(v));
    // Rotate the order each repetition so no variant always runs first or last.
    const order = names.map((_, i) => names[(i + rep) % names.length]);
    for (const name of order) {
      progress(`rep ${rep + 1}/${REPS} ${mode} ${name}`);
      const r = await measure(name, variants[name], k, ms);
      ((runs[mode] ??= {})[name] ??= []).push(r);
    }
  }
}

const summary = {};
for (const [mode, byName] of Object.entries(runs)) {
  for (const [name, rs] of Object.entries(byName)) {
    const s = {};
    s.reportsDropped = rs.reduce((a, r) => a + r.reportsDropped, 0);
    s.errors = rs.reduce((a, r) => a + r.errors, 0);
    s.lastError = rs.find((r) => r.lastError)?.lastError ?? null;
    s.cacheHitRatio = rs[0].cacheHitRatio === null ? null : round(median(rs.map((r) => r.cacheHitRatio)), 4);
    for (const k of ['perSecond', 'wallUsP50', 'wallUsP99', 'clientCpuUs', 'serverCpuUs']) {
      const xs = rs.map((r) => r[k]);
      s[k] = { median: round(median(xs), 2), spread: spread(xs).map((x) => round(x, 2)) };
    }
    s.totalCpuUs = { median: round(median(rs.map((r) => r.clientCpuUs + r.serverCpuUs)), 2), spread: spread(rs.map((r) => r.clientCpuUs + r.serverCpuUs)).map((x) => round(x, 2)) };
    (summary[mode] ??= {})[name] = s;
  }
}

for (const h of Object.values(hosts)) await h.close();
await stopAll();
await rm(tmp, { recursive: true, force: true });

const result = { reps: REPS, seqMs: SEQ_MS, concMs: CONC_MS, concurrency: CONC, runs, summary };
if (JSON_OUT) process.stdout.write(JSON.stringify(result) + '\n');
else {
  const lines = ['| mode | variant | wall p50 µs | wall p99 µs | req/s | CPU µs/req (this process + server) |', '|---|---|---|---|---|---|'];
  for (const [mode, byName] of Object.entries(summary)) {
    for (const [name, s] of Object.entries(byName)) {
      lines.push(`| ${mode} | ${name} | ${s.wallUsP50.median} | ${s.wallUsP99.median} | ${s.perSecond.median} | ${s.clientCpuUs.median} + ${s.serverCpuUs.median} |`);
    }
  }
  console.log(lines.join('\n'));
}
process.exit(0);
