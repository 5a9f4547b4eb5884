// The proxy at saturation, a few scenarios side by side: what `npm run bench` measures in
// its closed-loop table (wrk -t1, the same POST requests, the same proxy configurations
// from configs.js), without the rest of the suite, plus where the proxy's CPU goes:
//
//   node bench/e2e/saturation.js [--variants none,inproc] [--reps 3] [--seconds 4]
//        [--connections 64] [--warmup 3] [--probe] [--strace] [--json] [--out FILE]
//
// variants: none (the proxy, no adapters), inproc (the four adapters in process); a
// variant may carry node flags for its proxy after '@': inproc@--max-semi-space-size=64,
// and '~' runs it from the checkout given with --before DIR (its bench/e2e/roles.js and
// dist/): none,none~ compares this tree's proxy with that one's in the same run.
// Runs are interleaved (rotated order every repetition); figures are medians.
// Per run: req/s, the proxy's CPU per request (user + system, from /proc/<pid>/task: the
// main thread and the other threads: V8's GC and compiler helpers, libuv's file writes).
// --probe (bench/e2e/probe.js in the proxy): garbage collections per 1000 requests and their
//   main-thread pause per request; wall time per request inside the adapter chain's entry
//   points (newStream, request and response headers, log phase).
// --strace: one more run per variant under `strace -f -c`: system calls per request.
// A variant run with @--trace-gc-nvp also reports the bytes its proxy allocates per request,
// and how many of them survive a scavenge or are promoted (load-independent, unlike CPU time).
// Everything shares the machine (wrk, upstream, proxies): compare variants within a run.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../core/args.js';
import { median, round, spread } from '../core/stats.js';
import { benchConfig, makeCredentials, requestKinds } from './configs.js';
import { startRole, stopAll, track } from './procs.js';
import { CLK_TCK } from './procstat.js';
import { runWrk, writeScript } from './wrk.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: opt } = benchArgs({ variants: 'none,inproc', before: undefined, reps: 3, seconds: 4, connections: 64, warmup: 3, probe: false, strace: false, json: false, out: undefined, help: false });
if (opt.help) {
  process.stdout.write('node bench/e2e/saturation.js [--variants none,inproc[~][@--node-flag...]] [--before DIR] [--reps 3] [--seconds 4] [--connections 64] [--warmup 3] [--probe] [--strace] [--json] [--out FILE]\n');
  process.exit(0);
}
const variants = opt.variants.split(',').map((v) => {
  const [name, ...flags] = v.split('@');
  const before = name.endsWith('~');
  const mode = before ? name.slice(0, -1) : name;
  if (mode !== 'none' && mode !== 'inproc') throw new Error(`unknown variant ${v}: none or inproc, optionally ~ and @node-flags`);
  if (before && !opt.before) throw new Error(`variant ${v} needs --before DIR`);
  return { id: v, mode, flags, roles: before ? resolve(opt.before, 'bench/e2e/roles.js') : undefined };
});
if (opt.probe) process.env.WM_BENCH_PROBE = '1';

const tmp = await mkdtemp(join(os.tmpdir(), 'wm-sat-'));
const creds = await makeCredentials();
const script = writeScript(join(tmp, 'post.lua'), requestKinds(creds));
const upstream = await startRole('upstream', [], { logFile: join(tmp, 'upstream.log') });
const targets = [];
for (const v of variants) {
  const f = join(tmp, `proxy-${targets.length}.json`);
  await writeFile(f, JSON.stringify(benchConfig({ mode: v.mode, n: 4, creds, wasmDir: join(root, 'wasm'), upstreamPort: upstream.port, logDir: tmp })));
  const proxy = await startRole('proxy', [f], { nodeArgs: v.flags, roles: v.roles, logFile: join(tmp, `proxy-${targets.length}.log`) });
  const t = { ...v, proxy, probes: [], gc: { allocated: 0, survived: 0, promoted: 0 } };
  targets.push(t);
  // probe lines arrive on the proxy's stdout after each SIGUSR2
  let buf = '';
  proxy.child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('probe ')) t.probes.push(JSON.parse(line.slice(6)));
      else if (line.includes(' gc=')) {
        // node --trace-gc-nvp (a variant's @flag): bytes allocated, survived and promoted per collection
        for (const k of ['allocated', 'promoted']) t.gc[k] += Number(new RegExp(` ${k}=(\\d+)`).exec(line)?.[1] ?? 0);
        t.gc.survived += Number(/ new_space_survived=(\d+)/.exec(line)?.[1] ?? 0);
      }
    }
  });
}

/** utime and stime (ticks) of each thread of a process. */
function threadTicks(pid) {
  const out = new Map();
  for (const tid of readdirSafe(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), { user: Number(f[11]), sys: Number(f[12]) });
    } catch {
      /* thread gone */
    }
  }
  return out;
}
const readdirSafe = (d) => {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
};

async function probe(t) {
  const n = t.probes.length;
  t.proxy.child.kill('SIGUSR2');
  const until = Date.now() + 3000;
  while (t.probes.length === n && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  return t.probes.at(-1);
}

async function run(t, seconds) {
  const pid = t.proxy.pid;
  const p0 = opt.probe ? await probe(t) : null;
  const gc0 = { ...t.gc };
  const a = threadTicks(pid);
  const w = await runWrk({ port: t.proxy.port, connections: opt.connections, seconds, script });
  const b = threadTicks(pid);
  const p1 = opt.probe ? await probe(t) : null;
  const us = (ticks) => round((ticks * 1e6) / CLK_TCK / w.requests, 1);
  let main = { user: 0, sys: 0 };
  let other = { user: 0, sys: 0 };
  for (const [tid, x] of b) {
    const y = a.get(tid) ?? { user: 0, sys: 0 };
    const acc = tid === pid ? main : other;
    acc.user += x.user - y.user;
    acc.sys += x.sys - y.sys;
  }
  const r = {
    rps: w.rps,
    requests: w.requests,
    errors: w.non2xx + w.socketErrors,
    cpuUsPerRequest: us(main.user + main.sys + other.user + other.sys),
    mainThread: { user: us(main.user), sys: us(main.sys) },
    otherThreads: us(other.user + other.sys),
  };
  if (t.gc.allocated > gc0.allocated) {
    // whole collections only: close to exact over many of them
    r.gcBytesPerRequest = Object.fromEntries(Object.keys(t.gc).map((k) => [k, Math.round((t.gc[k] - gc0[k]) / w.requests)]));
  }
  if (p0 && p1) {
    const n = p1.requests - p0.requests;
    r.probe = {
      scavengesPer1000: round(((p1.scavenges - p0.scavenges) * 1000) / n, 2),
      gcPauseUsPerRequest: round(((p1.scavengeMs - p0.scavengeMs + p1.majorGcMs - p0.majorGcMs + p1.otherGcMs - p0.otherGcMs) * 1000) / n, 1),
      majorGcs: p1.majorGcs - p0.majorGcs,
      chainUsPerRequest: Object.fromEntries(Object.keys(p1.chainMs).map((k) => [k, round(((p1.chainMs[k] - p0.chainMs[k]) * 1000) / n, 1)])),
      chainCpuUsPerRequest: p1.chainCpuMs ? Object.fromEntries(Object.keys(p1.chainCpuMs).map((k) => [k, round(((p1.chainCpuMs[k] - p0.chainCpuMs[k]) * 1000) / n, 1)])) : undefined,
    };
    r.probe.chainTotalUsPerRequest = round(Object.values(r.probe.chainUsPerRequest).reduce((x, y) => x + y, 0), 1);
  }
  return r;
}

/** One run under `strace -f -c`: system calls of the proxy per request (strace slows it; counts, not times, matter). */
async function straceRun(t) {
  const outFile = join(tmp, `strace-${t.proxy.pid}.txt`);
  const st = track(spawn('strace', ['-f', '-c', '-o', outFile, '-p', String(t.proxy.pid)], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 1000));
  const w = await runWrk({ port: t.proxy.port, connections: opt.connections, seconds: opt.seconds, script });
  await new Promise((r) => setTimeout(r, 300));
  st.kill('SIGINT');
  await new Promise((r) => st.once('exit', r));
  const calls = {};
  for (const line of readFileSync(outFile, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m && m[2] !== 'total') calls[m[2]] = round(Number(m[1]) / w.requests, 3);
  }
  return { requests: w.requests, perRequest: Object.fromEntries(Object.entries(calls).sort((x, y) => y[1] - x[1])) };
}

const log = (s) => process.stderr.write(`${s}\n`);
try {
  for (const t of targets) {
    log(`warm-up ${t.id}`);
    await run(t, opt.warmup);
  }
  const runs = Object.fromEntries(targets.map((t) => [t.id, []]));
  for (let rep = 0; rep < opt.reps; rep++) {
    for (let k = 0; k < targets.length; k++) {
      const t = targets[(k + rep) % targets.length];
      const r = await run(t, opt.seconds);
      runs[t.id].push(r);
      log(`rep ${rep + 1} ${t.id}: ${r.rps} req/s, ${r.cpuUsPerRequest} µs CPU/req (main ${r.mainThread.user}+${r.mainThread.sys}, other threads ${r.otherThreads})` + (r.probe ? `, chain ${r.probe.chainTotalUsPerRequest} µs, GC pause ${r.probe.gcPauseUsPerRequest} µs, ${r.probe.scavengesPer1000} scavenges/1000` : ''));
    }
  }
  const med = (xs, f) => {
    const v = xs.map(f).filter((x) => x != null);
    return v.length ? { median: round(median(v), 1), range: spread(v).map((x) => round(x, 1)) } : null;
  };
  const summary = {};
  for (const t of targets) {
    const xs = runs[t.id];
    summary[t.id] = {
      rps: med(xs, (x) => x.rps),
      cpuUsPerRequest: med(xs, (x) => x.cpuUsPerRequest),
      mainThreadUsPerRequest: med(xs, (x) => x.mainThread.user + x.mainThread.sys),
      otherThreadsUsPerRequest: med(xs, (x) => x.otherThreads),
      ...(xs.some((x) => x.gcBytesPerRequest)
        ? { allocatedBytesPerRequest: med(xs, (x) => x.gcBytesPerRequest?.allocated), survivedBytesPerRequest: med(xs, (x) => x.gcBytesPerRequest?.survived), promotedBytesPerRequest: med(xs, (x) => x.gcBytesPerRequest?.promoted) }
        : {}),
      ...(opt.probe
        ? {
            chainUsPerRequest: med(xs, (x) => x.probe?.chainTotalUsPerRequest),
            gcPauseUsPerRequest: med(xs, (x) => x.probe?.gcPauseUsPerRequest),
            scavengesPer1000: med(xs, (x) => x.probe?.scavengesPer1000),
          }
        : {}),
    };
  }
  // Ratios to the proxy without adapters from the same tree and repetition (the same noise hits both), then their median.
  for (const t of targets) {
    const base = targets.find((b) => b.mode === 'none' && b.roles === t.roles);
    if (base === undefined || base === t) continue;
    const ratios = runs[t.id].map((x, i) => x.rps / runs[base.id][i].rps);
    summary[t.id].rpsRatioVsNone = { median: round(median(ratios), 3), range: spread(ratios).map((x) => round(x, 3)) };
  }
  let strace = null;
  if (opt.strace) {
    strace = {};
    for (const t of targets) {
      log(`strace ${t.id}`);
      strace[t.id] = await straceRun(t);
    }
  }
  const loadavg = os.loadavg().map((x) => round(x, 2));
  const result = {
    command: `node bench/e2e/saturation.js ${process.argv.slice(2).join(' ')}`.trim(),
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version, loadAvgAtEnd: loadavg },
    settings: { connections: opt.connections, seconds: opt.seconds, reps: opt.reps, warmup: opt.warmup },
    summary,
    strace,
    runs,
  };
  if (opt.out) await writeFile(opt.out, JSON.stringify(result, null, 2) + '\n');
  if (opt.json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    for (const [id, s] of Object.entries(summary)) {
      process.stdout.write(
        `${id}: ${s.rps.median} req/s [${s.rps.range.join('–')}]` +
          (s.rpsRatioVsNone ? ` (×${s.rpsRatioVsNone.median} of none [${s.rpsRatioVsNone.range.join('–')}])` : '') +
          `, CPU ${s.cpuUsPerRequest.median} µs/req (main thread ${s.mainThreadUsPerRequest.median}, other threads ${s.otherThreadsUsPerRequest.median})` +
          (s.allocatedBytesPerRequest ? `, allocated ${s.allocatedBytesPerRequest.median} B/req (survived a scavenge ${s.survivedBytesPerRequest.median}, promoted ${s.promotedBytesPerRequest.median})` : '') +
          (s.chainUsPerRequest ? `, in the chain ${s.chainUsPerRequest.median} µs, GC pause ${s.gcPauseUsPerRequest.median} µs, ${s.scavengesPer1000.median} scavenges/1000 req` : '') +
          '\n',
      );
    }
    if (strace) for (const [id, s] of Object.entries(strace)) process.stdout.write(`syscalls per request, ${id}: ${Object.entries(s.perRequest).filter(([, n]) => n >= 0.01).map(([k, n]) => `${k} ${n}`).join(', ')}\n`);
    process.stdout.write(`load average at the end: ${loadavg.join(' / ')} (${os.cpus().length} cores)\n`);
  }
} finally {
  await stopAll();
}
