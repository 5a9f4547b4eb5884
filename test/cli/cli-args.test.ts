// Issue 12 item 9: every command takes --help (exit 0, its usage); option mistakes are USAGE
// errors (exit 64) that name the command. Parsing is node:util parseArgs.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { CLI } from './cli-process.js';

const execP = promisify(execFile);
const run = (args: string[]) =>
  execP(process.execPath, [CLI, ...args], { timeout: 60_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

t.test('every command takes --help: exit 0 and its usage on stdout', async (t) => {
  const cases = ['proxy', 'serve', 'build', 'check', 'demo-upstream'].map((cmd, i) => [cmd, i % 2 === 0 ? '--help' : '-h'] as const);
  const results = await Promise.all(cases.map(([cmd, flag]) => run([cmd, flag])));
  cases.forEach(([cmd, flag], i) => {
    t.equal(results[i]!.code, 0, `${cmd} ${flag} exits 0`);
    t.match(results[i]!.stdout, new RegExp(`Usage:\\n  wasm-mixer ${cmd}`), `${cmd} ${flag} prints its usage`);
  });
  const [help, withOthers] = await Promise.all([run(['help', 'serve']), run(['proxy', '--config', 'nope.yaml', '--help'])]);
  t.equal(help.code, 0);
  t.match(help.stdout, /--listen ADDRESS/);
  t.equal(withOthers.code, 0, '--help wins over other options, even invalid ones');
});

t.test('option mistakes are USAGE errors (exit 64) naming the command', async (t) => {
  const [unknown, missing, badPort, badLevel, positional] = await Promise.all([
    run(['serve', '--frobnicate']),
    run(['proxy', '--to']),
    run(['demo-upstream', '--port', 'x']),
    run(['proxy', '--to', 'http://127.0.0.1:1', '--log-level', 'loud']),
    run(['proxy', 'extra']),
  ]);
  t.equal(unknown.code, 64);
  t.match(unknown.stderr, /USAGE: unknown option "--frobnicate" for serve; run wasm-mixer serve --help/);
  t.equal(missing.code, 64);
  t.match(missing.stderr, /USAGE: .*--to.* for proxy/);
  t.equal(badPort.code, 64);
  t.match(badPort.stderr, /--port must be a port number/);
  t.equal(badLevel.code, 64);
  t.match(badLevel.stderr, /--log-level must be one of trace\|debug/);
  t.equal(positional.code, 64);
});
