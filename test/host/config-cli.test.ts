// Config validation (field paths in errors) and the wasm-mixer command line.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startDemoUpstream, validateConfig } from '../../host/src/index.js';
import { quickConfig } from '../../host/src/cli/main.js';
import { compileGuest } from '../fixtures/guests/index.js';

const run = promisify(execFile);
const CLI = resolve('bin/wasm-mixer.js');

t.test('a bad config names every bad field', async (t) => {
  const err = t.throws(() =>
    validateConfig({
      listen: { port: 70000 },
      routes: [{ name: 'r', upstream: 'ftp://x' }],
      plugins: [{ name: 'a', url: 'a.wasm', failStrategy: 'FAIL_SOMETIMES', bogus: 1 }],
    }),
  ) as Error & { code: string };
  t.equal(err.code, 'CONFIG_INVALID');
  t.match(err.message, /\/listen\/port: must be <= 65535/);
  t.match(err.message, /\/routes\/0\/upstream: must match pattern/);
  t.match(err.message, /\/plugins\/0\/failStrategy: must be one of "FAIL_CLOSE", "FAIL_OPEN"/);
  t.match(err.message, /\/plugins\/0: unknown field "bogus"/);
});

t.test('duplicate plugin names and undefined clusters are refused', async (t) => {
  t.throws(() => validateConfig({ plugins: [{ name: 'a', url: 'x' }, { name: 'a', url: 'y' }] }), { message: /\/plugins\/1\/name "a" is used twice/ });
  t.throws(() => validateConfig({ plugins: [{ name: 'a', url: 'x', clusters: ['nope'] }] }), { message: /names "nope", which is not defined under clusters/ });
});

t.test('quick form builds the same config a file would', async (t) => {
  const q = quickConfig(['--listen', '9000', '--to', 'http://127.0.0.1:3000', '--adapter', 'wasm/a.wasm', '--adapter-config', '{"k":1}', '--adapter', 'wasm/a.wasm', '--admin', '9901', '--fail-open']);
  t.equal(q.config.listen?.port, 9000);
  t.equal(q.config.admin?.port, 9901);
  t.same(q.config.routes, [{ name: 'default', upstream: 'http://127.0.0.1:3000' }]);
  t.same(q.config.plugins?.map((p) => [p.name, p.pluginConfig, p.failStrategy]), [['a', { k: 1 }, 'FAIL_OPEN'], ['a-2', undefined, 'FAIL_OPEN']]);
  t.throws(() => quickConfig(['--adapter-config', '{}']), { code: 'USAGE', message: /must follow the --adapter/ });
  t.throws(() => quickConfig(['--to', 'http://x', '--adapter', 'a.wasm', '--adapter-config', '{bad']), { code: 'USAGE', message: /looks like JSON but does not parse/ });
  t.throws(() => quickConfig([]), { code: 'USAGE', message: /needs --config FILE, or --to URL/ });
});

t.test('CLI: help, bad config, check', async (t) => {
  const help = await run('node', [CLI, 'help']);
  t.match(help.stdout, /wasm-mixer proxy --listen PORT --to URL/);
  const dir = await mkdtemp(join(tmpdir(), 'wm-cli-'));
  await writeFile(join(dir, 'bad.yaml'), 'plugins:\n  - name: a\n    url: a.wasm\n    phase: LATE\n');
  const bad = await run('node', [CLI, 'proxy', '--config', join(dir, 'bad.yaml')]).catch((e: { code: number; stderr: string }) => e);
  t.equal((bad as { code: number }).code, 1);
  t.match((bad as { stderr: string }).stderr, /CONFIG_INVALID: .*bad\.yaml is invalid:\n  - \/plugins\/0\/phase: must be one of "AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE"/);
  await writeFile(join(dir, 'spec.wasm'), await compileGuest('spec-filter'));
  await writeFile(join(dir, 'junk.wasm'), 'not wasm');
  const check = await run('node', [CLI, 'check', join(dir, 'spec.wasm')]);
  t.match(check.stdout, /ok — Proxy-Wasm ABI 0\.2\.1/);
  const junk = await run('node', [CLI, 'check', join(dir, 'junk.wasm')]).catch((e: { code: number; stderr: string }) => e);
  t.match((junk as { stderr: string }).stderr, /WASM_MALFORMED/);
  const usage = await run('node', [CLI, 'proxy', '--frobnicate']).catch((e: { code: number }) => e);
  t.equal((usage as { code: number }).code, 64);
});

t.test('CLI quick form proxies with an adapter and drains on SIGINT', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-cli-'));
  const wasm = join(dir, 'spec.wasm');
  await writeFile(wasm, await compileGuest('spec-filter'));
  const upstream = await startDemoUpstream(0);
  t.teardown(() => upstream.close());
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const child = spawn('node', [CLI, 'proxy', '--listen', String(port), '--to', `http://127.0.0.1:${upstream.port}`, '--adapter', wasm, '--adapter-config', '"ok"', '--workers', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${stderr}`)), 10_000);
    child.stderr.on('data', () => {
      if (stderr.includes('wasm-mixer proxy listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const get = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }).on('error', reject);
    });
  t.equal((await get('/deny')).status, 403);
  const ok = await get('/ok');
  t.equal(ok.status, 200);
  t.match(ok.body, /"x-spec-filter":"seen"/);
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  child.kill('SIGINT');
  t.equal(await exit, 0, 'exits cleanly on Ctrl-C');
  t.match(stderr, /draining in-flight requests/);
});
