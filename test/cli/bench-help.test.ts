// Every benchmark script answers --help with what it measures and its options, and refuses an
// unknown option with a one-line error (exit 64) instead of starting a run of minutes: a typo in
// `npm run bench -- --ful` used to start the quick profile. Run on the scripts as shipped.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ROOT } from '../oop/helpers.js';

/** bench/**.js that read options (the rest are modules the scripts import). */
function scripts(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const rel = join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.js') && rel !== join('bench', 'core', 'args.js') && /\b(benchArgs|parseArgs)\(/.test(readFileSync(join(ROOT, rel), 'utf8'))) out.push(rel);
    }
  };
  walk('bench');
  return out.sort();
}

const run = (script: string, arg: string) => spawnSync(process.execPath, [script, arg], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });

t.test('each benchmark script prints its usage for --help and exits 0', async (t) => {
  const list = scripts();
  t.ok(list.length >= 20, `${list.length} scripts found`);
  t.ok(list.includes(join('bench', 'run.js')), 'npm run bench (bench/run.js) is among them');
  for (const s of list) {
    const r = run(s, '--help');
    t.equal(r.status, 0, `${s} --help exits 0`);
    t.match(r.stdout, new RegExp(`node ${s.replace(/\./g, '\\.')}`), `${s} --help shows how to run it`);
  }
});

t.test('an unknown option is a one-line error with exit 64, before any work', async (t) => {
  for (const s of [join('bench', 'run.js'), join('bench', 'micro', 'adapters.js'), join('bench', 'e2e', 'saturation.js')]) {
    const r = run(s, '--no-such-option');
    t.equal(r.status, 64, `${s}: exit 64`);
    t.match(r.stderr, /Unknown option '--no-such-option' \(--help lists the options\)/, `${s}: says what was wrong and where to look`);
    t.notMatch(r.stderr, /\n\s+at /, `${s}: no stack trace`);
  }
});
