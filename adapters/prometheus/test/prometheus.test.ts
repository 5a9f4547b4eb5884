// The prometheus adapter through the real proxy on real sockets: exact metric values after
// a known request sequence, Istio's labels, tag overrides, presets, escaping, the per-metric
// series cap, promtool acceptance of /metrics, and configuration errors.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { LogLevel } from '../../../host/src/abi/constants.js';
import type { MixerConfig } from '../../../host/src/config/schema.js';
import { startProxy, type RunningProxy } from '../../../host/src/index.js';
import { createLogger } from '../../../host/src/log/logger.js';
import { buildOnce, buildSetAttrs, documentedPromtoolFindings, findings, promtool, request, ROOT, startUpstream, type Upstream } from '../../../test/telemetry/helpers.js';

const wasm = await buildOnce('prometheus');
const setAttrs = await buildSetAttrs();
const upstream: Upstream = await startUpstream();
t.teardown(() => upstream.close());

async function run(t: Test, pluginConfig: unknown, extra: Partial<MixerConfig> = {}): Promise<RunningProxy> {
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'backend', upstream: `http://127.0.0.1:${upstream.port}` }],
      plugins: [
        { name: 'attrs', url: setAttrs, phase: 'AUTHN' },
        { name: 'prom', url: wasm, phase: 'STATS', pluginConfig },
      ],
      ...extra,
    },
    { logger: createLogger(LogLevel.Warn, () => {}) },
  );
  t.teardown(() => proxy.close());
  return proxy;
}

/** The labels Istio's preset gives a request to route "backend" on this proxy. */
function istio(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    reporter: 'destination',
    source_workload: 'unknown', source_workload_namespace: 'unknown', source_principal: 'unknown', source_app: 'unknown',
    source_version: 'unknown', source_cluster: 'unknown', source_canonical_service: 'unknown', source_canonical_revision: 'unknown',
    destination_workload: 'unknown', destination_workload_namespace: 'unknown', destination_principal: 'unknown', destination_app: 'unknown',
    destination_version: 'unknown', destination_service: 'backend', destination_service_name: 'backend', destination_service_namespace: 'unknown',
    destination_cluster: 'unknown', destination_canonical_service: 'unknown', destination_canonical_revision: 'unknown',
    request_protocol: 'http', response_code: '200', grpc_response_status: '', response_flags: '-', connection_security_policy: 'none',
    ...overrides,
  };
}

/** Finite bucket bounds of a histogram, in order. */
const les = (b: Record<string, number>): number[] => Object.keys(b).filter((k) => k !== '+Inf').map(Number).sort((x, y) => x - y);

const settle = () => new Promise((r) => setTimeout(r, 30)); // the log phase runs when the response closes

t.test('exact values after a known request sequence', async (t) => {
  const dead = http.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const proxy = await run(t, {}, {
    routes: [
      { name: 'dead', match: { prefix: '/dead' }, upstream: `http://127.0.0.1:${deadPort}` },
      { name: 'backend', upstream: `http://127.0.0.1:${upstream.port}` },
    ],
  });
  for (let i = 0; i < 3; i++) t.equal((await request(proxy.port, '/bytes/10')).status, 200);
  for (let i = 0; i < 2; i++) t.equal((await request(proxy.port, '/status/503', { method: 'POST', body: 'hello' })).status, 503);
  t.equal((await request(proxy.port, '/x', { headers: { 'x-test-deny': '403', 'x-test-principal': 'alice' } })).status, 403);
  t.equal((await request(proxy.port, '/dead/x')).status, 503);
  t.equal((await request(proxy.port, '/grpc/7', { method: 'POST', headers: { 'content-type': 'application/grpc' }, body: 'abc' })).status, 200);
  await settle();
  const m = proxy.host.metrics;

  const ok = istio();
  const err = istio({ response_code: '503' });
  const denied = istio({ response_code: '403', response_flags: 'UAEX', source_principal: 'alice' });
  const uf = istio({ response_code: '503', response_flags: 'UF', destination_service: 'dead', destination_service_name: 'dead' });
  const grpc = istio({ request_protocol: 'grpc', grpc_response_status: '7' });

  t.equal(m.value('istio_requests_total', ok), 3);
  t.equal(m.value('istio_requests_total', err), 2);
  t.equal(m.value('istio_requests_total', denied), 1, 'a local reply is counted with UAEX and the principal from the auth stage');
  t.equal(m.value('istio_requests_total', uf), 1, 'an upstream failure with UF');
  t.equal(m.value('istio_requests_total', grpc), 1, 'gRPC: request_protocol and grpc_response_status');

  const reqBytes = m.histogramValue('istio_request_bytes', err)!;
  t.same({ sum: reqBytes.sum, count: reqBytes.count }, { sum: 10, count: 2 }, 'two 5-byte request bodies');
  t.equal(reqBytes.buckets['5'], 2, 'both in the le=5 bucket');
  t.equal(reqBytes.buckets['1'], 0);
  const respBytes = m.histogramValue('istio_response_bytes', ok)!;
  t.same({ sum: respBytes.sum, count: respBytes.count }, { sum: 30, count: 3 }, 'three 10-byte response bodies');
  t.same(respBytes.buckets, { 0.5: 0, 1: 0, 5: 0, 10: 3, 25: 3, 50: 3, 100: 3, 250: 3, 500: 3, 1000: 3, 2500: 3, 5000: 3, 10000: 3, 30000: 3, 60000: 3, 300000: 3, 600000: 3, 1800000: 3, 3600000: 3, '+Inf': 3 }, 'Istio default buckets, cumulative');
  t.equal(m.histogramValue('istio_response_bytes', denied)!.sum, Buffer.byteLength('denied by set-attrs\n'));

  const dur = m.histogramValue('istio_request_duration_milliseconds', ok)!;
  t.equal(dur.count, 3);
  t.ok(dur.sum > 0 && dur.sum < 3000, `durations are fractional milliseconds (sum ${dur.sum})`);
  t.not(Math.round(dur.sum * 1000) % 1000, 0, 'not whole milliseconds');

  const text = (await request(proxy.adminPort!, '/metrics')).body;
  t.match(text, '# TYPE istio_requests_total counter');
  t.match(text, '# TYPE istio_request_duration_milliseconds histogram');
  t.match(text, '# HELP istio_request_bytes Request body sizes.');
  t.match(text, /istio_requests_total\{reporter="destination",source_workload="unknown",.*response_code="200",grpc_response_status="",response_flags="-",connection_security_policy="none"\} 3\n/);
  // The default preset keeps Istio's names (dashboards query them), so promtool lints one of
  // them: exactly what the READMEs document, and nothing else.
  const r = await promtool(text);
  const documented = await documentedPromtoolFindings();
  t.same(documented, ['istio_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"'], 'adapters/prometheus/README.md lists the finding');
  t.equal(r.code, 3, `promtool: no parse errors, lint findings only (exit 3)\n${r.output}`);
  t.same(findings(r.output), documented, 'promtool reports exactly the documented findings');
  const row = (await readFile(join(ROOT, 'README.md'), 'utf8')).split('\n').find((l) => l.startsWith('| `/metrics` |')) ?? '';
  for (const f of documented) t.ok(row.includes(f), `README.md's /metrics row states the finding: ${f}`);
  t.notMatch(row, /passes `promtool check metrics`\s*\|/, 'and does not claim a clean pass for the default output');
});

t.test('label values with characters that need escaping survive the exposition', async (t) => {
  const proxy = await run(t, { overrides: [{ tagOverrides: { tenant: { value: "request.headers['x-tenant']" }, note: { value: "'two\nlines'" } } }] });
  const tricky = 'a"b\\c d=e,f}';
  await request(proxy.port, '/ok', { headers: { 'x-tenant': tricky } });
  await settle();
  t.equal(proxy.host.metrics.value('istio_requests_total', istio({ tenant: tricky, note: 'two\nlines' })), 1, 'the registry parsed back the exact values');
  const text = (await request(proxy.adminPort!, '/metrics')).body;
  t.match(text, 'tenant="a\\"b\\\\c d=e,f}",note="two\\nlines"');
  const r = await promtool(text);
  t.ok(r.code === 0 || r.code === 3, `promtool parses it (exit ${r.code})`);
  t.same(findings(r.output).filter((f) => !f.startsWith('istio_request_duration_milliseconds ')), [], 'no finding but the documented one');
});

t.test('tag overrides, Telemetry API style: upsert, remove, literal, disabled metrics, mode', async (t) => {
  const proxy = await run(t, {
    overrides: [
      {
        match: { metric: 'ALL_METRICS', mode: 'CLIENT_AND_SERVER' },
        tagOverrides: {
          destination_workload: { value: "'reviews-v1'" },
          request_host: { operation: 'UPSERT', value: 'request.host' },
          request_method: { value: 'request.method' },
          source_app: { operation: 'REMOVE' },
          source_version: { operation: 'REMOVE' },
        },
      },
      { match: { metric: 'REQUEST_COUNT' }, tagOverrides: { user: { value: "request.headers['x-user']" } } },
      { match: { metric: 'REQUEST_SIZE' }, disabled: true },
      { match: { metric: 'RESPONSE_SIZE', mode: 'CLIENT' }, disabled: true },
      { match: { metric: 'TCP_SENT_BYTES' }, disabled: true },
    ],
  });
  await request(proxy.port, '/ok', { headers: { 'x-user': 'u1' } });
  await settle();
  const m = proxy.host.metrics;
  const base = istio({ destination_workload: 'reviews-v1', request_host: `127.0.0.1:${proxy.port}`, request_method: 'GET' });
  delete base.source_app;
  delete base.source_version;
  t.equal(m.value('istio_requests_total', { ...base, user: 'u1' }), 1, 'REQUEST_COUNT has its own extra label');
  t.equal(m.value('istio_request_duration_milliseconds', base), 1);
  t.equal(m.value('istio_response_bytes', base), 1, 'a CLIENT-mode override does not apply to reporter=destination');
  t.notOk(m.familyNames().includes('istio_request_bytes'), 'REQUEST_SIZE disabled');
  t.equal(m.value('istio_requests_total', { ...base, user: 'unknown' }), undefined);
  await request(proxy.port, '/ok');
  await settle();
  t.equal(m.value('istio_requests_total', { ...base, user: 'unknown' }), 1, 'a missing attribute is "unknown"');
});

t.test('reporter=source and the istio_seconds preset (Mixer 1.1 names and buckets); promtool finds nothing', async (t) => {
  const proxy = await run(t, { preset: 'istio_seconds', reporter: 'source' });
  await request(proxy.port, '/slow/20');
  await request(proxy.port, '/bytes/150');
  await settle();
  const m = proxy.host.metrics;
  const labels = istio({ reporter: 'source', connection_security_policy: 'unknown' });
  const d = m.histogramValue('istio_request_duration_seconds', labels)!;
  t.equal(d.count, 2);
  t.ok(d.sum > 0.02 && d.sum < 5, `seconds (sum ${d.sum})`);
  t.same(les(d.buckets), [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  t.same(les(m.histogramValue('istio_response_bytes', labels)!.buckets), [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000], 'exponential byte buckets (8 finite, growth 10)');
  t.equal(m.histogramValue('istio_response_bytes', labels)!.buckets['1000'], 2);
  t.equal(m.histogramValue('istio_response_bytes', labels)!.buckets['100'], 1);
  t.notOk(m.familyNames().includes('istio_request_duration_milliseconds'));
  const r = await promtool((await request(proxy.adminPort!, '/metrics')).body);
  t.equal(r.code, 0, `promtool: no errors and no lint findings ${r.output}`);
  t.same(findings(r.output), []);
});

t.test('bucket overrides from the adapter config; the operator\'s histogramBuckets win', async (t) => {
  const proxy = await run(t, { buckets: { REQUEST_DURATION: [1, 10, 100], RESPONSE_SIZE: [5, 50] } }, { metrics: { histogramBuckets: { istio_response_bytes: [1000, 2000] } } });
  await request(proxy.port, '/bytes/30');
  await settle();
  const m = proxy.host.metrics;
  t.same(les(m.histogramValue('istio_request_duration_milliseconds', istio())!.buckets), [1, 10, 100]);
  t.same(les(m.histogramValue('istio_response_bytes', istio())!.buckets), [1000, 2000], 'operator override');
});

t.test('series cap per metric: extra label sets fold into one overflow series, counted', async (t) => {
  const proxy = await run(t, { max_series_per_metric: 3, overrides: [{ tagOverrides: { tenant: { value: "request.headers['x-tenant']" } } }] });
  for (let i = 0; i < 7; i++) await request(proxy.port, '/ok', { headers: { 'x-tenant': `t${i}` } });
  await request(proxy.port, '/ok', { headers: { 'x-tenant': 't1' } });
  await settle();
  const m = proxy.host.metrics;
  for (let i = 0; i < 3; i++) t.equal(m.value('istio_requests_total', istio({ tenant: `t${i}` })), i === 1 ? 2 : 1, `t${i} has its own series`);
  t.equal(m.value('istio_requests_total', istio({ tenant: 't3' })), undefined);
  const over: Record<string, string> = {};
  for (const [k, v] of Object.entries(istio({ tenant: '' }))) over[k] = ['reporter', 'source_workload', 'source_workload_namespace', 'source_app', 'source_version', 'source_cluster', 'source_canonical_service', 'source_canonical_revision', 'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version', 'destination_service_namespace', 'destination_cluster', 'destination_canonical_service', 'destination_canonical_revision'].includes(k) ? v : '__overflow__';
  t.equal(m.value('istio_requests_total', over), 4, 't3..t6 land in the overflow series (constant labels keep their values)');
  t.equal(m.value('wasm_mixer_prometheus_overflow_total', { metric: 'istio_requests_total' }), 4);
  t.equal(m.value('wasm_mixer_prometheus_overflow_total', { metric: 'istio_request_duration_milliseconds' }), 4);
});

t.test('the host cap (metrics.maxSeriesPerMetric) backs the adapter\'s', async (t) => {
  const proxy = await run(t, { overrides: [{ tagOverrides: { tenant: { value: "request.headers['x-tenant']" } } }] }, { metrics: { maxSeriesPerMetric: 2 } });
  for (let i = 0; i < 5; i++) await request(proxy.port, '/ok', { headers: { 'x-tenant': `t${i}` } });
  await settle();
  const m = proxy.host.metrics;
  t.equal(m.value('istio_requests_total', istio({ tenant: 't0' })), 1);
  t.equal(m.value('istio_requests_total', istio({ tenant: 't1' })), 1);
  const all = Object.fromEntries(Object.keys(istio({ tenant: '' })).map((k) => [k, '__overflow__']));
  t.equal(m.value('istio_requests_total', all), 3, 'the host folds every label of the extra series');
  t.equal(m.value('wasm_mixer_metric_series_overflow_total', { metric: 'istio_requests_total' }), 3, 'three label sets folded');
});

t.test('configuration errors name the field', async (t) => {
  const bad = async (cfg: unknown, msg: RegExp) => {
    await t.rejects(startProxy({ listen: { port: 0 }, plugins: [{ name: 'prom', url: wasm, pluginConfig: cfg }] }, { logger: createLogger(LogLevel.Critical) }), {
      code: 'PLUGIN_CONFIGURE_FAILED',
      message: msg,
    });
  };
  await bad({ preset: 'statsd' }, /config "preset": must be "istio" or "istio_seconds"/);
  await bad({ overrides: [{ match: { metric: 'REQUEST_BYTES' } }] }, /config "overrides\[0\]\.match\.metric": must be ALL_METRICS/);
  await bad({ overrides: [{ tagOverrides: { 'bad-name': { value: "'x'" } } }] }, /tagOverrides\.bad-name": is not a valid Prometheus label name/);
  await bad({ overrides: [{ tagOverrides: { le: { value: "'x'" } } }] }, /tagOverrides\.le": is not a valid Prometheus label name/);
  await bad({ overrides: [{ tagOverrides: { x: { operation: 'UPSERT' } } }] }, /tagOverrides\.x\.value": is required for UPSERT/);
  await bad({ overrides: [{ tagOverrides: { x: { value: 'request.headers[x]' } } }] }, /must be a quoted string/);
  await bad({ max_series_per_metric: 0 }, /max_series_per_metric": must be between 1 and 1000000/);
  await bad({ buckets: { REQUEST_DURATION: [5, 1] } }, /must be strictly increasing/);
  await bad({ labels: {} }, /config "labels": unknown key/);
});

t.test('config.example.json is a valid configuration', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const cfg = JSON.parse(await readFile(new URL('../config.example.json', import.meta.url), 'utf8')) as unknown;
  const proxy = await run(t, cfg);
  await request(proxy.port, '/ok', { headers: { 'x-tenant': 'acme' } });
  await request(proxy.port, '/healthz');
  await settle();
  const m = proxy.host.metrics;
  const labels = istio({ destination_workload: 'orders', destination_workload_namespace: 'shop', request_host: `127.0.0.1:${proxy.port}` });
  delete labels.source_app;
  delete labels.source_version;
  t.equal(m.value('istio_requests_total', { ...labels, tenant: 'acme' }), 1, 'the health check is excluded');
  t.same(les(m.histogramValue('istio_request_duration_milliseconds', labels)!.buckets), [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]);
  t.notOk(m.familyNames().includes('istio_request_bytes'));
});

// A metric reuses the series it found while a request's label values repeat the previous
// request's: runs of the same values, alternations, values that differ only in their last
// byte or in length, and repeated overflow requests must each land where a fresh lookup puts
// them — with batched attribute reads, and with one proxy_get_property per attribute (Envoy).
for (const standard of [false, true]) {
  t.test(`label values that repeat, alternate and overflow land in their series${standard ? ' (standard ABI reads)' : ''}`, async (t) => {
    // tenant on every metric; "only" on the request counter alone (a second label set)
    const proxy = await run(t, {
      max_series_per_metric: 4,
      overrides: [
        { tagOverrides: { tenant: { value: "request.headers['x-tenant']" } } },
        { match: { metric: 'REQUEST_COUNT' }, tagOverrides: { only: { value: "request.headers['x-only']" } } },
      ],
    });
    if (standard) proxy.host.telemetry.foreign.setGrant((_adapter, name) => name !== 'wasm_mixer.get_property_set');
    const seq: Array<[string, string, string]> = [
      ['a', '1', '/bytes/1'], ['a', '1', '/bytes/1'], ['a', '2', '/bytes/2'], ['a', '1', '/bytes/1'], ['ab', '1', '/bytes/3'], ['a', '1', '/bytes/1'],
      ['abcdefghijklmnop', '1', '/bytes/4'], ['abcdefghijklmnoq', '1', '/bytes/5'], ['abcdefghijklmnoq', '1', '/bytes/5'],
      ['over', '1', '/bytes/6'], ['over', '1', '/bytes/6'], ['over', '1', '/bytes/6'], ['a', '1', '/bytes/1'], ['over2', '2', '/bytes/7'],
    ];
    for (const [tenant, only, path] of seq) t.equal((await request(proxy.port, path, { headers: { 'x-tenant': tenant, 'x-only': only } })).status, 200);
    await settle();
    const m = proxy.host.metrics;
    const count = (tenant: string, only: string) => m.value('istio_requests_total', istio({ tenant, only }));
    t.equal(count('a', '1'), 5, 'runs and returns of the same values');
    t.equal(count('a', '2'), 1);
    t.equal(count('ab', '1'), 1, 'a longer value');
    t.equal(count('abcdefghijklmnop', '1'), 1);
    t.equal(count('abcdefghijklmnoq', '1'), undefined, 'past the cap of 4 series');
    const sizes = (tenant: string) => m.histogramValue('istio_response_bytes', istio({ tenant }));
    t.match(sizes('a'), { count: 6, sum: 7 }, 'the other label set: "a" with either "only"');
    t.same([sizes('ab')?.sum, sizes('abcdefghijklmnop')?.sum, sizes('abcdefghijklmnoq')?.sum], [3, 4, 10], 'the size metrics hold their own four series');
    t.equal(m.value('wasm_mixer_prometheus_overflow_total', { metric: 'istio_requests_total' }), 6, 'every request past the cap is counted, repeated values included');
    t.equal(m.value('wasm_mixer_prometheus_overflow_total', { metric: 'istio_response_bytes' }), 4);
  });
}

t.test('exports only the per-request callbacks it uses (log phase only)', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const names = WebAssembly.Module.exports(new WebAssembly.Module(await readFile(await buildOnce('prometheus')))).map((e) => e.name);
  for (const e of ['proxy_on_context_create', 'proxy_on_log', 'proxy_on_delete']) t.ok(names.includes(e), `exports ${e}`);
  // a host skips a callback the module does not export: two guest calls fewer per request
  for (const e of ['proxy_on_request_headers', 'proxy_on_response_headers', 'proxy_on_done']) t.notOk(names.includes(e), `does not export ${e}`);
});
