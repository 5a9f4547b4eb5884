// Start-up of the benchmark's four adapters (issue 14: load + compile + configure ≤ 50 ms,
// RSS added ≤ 8 MiB), in this fresh process, split into the first config validation (the
// generated validator is loaded on first use) and WasmHost.create (read, compile,
// instantiate, vm_start, configure). One measurement per process: start-up is a first-time
// cost, so repeat the command and take medians, alternating checkouts for an A/B:
//
//   node bench/micro/startup.js [--json] [--dir CHECKOUT]
//   for i in $(seq 9); do for d in ../before .; do node bench/micro/startup.js --json --dir $d; done; done
//
// --dir: the checkout whose dist/ and wasm/ are measured (default this one), so one script
// measures an older build the same way. rssCreateMiB is the RSS WasmHost.create added (the
// four VMs); rssAddedMiB also counts the first validation (the validator's code, since it is
// no longer compiled at import); rssMiB is the process's RSS after create. RSS added depends on
// what the process freed before (pages the allocator reuses), so compare builds by rssMiB too.
// validator: 'generated' (npm run build) or 'runtime', and whether V8 used its code cache
// (host/src/config/validator.ts); absent in older builds.
//
// pageFaults: the minor page faults in the measured span (an exact count, unlike the times: on
// the Firecracker VMs the benchmarks run on, each fresh 4 KiB page costs ~13 µs). mainCpuMs: the
// main thread's CPU time (Linux; the background compile threads' is in cpuMs). firstRequestMs /
// firstJwtRequestMs: after start-up, one API-key request and then one JWT request through the
// chain (bench/micro/request.js driveRequest), each the first of its kind, so that work moved
// out of start-up into the first requests shows.
//
// WASM_MIXER_INSTRUMENTED_CACHE=off measures a first start (the metering rewrite included).
// `chrt -f 10` in front (root) keeps other processes from deciding the wall time.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { benchConfig, chainPlugins, makeCredentials } from '../e2e/configs.js';
import { benchArgs } from '../core/args.js';
import { driveRequest } from './request.js';

const { values: opt } = benchArgs({ json: false, dir: undefined, help: false });
if (opt.help) {
  process.stdout.write('node bench/micro/startup.js [--json] [--dir CHECKOUT]\n');
  process.exit(0);
}
const root = opt.dir !== undefined ? resolve(opt.dir) : resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dist = (f) => import(pathToFileURL(join(root, 'dist/host/src', f)).href);
const { WasmHost } = await dist('index.js');
const { validateConfig } = await dist('config/load.js');
const validatorModule = await dist('config/validator.js').catch(() => null);
const tmp = await mkdtemp(join(os.tmpdir(), 'wm-startup-'));
const creds = await makeCredentials();
const wasmDir = resolve(root, 'wasm');
const config = benchConfig({ mode: 'inproc', n: 4, creds, wasmDir, upstreamPort: 9, logDir: tmp });
config.plugins = chainPlugins(4, creds, wasmDir);

globalThis.gc?.();
const rss0 = process.memoryUsage().rss;
const faults0 = process.resourceUsage().minorPageFault;
const main0 = mainThreadCpuNs();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const valid = validateConfig(config, 'bench startup');
const t1 = performance.now();
const rss1 = process.memoryUsage().rss;
const host = await WasmHost.create(valid, { logger: { level: 5, log() {} }, baseDir: tmp });
const t2 = performance.now();
const cpu = process.cpuUsage(cpu0);
const main1 = mainThreadCpuNs();
const faults = process.resourceUsage().minorPageFault - faults0;
const rss2 = process.memoryUsage().rss;
const firstRequestMs = timedRequest(['x-api-key', creds.apiKey], 0);
const firstJwtRequestMs = timedRequest(['authorization', `Bearer ${creds.jwt}`], 1);
const r = {
  totalMs: round(t2 - t0),
  validateConfigMs: round(t1 - t0),
  createMs: round(t2 - t1),
  cpuMs: round((cpu.user + cpu.system) / 1000),
  ...(main0 !== null && main1 !== null ? { mainCpuMs: round((main1 - main0) / 1e6) } : {}),
  pageFaults: faults,
  rssAddedMiB: round((rss2 - rss0) / 2 ** 20),
  rssCreateMiB: round((rss2 - rss1) / 2 ** 20),
  rssMiB: round(rss2 / 2 ** 20),
  firstRequestMs,
  firstJwtRequestMs,
  ...(validatorModule !== null ? { validator: validatorModule.configValidator().source, validatorCached: validatorModule.configValidator().cached } : {}),
  perAdapterMs: Object.fromEntries(host.plugins.map((p) => [p.config.name, round(p.loadMs)])),
};
await host.close();
await rm(tmp, { recursive: true, force: true });
process.stdout.write(opt.json ? `${JSON.stringify(r)}\n` : `start-up of the four: ${r.totalMs} ms (config validation ${r.validateConfigMs} ms + WasmHost.create ${r.createMs} ms), CPU ${r.cpuMs} ms, RSS +${r.rssAddedMiB} MiB (WasmHost.create +${r.rssCreateMiB} MiB), ${r.pageFaults} page faults; first API-key request ${r.firstRequestMs} ms, first JWT request ${r.firstJwtRequestMs} ms\n`);
process.exit(0);

/** One request through the chain, in ms (it must pass: the benchmark's credentials are valid). */
function timedRequest(credential, c) {
  const t = performance.now();
  const action = driveRequest(host, credential, c);
  const ms = performance.now() - t;
  if (action !== 'continue') throw new Error(`the first request was refused (${action})`);
  return round(ms);
}

/** The main thread's CPU time in ns (Linux schedstat), or null elsewhere. */
function mainThreadCpuNs() {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

function round(x) {
  return Math.round(x * 10) / 10;
}
