// Issue 2: the proxy with no adapters against @fastify/http-proxy, same upstream, same
// machine, side by side. wrk drives each target in turn (interleaved rounds, so noise
// hits all alike); the upstream direct is measured in the same rounds as the baseline.
//
//   node bench/core/proxy-vs-fastify.js [--rounds 3] [--seconds 5] [--connections 10] [--baseline DIR] [--out FILE]
//
// --baseline DIR adds the proxy built from another checkout (DIR is its dist/) to the same rounds.
// Needs `npm run build` and wrk (`npm run system-deps`). Writes bench/results/core-proxy.json.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { round } from './stats.js';
import { benchArgs } from './args.js';
import { runRounds, startServer, startServerWith, stopServers, table } from './rounds.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values: opt } = benchArgs({ rounds: 3, seconds: 5, connections: 10, baseline: undefined, out: resolve(here, '../results/core-proxy.json') });
const { rounds: ROUNDS, seconds: SECONDS, connections: CONNS, out: OUT } = opt;

const up = await startServer('upstream');
const targets = {
  direct: { port: up.port, pid: null },
  'wasm-mixer': await startServer('wasm-mixer', String(up.port)),
  fastify: await startServer('fastify', String(up.port)),
  ...(opt.baseline ? { 'wasm-mixer (baseline)': await startServerWith({ WASM_MIXER_DIST: resolve(opt.baseline) }, 'wasm-mixer', String(up.port)) } : {}),
};
const { runs: results, summary } = await runRounds(targets, { rounds: ROUNDS, seconds: SECONDS, connections: CONNS });
stopServers();

summary['wasm-mixer'].rpsRatioVsFastify = round(summary['wasm-mixer'].rps / summary.fastify.rps, 3);
if (opt.baseline) {
  const b = summary['wasm-mixer (baseline)'];
  b.rpsRatioVsFastify = round(b.rps / summary.fastify.rps, 3);
  summary['wasm-mixer'].vsBaseline = {
    rps: round(summary['wasm-mixer'].rps / b.rps, 3),
    cpuPerReq: round(summary['wasm-mixer'].cpuUsPerReq / b.cpuUsPerReq, 3),
    rpsPerRound: results['wasm-mixer'].map((x, i) => round(x.rps / results['wasm-mixer (baseline)'][i].rps, 3)),
  };
}
const out = {
  command: `node bench/core/proxy-vs-fastify.js --rounds ${ROUNDS} --seconds ${SECONDS} --connections ${CONNS}${opt.baseline ? ` --baseline ${opt.baseline}` : ''}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  note: 'wrk, the upstream and the proxy share the machine; /proc CPU time has 10 ms resolution, so CPU per request is approximate.',
  summary,
  runs: results,
};
await mkdir(dirname(OUT), { recursive: true });
await writeFile(OUT, JSON.stringify(out, null, 2) + '\n');
console.log(table(summary, ROUNDS));
console.log(`\nwasm-mixer / fastify throughput: ×${summary['wasm-mixer'].rpsRatioVsFastify}`);
if (opt.baseline) console.log(`wasm-mixer / baseline: throughput ×${summary['wasm-mixer'].vsBaseline.rps} (per round ${summary['wasm-mixer'].vsBaseline.rpsPerRound.join(', ')}), CPU per request ×${summary['wasm-mixer'].vsBaseline.cpuPerReq}`);
process.exit(0);
