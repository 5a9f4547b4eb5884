// Issue 14's measurement: CPU time per request of the benchmark's adapters in process,
// driven through WasmHost the way the proxy drives them (request headers, response
// headers, log phase) with one API-key request, sequentially. Variants, interleaved,
// each against the no-adapter host measured in the same run:
//   none             WasmHost with no plugins (the baseline)
//   auth, quota, logging, prometheus   each adapter alone with its benchmark config
//   auth jwt         auth alone with a JWT request (Authorization: Bearer, the e2e run's other half)
//   chain4           the four together (bench/e2e/configs.js, unchanged)
//   chain4 unmetered the same with limits.metering: false (what the work budget costs)
//   chain4 jwt       the four with the JWT request (verified once, then from auth's cache)
//   header-check     the SDK's example adapter
//
//   node bench/micro/adapters.js [--runs 5] [--requests 20000] [--only v1,v2] [--profile] [--json] [--out FILE]
//
// --profile adds, per variant, a CPU profile of --requests more requests (node:inspector,
// the same sampler as node --cpu-prof) split by layer: wasm (the adapters), host JS,
// allocation (Buffer/typed arrays), GC, node internals; µs per request for each.
//
// Needs `npm run build`. CPU is process.cpuUsage() (all threads: the access log's file
// writes included); the loop yields to the event loop every 64 requests so those writes
// happen inside the measurement. Figures are medians of --runs interleaved runs.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WasmHost } from '../../dist/host/src/index.js';
import { validateConfig } from '../../dist/host/src/config/load.js';
import { benchConfig, chainPlugins, makeCredentials } from '../e2e/configs.js';
import { driveRequest } from './request.js';
import { benchArgs } from '../core/args.js';
import { median, spread, round } from '../core/stats.js';
import { summarize } from '../e2e/profile.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: opt } = benchArgs({ runs: 5, requests: 20000, json: false, out: undefined, only: undefined, profile: false, help: false });
if (opt.help) {
  process.stdout.write('node bench/micro/adapters.js [--runs 5] [--requests 20000] [--only v1,v2] [--profile] [--json] [--out FILE]\n');
  process.exit(0);
}
const { runs: RUNS, requests: REQUESTS } = opt;

const tmp = await mkdtemp(join(os.tmpdir(), 'wm-bench-adapters-'));
const creds = await makeCredentials();
const wasmDir = resolve(root, 'wasm');
const quiet = { level: 5, log() {} };
const all = chainPlugins(4, creds, wasmDir);
const byName = Object.fromEntries(all.map((p) => [p.name, p]));

async function host(plugins, limits) {
  const c = benchConfig({ mode: 'inproc', n: 4, creds, wasmDir, upstreamPort: 9, logDir: tmp });
  c.plugins = plugins.map((p) => ({ ...structuredClone(p), ...(limits ? { limits } : {}) }));
  return WasmHost.create(validateConfig(c, 'bench adapters'), { logger: quiet, baseDir: tmp });
}

// Start-up of the four (issue 14: load + compile + configure ≤ 50 ms, RSS added ≤ 8 MiB):
// measured first, in a process that has compiled no module yet, after a GC if exposed.
globalThis.gc?.();
const rss0 = process.memoryUsage().rss;
const t0 = performance.now();
const chain4 = await host(all);
const startup = { chain4LoadMs: round(performance.now() - t0, 1), chain4RssAddedMiB: round((process.memoryUsage().rss - rss0) / 2 ** 20, 1) };

const variants = {
  none: await host([]),
  auth: await host([byName.auth]),
  'auth jwt': await host([byName.auth]),
  quota: await host([byName.quota]),
  logging: await host([byName.logging]),
  prometheus: await host([byName.prometheus]),
  chain4,
  'chain4 unmetered': await host(all, { metering: false }),
  'chain4 jwt': await host(all),
  'header-check': await host([{ name: 'header-check', url: resolve(wasmDir, 'header-check.wasm'), pluginConfig: { header: 'x-api-key' } }]),
};
const names = Object.keys(variants).filter((n) => !opt.only || n === 'none' || opt.only.split(',').includes(n));

// Every variant sends the API-key request but the two jwt ones, which send the JWT one.
const apiKeyHeader = ['x-api-key', creds.apiKey];
const jwtHeader = ['authorization', `Bearer ${creds.jwt}`];
const credentialOf = (h) => (h === variants['auth jwt'] || h === variants['chain4 jwt'] ? jwtHeader : apiKeyHeader);
let conn = 0;
let denied = 0;
function oneRequest(h) {
  if (driveRequest(h, credentialOf(h).slice(), conn++ % 16) !== 'continue') denied++;
}

// process.cpuUsage() counts every thread: the access log's file sink writes on the thread
// pool up to its flush interval (100 ms) after a line arrives, and V8 compiles hot wasm and JS
// functions on background threads after a variant has run them. A slice starts and ends
// only once the process is quiet (under QUIET_US of CPU in a SETTLE_MS window, for at most
// SETTLE_MAX_MS), so one variant's writes and compiles stay out of the next one's figure
// (a fixed 150 ms wait still let a background tier-up land in the slice after a warm-up:
// the no-adapter baseline read 0.8 µs in one run and 4.7 in the next).
const SETTLE_MS = 150;
const QUIET_US = 3000;
const SETTLE_MAX_MS = 3000;
async function settle() {
  for (let waited = 0; waited < SETTLE_MAX_MS; waited += SETTLE_MS) {
    const c0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const c = process.cpuUsage(c0);
    if (c.user + c.system < QUIET_US) return;
  }
}

async function measure(h, n) {
  await settle();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    oneRequest(h);
    if ((i & 63) === 63) await new Promise(setImmediate);
  }
  await settle();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const progress = (s) => process.stderr.write(`  adapters: ${s}\n`);
// Two warm-up passes, in both orders: after one, the first timed run still paid for V8
// re-optimizing the host's code for the mix of variants (the no-adapter baseline's first
// slice read 5-6 µs instead of 0.8, header-check's 3.3 instead of 2.3).
for (const pass of [names, [...names].reverse()]) {
  for (const n of pass) {
    progress(`warm-up ${n}`);
    await measure(variants[n], Math.min(REQUESTS, 5000));
  }
}
if (denied) throw new Error(`${denied} requests denied during warm-up: the bench config is broken`);
const samples = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < RUNS; r++) {
  progress(`run ${r + 1}/${RUNS}`);
  for (const n of r % 2 ? [...names].reverse() : names) samples[n].push(await measure(variants[n], REQUESTS));
}
// Per-layer split: one profiled pass per variant, after the timed runs (the sampler costs CPU itself).
const layers = {};
if (opt.profile) {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  for (const n of names) {
    progress(`profile ${n}`);
    await session.post('Profiler.start');
    await measure(variants[n], REQUESTS);
    const { profile } = await session.post('Profiler.stop');
    const file = join(tmp, `${n.replace(/\W+/g, '-')}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
    const s = summarize(file, { root, requests: REQUESTS, top: 8 });
    layers[n] = { busyUsPerRequest: s.busyUsPerRequest, categories: s.categories, hostJsByFile: s.hostJsByFile.slice(0, 6), top: s.top };
  }
  session.disconnect();
}

const base = median(samples.none);
const rows = names.map((n) => {
  const us = median(samples[n]);
  return { variant: n, cpuUsPerRequest: round(us, 2), overBaselineUs: round(us - base, 2), spread: spread(samples[n]) };
});
const result = {
  command: `node bench/micro/adapters.js --runs ${RUNS} --requests ${REQUESTS}`,
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg().map((x) => round(x, 2)) },
  date: new Date().toISOString(),
  rows,
  meteringCost: round(median(samples.chain4 ?? [NaN]) / median(samples['chain4 unmetered'] ?? [NaN]), 3),
  startup,
  layers: opt.profile ? layers : undefined,
};
if (opt.out) await writeFile(opt.out, JSON.stringify(result, null, 2) + '\n');
if (opt.json) process.stdout.write(JSON.stringify(result) + '\n');
else {
  process.stdout.write(`| variant | CPU µs/request | over no-adapter host | spread |\n|---|---|---|---|\n`);
  for (const r of rows) process.stdout.write(`| ${r.variant} | ${r.cpuUsPerRequest} | ${r.overBaselineUs} | ${JSON.stringify(r.spread)} |\n`);
  process.stdout.write(`\nchain4 metered ÷ unmetered: ×${result.meteringCost}. Start-up of the four: ${startup.chain4LoadMs} ms (load + compile + configure), RSS +${startup.chain4RssAddedMiB} MiB.\n`);
  if (opt.profile) {
    const cols = ['wasm (adapters)', 'host JS', 'allocation (Buffer, typed arrays)', 'GC', 'node internals (JS)', 'node internals (native)', 'V8/native (program)'];
    process.stdout.write(`\nProfiled µs per request by layer (sampler on; shares of busy time in brackets)\n\n| variant | busy | ${cols.join(' | ')} |\n|---|---|${cols.map(() => '---').join('|')}|\n`);
    for (const n of names) {
      const l = layers[n];
      const cell = (c) => {
        const x = l.categories.find((k) => k.category === c);
        return x ? `${x.usPerRequest} (${x.percent} %)` : '0';
      };
      process.stdout.write(`| ${n} | ${l.busyUsPerRequest} | ${cols.map(cell).join(' | ')} |\n`);
    }
  }
}
for (const h of Object.values(variants)) await h.close?.();
process.exit(0);
