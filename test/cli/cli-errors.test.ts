// Issue 12 item 10 and issue 11 "listen failures", through the real CLI: a missing .wasm file
// has its own code and says where it was looked up; a port in use is LISTEN_FAILED with exit
// status 69 and a message that says what to do.
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
