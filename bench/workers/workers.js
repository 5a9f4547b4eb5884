// Saturation throughput and CPU per request of the proxy with 1 and 2 worker processes
// (`wasm-mixer proxy --workers N`), with no adapters and with the benchmark's four
// adapters (auth, quota, logging, prometheus: bench/e2e/configs.js), through the real CLI.
//
//   node bench/workers/workers.js [--seconds 8] [--reps 3] [--connections 64] [--out bench/results/workers]
//
// wrk (one thread, closed loop, 64 connections) drives POST /api/v1/orders with a 1 KiB
// body against the upstream of bench/e2e/roles.js. CPU comes from /proc for every process
// of the proxy (primary + workers), the upstream and wrk; "other programs" is what the
// rest of the machine used during the window. Runs are interleaved (1w, 2w, 1w, 2w...).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { usage } from '../core/args.js';
import { benchConfig, makeCredentials, requestKinds } from '../e2e/configs.js';
import { startRole, stop, stopAll } from '../e2e/procs.js';
import { window } from '../e2e/procstat.js';
import { runWrk, writeScript } from '../e2e/wrk.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
if (process.argv.includes('--help')) {
  process.stdout.write(usage({ seconds: 8, reps: 3, connections: 64, out: join(ROOT, 'bench/results/workers'), from: undefined }));
  process.exit(0);
}
const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    reps: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    out: { type: 'string', default: join(ROOT, 'bench/results/workers') },
    // Re-render the .md of an earlier run's .json (no measurement).
    from: { type: 'string' },
  },
});
if (opt.from) {
  const { readFileSync } = await import('node:fs');
  const prev = JSON.parse(readFileSync(opt.from, 'utf8'));
  writeMarkdown(prev.command, prev.date, prev.machine, prev.settings, prev.summary);
  process.exit(0);
}
const seconds = Number(opt.seconds);
const reps = Number(opt.reps);
const connections = Number(opt.connections);
const tmp = mkdtempSync(join(tmpdir(), 'wm-bench-workers-'));
const creds = await makeCredentials();
const script = writeScript(join(tmp, 'post.lua'), requestKinds(creds));

function startCli(configFile, workers) {
  return new Promise((resolveReady, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/wasm-mixer.js'), 'proxy', '--config', configFile, '--workers', String(workers)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${err}`)), 90_000);
    child.stderr.on('data', (d) => {
      err += d;
      const m = /listening on http:\/\/[^:]+:(\d+) \(admin http:\/\/127\.0\.0\.1:(\d+)\)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolveReady({ child, port: Number(m[1]), adminPort: Number(m[2]) });
      }
    });
    child.on('exit', (code) => reject(new Error(`proxy exited ${code}: ${err}`)));
  });
}

const getJson = (port, path) =>
  new Promise((res, rej) => http.get({ host: '127.0.0.1', port, path, agent: false }, (r) => {
    let b = '';
    r.on('data', (d) => (b += d));
    r.on('end', () => res(JSON.parse(b)));
  }).on('error', rej));

async function measure(label, adapters, workers, upstream) {
  const config = benchConfig({ mode: adapters ? 'inproc' : 'none', n: adapters ? 4 : 0, creds, wasmDir: join(ROOT, 'wasm'), upstreamPort: upstream.port, logDir: tmp });
  const file = join(tmp, `${label}.json`);
  writeFileSync(file, JSON.stringify(config));
  const proxy = await startCli(file, workers);
  try {
    const pids = { primary: proxy.child.pid };
    if (workers > 1) for (const w of (await getJson(proxy.adminPort, '/adapters')).workers) pids[`worker${w.worker}`] = w.pid;
    await runWrk({ port: proxy.port, connections, seconds: 5, script }); // warm-up: JIT (in every worker), pools, lease sizes
    let win;
    const r = await runWrk({ port: proxy.port, connections, seconds, script, onStart: (pid) => (win = window({ ...pids, upstream: upstream.pid, wrk: pid })) });
    const w = win.end(r.requests);
    const proxyCpuMs = Object.entries(w.processes).filter(([k]) => k === 'primary' || k.startsWith('worker')).reduce((a, [, p]) => a + (p.cpuMs ?? 0), 0);
    return {
      label,
      workers,
      adapters: adapters ? 4 : 0,
      rps: r.rps,
      non2xx: r.non2xx,
      socketErrors: r.socketErrors,
      latencyUs: r.latencyUs,
      proxyCpuUsPerRequest: Math.round(((proxyCpuMs * 1000) / r.requests) * 100) / 100,
      proxyCores: Math.round((proxyCpuMs / 1000 / w.seconds) * 100) / 100,
      processes: w.processes,
      // wrk exits at the end of the window: its CPU time is in this process's reaped children.
      wrkCores: Math.round((w.exitedChildrenCpuMs / 1000 / w.seconds) * 100) / 100,
      otherProgramsCores: w.otherProgramsCores,
      loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    };
  } finally {
    await stop(proxy.child, 20_000);
  }
}

const runs = [];
let upstream;
try {
  upstream = await startRole('upstream');
  for (let rep = 0; rep < reps; rep++) {
    for (const adapters of [false, true]) {
      for (const workers of [1, 2]) {
        const label = `${adapters ? '4 adapters' : 'no adapters'}, ${workers} worker${workers > 1 ? 's' : ''}`;
        const r = await measure(label.replace(/[^a-z0-9]+/gi, '-'), adapters, workers, upstream);
        r.label = label;
        r.rep = rep;
        runs.push(r);
        console.error(`${label} rep ${rep}: ${r.rps} req/s, proxy ${r.proxyCpuUsPerRequest} µs CPU/request on ${r.proxyCores} cores, other programs ${r.otherProgramsCores} cores`);
      }
    }
  }
} finally {
  if (upstream) await stop(upstream.child);
  await stopAll?.();
  rmSync(tmp, { recursive: true, force: true });
}

const median = (xs) => {
  const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const summary = [];
for (const label of [...new Set(runs.map((r) => r.label))]) {
  const rs = runs.filter((r) => r.label === label);
  summary.push({
    label,
    rps: median(rs.map((r) => r.rps)),
    rpsRange: [Math.min(...rs.map((r) => r.rps)), Math.max(...rs.map((r) => r.rps))],
    proxyCpuUsPerRequest: median(rs.map((r) => r.proxyCpuUsPerRequest)),
    proxyCores: median(rs.map((r) => r.proxyCores)),
    upstreamCores: median(rs.map((r) => r.processes.upstream?.cores)),
    wrkCores: median(rs.map((r) => r.wrkCores)),
    otherProgramsCores: median(rs.map((r) => r.otherProgramsCores)),
    p50Us: median(rs.map((r) => r.latencyUs.p50)),
    p99Us: median(rs.map((r) => r.latencyUs.p99)),
  });
}
const command = `node bench/workers/workers.js --seconds ${seconds} --reps ${reps} --connections ${connections}`;
const machine = { cpus: availableParallelism(), model: cpus()[0]?.model, node: process.version };
const date = new Date().toISOString();
writeFileSync(`${opt.out}.json`, JSON.stringify({ command, date, machine, settings: { seconds, reps, connections }, summary, runs }, null, 2) + '\n');
writeMarkdown(command, date, machine, { seconds, reps, connections }, summary);
console.error(`wrote ${opt.out}.json and ${opt.out}.md`);

function writeMarkdown(command, date, machine, { seconds, reps, connections }, summary) {
const r1 = (x) => (x === null || x === undefined ? '–' : Math.round(x * 10) / 10);
const ms = (us) => (us === null || us === undefined ? '–' : `${Math.round(us / 100) / 10} ms`);
const row = (s) => `| ${s.label} | ${Math.round(s.rps)} (${Math.round(s.rpsRange[0])}–${Math.round(s.rpsRange[1])}) | ${Math.round(s.proxyCpuUsPerRequest)} µs | ${r1(s.proxyCores)} | ${r1(s.upstreamCores)} + ${r1(s.wrkCores)} | ${r1(s.otherProgramsCores)} | ${ms(s.p50Us)} / ${ms(s.p99Us)} |`;
writeFileSync(
  `${opt.out}.md`,
  [
    `# Workers: 1 vs 2 processes (\`${command}\`)`,
    '',
    `${date}, ${machine.cpus} vCPU ${machine.model}, Node ${machine.node}. Median of ${reps} interleaved runs of ${seconds} s at saturation (wrk, ${connections} connections, closed loop).`,
    '',
    summary.some((s) => s.otherProgramsCores > 0.2)
      ? 'Other programs ran on the machine during the runs: their share is in the "other programs" column, and the proxy got only what was left. Read CPU per request, not req/s; see docs/benchmark.md "Workers".'
      : 'The machine was otherwise quiet ("other programs" column). On 2 cores the upstream and wrk share the cores with the proxy, so 2 workers cannot double throughput here; see docs/benchmark.md "Workers".',
    '',
    '| scenario | req/s (min–max) | proxy CPU per request (primary + workers) | proxy cores used | upstream + wrk cores | other programs (cores) | p50 / p99 |',
    '|---|---|---|---|---|---|---|',
    ...summary.map(row),
    '',
  ].join('\n'),
);
}
