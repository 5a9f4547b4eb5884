// The proxy with no adapters, this build against another (--baseline DIR, its dist/): CPU
// per request of each proxy process, read from /proc around fixed batches of requests
// sent to one, then the other (the order alternating), same upstream. A bounded load, not
// a saturation run: the paired per-batch ratios hold up on a shared, busy machine, where
// wrk's requests/s do not.
//
//   node bench/core/proxy-cpu-ab.js --baseline DIR [--pairs 20] [--requests 6000] [--concurrency 8] [--out FILE]
//
// Needs `npm run build` here and in the baseline checkout.
import http from 'node:http';
import os from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';
import { startServer, startServerWith, stopServers } from './rounds.js';
import { median, round } from './stats.js';
import { cpuTicks, CLK_TCK } from '../e2e/procstat.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opt } = benchArgs({ baseline: undefined, pairs: 20, requests: 6000, concurrency: 8, out: resolve(here, '../results/proxy-cpu-ab.json') });
if (!opt.baseline) {
  console.error('--baseline DIR is required (the dist/ of the build to compare with)');
  process.exit(2);
}

const up = await startServer('upstream');
const targets = {
  this: await startServer('wasm-mixer', String(up.port)),
  baseline: await startServerWith({ WASM_MIXER_DIST: resolve(opt.baseline) }, 'wasm-mixer', String(up.port)),
};

/** `n` GETs over `concurrency` keep-alive connections; resolves with the wall time in ms. */
async function batch(port, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opt.concurrency });
  let left = n;
  const t0 = performance.now();
  const loop = async () => {
    while (left-- > 0) {
      await new Promise((ok, fail) => {
        http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? ok() : fail(new Error(`status ${res.statusCode}`))));
        }).on('error', fail);
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

const cpuRatios = runs.this.map((a, i) => a.cpuUsPerReq / runs.baseline[i].cpuUsPerReq);
const rpsRatios = runs.this.map((a, i) => a.rps / runs.baseline[i].rps);
const out = {
  command: `node bench/core/proxy-cpu-ab.js --baseline ${opt.baseline} --pairs ${opt.pairs} --requests ${opt.requests} --concurrency ${opt.concurrency}`,
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
