// Issue 14: which upstream client should the proxy forward with, node:http's keep-alive
// http.Agent or undici 7's Pool? Three minimal forwarders (bench/core/forwarders.js) that
// differ only in the client (http.Agent; Pool through request(); Pool through dispatch(),
// which host/src/proxy/upstream.ts uses since session 7), next to the proxy with no
// adapters and the upstream direct (the baseline), all driven by wrk at saturation in
// interleaved rounds; medians, and ratios against the baseline of the same run.
// --baseline DIR adds the proxy built from another checkout (DIR is its dist/, e.g. the
// commit before the switch, when it forwarded with http.Agent) to the same rounds.
//
//   node bench/core/upstream-pool.js [--rounds 3] [--seconds 5] [--connections 32] [--baseline DIR] [--out FILE]
//
// Needs `npm run build` and wrk. Writes bench/results/upstream-pool.json.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { median, round } from './stats.js';
import { benchArgs } from './args.js';
import { runRounds, startServer, startServerWith, stopServers, table } from './rounds.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opt } = benchArgs({ rounds: 3, seconds: 5, connections: 32, baseline: undefined, out: resolve(here, '../results/upstream-pool.json') });

const loadBefore = os.loadavg().map((x) => round(x, 2));
const up = await startServer('upstream');
const targets = {
  direct: { port: up.port, pid: null },
  'wasm-mixer (undici Pool)': await startServer('wasm-mixer', String(up.port)),
  ...(opt.baseline ? { 'wasm-mixer (baseline)': await startServerWith({ WASM_MIXER_DIST: resolve(opt.baseline) }, 'wasm-mixer', String(up.port)) } : {}),
  'forward http.Agent': await startServer('forward-agent', String(up.port)),
  'forward undici Pool': await startServer('forward-undici', String(up.port)),
  'forward undici dispatch': await startServer('forward-dispatch', String(up.port)),
};
const { runs, summary } = await runRounds(targets, opt);
stopServers();

const ratios = {};
for (const [name, s] of Object.entries(summary)) ratios[name] = { rpsVsDirect: round(s.rps / summary.direct.rps, 3) };
// Targets run next to each other in every round: the median of the per-round ratios is the steadiest figure on a busy machine.
function compare(name, against) {
  const perRound = runs[name].map((u, i) => u.rps / runs[against][i].rps);
  return {
    rps: round(summary[name].rps / summary[against].rps, 3),
    cpuPerReq: round(summary[name].cpuUsPerReq / summary[against].cpuUsPerReq, 3),
    rpsPerRoundMedian: round(median(perRound), 3),
    rpsPerRound: perRound.map((x) => round(x, 3)),
  };
}
ratios['forward undici Pool'].vsAgent = compare('forward undici Pool', 'forward http.Agent');
ratios['forward undici dispatch'].vsAgent = compare('forward undici dispatch', 'forward http.Agent');
ratios['forward undici dispatch'].vsPoolRequest = compare('forward undici dispatch', 'forward undici Pool');
if (opt.baseline) ratios['wasm-mixer (undici Pool)'].vsBaseline = compare('wasm-mixer (undici Pool)', 'wasm-mixer (baseline)');
const out = {
  command: `node bench/core/upstream-pool.js --rounds ${opt.rounds} --seconds ${opt.seconds} --connections ${opt.connections}${opt.baseline ? ` --baseline ${opt.baseline}` : ''}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadBefore, loadAfter: os.loadavg().map((x) => round(x, 2)) },
  note: 'wrk, the upstream and the forwarder share the machine; /proc CPU time has 10 ms resolution, so CPU per request is approximate.',
  summary,
  ratios,
  runs,
};
await mkdir(dirname(opt.out), { recursive: true });
await writeFile(opt.out, JSON.stringify(out, null, 2) + '\n');
console.log(table(summary, opt.rounds));
const say = (label, c) => console.log(`${label}: throughput ×${c.rps} (per-round median ×${c.rpsPerRoundMedian}), CPU per request ×${c.cpuPerReq}`);
console.log('');
say('forward undici Pool request() / http.Agent', ratios['forward undici Pool'].vsAgent);
say('forward undici dispatch() / http.Agent', ratios['forward undici dispatch'].vsAgent);
say('forward undici dispatch() / request()', ratios['forward undici dispatch'].vsPoolRequest);
if (opt.baseline) say('wasm-mixer (undici Pool) / baseline', ratios['wasm-mixer (undici Pool)'].vsBaseline);
process.exit(0);
