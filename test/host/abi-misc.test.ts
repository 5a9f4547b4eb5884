// Metrics, WASI, properties, time, log level, shared data and foreign functions
// through the real host, driven by a guest written from the Proxy-Wasm ABI v0.2.1
// spec (test/fixtures/guests/abi-misc.wat; its header lists every observation key).
import http from 'node:http';
import { generateKeyPairSync, sign } from 'node:crypto';
import t from 'tap';
import { startDemoUpstream, startProxy } from '../../host/src/index.js';
import { decodeProto, encodeProto } from '../../host/src/plugin/foreign-functions.js';
import type { AdapterSpec, HarnessOptions } from '../../host/testing/index.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { guestHarness, recorder } from './guest-recorder.js';



const harness = (t: { teardown(fn: () => unknown): void }, vmId: string, spec: Partial<AdapterSpec> = {}, options: HarnessOptions = {}) =>
  guestHarness(t, 'abi-misc', vmId, { name: 'misc', ...spec }, options);

t.test('metrics: get after increments, gauge record and decrement, histogram samples, counter record', async (t) => {
  const { h, rec } = await harness(t, 'misc-metrics');
  t.same(rec.u32s('define-st'), [0, 0, 0], 'counter, gauge and histogram defined');
  const r = await h.run({ path: '/metrics' });
  t.equal(r.status, 200);
  t.same(rec.u32s('metrics-st'), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 'every call OK');
  t.same(rec.u64s('metrics-val'), [7n, 42n, 40n, 2n, 10n], 'counter 3+4=7; gauge set to 42, then -2; histogram: 2 samples; counter recorded up to 10');
  t.equal(h.metric('abi_misc_counter'), 10, 'the host sees the counter');
  t.equal(h.metric('abi_misc_gauge'), 40, 'the host sees the gauge');
  const hist = h.host.metrics.histogramValue('abi_misc_hist');
  t.equal(hist?.count, 2, 'two histogram samples');
  t.equal(hist?.sum, 505, 'their sum');
  t.equal(hist?.buckets['+Inf'], 2);
  t.match(h.metricsText(), /abi_misc_hist_count 2/);

  await h.run({ path: '/metrics' });
  t.same(rec.u64s('metrics-val'), [17n, 42n, 40n, 4n, 17n], 'a second request adds to the same series');
  t.equal(rec.u32s('metrics-st')[10], 2, 'recording a counter below its value is BAD_ARGUMENT (a counter never goes down)');
});

t.test('WASI: clocks, random, environment (the plugin\'s only), arguments, log level', async (t) => {
  process.env.ABI_MISC_HOST_SECRET = 'must-not-leak';
  t.teardown(() => void delete process.env.ABI_MISC_HOST_SECRET);
  const { h, rec } = await harness(t, 'misc-wasi', { vmConfig: { env: { A: '1', B: 'two' } } }, { logLevel: 'warn' });

  const before = BigInt(Date.now()) * 1_000_000n;
  await h.run({ path: '/wasi' });
  const after = BigInt(Date.now()) * 1_000_000n;
  t.same(rec.u32s('wasi-st'), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 58], 'every call succeeds; an unknown clock id is NOTSUP (58)');
  const [rt, m1, m2, pt] = rec.u64s('wasi-times') as [bigint, bigint, bigint, bigint];
  t.ok(rt >= before - 1_000_000_000n && rt <= after + 1_000_000_000n, `REALTIME within a second of Date.now() (${rt})`);
  t.ok(m1 > 0n && m2 >= m1, 'MONOTONIC does not go back within a callback');
  t.ok(pt >= rt && pt - rt < 1_000_000_000n, 'proxy_get_current_time_nanoseconds is wall-clock ns, like REALTIME');
  const random1 = Buffer.from(rec.raw('random'));
  t.equal(random1.length, 32);
  t.ok(random1.some((b) => b !== 0), 'random_get filled the buffer');

  const env = Buffer.from(rec.raw('environ'));
  t.same([env.readUInt32LE(0), env.readUInt32LE(4)], [2, 10], 'environ_sizes_get: 2 variables, 10 bytes ("A=1\\0B=two\\0")');
  t.equal(env.subarray(8).toString('latin1'), 'A=1\0B=two\0', 'environ_get: exactly the plugin\'s variables, NUL-terminated');
  t.same(rec.u32s('environ-offsets'), [0, 4], 'environ_get: one pointer per variable into the buffer');
  t.notOk(env.includes('must-not-leak'), 'the host\'s process.env is never exposed');
  t.same(rec.u32s('args'), [0, 0], 'args_sizes_get writes 0 and 0');
  t.same(rec.u32s('log-level'), [3], 'proxy_get_log_level: the plugin\'s level (warn = 3)');

  await h.run({ path: '/wasi' });
  const [, m1b] = rec.u64s('wasi-times') as [bigint, bigint];
  t.ok(m1b > m2, 'MONOTONIC increases across requests');
  t.notSame(Buffer.from(rec.raw('random')), random1, 'random_get gives fresh bytes');

  const bare = await harness(t, 'misc-wasi-bare');
  await bare.h.run({ path: '/wasi' });
  const e2 = Buffer.from(bare.rec.raw('environ'));
  t.same([e2.readUInt32LE(0), e2.readUInt32LE(4), e2.length], [0, 0, 8], 'no vmConfig.env: an empty environment, whatever the host process has');
});

t.test('proc_exit: the VM is treated as crashed and the request follows the fail strategy', async (t) => {
  const closed = await harness(t, 'misc-exit-closed');
  const r = await closed.h.run({ path: '/exit' });
  t.equal(r.status, 503, 'FAIL_CLOSE: rejected');
  t.equal(r.headers['x-wasm-mixer-error'], 'adapter_failed');
  t.same(JSON.parse(r.body), { error: 'ADAPTER_FAILED', adapter: 'misc' });
  t.equal(r.upstream, null);
  t.ok(closed.h.logs.some((l) => l.level === 'error' && /crashed in proxy_on_request_headers: proc_exit\(3\)/.test(l.message)), 'the crash names proc_exit and its code');
  t.equal(closed.h.metric('wasm_mixer_vm_crashes_total', { adapter: 'misc', code: 'VM_TRAP' }), 1);
  const vm = closed.h.host.plugins[0]!.vm;
  t.equal(vm.generation, 2, 'the VM was replaced');
  const next = await closed.h.run({ path: '/metrics' });
  t.equal(next.status, 200, 'the replacement VM serves the next request');
  t.same(closed.rec.u64s('metrics-val').slice(0, 1), [7n], 'with fresh guest state (metric ids re-defined in proxy_on_configure)');

  const open = await harness(t, 'misc-exit-open', { failStrategy: 'FAIL_OPEN' });
  const o = await open.h.run({ path: '/exit' });
  t.equal(o.status, 200, 'FAIL_OPEN: the request goes on without the adapter');
  t.equal(o.upstream?.path, '/exit');
});

t.test('properties: Envoy encodings in request headers and in on_log; set_property round-trips', async (t) => {
  const { h, rec } = await harness(t, 'misc-props');
  const t0 = BigInt(Date.now()) * 1_000_000n;
  const r = await h.run({ path: '/props?x=1', headers: { 'x-foo': 'bar' }, sourceAddress: '10.1.2.3', sourcePort: 5555 }, { status: 201, headers: { 'x-up': 'u' }, body: 'hello' });
  t.equal(r.status, 201);
  const time = rec.i64('p-time');
  t.ok(time >= t0 - 1_000_000_000n && time <= BigInt(Date.now()) * 1_000_000n, 'request.time: int64 LE ns since the epoch');
  t.equal(rec.value('p-src').toString(), '10.1.2.3:5555', 'source.address is "ip:port"');
  t.equal(rec.i64('p-srcport'), 5555n, 'source.port: int64 LE');
  t.same(rec.pairs('p-headers'), [[':method', 'GET'], [':path', '/props?x=1'], [':authority', 'example.com'], [':scheme', 'http'], ['x-foo', 'bar']], 'request.headers: a map in the pairs format');
  t.equal(rec.value('p-header-foo').toString(), 'bar', 'request.headers.<name>: one value');
  t.equal(rec.value('p-plugin').toString(), 'misc');
  t.equal(rec.value('p-vmid').toString(), 'misc-props');
  t.equal(rec.value('p-path').toString(), '/props?x=1');
  t.same(rec.u32s('set-prop-st'), [0], 'proxy_set_property OK');
  t.equal(rec.value('p-setget').toString(), 'xyz', 'proxy_get_property reads it back');

  t.equal(rec.i64('l-code'), 201n, 'response.code in on_log: int64 LE');
  t.ok(rec.i64('l-duration') > 0n, 'request.duration: int64 ns');
  t.same(rec.pairs('l-resp-headers'), [[':status', '201'], ['x-up', 'u']], 'response.headers: pairs');
  t.equal(rec.i64('l-resp-size'), 5n, 'response.size: int64 (body bytes)');
  t.equal(rec.i64('l-time'), time, 'request.time is the same in on_log');
});

t.test('shared data read by the guest, bytes through proxy_call_foreign_function', async (t) => {
  const vmId = 'misc-foreign';
  const { h, rec } = await harness(t, vmId);
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.from('signed payload');
  const pub = keys.publicKey.export({ format: 'der', type: 'spki' });
  const store = h.host.shared.forVm(vmId);
  const verify = async (sig: Buffer) => {
    const args = encodeProto([[1, 'sha256'], [2, pub], [3, sig], [4, data]]);
    t.ok(store.set('ff-args', args, 0), 'the test stores the arguments in the VM\'s shared data');
    await h.run({ path: '/foreign' });
    t.same(rec.u32s('ff-get-st'), [0, store.get('ff-args')!.cas, args.length], 'proxy_get_shared_data: OK, the stored cas, the whole value');
    const res = rec.ret('ff-result');
    t.equal(res.status, 0, 'proxy_call_foreign_function OK');
    const ok = decodeProto(res.bytes)!.get(1);
    return typeof ok === 'bigint' && ok === 1n;
  };
  const sig = sign('sha256', data, keys.privateKey);
  t.equal(await verify(sig), true, 'a good signature verifies');
  const bad = Buffer.from(sig);
  bad[bad.length - 1]! ^= 1;
  t.equal(await verify(bad), false, 'a tampered one does not');
});

t.test('the real proxy: source.address is the client\'s address and port; response.code in on_log', async (t) => {
  const upstream = await startDemoUpstream(0);
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }], plugins: [{ name: 'misc', url: 'abi-misc.wasm', vmConfig: { vmId: 'misc-proxy' } }], logLevel: 'error' },
    { modules: { 'abi-misc.wasm': await compileGuest('abi-misc') } },
  );
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const rec = recorder((k) => proxy.host.shared.forVm('misc-proxy').get(k)?.value);
  let clientPort = 0;
  const res = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/props', headers: { 'x-foo': 'bar' }, agent: false }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('socket', (s) => s.on('connect', () => (clientPort = s.localPort ?? 0)));
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
  t.equal(res.status, 200);
  t.ok(clientPort > 0);
  // The log phase runs at the end of the proxy's event-loop turn after the response (proxy/batched-phases.ts), which
  // may be after this in-process client has read it.
  for (let i = 0; i < 200 && proxy.host.shared.forVm('misc-proxy').get('l-code') === undefined; i++) await new Promise((r) => setTimeout(r, 5));
  t.equal(rec.value('p-src').toString(), `127.0.0.1:${clientPort}`, 'source.address is the client socket\'s "ip:port"');
  t.equal(rec.i64('p-srcport'), BigInt(clientPort));
  t.equal(rec.value('p-header-foo').toString(), 'bar');
  t.equal(rec.i64('l-code'), 200n, 'response.code of the upstream answer, in on_log');
  t.equal(rec.i64('l-resp-size'), BigInt(res.body.length), 'response.size: the body bytes the client got');
  t.ok(rec.pairs('l-resp-headers').some(([k, v]) => k === 'content-type' && v === 'application/json'), 'response.headers from the upstream');
});
