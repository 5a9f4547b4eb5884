// Start-up of the benchmark's four adapters (issue 14: load + compile + configure ≤ 50 ms,
// RSS added ≤ 8 MiB), in this fresh process, split into the first config validation (the
// config schema's validator is compiled on first use) and WasmHost.create (read, compile,
// instantiate, vm_start, configure). One measurement per process: start-up is a first-time
// cost, so repeat the command and take medians, alternating checkouts for an A/B:
//
//   node bench/micro/startup.js [--json]
//   for i in $(seq 9); do for d in ../before .; do (cd $d && node bench/micro/startup.js --json); done; done
//
// WASM_MIXER_INSTRUMENTED_CACHE=off measures a first start (the metering rewrite included).
// `chrt -f 10` in front (root) keeps other processes from deciding the wall time.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WasmHost } from '../../dist/host/src/index.js';
import { validateConfig } from '../../dist/host/src/config/load.js';
import { benchConfig, chainPlugins, makeCredentials } from '../e2e/configs.js';
import { benchArgs } from '../core/args.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values: opt } = benchArgs({ json: false, help: false });
if (opt.help) {
  process.stdout.write('node bench/micro/startup.js [--json]\n');
  process.exit(0);
}
const tmp = await mkdtemp(join(os.tmpdir(), 'wm-startup-'));
const creds = await makeCredentials();
const wasmDir = resolve(root, 'wasm');
const config = benchConfig({ mode: 'inproc', n: 4, creds, wasmDir, upstreamPort: 9, logDir: tmp });
config.plugins = chainPlugins(4, creds, wasmDir);

globalThis.gc?.();
const rss0 = process.memoryUsage().rss;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const valid = validateConfig(config, 'bench startup');
const t1 = performance.now();
const host = await WasmHost.create(valid, { logger: { level: 5, log() {} }, baseDir: tmp });
const t2 = performance.now();
const cpu = process.cpuUsage(cpu0);
const r = {
  totalMs: round(t2 - t0),
  validateConfigMs: round(t1 - t0),
  createMs: round(t2 - t1),
  cpuMs: round((cpu.user + cpu.system) / 1000),
  rssAddedMiB: round((process.memoryUsage().rss - rss0) / 2 ** 20),
  perAdapterMs: Object.fromEntries(host.plugins.map((p) => [p.config.name, round(p.loadMs)])),
};
await host.close();
await rm(tmp, { recursive: true, force: true });
process.stdout.write(opt.json ? `${JSON.stringify(r)}\n` : `start-up of the four: ${r.totalMs} ms (config validation ${r.validateConfigMs} ms + WasmHost.create ${r.createMs} ms), CPU ${r.cpuMs} ms, RSS +${r.rssAddedMiB} MiB\n`);
process.exit(0);

function round(x) {
  return Math.round(x * 10) / 10;
}
