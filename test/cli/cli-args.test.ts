// Issue 12 items 9 and 10, issue 11 "listen failures": every command takes --help; a missing
// .wasm file has its own code and says where it was looked up; a port in use is LISTEN_FAILED
// with exit status 69 and a message that says what to do.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { CLI, freePorts, startCli } from './cli-process.js';

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

t.test('a missing .wasm is WASM_NOT_FOUND, naming the path looked up and what it was relative to', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'p.yaml'), 'routes: [{ name: r, upstream: "http://127.0.0.1:1" }]\nplugins:\n  - name: a\n    url: ../wasm/missing.wasm\n');
  const [r, check] = await Promise.all([run(['proxy', '--config', join(dir, 'p.yaml'), '--port', '0']), run(['check', join(dir, 'nope.wasm')])]);
  t.equal(r.code, 1);
  t.match(r.stderr, 'WASM_NOT_FOUND: plugin a: wasm module not found: looked up ');
  t.match(r.stderr, join(dir, '..', 'wasm', 'missing.wasm'));
  t.match(r.stderr, `url "../wasm/missing.wasm" relative to ${dir}`);
  t.notMatch(r.stderr, /WASM_MALFORMED/);
  t.equal(check.code, 1);
  t.match(check.stderr, /WASM_NOT_FOUND/);
});

t.test('proxy or admin port in use: LISTEN_FAILED, exit 69, says which port and what to do', async (t) => {
  const [free] = await freePorts(1);
  const taken = http.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => taken.close(() => r())));
  const port = (taken.address() as { port: number }).port;

  const proxy = startCli(['proxy', '--to', 'http://127.0.0.1:1', '--listen', String(port)]);
  const admin = startCli(['proxy', '--to', 'http://127.0.0.1:1', '--listen', String(free), '--admin', String(port)]);
  t.equal(await proxy.exited, 69, 'proxy port in use');
  t.match(proxy.stderr(), `wasm-mixer: LISTEN_FAILED: cannot listen on the proxy port: 127.0.0.1:${port} is already in use`);
  t.match(proxy.stderr(), /choose another port with --port N/);
  t.notMatch(proxy.stderr(), /Error: listen EADDRINUSE/);

  t.equal(await admin.exited, 69, 'admin port in use');
  t.match(admin.stderr(), `LISTEN_FAILED: cannot listen on the admin port: 127.0.0.1:${port} is already in use`);
  t.match(admin.stderr(), /--admin N/);
});
