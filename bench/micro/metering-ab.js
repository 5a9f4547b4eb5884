// What the work budget (metering) costs the benchmark's chain of four, measured in one
// process: a metered and an unmetered host (plugin limits.metering: false) of the same
// four adapters take turns in short batches, so drift in the machine's speed (other
// programs, frequency, the VM's neighbours) lands on both sides alike. Each round gives one
// paired ratio metered ÷ unmetered; the result is their median and spread.
//
//   node bench/micro/metering-ab.js [--rounds 40] [--batch 2000] [--before DIR [--create ORDER]] [--json] [--out FILE]
//
// --before DIR adds a third host, metered, from another build of the project (e.g. ../base8,
// its dist/ built), taking turns with the other two: the change between the builds is then
// read as metered ÷ before-metered in the same rounds, not across runs minutes apart.
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
const { values: opt } = benchArgs({ rounds: 40, batch: 2000, before: undefined, create: 'before,beforeUnmetered,metered,unmetered', json: false, out: undefined, help: false });
if (opt.help) {
  process.stdout.write('node bench/micro/metering-ab.js [--rounds 40] [--batch 2000] [--before DIR [--create before,beforeUnmetered,metered,unmetered]] [--json] [--out FILE]\n');
  process.exit(0);
}
const tmp = await mkdtemp(join(os.tmpdir(), 'wm-metering-ab-'));
const creds = await makeCredentials();
const wasmDir = resolve(root, 'wasm');

async function host(limits, build = { WasmHost, validateConfig }) {
  const c = benchConfig({ mode: 'inproc', n: 4, creds, wasmDir, upstreamPort: 9, logDir: tmp });
  c.plugins = chainPlugins(4, creds, wasmDir).map((p) => ({ ...p, ...(limits ? { limits } : {}) }));
  return build.WasmHost.create(build.validateConfig(c, 'bench metering-ab'), { logger: { level: 5, log() {} }, baseDir: tmp });
}
// A build's code serves every host of that build: a metered host alone on a build (its
// code's feedback not shared with an unmetered host) ran 1.3-1.5 % faster than the same
// build's metered host next to an unmetered one (A/A: --before a copy of this dist/). So
// --before runs both a metered and an unmetered host of the other build too, and compares
// each build's own ratio. --create sets the order the hosts are made in.
const sides = {};
let beforeBuild = null;
if (opt.before !== undefined) {
  // The other build's host and config validator; the same adapters (this tree's wasm/).
  const dir = resolve(opt.before);
  beforeBuild = { WasmHost: (await import(join(dir, 'dist/host/src/index.js'))).WasmHost, validateConfig: (await import(join(dir, 'dist/host/src/config/load.js'))).validateConfig };
}
for (const side of opt.create.split(',')) {
  if (side === 'before' && beforeBuild !== null) sides.before = await host(undefined, beforeBuild);
  else if (side === 'beforeUnmetered' && beforeBuild !== null) sides.beforeUnmetered = await host({ metering: false }, beforeBuild);
  else if (side === 'metered') sides.metered = await host();
  else if (side === 'unmetered') sides.unmetered = await host({ metering: false });
}
const names = Object.keys(sides);

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
const us = Object.fromEntries(names.map((n) => [n, []]));
const ratios = [];
const beforeRatios = [];
const changeRatios = [];
for (let r = 0; r < opt.rounds; r++) {
  // Every side goes first, second (and third) equally often.
  const order = names.map((_, k) => names[(k + r) % names.length]);
  if (Math.floor(r / names.length) % 2 === 1) order.reverse();
  const got = {};
  for (const side of order) got[side] = await batch(sides[side], opt.batch);
  for (const n of names) us[n].push(got[n]);
  ratios.push(got.metered / got.unmetered);
  if (got.before !== undefined) {
    beforeRatios.push(got.before / got.beforeUnmetered);
    changeRatios.push(got.metered / got.unmetered / (got.before / got.beforeUnmetered));
  }
}
await Promise.all(Object.values(sides).map((h) => h.close()));
await rm(tmp, { recursive: true, force: true });

const result = {
  command: `node bench/micro/metering-ab.js --rounds ${opt.rounds} --batch ${opt.batch}${opt.before === undefined ? '' : ` --before ${opt.before} --create ${opt.create}`}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, node: process.version, loadAvgAtEnd: os.loadavg().map((x) => round(x, 2)) },
  meteredUs: round(median(us.metered), 2),
  unmeteredUs: round(median(us.unmetered), 2),
  ratio: round(median(ratios), 4),
  ratioSpread: spread(ratios).map((x) => round(x, 4)),
  rounds: opt.rounds,
  ...(opt.before === undefined
    ? {}
    : {
        before: opt.before,
        beforeUs: round(median(us.before), 2),
        beforeRatio: round(median(beforeRatios), 4),
        beforeRatioSpread: spread(beforeRatios).map((x) => round(x, 4)),
        beforeUnmeteredUs: round(median(us.beforeUnmetered), 2),
        ratio_over_before: round(median(changeRatios), 4),
      }),
};
if (opt.out) await writeFile(opt.out, `${JSON.stringify(result, null, 2)}\n`);
const beforeLine = opt.before === undefined ? '' : `; before (${opt.before}) metered ${result.beforeUs} vs unmetered ${result.beforeUnmeteredUs} µs: ×${result.beforeRatio}; this ratio ÷ before's ×${result.ratio_over_before}`;
process.stdout.write(opt.json ? `${JSON.stringify(result)}\n` : `chain of four, metered ${result.meteredUs} µs vs unmetered ${result.unmeteredUs} µs per request: metered ÷ unmetered ×${result.ratio} (median of ${opt.rounds} paired rounds; spread ${result.ratioSpread.join('–')})${beforeLine}\n`);
process.exit(0);
