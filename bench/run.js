// The in-process vs out-of-process benchmark (issue 7), measured the way Istio measured
// Mixer: the same loopback upstream reached
//   1. directly (the baseline),
//   2. through the proxy with no adapters,
//   3. through the proxy with auth (API key / cached JWT), quota, logging and prometheus in process,
//   4. the same four in the adapter server, naive (one Check + one Report per request),
//   5. the same with the check cache, report batching and quota prefetch (Mixer's production setting);
// open loop at a constant 1000 req/s with 16 connections and 1 KiB POST bodies (Istio's
// fortio setting), closed loop (wrk) for throughput at saturation across concurrency,
// the cost vs the number of adapters in the chain, a micro tier (the chain alone, no
// HTTP: in-process call vs gRPC round trip), and a CPU profile of the in-process proxy.
//
//   npm run bench                 quick profile (~6 minutes on 2 cores)
//   npm run bench -- --full       the whole sweep (~40 minutes)
//   options: --reps N  --out DIR  --skip micro,closed,chain,profile  --seconds N (open-loop run length)
//            --nice N (run everything at that nice value; see below)
//
// Needs `npm run build` (dist/, wasm/) and wrk (`npm run system-deps`). Every process runs
// on 127.0.0.1 and is stopped by pid at the end. Progress on stderr; results in
// bench/results/bench-<profile>.{json,md} and bench-<profile>-*.svg.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchConfig, makeCredentials, requestKinds } from './e2e/configs.js';
import { startRole, stop, stopAll, track } from './e2e/procs.js';
import { window as cpuWindow, CLK_TCK } from './e2e/procstat.js';
import { summarize as summarizeProfile } from './e2e/profile.js';
import { parseMetrics, remoteDelta, r } from './e2e/stats.js';
import { runWrk, writeScript } from './e2e/wrk.js';
import { writeReport } from './e2e/report.js';
import { benchArgs } from './core/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const argv = process.argv.slice(2);
// Unknown options are refused (a typo must not start a 10-minute run); --help prints the header above.
const { values: opt } = benchArgs({ full: false, reps: undefined, seconds: undefined, skip: '', out: join(root, 'bench/results'), nice: 0 });
const FULL = opt.full;
const PROFILE = FULL ? 'full' : 'quick';
const P = FULL
  ? {
      reps: 5,
      open: { points: [{ rate: 1000, connections: 16 }, { rate: 1000, connections: 64 }, { rate: 200, connections: 16 }], seconds: 10, warmupMs: 1000 },
      closed: { connections: [1, 2, 4, 8, 16, 32, 64], seconds: 5 },
      chain: { sizes: [0, 1, 2, 4, 8], modes: ['inproc', 'naive', 'prod'], seconds: 5, warmupMs: 1000 },
      micro: ['--reps', '5', '--seq-ms', '2000', '--conc-ms', '2000', '--conc', '16,64'],
      adapters: ['--runs', '7', '--requests', '20000'],
      profileSeconds: 8,
      warmupSeconds: 3,
      deadlineMin: 180,
    }
  : {
      reps: 3,
      open: { points: [{ rate: 1000, connections: 16 }, { rate: 200, connections: 16 }], seconds: 3, warmupMs: 1000 },
      closed: { connections: [1, 16, 64], seconds: 2 },
      chain: { sizes: [0, 1, 2, 4, 8], modes: ['inproc', 'prod'], seconds: 2, warmupMs: 500 },
      micro: ['--reps', '3', '--seq-ms', '600', '--conc-ms', '600', '--conc', '16'],
      adapters: ['--runs', '5', '--requests', '10000'],
      profileSeconds: 4,
      warmupSeconds: 2,
      deadlineMin: 25,
    };
if (opt.reps !== undefined) P.reps = Number(opt.reps);
if (opt.seconds !== undefined) P.open.seconds = Number(opt.seconds);
const RATE = P.open.points[0].rate; // warm-ups, chain sweep and profiles run at the headline rate
const LIGHT_RATE = Math.min(...P.open.points.map((p) => p.rate));
const SKIP = new Set(opt.skip.split(',').filter(Boolean));
const OUT = resolve(opt.out);
// --nice N: run this process and every child (they inherit it) at that nice value. On a machine
// others use, a negative value keeps their load from inflating our latencies, at their expense:
// off by default; the value is recorded with the results.
const NICE = opt.nice;
if (NICE !== 0) {
  try {
    os.setPriority(NICE);
  } catch (e) {
    console.error(`bench: cannot set nice ${NICE}: ${e.message}`);
    process.exit(2);
  }
}
const COMMAND = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;

// ---- preflight ------------------------------------------------------------------------------
const need = ['dist/host/src/index.js', 'dist/host/src/oop/server.js', ...['auth', 'quota', 'logging', 'prometheus', 'header-check'].map((n) => `wasm/${n}.wasm`)];
const missing = need.filter((f) => !existsSync(join(root, f)));
if (missing.length) {
  console.error(`bench: missing ${missing.join(', ')}: run \`npm run build\` first`);
  process.exit(2);
}
let wrkVersion = null;
try {
  wrkVersion = execFileSync('wrk', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0];
} catch (e) {
  wrkVersion = String(e.stdout ?? '').split('\n')[0] || null; // wrk -v exits 1 after printing its version
}
if (!wrkVersion || !/wrk/.test(wrkVersion)) {
  console.error('bench: wrk is not installed: run `npm run system-deps` (Debian: apt-get install -y wrk)');
  process.exit(2);
}

// ---- progress ---------------------------------------------------------------------------------
const t0 = Date.now();
const tty = process.stderr.isTTY;
const mmss = (ms) => `${Math.floor(ms / 60000)}:${String(Math.floor((ms % 60000) / 1000)).padStart(2, '0')}`;
const progress = {
  total: 0,
  done: 0,
  budgetMs: 0,
  spentMs: 0,
  step(label, estMs) {
    this.current = label;
    this.stepStart = Date.now();
    this.est = estMs;
    const left = Math.max(0, this.budgetMs - this.spentMs);
    const line = `[${String(this.done + 1).padStart(3)}/${this.total}] ${mmss(Date.now() - t0)} elapsed, ~${mmss(left)} left  ${label}`;
    process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  },
  finish(result) {
    this.done++;
    this.spentMs += this.est;
    if (result) process.stderr.write(tty ? `\r\x1b[2K    ${this.current}: ${result}\n` : `    -> ${result}\n`);
  },
  note(s) {
    process.stderr.write(tty ? `\r\x1b[2K${s}\n` : `${s}\n`);
  },
};
const deadline = setTimeout(() => {
  progress.note(`bench: over the ${P.deadlineMin} min limit, stopping`);
  stopAll().finally(() => process.exit(3));
}, P.deadlineMin * 60_000);
deadline.unref();

// ---- machine -----------------------------------------------------------------------------------
function machine() {
  const cpus = os.cpus();
  let kernel = os.release();
  let distro = null;
  try {
    distro = /PRETTY_NAME="([^"]+)"/.exec(execFileSync('cat', ['/etc/os-release'], { encoding: 'utf8' }))?.[1] ?? null;
  } catch {
    /* not Linux */
  }
  return {
    cpus: cpus.length,
    model: cpus[0]?.model ?? null,
    mhz: cpus[0]?.speed ?? null,
    memGiB: r(os.totalmem() / 2 ** 30, 1),
    os: distro,
    kernel,
    node: process.version,
    v8: process.versions.v8,
    wrk: wrkVersion,
    clkTck: CLK_TCK,
    loadAvgAtStart: os.loadavg().map((x) => r(x, 2)),
  };
}

function gitState() {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'host', 'adapters', 'sdk', 'bench', 'package.json'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter((l) => l.trim() && !l.includes('bench/results/'))
      .map((l) => l.trim());
    return { commit, uncommittedChanges: dirty };
  } catch {
    return null; // not a git checkout
  }
}

// How busy the machine is before we start: other programs' CPU over 2 s.
async function quietCheck() {
  const w = cpuWindow({});
  await new Promise((res) => setTimeout(res, 2000));
  return w.end().otherProgramsCores;
}

// ---- processes ---------------------------------------------------------------------------------
const tmp = await mkdtemp(join(os.tmpdir(), 'wm-bench-'));
const creds = await makeCredentials();
const kinds = requestKinds(creds);
const wrkScript = writeScript(join(tmp, 'post.lua'), kinds);
const wasmDir = join(root, 'wasm');
let upstream;
const targets = new Map();

async function startTarget(id, mode, n, label, { nodeArgs = [], serverNodeArgs = [] } = {}) {
  if (mode === 'direct') {
    const t = { id, label, mode, n: null, port: upstream.port, adminPort: null, pids: { upstream: upstream.pid } };
    targets.set(id, t);
    return t;
  }
  const base = { mode, n, creds, wasmDir, upstreamPort: upstream.port, logDir: tmp };
  let server = null;
  if (mode === 'naive' || mode === 'prod') {
    const f = join(tmp, `server-${id}.json`);
    await writeFile(f, JSON.stringify(benchConfig(base)));
    server = await startRole('server', [f], { nodeArgs: serverNodeArgs, logFile: join(tmp, `server-${id}.log`) });
  }
  const f = join(tmp, `proxy-${id}.json`);
  await writeFile(f, JSON.stringify(benchConfig({ ...base, remoteAddress: server ? `127.0.0.1:${server.port}` : undefined })));
  const proxy = await startRole('proxy', [f], { nodeArgs, logFile: join(tmp, `proxy-${id}.log`) });
  const t = { id, label, mode, n, port: proxy.port, adminPort: proxy.adminPort, proxy, server, pids: { proxy: proxy.pid, ...(server ? { server: server.pid } : {}), upstream: upstream.pid } };
  targets.set(id, t);
  return t;
}

async function stopTarget(t) {
  targets.delete(t.id);
  if (t.proxy) await stop(t.proxy.child);
  if (t.server) await stop(t.server.child);
}

async function scrape(t) {
  if (t.adminPort === null) return null;
  try {
    const res = await fetch(`http://127.0.0.1:${t.adminPort}/metrics`, { signal: AbortSignal.timeout(5000) });
    return parseMetrics(await res.text());
  } catch {
    return null;
  }
}

/** PIDs of our idle children (not measured in a run, but not "other programs" either). */
const idlePids = (t) => [...targets.values()].flatMap((x) => [x.proxy?.pid, x.server?.pid]).filter((p) => p && !Object.values(t.pids).includes(p));

/** Per-process CPU µs per request, cores and RSS from a /proc window. */
function perRequest(win, requests) {
  const out = {};
  for (const [k, p] of Object.entries(win.processes)) {
    out[k] = { ...p, cpuUsPerRequest: p.cpuMs === null || !requests ? null : r((p.cpuMs * 1000) / requests, 2) };
  }
  return out;
}

// ---- one open-loop run ----------------------------------------------------------------------------
function openRun(t, { rate, connections, seconds, warmupMs }) {
  return new Promise((resolveRun, reject) => {
    const spec = { port: t.port, rate, connections, warmupMs, durationMs: seconds * 1000, requests: kinds };
    const child = track(spawn(process.execPath, [join(here, 'e2e/loadgen.js'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    let win = null;
    let winResult = null;
    let before = null;
    let fromUs = null;
    let toUs = null;
    scrape(t).then((m) => (before = m));
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      if (win === null && out.includes('measure-start')) {
        fromUs = Number(process.hrtime.bigint() / 1000n);
        win = cpuWindow({ ...t.pids, loadgen: child.pid }, idlePids(t));
      }
      if (winResult === null && win !== null && out.includes('measure-end')) {
        toUs = Number(process.hrtime.bigint() / 1000n);
        winResult = win.end();
      }
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 60) * 1000 + warmupMs);
    child.on('exit', async (code) => {
      clearTimeout(killer);
      if (code !== 0 || winResult === null) return reject(new Error(`load generator failed (${code}) against ${t.label}: ${err}`));
      const res = JSON.parse(out.trim().split('\n').pop());
      const after = await scrape(t);
      resolveRun({
        ...res,
        window: { seconds: winResult.seconds, otherProgramsCores: winResult.otherProgramsCores, stealCores: winResult.stealCores, fromUs, toUs },
        processes: perRequest(winResult, res.completed),
        remote: remoteDelta(before, after),
      });
    });
  });
}

// ---- one closed-loop run ------------------------------------------------------------------------------
async function closedRun(t, { connections, seconds }) {
  const before = await scrape(t);
  let win = null;
  const res = await runWrk({
    port: t.port,
    connections,
    seconds,
    script: wrkScript,
    onStart: (pid) => (win = cpuWindow({ ...t.pids, wrk: pid }, idlePids(t))),
  });
  const w = win.end();
  const after = await scrape(t);
  const procs = perRequest(w, res.requests);
  // wrk has exited when the window closes: its CPU time is what this process reaped meanwhile.
  procs.wrk = { cpuMs: w.exitedChildrenCpuMs, cpuUsPerRequest: res.requests ? r((w.exitedChildrenCpuMs * 1000) / res.requests, 2) : null };
  return { ...res, window: { seconds: w.seconds, otherProgramsCores: w.otherProgramsCores, stealCores: w.stealCores }, processes: procs, remote: remoteDelta(before, after) };
}

/** A measured run that fails (a target closed connections, wrk errored) is recorded and skipped, not fatal. */
const failures = [];
async function attempt(what, fn) {
  try {
    return await fn();
  } catch (e) {
    failures.push({ what, error: String(e.message ?? e).slice(0, 2000) });
    progress.note(`    !! ${what} failed: ${String(e.message ?? e).split('\n')[0]}`);
    return null;
  }
}

const brief = (x) =>
  x.latencyUs
    ? `p50 ${x.latencyUs.p50} µs, p99 ${x.latencyUs.p99} µs, ${x.achievedRps ?? x.rps} req/s` +
      (x.processes?.proxy?.cpuUsPerRequest != null ? `, proxy ${x.processes.proxy.cpuUsPerRequest} µs CPU/req` : '') +
      (x.processes?.server?.cpuUsPerRequest != null ? `, server ${x.processes.server.cpuUsPerRequest}` : '') +
      (x.remote?.cacheHitRatio != null ? `, cache hits ${Math.round(x.remote.cacheHitRatio * 100)}%` : '') +
      (x.window?.otherProgramsCores > 0.25 ? ` (other programs used ${x.window.otherProgramsCores} cores)` : '')
    : '';

const rotate = (xs, k) => xs.map((_, i) => xs[(i + k) % xs.length]);

// ---- plan (for the progress display) ---------------------------------------------------------------------
const MAIN = [
  ['direct', 'direct', null, 'upstream direct'],
  ['proxy', 'none', 0, 'proxy, no adapters'],
  ['inproc', 'inproc', 4, '4 adapters in-process'],
  ['naive', 'naive', 4, '4 adapters out of process, naive'],
  ['prod', 'prod', 4, '4 adapters out of process, cache+batch+prefetch'],
];
const chainIds = ['direct']; // the sweep's own baseline, for added latency
for (const mode of P.chain.modes) for (const n of P.chain.sizes) chainIds.push(n === 0 ? 'proxy' : n === 4 ? mode : `${mode}-${n}`);
const chainTargets = [...new Set(chainIds)];
const openMs = (P.open.seconds * 1000 + P.open.warmupMs + 700);
const closedMs = P.closed.seconds * 1000 + 400;
const chainMs = P.chain.seconds * 1000 + P.chain.warmupMs + 700;
const plan = [];
if (!SKIP.has('micro')) plan.push(['micro', FULL ? 240_000 : 45_000], ['adapters', FULL ? 150_000 : 60_000]);
plan.push(['start', 15_000]);
for (const _ of MAIN) plan.push(['warm', P.warmupSeconds * 1000 + 1500]);
for (const _c of P.open.points) for (let i = 0; i < P.reps * MAIN.length; i++) plan.push(['open', openMs]);
if (!SKIP.has('closed')) for (const _c of P.closed.connections) for (let i = 0; i < P.reps * MAIN.length; i++) plan.push(['closed', closedMs]);
if (!SKIP.has('chain')) {
  const extra = chainTargets.filter((id) => !MAIN.some(([m]) => m === id));
  for (const _ of extra) plan.push(['chain-start', 5000 + P.warmupSeconds * 1000]);
  for (let i = 0; i < P.reps * chainTargets.length; i++) plan.push(['chain', chainMs]);
}
if (!SKIP.has('profile')) for (let i = 0; i < 3; i++) plan.push(['profile', 8000 + P.profileSeconds * 1000]);
progress.total = plan.length;
progress.budgetMs = plan.reduce((a, [, ms]) => a + ms, 0);
progress.note(`wasm-mixer bench, ${PROFILE} profile: ${plan.length} steps, about ${mmss(progress.budgetMs)} (min:s); results to ${OUT}`);

const busyBefore = await quietCheck();
if (busyBefore > 0.3) progress.note(`bench: other programs are using ${busyBefore} of ${os.cpus().length} cores right now; latency figures will be noisy (each run records the load it saw)`);
const results = {
  command: COMMAND,
  profile: PROFILE,
  date: new Date().toISOString(),
  machine: { ...machine(), otherProgramsCoresBeforeStart: busyBefore },
  git: gitState(),
  settings: { nice: NICE, reps: P.reps, open: P.open, closed: P.closed, chain: P.chain, micro: P.micro.join(' '), adapters: P.adapters.join(' '), profileSeconds: P.profileSeconds, payloadBytes: 1024, requestKinds: kinds.map((k) => k.kind) },
  scenarios: MAIN.map(([id, mode, n, label]) => ({ id, mode, adapters: n, label })),
  openLoop: {},
  closedLoop: {},
  chain: null,
  micro: null,
  adapters: null,
  cpuProfiles: null,
};

try {
  // ---- micro tier (its own process and adapter servers) ----------------------------------------------
  /** Runs a micro-tier script in its own process; resolves with the JSON of its last stdout line. */
  const runJsonScript = (script, args, tag) => new Promise((res, rej) => {
      const c = track(spawn(process.execPath, [join(here, script), '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
      let out = '';
      let err = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => {
        err += d;
        const last = String(d).trim().split('\n').pop();
        if (tty && last) process.stderr.write(`\r\x1b[2K[${tag}] ${last.trim()}`);
      });
      const k = setTimeout(() => c.kill('SIGKILL'), 15 * 60_000);
      c.on('exit', (code) => {
        clearTimeout(k);
        if (code !== 0) return rej(new Error(`${script} failed (${code}): ${err.slice(-2000)}`));
        res(JSON.parse(out.trim().split('\n').pop()));
      });
    });
  if (!SKIP.has('micro')) {
    progress.step('micro tier: the chain alone, in-process vs gRPC (own process)', plan[0][1]);
    results.micro = await attempt('micro tier', () => runJsonScript('micro/chain.js', P.micro, 'micro'));
    const s = results.micro?.summary.sequential;
    if (!s) progress.finish('failed');
    else progress.finish(`sequential: in-process ${s['inproc api_key'].wallUsP50.median} µs, naive remote ${s['naive api_key'].wallUsP50.median} µs, bare gRPC Check ${s.bare.wallUsP50.median} µs (p50 wall)`);
  }
  if (!SKIP.has('micro')) {
    progress.step('micro tier: each adapter and the chain of four in process, CPU per request by layer (own process)', plan[1][1]);
    results.adapters = await attempt('adapters tier', () => runJsonScript('micro/adapters.js', [...P.adapters, '--profile'], 'adapters'));
    const row = (n) => results.adapters?.rows.find((x) => x.variant === n);
    progress.finish(results.adapters ? `chain of four ${row('chain4').cpuUsPerRequest} µs CPU/req (no adapters ${row('none').cpuUsPerRequest}), metering ×${results.adapters.meteringCost}` : 'failed');
  }

  // ---- e2e processes ---------------------------------------------------------------------------------
  progress.step('starting upstream, proxies and adapter servers', 15_000);
  upstream = await startRole('upstream', [], { logFile: join(tmp, 'upstream.log') });
  for (const [id, mode, n, label] of MAIN) await startTarget(id, mode, n, label);
  progress.finish(`${targets.size} targets up`);

  for (const [id] of MAIN) {
    const t = targets.get(id);
    progress.step(`warm-up ${t.label}`, P.warmupSeconds * 1000 + 1500);
    const w = await openRun(t, { rate: RATE, connections: 16, seconds: P.warmupSeconds, warmupMs: 300 });
    progress.finish(`warm: ${brief(w)}`);
  }

  // ---- open loop: constant rate -----------------------------------------------------------------------
  for (const { rate, connections: c } of P.open.points) {
    const runs = Object.fromEntries(MAIN.map(([id]) => [id, []]));
    for (let rep = 0; rep < P.reps; rep++) {
      for (const [id] of rotate(MAIN, rep)) {
        const t = targets.get(id);
        progress.step(`open loop ${rate} req/s, ${c} conns, rep ${rep + 1}/${P.reps}: ${t.label}`, openMs);
        const x = await attempt(`open loop ${rate} req/s ${c} conns rep ${rep + 1} ${t.label}`, () => openRun(t, { rate, connections: c, seconds: P.open.seconds, warmupMs: P.open.warmupMs }));
        if (x) runs[id].push({ rep, ...x });
        progress.finish(x ? brief(x) : 'failed');
      }
    }
    results.openLoop[`r${rate}-c${c}`] = { rate, connections: c, seconds: P.open.seconds, runs };
  }

  // ---- closed loop: saturation across concurrency ------------------------------------------------------
  if (!SKIP.has('closed')) {
    for (const c of P.closed.connections) {
      const runs = Object.fromEntries(MAIN.map(([id]) => [id, []]));
      for (let rep = 0; rep < P.reps; rep++) {
        for (const [id] of rotate(MAIN, rep)) {
          const t = targets.get(id);
          progress.step(`closed loop (wrk) ${c} conns, rep ${rep + 1}/${P.reps}: ${t.label}`, closedMs);
          const x = await attempt(`closed loop ${c} conns rep ${rep + 1} ${t.label}`, () => closedRun(t, { connections: c, seconds: P.closed.seconds }));
          if (x) runs[id].push({ rep, ...x });
          if (!x) {
            progress.finish('failed');
            continue;
          }
          progress.finish(`${Math.round(x.rps)} req/s, p50 ${x.latencyUs.p50} µs, p99 ${x.latencyUs.p99} µs` + (x.non2xx ? `, ${x.non2xx} non-2xx!` : '') + (x.remote?.reportsDropped ? `, ${x.remote.reportsDropped} reports dropped` : ''));
        }
      }
      results.closedLoop[`c${c}`] = { connections: c, seconds: P.closed.seconds, runs };
    }
  }

  // ---- cost vs number of adapters ---------------------------------------------------------------------------
  if (!SKIP.has('chain')) {
    const started = [];
    for (const id of chainTargets) {
      if (targets.has(id)) continue;
      const [mode, n] = id.split('-');
      const t = await (async () => {
        progress.step(`starting and warming ${mode} with ${n} adapters`, 5000 + P.warmupSeconds * 1000);
        const x = await startTarget(id, mode, Number(n), `${n} adapters ${mode}`);
        const w = await openRun(x, { rate: RATE, connections: 16, seconds: P.warmupSeconds, warmupMs: 300 });
        progress.finish(`warm: ${brief(w)}`);
        return x;
      })();
      started.push(t);
    }
    const runs = Object.fromEntries(chainTargets.map((id) => [id, []]));
    for (let rep = 0; rep < P.reps; rep++) {
      for (const id of rotate(chainTargets, rep)) {
        const t = targets.get(id);
        progress.step(`chain sweep ${RATE} req/s, rep ${rep + 1}/${P.reps}: ${t.mode} with ${t.n} adapters`, chainMs);
        const x = await attempt(`chain sweep rep ${rep + 1} ${id}`, () => openRun(t, { rate: RATE, connections: 16, seconds: P.chain.seconds, warmupMs: P.chain.warmupMs }));
        if (x) runs[id].push({ rep, ...x });
        progress.finish(x ? brief(x) : 'failed');
      }
    }
    // The direct baseline of this phase, for added latency: the open-loop direct runs are from an earlier phase,
    // so the sweep is compared with its own 0-adapter proxy and, for latency, with the proxy.
    results.chain = { sizes: P.chain.sizes, modes: P.chain.modes, targets: Object.fromEntries(chainTargets.map((id) => [id, { mode: targets.get(id).mode, adapters: targets.get(id).n }])), runs };
    for (const t of started) await stopTarget(t);
  }

  // ---- CPU profiles -----------------------------------------------------------------------------------------
  if (!SKIP.has('profile')) {
    const profDir = join(tmp, 'prof');
    await mkdir(profDir, { recursive: true });
    const prof = {};
    for (const [id, mode, label] of [['profile-none', 'none', 'proxy without adapters'], ['profile-in', 'inproc', 'in-process proxy'], ['profile-remote', 'naive', 'naive remote proxy + adapter server']]) {
      const dir = join(profDir, id);
      await mkdir(dir, { recursive: true });
      progress.step(`CPU profile (node --cpu-prof) of the ${label}`, 8000 + P.profileSeconds * 1000);
      const cpuProf = ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '250'];
      const done = await attempt(`CPU profile of the ${label}`, async () => {
        const t = await startTarget(id, mode, mode === 'none' ? 0 : 4, label, { nodeArgs: [...cpuProf, '--cpu-prof-name', 'proxy.cpuprofile'], serverNodeArgs: [...cpuProf, '--cpu-prof-name', 'server.cpuprofile'] });
        // The naive remote chain cannot keep the headline rate on 2 shared cores: profile it at the light-load rate.
        const rate = mode === 'naive' ? LIGHT_RATE : RATE;
        let x;
        try {
          await openRun(t, { rate, connections: 16, seconds: 2, warmupMs: 300 });
          x = await openRun(t, { rate, connections: 16, seconds: P.profileSeconds, warmupMs: 500 });
        } finally {
          await stopTarget(t); // the profile is written when the process exits
        }
        const files = readdirSync(dir);
        const one = (name) => (files.includes(name) ? summarizeProfile(join(dir, name), { fromUs: x.window.fromUs, toUs: x.window.toUs, root, top: 30, requests: x.completed }) : null);
        prof[mode] = { rate, run: { latencyUs: x.latencyUs, completed: x.completed, processes: x.processes }, proxy: one('proxy.cpuprofile'), server: mode === 'naive' ? one('server.cpuprofile') : undefined, samplingIntervalUs: 250 };
        return prof[mode];
      });
      progress.finish(done?.proxy ? `${done.proxy.samples} samples; top: ${done.proxy.categories.slice(0, 3).map((c) => `${c.category} ${c.percent}%`).join(', ')}` : 'no profile');
    }
    results.cpuProfiles = prof;
  }
} finally {
  await stopAll();
  await rm(tmp, { recursive: true, force: true });
}

results.failures = failures;
results.durationS = Math.round((Date.now() - t0) / 1000);
results.machine.loadAvgAtEnd = os.loadavg().map((x) => r(x, 2));
await mkdir(OUT, { recursive: true });
const files = await writeReport(results, OUT, `bench-${PROFILE}`);
progress.note(`\nbench: done in ${mmss(Date.now() - t0)}; wrote ${files.join(', ')}`);
process.exit(0);
