// Issue 2: the proxy with no adapters against @fastify/http-proxy, same upstream, same
// machine, side by side. wrk drives each target in turn (interleaved rounds, so noise
// hits all alike); the upstream direct is measured in the same rounds as the baseline.
//
//   node bench/core/proxy-vs-fastify.js [--rounds 3] [--seconds 5] [--connections 10]
//
// Needs `npm run build` and wrk (`npm run system-deps`). Writes bench/results/core-proxy.json.

import { spawn, execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import os from 'node:os';
import { median, spread, round } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (n, d) => {
  const i = process.argv.indexOf(n);
  return i > 0 ? process.argv[i + 1] : d;
};
const ROUNDS = Number(arg('--rounds', 3));
const SECONDS = Number(arg('--seconds', 5));
const CONNS = Number(arg('--connections', 10));
const OUT = arg('--out', resolve(here, '../results/core-proxy.json'));
const run = promisify(execFile);

const children = [];
function start(role, ...args) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [resolve_(here, 'servers.js'), role, '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(c);
    c.stdout.on('data', (d) => {
      const m = /ready (\d+)/.exec(d.toString());
      if (m) resolve({ port: Number(m[1]), pid: c.pid });
    });
    c.on('exit', (code) => reject(new Error(`${role} exited ${code}`)));
  });
}
function resolve_(...p) {
  return resolve(...p);
}
const cleanup = () => children.forEach((c) => c.kill('SIGTERM'));
process.on('exit', cleanup);

async function cpuOf(pid) {
  const { stdout } = await run('ps', ['-o', 'times=', '-p', String(pid)]);
  return Number(stdout.trim());
}

async function wrk(port) {
  const { stdout } = await run('wrk', ['-t1', `-c${CONNS}`, `-d${SECONDS}s`, '--latency', `http://127.0.0.1:${port}/`]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)[1]);
  const lat = (p) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(stdout);
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  return { rps, p50: lat(50), p90: lat(90), p99: lat(99) };
}

const up = await start('upstream');
const targets = {
  direct: { port: up.port, pid: null },
  'wasm-mixer': await start('wasm-mixer', String(up.port)),
  fastify: await start('fastify', String(up.port)),
};
const results = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
// Warm-up.
for (const t of Object.values(targets)) await run('wrk', ['-t1', `-c${CONNS}`, '-d2s', `http://127.0.0.1:${t.port}/`]);
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, t] of Object.entries(targets)) {
    const cpu0 = t.pid ? await cpuOf(t.pid) : 0;
    const w = await wrk(t.port);
    const cpu1 = t.pid ? await cpuOf(t.pid) : 0;
    results[name].push({ ...w, proxyCpuUsPerReq: t.pid ? ((cpu1 - cpu0) * 1e6) / (w.rps * SECONDS) : null });
    process.stderr.write(`round ${r + 1}/${ROUNDS} ${name}: ${w.rps.toFixed(0)} req/s p50 ${w.p50} ms p99 ${w.p99} ms\n`);
  }
}
cleanup();

const summary = {};
for (const [name, runs] of Object.entries(results)) {
  const m = (k) => round(median(runs.map((x) => x[k])), 3);
  summary[name] = { rps: round(median(runs.map((x) => x.rps)), 0), rpsSpread: spread(runs.map((x) => x.rps)).map((x) => round(x, 0)), p50ms: m('p50'), p90ms: m('p90'), p99ms: m('p99') };
}
summary['wasm-mixer'].rpsRatioVsFastify = round(summary['wasm-mixer'].rps / summary.fastify.rps, 3);
const out = {
  command: `node bench/core/proxy-vs-fastify.js --rounds ${ROUNDS} --seconds ${SECONDS} --connections ${CONNS}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  note: 'wrk, the upstream and the proxy share the machine; ps CPU time has 10 ms resolution, so CPU per request is approximate.',
  summary,
  runs: results,
};
await mkdir(dirname(OUT), { recursive: true });
await writeFile(OUT, JSON.stringify(out, null, 2) + '\n');
console.log(`| target | req/s (median, ${ROUNDS} rounds) | spread | p50 ms | p90 ms | p99 ms |\n|---|---|---|---|---|---|`);
for (const [n, s] of Object.entries(summary)) console.log(`| ${n} | ${s.rps} | ${s.rpsSpread.join('–')} | ${s.p50ms} | ${s.p90ms} | ${s.p99ms} |`);
console.log(`\nwasm-mixer / fastify throughput: ×${summary['wasm-mixer'].rpsRatioVsFastify}`);
process.exit(0);
