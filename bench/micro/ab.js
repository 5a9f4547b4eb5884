// Before/after of the adapters tier in one session: runs bench/micro/adapters.js from
// another checkout (--before DIR, built: dist/ and wasm/) and from this one, alternately,
// --rounds times, and reports each variant's median CPU per request and the ratio
// after ÷ before. Each side is also measured against its own no-adapter host.
//
//   node bench/micro/ab.js --before ../wt/before [--rounds 3] [--runs 3] [--requests 10000] [--out FILE]
//
// The command and the git commits of both sides go into the result.
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { benchArgs } from '../core/args.js';
import { median, round } from '../core/stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: opt } = benchArgs({ before: undefined, rounds: 3, runs: 3, requests: 10000, out: undefined, help: false });
if (opt.help || !opt.before) {
  process.stdout.write('node bench/micro/ab.js --before DIR [--rounds 3] [--runs 3] [--requests 10000] [--out FILE]\n');
  process.exit(opt.help ? 0 : 64);
}
const sides = { before: resolve(opt.before), after: root };
const commit = (dir) => execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
const samples = { before: {}, after: {} };
for (let r = 0; r < opt.rounds; r++) {
  for (const side of r % 2 ? ['after', 'before'] : ['before', 'after']) {
    process.stderr.write(`  ab: round ${r + 1}, ${side}\n`);
    const out = execFileSync(process.execPath, [resolve(sides[side], 'bench/micro/adapters.js'), '--json', '--runs', String(opt.runs), '--requests', String(opt.requests)], { cwd: sides[side], encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
    const res = JSON.parse(out.trim().split('\n').pop());
    for (const row of res.rows) (samples[side][row.variant] ??= []).push(row.cpuUsPerRequest);
  }
}
const rows = Object.keys(samples.after).filter((v) => samples.before[v]).map((variant) => {
  const b = median(samples.before[variant]);
  const a = median(samples.after[variant]);
  return { variant, beforeUs: round(b, 2), afterUs: round(a, 2), ratio: round(a / b, 3) };
});
const result = {
  command: `node bench/micro/ab.js --before ${opt.before} --rounds ${opt.rounds} --runs ${opt.runs} --requests ${opt.requests}`,
  before: commit(sides.before),
  after: commit(sides.after),
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg().map((x) => round(x, 2)) },
  rows,
};
if (opt.out) await writeFile(opt.out, JSON.stringify(result, null, 2) + '\n');
process.stdout.write(`| variant | before (${result.before}) µs | after (${result.after}) µs | after ÷ before |\n|---|---|---|---|\n`);
for (const r of rows) process.stdout.write(`| ${r.variant} | ${r.beforeUs} | ${r.afterUs} | ×${r.ratio} |\n`);
