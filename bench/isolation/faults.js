// Issue 11's fault table, measured: each hostile module kind runs through the
// real proxy (startProxy, loopback, default limits) in a fresh child process,
// while a 1 ms timer-drift probe measures the longest event-loop stall and a
// sampler the RSS high-water mark. Bystander requests on a route without the
// adapter run meanwhile and must all be answered.
//
//   npm run build:host && node bench/isolation/faults.js [--out bench/results/isolation-faults.json]
//
// The "before" numbers in the results file are the issue's own measurements
// (issue 11's table, same machine class, before this change).

import { spawn } from 'node:child_process';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../core/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const args = process.argv.slice(2);
// --only 'a,b': run only the faults whose names start with these; --dist DIR: the build to measure (default ./dist).
// --baseline FILE: a results file from a run against the build before the change (--dist), merged in as beforeMeasured.
// --child NAME: one fault, in the fresh process the parent starts for it.
const { values: opt } = benchArgs({ out: 'bench/results/isolation-faults.json', only: '', dist: 'dist', baseline: null, child: undefined }, { args });
const OUT = resolve(root, opt.out);
const ONLY = opt.only.split(',').filter(Boolean);
const DIST = resolve(root, opt.dist);
const BASELINE = opt.baseline;
const MB = 1024 * 1024;

const FAULTS = {
  'table.grow x40 by 10M': { fixture: 'isolation-faults', requests: ['/grow'], before: 'process died (heap OOM in WasmTableObject::Grow) after a 34 s stall, 7.6 GB RSS' },
  'memory.fill loop over 64 MiB': { fixture: 'isolation-faults', requests: ['/fill'], before: 'frozen > 35 s (SIGKILL needed); 0.42 s with the smallest budget' },
  'loop calling proxy_get_current_time_nanoseconds': { fixture: 'isolation-faults', requests: ['/time'], before: '5.57 s stall' },
  '50 x 1 MiB set_shared_data under new keys, 20 requests': { fixture: 'isolation-faults', requests: Array(20).fill('/shared'), before: 'RSS 82 MB -> 1.1 GB; /adapters reported 1.2 MB' },
  'fd_write with 2,000 iovecs over 64 KiB': { fixture: 'isolation-faults', requests: ['/fdwrite'], before: '131 MB log line, 812 MB RSS, 1.56 s stall' },
  'fd_write with 1,000 iovecs over 64 KiB': { fixture: 'isolation-faults', requests: ['/fdwrite1000'], before: '(accepted: a 65 MB log line)' },
  '1,000 x 64 KiB proxy_log in one callback': { fixture: 'isolation-faults', requests: ['/logs'], before: '(1,000 lines, 64 MB of log)' },
  'tick period 0xFFFFFFFF': { fixture: 'tick-overflow', requests: [], waitMs: 2000, before: 'TimeoutOverflowWarning, then on_tick every 1 ms (1,802 in 2 s)' },
  '1-in-50 trap, FAIL_CLOSE, 300 req/s': { fixture: 'trap', load: { rps: 300, seconds: 5 }, before: '96 % of the other requests failed (7,067 of 7,350 got 503)' },
};

if (opt.child !== undefined) await child(opt.child);
else await parent();

async function parent() {
  const results = [];
  for (const name of Object.keys(FAULTS)) {
    if (ONLY.length > 0 && !ONLY.some((o) => name.startsWith(o))) continue;
    const r = await runChild(name).catch((err) => ({ error: String(err.message).slice(0, 300), stallMs: null, rssGrowthMb: null, rssHighMb: null, summary: 'failed' }));
    console.log(`${name}: stall ${r.stallMs} ms, RSS +${r.rssGrowthMb} MiB (high-water ${r.rssHighMb} MiB), ${r.summary}`);
    results.push({ fault: name, before: FAULTS[name].before, after: r });
  }
  if (BASELINE) {
    const base = JSON.parse(await readFile(resolve(root, BASELINE), 'utf8'));
    for (const r of results) {
      const b = base.results.find((x) => x.fault === r.fault);
      if (b) r.beforeMeasured = { command: base.command, ...b.after };
    }
  }
  const out = {
    command: `node bench/isolation/faults.js${args.filter((a) => a !== '--out' && a !== opt.out).map((a) => ` ${a}`).join('')}`,
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    bound: 'about 200 ms per callback (docs/operating.md "Limits")',
    results,
  };
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, JSON.stringify(out, null, 2) + '\n');
  console.log(`wrote ${OUT}`);
}

function runChild(name) {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', name, '--dist', DIST], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 60_000, killSignal: 'SIGKILL' });
    let out = '';
    p.stdout.on('data', (c) => (out += c));
    p.on('exit', (code) => (code === 0 ? resolvePromise(JSON.parse(out)) : reject(new Error(`${name}: child exited ${code}: ${out}`))));
  });
}

function get(port, path) {
  return new Promise((res) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.setTimeout(60_000, () => req.destroy());
    req.on('error', () => res({ status: 0, body: '' }));
  });
}

async function child(name) {
  const f = FAULTS[name];
  const { startProxy } = await import(resolve(DIST, 'host/src/index.js'));
  const { createLogger } = await import(resolve(DIST, 'host/src/log/logger.js'));
  const wabt = await (await import('wabt')).default();
  const text = await readFile(resolve(root, 'test/fixtures/guests', `${f.fixture}.wat`), 'utf8');
  const m = wabt.parseWat(`${f.fixture}.wat`, text, { mutable_globals: true, bulk_memory: true, reference_types: true, sign_extension: true, sat_float_to_int: true, multi_value: true });
  m.resolveNames();
  m.validate();
  const wasm = m.toBinary({}).buffer;
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ headers: req.headers })));
  });
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  const logs = { lines: 0, bytes: 0, ticks: 0, warnings: [] };
  process.on('warning', (w) => logs.warnings.push(w.name));
  const logger = createLogger(0, (r) => {
    logs.lines++;
    logs.bytes += r.message.length;
    if (r.message === 'tick') logs.ticks++;
  });
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'r', upstream: `http://127.0.0.1:${upstream.address().port}` }],
      plugins: [{ name: 'hostile', url: 'h.wasm', match: [{ paths: ['/grow', '/fill', '/time', '/shared', '/fdwrite', '/logs', '/trap', '/ok', '/tick'].map((prefix) => ({ prefix })) }] }],
    },
    { modules: { 'h.wasm': wasm }, logger },
  );
  await get(proxy.port, '/ok'); // warm up
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  let rssHigh = rss0;
  let stall = 0;
  let last = performance.now();
  const probe = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - last - 1);
    last = now;
    rssHigh = Math.max(rssHigh, process.memoryUsage().rss);
  }, 1);
  const bystanders = [];
  let running = true;
  const bystand = (async () => {
    while (running) {
      bystanders.push(get(proxy.port, '/bystander').then((r) => r.status));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const t0 = performance.now();
  let summary;
  if (f.load) {
    summary = await load(proxy.port, f.load);
  } else {
    const statuses = [];
    for (const path of f.requests) statuses.push((await get(proxy.port, path)).status);
    if (f.waitMs) await new Promise((r) => setTimeout(r, f.waitMs));
    summary = `statuses ${[...new Set(statuses)].join(',') || '-'}`;
  }
  const ms = performance.now() - t0;
  running = false;
  await bystand;
  clearInterval(probe);
  const by = await Promise.all(bystanders);
  const adapters = JSON.parse((await get(proxy.adminPort, '/adapters')).body);
  const hm = adapters[0].hostMemory ?? {}; // absent before issue 11
  const result = {
    stallMs: Math.round(stall),
    durationMs: Math.round(ms),
    rssGrowthMb: Math.round((process.memoryUsage().rss - rss0) / MB),
    rssHighMb: Math.round(rssHigh / MB),
    heapUsedMb: Math.round(process.memoryUsage().heapUsed / MB),
    bystanders: { sent: by.length, ok: by.filter((s) => s === 200).length },
    adapterHostMemoryBytes: hm.totalBytes,
    sharedDataBytes: hm.sharedDataBytes,
    crashes: adapters[0].crashes,
    lastCrash: adapters[0].lastCrash?.code ?? null,
    logLines: logs.lines,
    logBytes: logs.bytes,
    ticks: logs.ticks,
    warnings: logs.warnings,
    summary,
  };
  await proxy.close();
  upstream.close();
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

/** Steady load at `rps` for `seconds`, every 50th request on /trap; counts the others' statuses. */
async function load(port, { rps, seconds }) {
  const total = rps * seconds;
  const pending = [];
  let trapOk = 0;
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rps;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const trap = i % 50 === 49;
    pending.push(get(port, trap ? '/trap' : `/ok/${i}`).then((r) => ({ trap, status: r.status })));
  }
  const rs = await Promise.all(pending);
  const others = rs.filter((r) => !r.trap);
  const ok = others.filter((r) => r.status === 200).length;
  trapOk = rs.filter((r) => r.trap && r.status === 503).length;
  return `${ok} of ${others.length} other requests OK (${((100 * ok) / others.length).toFixed(2)} %), ${trapOk} trapping requests got 503`;
}
