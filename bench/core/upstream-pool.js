// Issue 14: which upstream client should the proxy forward with, node:http's keep-alive
// http.Agent (host/src/proxy/upstream.ts) or undici 7's Pool? Two minimal forwarders
// (bench/core/forwarders.js) that differ only in the client, next to the proxy with no
// adapters and the upstream direct (the baseline), all driven by wrk at saturation in
// interleaved rounds; medians, and ratios against the baseline of the same run.
//
//   node bench/core/upstream-pool.js [--rounds 3] [--seconds 5] [--connections 32] [--out FILE]
//
// Needs `npm run build` and wrk. Writes bench/results/upstream-pool.json.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { median, round } from './stats.js';
import { benchArgs } from './args.js';
import { runRounds, startServer, stopServers, table } from './rounds.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opt } = benchArgs({ rounds: 3, seconds: 5, connections: 32, out: resolve(here, '../results/upstream-pool.json') });

const loadBefore = os.loadavg().map((x) => round(x, 2));
const up = await startServer('upstream');
const targets = {
  direct: { port: up.port, pid: null },
  'wasm-mixer (http.Agent)': await startServer('wasm-mixer', String(up.port)),
  'forward http.Agent': await startServer('forward-agent', String(up.port)),
  'forward undici Pool': await startServer('forward-undici', String(up.port)),
};
const { runs, summary } = await runRounds(targets, opt);
stopServers();

const ratios = {};
for (const [name, s] of Object.entries(summary)) ratios[name] = { rpsVsDirect: round(s.rps / summary.direct.rps, 3) };
ratios['forward undici Pool'].rpsVsAgent = round(summary['forward undici Pool'].rps / summary['forward http.Agent'].rps, 3);
ratios['forward undici Pool'].cpuVsAgent = round(summary['forward undici Pool'].cpuUsPerReq / summary['forward http.Agent'].cpuUsPerReq, 3);
// The two forwarders run next to each other in every round: the median of the per-round ratios is the steadiest figure on a busy machine.
const perRound = runs['forward undici Pool'].map((u, i) => u.rps / runs['forward http.Agent'][i].rps);
ratios['forward undici Pool'].rpsVsAgentPerRoundMedian = round(median(perRound), 3);
ratios['forward undici Pool'].rpsVsAgentPerRound = perRound.map((x) => round(x, 3));
const out = {
  command: `node bench/core/upstream-pool.js --rounds ${opt.rounds} --seconds ${opt.seconds} --connections ${opt.connections}`,
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
console.log(`\nundici Pool / http.Agent: throughput ×${ratios['forward undici Pool'].rpsVsAgent} (per-round median ×${ratios['forward undici Pool'].rpsVsAgentPerRoundMedian}), CPU per request ×${ratios['forward undici Pool'].cpuVsAgent}`);
process.exit(0);
