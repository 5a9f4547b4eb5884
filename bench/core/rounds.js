// What the proxy comparisons share: one process per target (bench/core/servers.js), wrk
// driving each target in turn for interleaved rounds (so noise hits all alike), the
// target's CPU time per request from ps, and medians per target.
import { spawn, execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { median, spread, round } from './stats.js';
import { cpuTicks, CLK_TCK } from '../e2e/procstat.js';

const here = dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);
const children = [];
process.on('exit', () => stopServers());

/** Starts `node bench/core/servers.js ROLE 0 ...args`; resolves when it prints "ready PORT". */
export function startServer(role, ...args) {
  return startServerWith({}, role, ...args);
}

/** startServer() with extra environment variables (WASM_MIXER_DIST: a baseline build). */
export function startServerWith(env, role, ...args) {
  return new Promise((ok, fail) => {
    const c = spawn(process.execPath, [resolve(here, 'servers.js'), role, '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    children.push(c);
    c.stdout.on('data', (d) => {
      const m = /ready (\d+)/.exec(d.toString());
      if (m) ok({ port: Number(m[1]), pid: c.pid });
    });
    c.on('exit', (code) => fail(new Error(`${role} exited ${code}`)));
  });
}

export function stopServers() {
  for (const c of children.splice(0)) c.kill('SIGTERM');
}

/** CPU seconds of a process so far, from /proc (clock-tick resolution; ps's `times` counts whole seconds). */
const cpuOf = (pid) => cpuTicks(pid) / CLK_TCK;

async function wrk(port, seconds, connections) {
  const { stdout } = await run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)[1]);
  const lat = (p) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(stdout);
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  return { rps, p50: lat(50), p90: lat(90), p99: lat(99) };
}

/**
 * `targets`: name → { port, pid } (pid null for one whose CPU is not read). A 2 s warm-up
 * each, then `rounds` rounds over all targets in turn, every other round in reverse order
 * (so a drift in the machine's load favours none). Returns every run and the medians.
 */
export async function runRounds(targets, { rounds, seconds, connections }) {
  const runs = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
  for (const t of Object.values(targets)) await run('wrk', ['-t1', `-c${connections}`, '-d2s', `http://127.0.0.1:${t.port}/`]);
  const order = Object.entries(targets);
  for (let r = 0; r < rounds; r++) {
    for (const [name, t] of r % 2 === 0 ? order : [...order].reverse()) {
      const cpu0 = t.pid ? cpuOf(t.pid) : 0;
      const w = await wrk(t.port, seconds, connections);
      const cpu1 = t.pid ? cpuOf(t.pid) : 0;
      runs[name].push({ ...w, proxyCpuUsPerReq: t.pid ? ((cpu1 - cpu0) * 1e6) / (w.rps * seconds) : null });
      process.stderr.write(`round ${r + 1}/${rounds} ${name}: ${w.rps.toFixed(0)} req/s p50 ${w.p50} ms p99 ${w.p99} ms\n`);
    }
  }
  const summary = {};
  for (const [name, rs] of Object.entries(runs)) {
    const m = (k) => round(median(rs.map((x) => x[k])), 3);
    summary[name] = { rps: round(median(rs.map((x) => x.rps)), 0), rpsSpread: spread(rs.map((x) => x.rps)).map((x) => round(x, 0)), p50ms: m('p50'), p90ms: m('p90'), p99ms: m('p99') };
    if (rs[0]?.proxyCpuUsPerReq !== null) summary[name].cpuUsPerReq = m('proxyCpuUsPerReq');
  }
  return { runs, summary };
}

/** A markdown table of the medians. */
export function table(summary, rounds) {
  const lines = [`| target | req/s (median, ${rounds} rounds) | spread | p50 ms | p90 ms | p99 ms |`, '|---|---|---|---|---|---|'];
  for (const [n, s] of Object.entries(summary)) lines.push(`| ${n} | ${s.rps} | ${s.rpsSpread.join('–')} | ${s.p50ms} | ${s.p90ms} | ${s.p99ms} |`);
  return lines.join('\n');
}
