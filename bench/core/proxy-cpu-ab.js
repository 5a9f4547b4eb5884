// The proxy, this build against another (--baseline DIR, its dist/): CPU per request of each
// proxy process, read from /proc around fixed batches of requests sent to one, then the other
// (the order alternating), same upstream. A bounded load, not a saturation run: the paired
// per-batch ratios hold up on a shared, busy machine, where wrk's requests/s do not.
// --adapters none: no adapters, GET /. --adapters four: the benchmark's four adapters
// (bench/e2e/configs.js, each build's own wasm/) and its requests: POST with a 1 KiB body,
// API key and JWT in turn.
//
//   node bench/core/proxy-cpu-ab.js --baseline DIR [--adapters none|four] [--pairs 20] [--requests 6000] [--concurrency 8] [--out FILE]
//
// Needs `npm run build` here and in the baseline checkout.
import http from 'node:http';
import os from 'node:os';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';
import { makeCredentials } from '../e2e/configs.js';
import { startServer, startServerWith, stopServers } from './rounds.js';
import { median, round } from './stats.js';
import { cpuTicks, CLK_TCK } from '../e2e/procstat.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opt } = benchArgs({ baseline: undefined, adapters: 'none', pairs: 20, requests: 6000, concurrency: 8, out: resolve(here, '../results/proxy-cpu-ab.json') });
if (!opt.baseline || (opt.adapters !== 'none' && opt.adapters !== 'four')) {
  console.error('--baseline DIR is required (the dist/ of the build to compare with); --adapters is none or four');
  process.exit(2);
}

const four = opt.adapters === 'four';
const up = await startServer('upstream');
const tmp = await mkdtemp(join(os.tmpdir(), 'wm-cpu-ab-'));
const creds = four ? await makeCredentials() : null;
const credsFile = join(tmp, 'credentials.json');
if (creds) await writeFile(credsFile, JSON.stringify(creds));
const role = four ? ['wasm-mixer-four', String(up.port), credsFile] : ['wasm-mixer', String(up.port)];
const targets = {
  this: await startServer(...role),
  baseline: await startServerWith({ WASM_MIXER_DIST: resolve(opt.baseline) }, ...role),
};
const BODY = Buffer.alloc(1024, 'b');
/** The request options of the i-th request: GET / without adapters; with them, the benchmark's POST, API key and JWT in turn. */
const requestOf = (i) =>
  !creds
    ? { method: 'GET', path: '/', headers: {} }
    : {
        method: 'POST',
        path: '/api/v1/orders?page=2',
        headers: { host: 'orders.bench.local', 'user-agent': 'wasm-mixer-bench/1', accept: '*/*', 'content-type': 'application/octet-stream', 'content-length': '1024', ...(i % 2 ? { authorization: `Bearer ${creds.jwt}` } : { 'x-api-key': creds.apiKey }) },
      };

/** `n` GETs over `concurrency` keep-alive connections; resolves with the wall time in ms. */
async function batch(port, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opt.concurrency });
  let left = n;
  const t0 = performance.now();
  const loop = async () => {
    while (left-- > 0) {
      const r = requestOf(left);
      await new Promise((ok, fail) => {
        const req = http.request({ host: '127.0.0.1', port, agent, ...r }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? ok() : fail(new Error(`status ${res.statusCode}`))));
        });
        req.on('error', fail);
        req.end(r.method === 'POST' ? BODY : undefined);
      });
    }
  };
  await Promise.all(Array.from({ length: opt.concurrency }, loop));
  agent.destroy();
  return performance.now() - t0;
}

async function measure(name) {
  const t = targets[name];
  const c0 = cpuTicks(t.pid);
  const ms = await batch(t.port, opt.requests);
  const c1 = cpuTicks(t.pid);
  return { cpuUsPerReq: (((c1 - c0) / CLK_TCK) * 1e6) / opt.requests, rps: (opt.requests * 1000) / ms };
}

const loadBefore = os.loadavg().map((x) => round(x, 2));
for (const name of Object.keys(targets)) await batch(targets[name].port, opt.requests); // warm-up
const runs = { this: [], baseline: [] };
for (let i = 0; i < opt.pairs; i++) {
  for (const name of i % 2 === 0 ? ['this', 'baseline'] : ['baseline', 'this']) runs[name].push(await measure(name));
  const a = runs.this.at(-1);
  const b = runs.baseline.at(-1);
  process.stderr.write(`pair ${i + 1}/${opt.pairs}: this ${a.cpuUsPerReq.toFixed(1)} us ${a.rps.toFixed(0)} req/s, baseline ${b.cpuUsPerReq.toFixed(1)} us ${b.rps.toFixed(0)} req/s\n`);
}
stopServers();
await rm(tmp, { recursive: true, force: true });

const cpuRatios = runs.this.map((a, i) => a.cpuUsPerReq / runs.baseline[i].cpuUsPerReq);
const rpsRatios = runs.this.map((a, i) => a.rps / runs.baseline[i].rps);
const out = {
  command: `node bench/core/proxy-cpu-ab.js --baseline ${opt.baseline} --adapters ${opt.adapters} --pairs ${opt.pairs} --requests ${opt.requests} --concurrency ${opt.concurrency}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadBefore, loadAfter: os.loadavg().map((x) => round(x, 2)) },
  note: 'CPU of each proxy process from /proc (10 ms ticks) around batches of GETs; ratios are this build / baseline, paired batch by batch.',
  median: {
    thisCpuUsPerReq: round(median(runs.this.map((r) => r.cpuUsPerReq)), 2),
    baselineCpuUsPerReq: round(median(runs.baseline.map((r) => r.cpuUsPerReq)), 2),
    cpuRatio: round(median(cpuRatios), 3),
    thisRps: round(median(runs.this.map((r) => r.rps)), 0),
    baselineRps: round(median(runs.baseline.map((r) => r.rps)), 0),
    rpsRatio: round(median(rpsRatios), 3),
  },
  cpuRatios: cpuRatios.map((x) => round(x, 3)),
  rpsRatios: rpsRatios.map((x) => round(x, 3)),
  runs,
};
await mkdir(dirname(opt.out), { recursive: true });
await writeFile(opt.out, JSON.stringify(out, null, 2) + '\n');
console.log(JSON.stringify(out.median));
process.exit(0);
