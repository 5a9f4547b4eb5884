// What the work budget (metering) costs the benchmark's chain of four, measured in one
// process: a metered and an unmetered host (plugin limits.metering: false) of the same
// four adapters take turns in short batches, so drift in the machine's speed (other
// programs, frequency, the VM's neighbours) lands on both sides alike. Each round gives one
// paired ratio metered ÷ unmetered; the result is their median and spread.
//
//   node bench/micro/metering-ab.js [--rounds 40] [--batch 2000] [--json] [--out FILE]
//
// Separate processes (bench/micro/adapters.js, ab.js) could not resolve a few per cent on
// this 2-core VM: their slices are seconds apart and the machine's speed moves by more.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WasmHost } from '../../dist/host/src/index.js';
import { validateConfig } from '../../dist/host/src/config/load.js';
import { benchConfig, chainPlugins, makeCredentials } from '../e2e/configs.js';
import { benchArgs } from '../core/args.js';
import { median, spread, round } from '../core/stats.js';
import { driveRequest } from './request.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values: opt } = benchArgs({ rounds: 40, batch: 2000, json: false, out: undefined, help: false });
if (opt.help) {
  process.stdout.write('node bench/micro/metering-ab.js [--rounds 40] [--batch 2000] [--json] [--out FILE]\n');
  process.exit(0);
}
const tmp = await mkdtemp(join(os.tmpdir(), 'wm-metering-ab-'));
const creds = await makeCredentials();
const wasmDir = resolve(root, 'wasm');

async function host(limits) {
  const c = benchConfig({ mode: 'inproc', n: 4, creds, wasmDir, upstreamPort: 9, logDir: tmp });
  c.plugins = chainPlugins(4, creds, wasmDir).map((p) => ({ ...p, ...(limits ? { limits } : {}) }));
  return WasmHost.create(validateConfig(c, 'bench metering-ab'), { logger: { level: 5, log() {} }, baseDir: tmp });
}
const sides = { metered: await host(), unmetered: await host({ metering: false }) };

const credential = ['x-api-key', creds.apiKey];
let conn = 0;
function oneRequest(h) {
  if (driveRequest(h, credential.slice(), conn++ % 16) !== 'continue') throw new Error('the bench request was not let through: the bench config is broken');
}
async function batch(h, n) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    oneRequest(h);
    if ((i & 63) === 63) await new Promise(setImmediate);
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

for (const h of Object.values(sides)) await batch(h, 10_000); // warm-up: every tier-up done
const us = { metered: [], unmetered: [] };
const ratios = [];
for (let r = 0; r < opt.rounds; r++) {
  const order = r % 2 ? ['unmetered', 'metered'] : ['metered', 'unmetered'];
  const got = {};
  for (const side of order) got[side] = await batch(sides[side], opt.batch);
  us.metered.push(got.metered);
  us.unmetered.push(got.unmetered);
  ratios.push(got.metered / got.unmetered);
}
await Promise.all(Object.values(sides).map((h) => h.close()));
await rm(tmp, { recursive: true, force: true });

const result = {
  command: `node bench/micro/metering-ab.js --rounds ${opt.rounds} --batch ${opt.batch}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, node: process.version, loadAvgAtEnd: os.loadavg().map((x) => round(x, 2)) },
  meteredUs: round(median(us.metered), 2),
  unmeteredUs: round(median(us.unmetered), 2),
  ratio: round(median(ratios), 4),
  ratioSpread: spread(ratios).map((x) => round(x, 4)),
  rounds: opt.rounds,
};
if (opt.out) await writeFile(opt.out, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(opt.json ? `${JSON.stringify(result)}\n` : `chain of four, metered ${result.meteredUs} µs vs unmetered ${result.unmeteredUs} µs per request: metered ÷ unmetered ×${result.ratio} (median of ${opt.rounds} paired rounds; spread ${result.ratioSpread.join('–')})\n`);
process.exit(0);
