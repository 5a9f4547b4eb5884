// Start-up of `wasm-mixer proxy` with the benchmark's four adapters (bench/e2e/configs.js,
// JSON config, one worker): from spawning the process to its "listening" line (printed once
// the port listens; a TCP connect then checks it), and the CPU the process used by then
// (/proc/PID/stat, 10 ms ticks) and its RSS then. What an operator waits for at every start and restart:
// importing the host, validating the config, loading the four adapters, listening.
// One fresh process per sample; several checkouts are compared in the same run, taking
// turns (the order alternates each round), medians and the median of paired ratios:
//
//   node bench/micro/proxy-startup.js [--rounds 20] [--dirs DIR,DIR...] [--workers 1] [--json] [--out FILE]
//
// --dirs: checkouts to start (each needs npm run build); default this one. The first is
// the baseline of the ratios. Each uses its own bin/ and wasm/; the instrumented-module
// cache (~/.cache/wasm-mixer) is warm after the first start, as on a restart. --workers auto: the
// primary's line comes once every worker listens; CPU and RSS are then the primary's alone.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchConfig, makeCredentials } from '../e2e/configs.js';
import { benchArgs } from '../core/args.js';
import { median, percentile, round } from '../core/stats.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { values: opt } = benchArgs({ rounds: 20, dirs: undefined, workers: '1', json: false, out: undefined, help: false });
if (opt.help) {
  process.stdout.write('node bench/micro/proxy-startup.js [--rounds 20] [--dirs DIR,DIR...] [--workers 1] [--json] [--out FILE]\n');
  process.exit(0);
}
const dirs = (opt.dirs ?? root).split(',').map((d) => resolve(d));
const tmp = await mkdtemp(join(os.tmpdir(), 'wm-proxy-startup-'));
const creds = await makeCredentials();
const configs = [];
for (const [i, dir] of dirs.entries()) {
  const file = join(tmp, `four-${i}.json`);
  await writeFile(file, JSON.stringify(benchConfig({ mode: 'inproc', n: 4, creds, wasmDir: join(dir, 'wasm'), upstreamPort: 9, logDir: tmp })));
  configs.push(file);
}
const TICK_MS = 1000 / 100; // USER_HZ

/** Starts one proxy; resolves with the ms to its listening line, the CPU ms it had used and its RSS (MiB), then stops it. */
function sample(dir, config) {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [join(dir, 'bin/wasm-mixer.js'), 'proxy', '--config', config, '--workers', opt.workers], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    let done = false;
    child.stderr.setEncoding('utf8').on('data', async (d) => {
      err += d;
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(err);
      if (m === null || done) return;
      done = true;
      const ms = performance.now() - t0;
      try {
        const stat = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1].split(' ');
        const cpuMs = (Number(stat[11]) + Number(stat[12])) * TICK_MS; // utime, stime
        const rssMiB = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
        await new Promise((ok, fail) => connect(Number(m[1]), '127.0.0.1').on('connect', function () { this.destroy(); ok(); }).on('error', fail));
        child.once('exit', () => resolvePromise({ ms, cpuMs, rssMiB }));
        child.kill('SIGTERM');
      } catch (e) {
        child.kill('SIGKILL');
        reject(e);
      }
    });
    child.once('exit', (code) => { if (!done) reject(new Error(`proxy in ${dir} exited (${code}) before listening:\n${err}`)); });
  });
}

const samples = dirs.map(() => []);
for (let r = 0; r < opt.rounds; r++) {
  const order = r % 2 === 0 ? dirs.keys() : [...dirs.keys()].reverse();
  for (const i of order) samples[i].push(await sample(dirs[i], configs[i]));
}
await rm(tmp, { recursive: true, force: true });

const stat = (xs) => ({ median: round(median(xs), 1), p25: round(percentile(xs, 25), 1), p75: round(percentile(xs, 75), 1) });
const result = {
  command: `node bench/micro/proxy-startup.js ${process.argv.slice(2).join(' ')}`.trim(),
  rounds: opt.rounds,
  workers: opt.workers,
  node: process.version,
  checkouts: dirs.map((dir, i) => ({
    dir,
    listeningMs: stat(samples[i].map((s) => s.ms)),
    cpuMs: stat(samples[i].map((s) => s.cpuMs)),
    rssMiB: stat(samples[i].map((s) => s.rssMiB)),
    ...(i > 0 ? {
      pairedRatioListening: round(median(samples[i].map((s, k) => s.ms / samples[0][k].ms)), 3),
      pairedRatioCpu: round(median(samples[i].map((s, k) => s.cpuMs / samples[0][k].cpuMs)), 3),
    } : {}),
  })),
};
const text = opt.json
  ? `${JSON.stringify(result, null, 2)}\n`
  : result.checkouts.map((c) => `${c.dir}: listening after ${c.listeningMs.median} ms (p25 ${c.listeningMs.p25}, p75 ${c.listeningMs.p75}), CPU ${c.cpuMs.median} ms, RSS ${c.rssMiB.median} MiB` +
      (c.pairedRatioListening !== undefined ? `; paired ratio to the first: wall x${c.pairedRatioListening}, CPU x${c.pairedRatioCpu}` : '')).join('\n') + '\n';
process.stdout.write(text);
if (opt.out) await writeFile(opt.out, text);
