// Adapter faults through the real proxy on real sockets: traps, crash-rate
// limit and backoff, in-flight requests surviving another request's crash,
// runaway loops cut off by the work budget, the memory cap, stack overflow.
import t, { type Test } from 'tap';
import { startProxy, type MixerConfig, type PluginConfig } from '../../host/src/index.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { captureLogs, echoUpstream, fixture, metric, request, sleep, upstreamHeaders, wat } from './helpers.js';

export { echoUpstream };

async function proxyWith(t: Test, plugins: Array<PluginConfig & { wasm: Uint8Array }>, extra: Partial<MixerConfig> = {}) {
  const up = await echoUpstream();
  const { logger, records } = captureLogs();
  const modules: Record<string, Uint8Array> = {};
  for (const p of plugins) modules[p.url] = p.wasm;
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }],
      plugins: plugins.map(({ wasm: _w, ...p }) => p),
      ...extra,
    },
    { modules, logger },
  );
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const admin = async (path: string) => request(proxy.adminPort!, path);
  const metrics = async () => (await admin('/metrics')).body;
  const adapters = async () => JSON.parse((await admin('/adapters')).body) as Array<Record<string, unknown>>;
  return { proxy, records, admin, metrics, adapters, port: proxy.port };
}

t.test('a trap fails only that request (FAIL_CLOSE), and the VM is replaced at once', async (t) => {
  const { port, records, metrics, adapters } = await proxyWith(t, [{ name: 'trap', url: 'trap.wasm', wasm: await compileGuest('trap') }]);
  const ok1 = await request(port, '/ok');
  t.equal(ok1.status, 200);
  t.equal(upstreamHeaders(ok1)['x-trap-count'], '1');
  const bad = await request(port, '/trap');
  t.equal(bad.status, 503, 'fail closed: 503');
  t.same(JSON.parse(bad.body), { error: 'ADAPTER_FAILED', adapter: 'trap' });
  t.equal(bad.headers['x-wasm-mixer-error'], 'adapter_failed');
  const ok2 = await request(port, '/ok');
  t.equal(ok2.status, 200, 'the next request is served');
  t.equal(upstreamHeaders(ok2)['x-trap-count'], '1', 'by a fresh instance: the trapped one is never called again');

  const crash = records.find((r) => r.code === 'VM_TRAP' && r.level === 'error');
  t.ok(crash, 'the crash is logged with code VM_TRAP');
  t.match(crash?.message, /adapter trap \(trap\.wasm\) crashed in proxy_on_request_headers: RuntimeError: unreachable/);
  t.equal(crash?.source, 'trap');
  t.match(String(crash?.stack), /wasm/, 'with the first wasm stack frames');
  t.ok(records.some((r) => r.code === 'VM_RESTARTED'), 'the restart is logged');
  const m = await metrics();
  t.equal(metric(m, 'wasm_mixer_vm_crashes_total', { adapter: 'trap', code: 'VM_TRAP' }), 1);
  t.equal(metric(m, 'wasm_mixer_vm_restarts_total', { adapter: 'trap' }), 1);
  t.equal(metric(m, 'wasm_mixer_vm_up', { adapter: 'trap' }), 1);
  t.equal(metric(m, 'wasm_mixer_adapter_failures_total', { adapter: 'trap', code: 'VM_TRAP', strategy: 'FAIL_CLOSE' }), 1);
  const [a] = await adapters();
  t.equal(a!.healthy, true);
  t.equal(a!.crashes, 1);
  t.equal(a!.generation, 2);
  t.match(a!.lastCrash, { code: 'VM_TRAP', callback: 'proxy_on_request_headers' });
});

t.test('FAIL_OPEN skips the trapped adapter for the rest of the request', async (t) => {
  const { port } = await proxyWith(t, [{ name: 'trap', url: 'trap.wasm', wasm: await compileGuest('trap'), failStrategy: 'FAIL_OPEN' }]);
  const r = await request(port, '/trap');
  t.equal(r.status, 200, 'the request reaches the upstream');
  t.equal(upstreamHeaders(r)['x-trap-count'], undefined, 'without the adapter');
  t.equal(upstreamHeaders(await request(port, '/ok'))['x-trap-count'], '1');
});

t.test('crash-rate limit: restarts are immediate until the module crashes on most requests; then it backs off and says so', async (t) => {
  const { port, records, metrics, admin, adapters } = await proxyWith(t, [
    { name: 'trap', url: 'trap.wasm', wasm: await compileGuest('trap'), restart: { maxRestarts: 2, windowMs: 60_000, initialBackoffMs: 300 } },
  ]);
  t.equal((await request(port, '/trap')).status, 503);
  t.equal((await request(port, '/ok')).status, 200, 'first crash: restarted at once');
  t.equal((await request(port, '/trap')).status, 503);
  t.equal((await request(port, '/ok')).status, 200, 'second crash: restarted at once (within maxRestarts)');
  t.equal((await request(port, '/trap')).status, 503, 'third crash: 3 crashes on 5 requests, past maxRestarts and on most requests');
  const down = await request(port, '/ok');
  t.equal(down.status, 503, 'crash-looping: down during the 300 ms backoff');
  t.equal(JSON.parse(down.body).error, 'ADAPTER_FAILED');
  t.equal((await admin('/ready')).status, 503, '/ready reports the failed adapter');
  const [a] = await adapters();
  t.equal(a!.healthy, false);
  t.match(a!.restart, { state: 'crash-looping', crashesInWindow: 3, requestsInWindow: 5, windowMs: 60_000 }, '/adapters says it is crash-looping');
  const crit = records.find((r) => r.code === 'VM_FAILED' && r.level === 'critical');
  t.match(crit?.message, /adapter trap is crash-looping: 3 crashes on 5 requests within 60000 ms .*restart\.maxRestarts 2.*stays down for 300 ms/);
  await sleep(500);
  t.equal((await request(port, '/ok')).status, 200, 'restarted after the backoff');
  t.equal((await request(port, '/trap')).status, 503);
  t.equal((await request(port, '/ok')).status, 503, 'still crashing on most requests (4 of 7): down again, the backoff doubled');
  const m = await metrics();
  t.equal(metric(m, 'wasm_mixer_vm_up', { adapter: 'trap' }), 0);
  t.equal(metric(m, 'wasm_mixer_vm_crashes_total', { adapter: 'trap', code: 'VM_TRAP' }), 4);
  t.equal(metric(m, 'wasm_mixer_vm_restarts_total', { adapter: 'trap' }), 3);
  // The repeated critical line may be held back by the log rate limit; /adapters says it.
  const r2 = (await adapters())[0]!;
  t.match(r2.restart, { state: 'crash-looping', crashesInWindow: 4, requestsInWindow: 7 });
  const backoff = (r2.restart as { nextRestartAt: number }).nextRestartAt - (r2.lastCrash as { at: number }).at;
  t.ok(backoff >= 590 && backoff <= 650, `the backoff doubled: next restart ${backoff} ms after the crash`);
});

t.test('requests in flight through the same adapter are not affected by another request\'s crash', async (t) => {
  const { port, metrics } = await proxyWith(t, [{ name: 'crashy', url: 'crashy.wasm', wasm: await fixture('crashy') }]);
  const inFlight = Array.from({ length: 5 }, (_, i) => request(port, `/slow/${i}`));
  await sleep(80); // all five passed proxy_on_request_headers and wait for the upstream
  const bad = await request(port, '/trap');
  t.equal(bad.status, 503, 'the crashing request fails closed');
  const done = await Promise.all(inFlight);
  t.same(done.map((r) => r.status), [200, 200, 200, 200, 200], 'the requests in flight get their upstream response');
  t.same(done.map((r) => r.headers['x-crashy-seen']).sort(), ['1', '2', '3', '4', '5'], 'their response callbacks ran on the replacement VM');
  const m = await metrics();
  t.equal(metric(m, 'wasm_mixer_vm_contexts_migrated_total', { adapter: 'crashy' }), 5);
  t.equal(metric(m, 'crashy_logged_total'), 5, 'their log callbacks ran too (and not the crashing request\'s)');
  t.equal(metric(m, 'wasm_mixer_adapter_failures_total', { adapter: 'crashy' }), 1, 'exactly one request failed');
});

t.test('a runaway loop is cut off by the work budget; the proxy keeps serving', async (t) => {
  const { port, records, metrics, adapters } = await proxyWith(
    t,
    [{ name: 'runaway', url: 'runaway.wasm', wasm: await compileGuest('runaway'), limits: { fuelPerCallback: 20_000_000 }, match: [{ paths: [{ prefix: '/loop' }, { prefix: '/ok' }] }] }],
  );
  t.equal(upstreamHeaders(await request(port, '/ok'))['x-runaway-count'], '1');
  const loop = request(port, '/loop');
  const bystander = request(port, '/other'); // a route without the adapter, queued behind the loop
  const r = await loop;
  t.equal(r.status, 503, 'the looping request fails closed');
  t.ok(r.ms < 3000, `answered in ${r.ms.toFixed(0)} ms`);
  t.equal((await bystander).status, 200, 'other requests are served');
  const after = await request(port, '/ok');
  t.equal(upstreamHeaders(after)['x-runaway-count'], '1', 'by a replacement VM');
  const log = records.find((x) => x.code === 'VM_BUDGET_EXCEEDED');
  t.match(log?.message, /runaway.*crashed in proxy_on_request_headers: exceeded its work budget of 20000000 fuel units/);
  const m = await metrics();
  t.equal(metric(m, 'wasm_mixer_vm_crashes_total', { adapter: 'runaway', code: 'VM_BUDGET_EXCEEDED' }), 1);
  t.equal(metric(m, 'wasm_mixer_adapter_failures_total', { adapter: 'runaway', code: 'VM_BUDGET_EXCEEDED' }), 1);
  const [a] = await adapters();
  t.equal(a!.metered, true);
  t.ok((a!.fuelHighWater as number) >= 20_000_000, 'the high-water mark shows the budget was used up');
});

t.test('the default work budget stops a runaway loop in well under a second', async (t) => {
  const { port } = await proxyWith(t, [{ name: 'runaway', url: 'runaway.wasm', wasm: await compileGuest('runaway') }]);
  const r = await request(port, '/loop');
  t.equal(r.status, 503);
  t.ok(r.ms < 1500, `default budget answered in ${r.ms.toFixed(0)} ms`);
});

t.test('a runaway proxy_on_configure fails the load with VM_BUDGET_EXCEEDED instead of hanging', async (t) => {
  const t0 = performance.now();
  await t.rejects(
    startProxy(
      { listen: { port: 0 }, plugins: [{ name: 'looper', url: 'runaway.wasm', pluginConfig: 'loop', limits: { fuelPerCallback: 1_000_000 } }] },
      { modules: { 'runaway.wasm': await compileGuest('runaway') }, logger: captureLogs().logger },
    ),
    { code: 'VM_BUDGET_EXCEEDED', message: /adapter looper \(runaway\.wasm\): start\/configure trapped: exceeded its work budget of 10000000 fuel units.*raise limits\.fuelPerCallback/ },
  );
  t.ok(performance.now() - t0 < 5000);
});

t.test('memory cap: growing past it traps the VM, not the process', async (t) => {
  const { port, records, metrics } = await proxyWith(t, [{ name: 'hog', url: 'hog.wasm', wasm: await compileGuest('memory-hog') }]);
  const rss0 = process.memoryUsage().rss;
  const r = await request(port, '/hog');
  t.equal(r.status, 503);
  t.ok(records.some((x) => /memory-hog: grew to 2001 pages/.test(x.message)), 'memory.grow was refused at the default 128 MiB cap (2048 pages)');
  const m = await metrics();
  t.equal(metric(m, 'wasm_mixer_vm_crashes_total', { adapter: 'hog', code: 'VM_MEMORY_LIMIT' }), 1);
  t.match(records.find((x) => x.code === 'VM_MEMORY_LIMIT')?.message, /trapped after memory.grow was refused 1 time\(s\) at the cap of 128 MiB/);
  t.equal(upstreamHeaders(await request(port, '/ok'))['x-memory-hog'], 'skipped', 'a fresh VM serves the next request');
  t.ok(process.memoryUsage().rss - rss0 < 64 * 1024 * 1024, 'host RSS did not grow by the guest\'s reservation');
});

t.test('a lower memory cap applies, and a module whose initial memory exceeds it is refused at load', async (t) => {
  const { port, records } = await proxyWith(t, [{ name: 'hog', url: 'hog.wasm', wasm: await compileGuest('memory-hog'), limits: { maxMemoryMb: 8 }, failStrategy: 'FAIL_OPEN' }]);
  t.equal((await request(port, '/hog')).status, 200, 'FAIL_OPEN');
  t.ok(records.some((x) => /memory-hog: grew to 1 pages/.test(x.message)), 'the first memory.grow(1000) already failed under an 8 MiB cap');
  const big = await wat(`(module (memory (export "memory") 200) (func (export "proxy_abi_version_0_2_1"))
    (func (export "malloc") (param i32) (result i32) (i32.const 1024)))`);
  await t.rejects(
    startProxy({ listen: { port: 0 }, plugins: [{ name: 'big', url: 'big.wasm', limits: { maxMemoryMb: 8 } }] }, { modules: { 'big.wasm': big }, logger: captureLogs().logger }),
    { code: 'VM_MEMORY_LIMIT', message: /plugin big: big\.wasm: the module's initial memory is 200 pages \(12800 KiB\), above the adapter's limit of 128 pages.*raise limits\.maxMemoryMb/ },
  );
});

t.test('unbounded recursion is contained', async (t) => {
  const rec = await wat(`(module
    (memory (export "memory") 1)
    (func (export "proxy_abi_version_0_2_1"))
    (func (export "malloc") (param i32) (result i32) (i32.const 1024))
    (func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (call $down (i32.const 0))))`);
  const { port, records } = await proxyWith(t, [{ name: 'rec', url: 'rec.wasm', wasm: rec, match: [{ paths: [{ prefix: '/rec' }] }] }]);
  t.equal((await request(port, '/rec')).status, 503);
  t.equal((await request(port, '/fine')).status, 200);
  t.ok(records.some((x) => x.source === 'rec' && /stack overflow|work budget/.test(x.message)), 'logged as a stack overflow (or the budget, whichever comes first)');
});
