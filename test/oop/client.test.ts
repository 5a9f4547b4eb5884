// The proxy's remote client against a real adapter server: the check cache
// (keyed by exactly the attributes the adapter read, validity duration, use count,
// cache modes), report batching, quota prefetch, each switched on and off, the
// per-call deadline, fail open / fail closed, and errors counted in metrics.

import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import type { MixerConfig, PluginConfig } from '../../host/src/config/schema.js';
import type { RunningProxy } from '../../host/src/proxy/proxy.js';
import { loadProtos } from '../../host/src/oop/protos.js';
import { remoteClientOf } from '../../host/src/oop/remote-adapter.js';
import type { RunningServer } from '../../host/src/oop/server.js';
import { startDemoUpstream } from '../../host/src/proxy/demo-upstream.js';
import { capture, fixtureDir, request, sleep, startRemoteProxy, startServer, withAdapters } from './helpers.js';

const upstream = await startDemoUpstream(0);
t.teardown(() => upstream.close());
const dir = await fixtureDir();
await withAdapters(dir, ['header-check', 'quota']);

interface Setup {
  proxy: RunningProxy;
  server: RunningServer;
  checks: () => number;
  reports: () => number;
  flush: () => Promise<void>;
}

async function setup(t: Tap.Test, plugins: PluginConfig[], remote: MixerConfig['remote'] = {}): Promise<Setup> {
  const base: MixerConfig = { plugins, routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }] };
  const server = await startServer({ ...base, remote }, { baseDir: dir, logger: capture().logger });
  const proxy = await startRemoteProxy({ ...base, remote: { ...remote, address: server.address, plugins: 'all' } }, { baseDir: dir, logger: capture().logger });
  t.teardown(async () => {
    await proxy.close();
    await server.close();
  });
  const calls = (method: string) => server.host.metrics.value('wasm_mixer_server_calls_total', { service: 'mixer', method, code: 'OK' }) ?? 0;
  return {
    proxy,
    server,
    checks: () => calls('Check'),
    reports: () => calls('Report'),
    flush: async () => {
      // The proxy runs the log phase (which queues the Report) at the end of an event-loop turn after the
      // response (proxy/batched-phases.ts); this in-process client may have read the response first.
      await new Promise((r) => setImmediate(r));
      await remoteClientOf(proxy.host)!.flush();
    },
  };
}

const headerCheck = (extra: Partial<PluginConfig> = {}): PluginConfig => ({ name: 'hc', url: 'header-check.wasm', pluginConfig: { header: 'x-user' }, ...extra });

t.test('check cache: keyed by exactly the attributes the adapter read', async (t) => {
  const s = await setup(t, [headerCheck()]);
  const get = (headers: Record<string, string>, path = '/') => request(s.proxy.port, path, { headers });
  t.equal((await get({ 'x-user': 'ann' })).status, 200);
  t.equal(s.checks(), 1);
  t.equal((await get({ 'x-user': 'ann', 'x-other': 'anything' }, '/another/path')).status, 200, 'other headers and the path do not matter to this adapter');
  t.equal(s.checks(), 1, '... so the result came from the cache');
  t.equal((await get({ 'x-user': 'bob' })).status, 200);
  t.equal(s.checks(), 2, 'another value of x-user: a new check');
  t.equal((await get({})).status, 403, 'no x-user: denied');
  t.equal((await get({ accept: 'text/plain' })).status, 403, 'denied again');
  t.equal(s.checks(), 3, 'the denial was cached under "x-user absent"');
  const c = remoteClientOf(s.proxy.host)!;
  t.equal(c.cache!.stats.hits, 2);
  t.equal(s.proxy.host.metrics.value('wasm_mixer_remote_check_cache_hits_total'), 2, 'hits are in /metrics');
  await s.flush();
  t.equal(s.server.host.metrics.value('header_check_requests_total', { result: 'allowed' }), 3, "the adapter's own counter counts every request: cache hits replay it");
  t.equal(s.server.host.metrics.value('header_check_requests_total', { result: 'denied' }), 2);
});

t.test('check cache: validity duration, use count, modes, and off', async (t) => {
  await t.test('use count', async (t) => {
    const s = await setup(t, [headerCheck({ remote: { cache: { validUseCount: 2 } } })]);
    for (let i = 0; i < 7; i++) await request(s.proxy.port, '/', { headers: { 'x-user': 'ann' } });
    t.equal(s.checks(), 3, '1 check + 2 uses, three times over (7 requests)');
  });
  await t.test('duration', async (t) => {
    const s = await setup(t, [headerCheck({ remote: { cache: { validDurationMs: 150 } } })]);
    await request(s.proxy.port, '/', { headers: { 'x-user': 'ann' } });
    await request(s.proxy.port, '/', { headers: { 'x-user': 'ann' } });
    t.equal(s.checks(), 1);
    await sleep(200);
    await request(s.proxy.port, '/', { headers: { 'x-user': 'ann' } });
    t.equal(s.checks(), 2, 'expired after validDurationMs');
  });
  await t.test('mode off', async (t) => {
    const s = await setup(t, [headerCheck({ remote: { cache: { mode: 'off' } } })]);
    for (let i = 0; i < 4; i++) await request(s.proxy.port, '/', { headers: { 'x-user': 'ann' } });
    t.equal(s.checks(), 4);
  });
  await t.test('client cache switched off', async (t) => {
    const s = await setup(t, [headerCheck()], { checkCache: { enabled: false } });
    for (let i = 0; i < 4; i++) await request(s.proxy.port, '/', { headers: { 'x-user': 'ann' } });
    t.equal(s.checks(), 4, 'every request is a Check');
    t.equal(remoteClientOf(s.proxy.host)!.cache, null);
  });
  await t.test('an adapter with hidden state (shared data) is not cached unless mode is always', async (t) => {
    const quota = (mode: 'auto' | 'always'): PluginConfig => ({
      name: 'q',
      url: 'quota.wasm',
      pluginConfig: { limits: [{ name: 'l', limit: 1000, window: '1h', dimensions: { u: 'header:x-user' } }] },
      remote: { cache: { mode } },
    });
    const auto = await setup(t, [quota('auto')]);
    for (let i = 0; i < 3; i++) await request(auto.proxy.port, '/', { headers: { 'x-user': 'ann' } });
    t.equal(auto.checks(), 3, 'auto: the quota adapter reads and writes shared data: never cached');
    t.equal(auto.server.host.metrics.value('wasm_mixer_server_checks_total', { cacheable: 'false' }), 3);
    const always = await setup(t, [quota('always')]);
    for (let i = 0; i < 3; i++) await request(always.proxy.port, '/', { headers: { 'x-user': 'ann' } });
    t.equal(always.checks(), 1, 'always: the operator says it may be cached');
  });
});

t.test('report batching: by count, by time, and off', async (t) => {
  await t.test('by count', async (t) => {
    const s = await setup(t, [headerCheck()], { reportBatch: { maxEntries: 4, maxDelayMs: 60_000 } });
    for (let i = 0; i < 8; i++) await request(s.proxy.port, '/', { headers: { 'x-user': `u${i}` } });
    await sleep(50);
    t.equal(s.reports(), 2, '8 finished requests, 2 Reports of 4');
    t.equal(s.server.host.metrics.value('wasm_mixer_server_report_entries_total'), 8);
    t.equal(s.proxy.host.metrics.value('wasm_mixer_remote_report_batches_total'), 2);
  });
  await t.test('by time', async (t) => {
    const s = await setup(t, [headerCheck()], { reportBatch: { maxEntries: 100, maxDelayMs: 100 } });
    for (let i = 0; i < 3; i++) await request(s.proxy.port, '/', { headers: { 'x-user': `u${i}` } });
    t.equal(s.reports(), 0, 'nothing sent before maxDelayMs');
    await sleep(250);
    t.equal(s.reports(), 1, 'one Report after maxDelayMs');
  });
  await t.test('off', async (t) => {
    const s = await setup(t, [headerCheck()], { reportBatch: { enabled: false } });
    for (let i = 0; i < 5; i++) await request(s.proxy.port, '/', { headers: { 'x-user': `u${i}` } });
    await sleep(50);
    t.equal(s.reports(), 5, 'one Report per request');
  });
});

t.test('quota prefetch: units used locally, never above the limit; and off', async (t) => {
  const quota: PluginConfig = {
    name: 'q',
    url: 'quota.wasm',
    pluginConfig: { limits: [{ name: 'per_tenant', limit: 20, window: '1h', dimensions: { tenant: 'header:x-tenant' } }] },
    remote: { prefetch: true, quotaValidDurationMs: 60_000 },
  };
  const run = async (t: Tap.Test, enabled: boolean) => {
    const s = await setup(t, [quota], { quotaPrefetch: { enabled, minPrefetch: 5 } });
    let admitted = 0;
    for (let i = 0; i < 30; i++) {
      const r = await request(s.proxy.port, '/', { headers: { 'x-tenant': 'acme' } });
      if (r.status === 200) admitted++;
      else t.equal(r.status, 429, 'denied with 429');
    }
    return { s, admitted, local: s.proxy.host.metrics.value('wasm_mixer_remote_quota_local_grants_total') ?? 0 };
  };
  await t.test('on', async (t) => {
    const { s, admitted, local } = await run(t, true);
    t.ok(admitted <= 20, `never more than the limit (${admitted} admitted)`);
    t.ok(admitted >= 15, `prefetch does not starve the tenant (${admitted} admitted)`);
    t.ok(local >= 10, `${local} requests used a prefetched unit, without a call`);
    t.ok(s.checks() < 20, `${s.checks()} Check calls for 30 requests`);
    const denials = s.proxy.host.metrics.value('wasm_mixer_remote_quota_local_denials_total') ?? 0;
    t.ok(denials > 0, `${denials} denials answered locally during close-wait`);
  });
  await t.test('off', async (t) => {
    const { s, admitted, local } = await run(t, false);
    t.equal(admitted, 20, 'exactly the limit');
    t.equal(local, 0);
    t.equal(s.checks(), 30, 'one Check per request');
  });
});

/** A Mixer server that never answers Check (a hung adapter server). */
async function hungServer(t: Tap.Test): Promise<string> {
  const server = new grpc.Server();
  const held: Array<() => void> = [];
  server.addService(loadProtos().mixer, {
    Check: (_call: unknown, cb: grpc.sendUnaryData<object>) => void held.push(() => cb(null, {})),
    Report: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, {}),
    Describe: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { server_id: 'hung', adapters: [] }),
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  t.teardown(() => {
    for (const f of held) f();
    server.forceShutdown();
  });
  return `127.0.0.1:${port}`;
}

const closedAndOpen = (): PluginConfig[] => [
  { name: 'closed', url: 'spec.wasm', pluginConfig: 'ok', failStrategy: 'FAIL_CLOSE', match: [{ paths: [{ prefix: '/closed' }] }] },
  { name: 'open', url: 'spec.wasm', pluginConfig: 'ok', failStrategy: 'FAIL_OPEN', match: [{ paths: [{ prefix: '/open' }] }] },
];

t.test('deadline: a hung server never holds a request longer than remote.timeoutMs', async (t) => {
  const address = await hungServer(t);
  const log = capture();
  const proxy = await startRemoteProxy(
    { plugins: closedAndOpen(), routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }], remote: { address, plugins: 'all', timeoutMs: 150 } },
    { baseDir: dir, logger: log.logger },
  );
  t.teardown(() => proxy.close());
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => request(proxy.port, i % 2 ? '/open' : '/closed')));
  for (const r of results) t.ok(r.ms < 150 + 250, `answered in ${r.ms.toFixed(0)} ms`);
  t.same([...new Set(results.filter((_, i) => i % 2 === 0).map((r) => r.status))], [504], 'fail closed: 504 (adapter timeout)');
  t.same([...new Set(results.filter((_, i) => i % 2 === 1).map((r) => r.status))], [200], 'fail open: the request goes through');
  t.equal(results[0]!.headers['x-wasm-mixer-error'], 'adapter_timeout');
  const m = proxy.host.metrics;
  t.equal(m.value('wasm_mixer_remote_calls_total', { method: 'Check', code: 'DEADLINE_EXCEEDED' }), 10, 'deadline errors counted');
  t.equal(m.value('wasm_mixer_adapter_failures_total', { adapter: 'closed', code: 'ADAPTER_TIMEOUT', strategy: 'FAIL_CLOSE' }), 5);
  t.equal(m.value('wasm_mixer_adapter_failures_total', { adapter: 'open', code: 'ADAPTER_TIMEOUT', strategy: 'FAIL_OPEN' }), 5);
});

t.test('server down: fail closed answers 503 at once, fail open lets requests through', async (t) => {
  const probe = await startServer({ plugins: [] }, { logger: capture().logger });
  const address = probe.address;
  await probe.close(); // nothing listens there now
  const log = capture();
  const proxy = await startRemoteProxy(
    { plugins: closedAndOpen(), routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }], remote: { address, plugins: 'all', timeoutMs: 2000 } },
    { baseDir: dir, logger: log.logger },
  );
  t.teardown(() => proxy.close());
  const closed = await request(proxy.port, '/closed');
  const open = await request(proxy.port, '/open');
  t.equal(closed.status, 503);
  t.equal(closed.headers['x-wasm-mixer-error'], 'adapter_failed');
  t.match(closed.body, /"error":"ADAPTER_FAILED","adapter":"closed"/);
  t.ok(closed.ms < 1000, `no waiting for the deadline when the server is known down (${closed.ms.toFixed(0)} ms)`);
  t.equal(open.status, 200);
  t.ok((proxy.host.metrics.value('wasm_mixer_adapter_failures_total', { adapter: 'closed', code: 'REMOTE_UNAVAILABLE', strategy: 'FAIL_CLOSE' }) ?? 0) >= 1, 'counted with code REMOTE_UNAVAILABLE');
  t.ok(log.logs.some((r) => r.code === 'REMOTE_UNAVAILABLE' && /unavailable|unreachable/.test(r.message)), 'the failure is logged with its code and what to do');
});

t.test('config mismatch: the server does not run an adapter the proxy sends it', async (t) => {
  const server = await startServer({ plugins: [{ name: 'closed', url: 'spec.wasm', pluginConfig: 'ok' }] }, { baseDir: dir, logger: capture().logger });
  const log = capture();
  const proxy = await startRemoteProxy(
    { plugins: [{ name: 'other', url: 'spec.wasm', pluginConfig: 'ok' }], routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }], remote: { address: server.address, plugins: 'all' } },
    { baseDir: dir, logger: log.logger },
  );
  t.teardown(async () => {
    await proxy.close();
    await server.close();
  });
  const r = await request(proxy.port, '/');
  t.equal(r.status, 503);
  t.ok((proxy.host.metrics.value('wasm_mixer_adapter_failures_total', { adapter: 'other', code: 'REMOTE_CONFIG_MISMATCH', strategy: 'FAIL_CLOSE' }) ?? 0) >= 1);
  for (let i = 0; i < 50 && !log.logs.some((l) => l.code === 'REMOTE_CONFIG_MISMATCH' && l.level === 'error'); i++) await sleep(20);
  t.ok(log.logs.some((l) => l.code === 'REMOTE_CONFIG_MISMATCH' && /does not run it/.test(l.message)), 'Describe after connecting reports the mismatch');
});

t.test('responsePhase report: the response phase runs with the real response, before the log phase', async (t) => {
  const spec = (phase: 'check' | 'report'): PluginConfig => ({ name: 'spec', url: 'spec.wasm', pluginConfig: 'ok', remote: { responsePhase: phase } });
  const atCheck = await setup(t, [spec('check')]);
  t.equal((await request(atCheck.proxy.port, '/')).headers['x-spec-response'], '1', 'check (default): response header changes made at Check time are applied');
  const atReport = await setup(t, [spec('report')]);
  const r = await request(atReport.proxy.port, '/');
  t.equal(r.status, 200);
  t.equal(r.headers['x-spec-response'], undefined, 'report: too late to change the response');
  await atReport.flush();
  t.equal(atReport.server.host.metrics.value('spec_filter_requests_total'), 1, 'the log phase ran');
});

t.test('sessions: a Check whose Report never comes is closed after sessionTtlMs', async (t) => {
  const s = await setup(t, [headerCheck()], { server: { sessionTtlMs: 100 }, reportBatch: { maxEntries: 1000, maxDelayMs: 60_000 } });
  await request(s.proxy.port, '/', { headers: { 'x-user': 'ann' } });
  t.equal(s.server.sessions, 1, 'the session waits for its Report');
  await sleep(300);
  t.equal(s.server.sessions, 0, 'closed after the TTL');
  t.equal(s.server.host.metrics.value('wasm_mixer_server_sessions_expired_total'), 1, 'and counted');
});

t.test('unix socket address', async (t) => {
  const path = `${dir}/mixer.sock`;
  const base: MixerConfig = { plugins: [headerCheck()], routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }], remote: { address: `unix:${path}` } };
  const server = await startServer(base, { baseDir: dir, logger: capture().logger, listen: undefined });
  const proxy = await startRemoteProxy({ ...base, remote: { address: `unix:${path}`, plugins: 'all' } }, { baseDir: dir, logger: capture().logger });
  t.teardown(async () => {
    await proxy.close();
    await server.close();
  });
  t.equal(server.address, `unix:${path}`);
  t.equal((await request(proxy.port, '/', { headers: { 'x-user': 'ann' } })).status, 200);
  t.equal((await request(proxy.port, '/')).status, 403);
});

t.test('a segment of two remote adapters that cannot be checked: each applies its own failStrategy', async (t) => {
  const probe = await startServer({ plugins: [] }, { logger: capture().logger });
  const address = probe.address;
  await probe.close();
  const run = async (first: 'FAIL_OPEN' | 'FAIL_CLOSE', second: 'FAIL_OPEN' | 'FAIL_CLOSE') => {
    const proxy = await startRemoteProxy(
      {
        plugins: [
          { name: 'first', url: 'spec.wasm', pluginConfig: 'ok', failStrategy: first, priority: 2 },
          { name: 'second', url: 'spec.wasm', pluginConfig: 'ok', failStrategy: second, priority: 1 },
        ],
        routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }],
        remote: { address, plugins: 'all' },
      },
      { baseDir: dir, logger: capture().logger },
    );
    try {
      return await request(proxy.port, '/');
    } finally {
      await proxy.close();
    }
  };
  const a = await run('FAIL_CLOSE', 'FAIL_OPEN');
  t.equal(a.status, 503);
  t.match(a.body, /"adapter":"first"/, 'the first member fails closed');
  const b = await run('FAIL_OPEN', 'FAIL_CLOSE');
  t.equal(b.status, 503);
  t.match(b.body, /"adapter":"second"/, 'the first is skipped (fail open), the second fails closed');
  t.equal((await run('FAIL_OPEN', 'FAIL_OPEN')).status, 200, 'both fail open: the request goes through');
});

t.test('a Report cannot create metrics or speak for other adapters through replayed effects', async (t) => {
  const s = await setup(t, [headerCheck()]);
  await request(s.proxy.port, '/', { headers: { 'x-user': 'ann' } });
  await s.flush();
  const client = remoteClientOf(s.proxy.host)!;
  const { HttpStream } = await import('../../host/src/stream/http-stream.js');
  const { bagFromStream } = await import('../../host/src/oop/attributes.js');
  const bag = bagFromStream(new HttpStream([[':method', 'GET'], [':path', '/'], [':authority', 'x'], [':scheme', 'http']]), 'report');
  client.report({
    bag,
    adapters: ['hc'],
    sessionId: '',
    replay: [
      { metric: { adapter: 'hc', name: 'invented_total', type: 0, op: 0, value: 1e6 } },
      { metric: { adapter: 'someone-else', name: 'header_check_requests_total{result="allowed"}', type: 0, op: 0, value: 1e6 } },
      { metric: { adapter: 'hc', name: 'header_check_requests_total{result="allowed"}', type: 0, op: 0, value: 1 } },
    ],
  });
  await client.flush();
  t.equal(s.server.host.metrics.value('invented_total'), undefined, 'no new series from a client');
  t.equal(s.server.host.metrics.value('header_check_requests_total', { result: 'allowed' }), 2, 'only the adapter\'s own existing series moved, by the replayed 1');
});
