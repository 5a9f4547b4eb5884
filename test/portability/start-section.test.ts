// Item 1 of issue 15: modules with a wasm start section (every AssemblyScript SDK
// build but ours) load under the default limits (metering on): the start function
// runs under the start budget, and `wasm-mixer check` predicts the load.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../host/src/cli/main.js';
import { startProxy } from '../../host/src/index.js';
import { capture, compileWat, request, startEcho } from './helpers.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await main(args);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const dir = await mkdtemp(join(tmpdir(), 'wm-start-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
await writeFile(join(dir, 'parity.wasm'), await compileWat('parity'));
await writeFile(join(dir, 'forever.wasm'), await compileWat('start-forever'));

t.test('a module with a start section loads and runs through the proxy with metering on (the default)', async (t) => {
  const up = await startEcho();
  const log = capture();
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [{ name: 'default', upstream: `http://127.0.0.1:${up.port}` }], plugins: [{ name: 'parity', url: 'parity.wasm' }] },
    { baseDir: dir, logger: log.logger },
  );
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  t.equal(proxy.host.plugins[0]!.module.metered, true, 'the module is metered');
  t.equal(proxy.host.plugins[0]!.module.hasStart, true);
  const r = await request(proxy.port, '/x');
  t.equal(r.status, 200);
  t.equal(r.headers['x-filter-response'], 'seen', 'the filter runs (its start function ran: on_vm_start returned its flag)');
});

t.test('a start function that never returns is refused at load, with the reason', async (t) => {
  await t.rejects(
    startProxy({ listen: { port: 0 }, routes: [{ name: 'default', upstream: 'http://127.0.0.1:9' }], plugins: [{ name: 'forever', url: 'forever.wasm' }] }, { baseDir: dir, logger: capture().logger }),
    { code: 'VM_START_FAILED', message: /start function/ },
  );
});

t.test('wasm-mixer check predicts the load', async (t) => {
  const ok = await cli(['check', join(dir, 'parity.wasm')]);
  t.equal(ok.code, 0, ok.err);
  t.match(ok.out, /parity\.wasm: ok .*ABI 0\.2\.1.*start function ran/);
  const bad = await cli(['check', join(dir, 'forever.wasm')]);
  t.equal(bad.code, 1, 'check fails for a module the proxy would refuse');
  t.match(bad.err, /VM_START_FAILED.*start function.*would not load in the proxy under the default limits/);
});
