// The metrics registry and /metrics: Prometheus text 0.0.4 and OpenMetrics rendering,
// content negotiation, gzip, series identity, name clashes, the series cap, described
// families, and promtool acceptance of everything a running proxy serves.
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { MetricType, Status } from '../../host/src/abi/constants.js';
import { startProxy } from '../../host/src/index.js';
import { LogLevel } from '../../host/src/abi/constants.js';
import { createLogger } from '../../host/src/log/logger.js';
import { negotiate, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE } from '../../host/src/metrics/exposition.js';
import { MetricsRegistry, OVERFLOW_VALUE } from '../../host/src/metrics/registry.js';
import { buildOnce, promtool, request, startUpstream } from './helpers.js';

t.test('negotiation follows the Accept header and its q-values', async (t) => {
  const prom2 = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
  t.equal(negotiate(prom2).contentType, OPENMETRICS_CONTENT_TYPE, 'what Prometheus 2.x sends');
  t.equal(negotiate(undefined).contentType, TEXT_CONTENT_TYPE);
  t.equal(negotiate('*/*').contentType, TEXT_CONTENT_TYPE, 'curl');
  t.equal(negotiate('text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5').format, 'text', 'q-values decide');
  t.equal(negotiate('application/openmetrics-text;q=0,text/plain').format, 'text', 'q=0 refuses');
  t.equal(negotiate('application/openmetrics-text; version=0.0.1').contentType, 'application/openmetrics-text; version=0.0.1; charset=utf-8');
  t.equal(negotiate('application/openmetrics-text; version=2.0.0').format, 'text', 'an OpenMetrics version we do not produce');
  t.equal(negotiate('application/json').format, 'text', 'nothing acceptable still gets text');
  t.equal(negotiate('text/plain;version=0.0.4;q=0.5, application/openmetrics-text;q=0.5').format, 'openmetrics', 'ties go to OpenMetrics');
});

t.test('text 0.0.4 and OpenMetrics renderings of every type', async (t) => {
  const r = new MetricsRegistry();
  const c = r.define(MetricType.Counter, 'app_requests_total{code="200",route="a"}', 'x')!;
  r.increment(c, 3);
  const cNoTotal = r.define(MetricType.Counter, 'app_events', 'x')!;
  r.increment(cNoTotal, 1);
  const g = r.define(MetricType.Gauge, 'app_temperature', 'x')!;
  r.record(g, 21);
  t.equal(r.describe(MetricType.Histogram, 'app_latency_seconds', { help: 'Latency "quoted" \\ back\nslash.', unit: 'seconds', buckets: [0.1, 1], scale: 0.001 }), null);
  const h = r.define(MetricType.Histogram, 'app_latency_seconds{route="a"}', 'x')!;
  r.record(h, 50); // 0.05 s after scale
  r.record(h, 500); // 0.5 s
  r.record(h, 5000); // 5 s
  const text = r.render();
  t.match(text, '# HELP app_latency_seconds Latency "quoted" \\\\ back\\nslash.\n# TYPE app_latency_seconds histogram\n');
  t.match(text, 'app_latency_seconds_bucket{route="a",le="0.1"} 1\napp_latency_seconds_bucket{route="a",le="1"} 2\napp_latency_seconds_bucket{route="a",le="+Inf"} 3\napp_latency_seconds_sum{route="a"} 5.55\napp_latency_seconds_count{route="a"} 3\n');
  t.match(text, '# TYPE app_requests_total counter\napp_requests_total{code="200",route="a"} 3\n');
  t.match(text, '# TYPE app_events counter\napp_events 1\n');
  t.match(text, '# TYPE app_temperature gauge\napp_temperature 21\n');
  t.notMatch(text, '# EOF');
  t.notMatch(text, '# UNIT');
  const om = r.render(true);
  t.match(om, '# HELP app_latency_seconds Latency \\"quoted\\" \\\\ back\\nslash.\n# TYPE app_latency_seconds histogram\n# UNIT app_latency_seconds seconds\n');
  t.match(om, 'app_latency_seconds_bucket{route="a",le="1.0"} 2\n', 'canonical floats for le');
  t.match(om, '# TYPE app_requests counter\napp_requests_total{code="200",route="a"} 3\n', 'counter family without _total, samples with it');
  t.match(om, '# TYPE app_events counter\napp_events_total 1\n');
  t.ok(om.endsWith('# EOF\n'));
  const p = await promtool(text);
  t.same(p.output.trim().split('\n').filter(Boolean), ['app_events counter metrics should have "_total" suffix'], `promtool parses it and lints only the counter named without _total (exit ${p.code})`);
});

t.test('series identity, name clashes and bad names', async (t) => {
  const r = new MetricsRegistry();
  const a = r.define(MetricType.Counter, 'x_total{a="1",b="2"}');
  t.equal(r.define(MetricType.Counter, 'x_total{b="2",a="1"}'), a, 'the same label set in another order is the same series');
  t.equal(r.define(MetricType.Gauge, 'x_total'), null, 'a type clash');
  t.equal(r.define(MetricType.Gauge, 'x'), null, 'would clash with the OpenMetrics family of x_total');
  r.define(MetricType.Histogram, 'lat');
  t.equal(r.define(MetricType.Counter, 'lat_count'), null, 'would clash with a histogram sample name');
  t.equal(r.define(MetricType.Gauge, 'lat_sum'), null);
  t.equal(r.define(MetricType.Histogram, 'h{le="1"}'), null, 'le is reserved on histograms');
  t.equal(r.define(MetricType.Counter, 'c_total{__x="1"}'), null, '__ label names are reserved');
  t.equal(r.define(MetricType.Counter, 'c_total{a="1",a="2"}'), null, 'duplicate label');
  t.equal(r.define(MetricType.Counter, 'c_total{a="\\q"}'), null, 'bad escape');
  t.not(r.define(MetricType.Counter, 'bad-name.total'), null, 'invalid characters are replaced');
  t.ok(r.familyNames().includes('bad_name_total'));
  t.equal(r.increment(a!, -1), Status.BadArgument, 'counters only go up');
  t.equal(r.get(999), null);
});

t.test('the series cap folds new label sets into one overflow series and counts them', async (t) => {
  const r = new MetricsRegistry({ maxSeriesPerMetric: 2 });
  const ids = ['a', 'b', 'c', 'd', 'e'].map((v) => r.define(MetricType.Counter, `req_total{user="${v}",code="200"}`)!);
  t.equal(new Set(ids).size, 3, 'two real series and one overflow series');
  t.equal(ids[2], ids[3]);
  t.equal(ids[3], ids[4]);
  for (const id of ids) r.increment(id, 1);
  t.equal(r.value('req_total', { user: 'a', code: '200' }), 1);
  t.equal(r.value('req_total', { user: OVERFLOW_VALUE, code: OVERFLOW_VALUE }), 3);
  t.equal(r.value('wasm_mixer_metric_series_overflow_total', { metric: 'req_total' }), 3);
  t.equal(r.describe(MetricType.Counter, 'small_total', { maxSeries: 1 }), null);
  r.define(MetricType.Counter, 'small_total{k="1"}');
  r.define(MetricType.Counter, 'small_total{k="2"}');
  t.equal(r.value('small_total', { k: OVERFLOW_VALUE }), 0, 'a described cap');
  t.match(r.render(), /req_total\{user="__overflow__",code="__overflow__"\} 3/);
});

t.test('describe: buckets fixed once series exist, operator overrides win, validation', async (t) => {
  const r = new MetricsRegistry({ buckets: { op_seconds: [1, 2] } });
  t.equal(r.describe(MetricType.Histogram, 'op_seconds', { buckets: [5, 6] }), null);
  r.define(MetricType.Histogram, 'op_seconds');
  t.same(Object.keys(r.histogramValue('op_seconds')!.buckets), ['1', '2', '+Inf'], 'operator override');
  t.equal(r.describe(MetricType.Histogram, 'd_ms', { buckets: [1, 2] }), null);
  r.define(MetricType.Histogram, 'd_ms');
  t.match(r.describe(MetricType.Histogram, 'd_ms', { buckets: [1, 3] }), /already has series with other buckets/);
  t.equal(r.describe(MetricType.Histogram, 'd_ms', { buckets: [1, 2], help: 'new help' }), null, 'the same buckets again (a VM restart) is fine');
  t.match(r.describe(MetricType.Counter, 'd_ms', {}), /already a histogram/);
  t.match(r.describe(MetricType.Histogram, 'e', { buckets: [2, 1] }), /strictly increasing/);
  t.match(r.describe(MetricType.Counter, 'e2', { buckets: [1] }), /histograms only/);
  t.match(r.describe(MetricType.Histogram, 'e3', { scale: 0 }), /positive/);
  t.match(r.describe(MetricType.Gauge, '1bad', {}), /invalid metric family name/);
});

t.test('a running proxy with both adapters: /metrics passes promtool, negotiates OpenMetrics, gzips', async (t) => {
  const [logging, prometheus] = await Promise.all([buildOnce('logging'), buildOnce('prometheus')]);
  const up = await startUpstream();
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'backend', upstream: `http://127.0.0.1:${up.port}` }],
      plugins: [
        { name: 'access', url: logging, phase: 'STATS', pluginConfig: {} },
        { name: 'istio', url: prometheus, phase: 'STATS', pluginConfig: { preset: 'istio_seconds' } },
      ],
      accessLog: { sinks: [{ type: 'file', path: '/dev/null', name: 'null' }] },
    },
    { logger: createLogger(LogLevel.Warn, () => {}) },
  );
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  for (let i = 0; i < 5; i++) await request(proxy.port, i === 4 ? '/status/500' : '/bytes/100');
  await new Promise((r) => setTimeout(r, 50));

  const text = await request(proxy.adminPort!, '/metrics');
  t.equal(text.headers['content-type'], TEXT_CONTENT_TYPE);
  for (const family of [
    'wasm_mixer_host_streams_total', 'wasm_mixer_proxy_responses_total', 'wasm_mixer_adapter_call_duration_seconds', 'wasm_mixer_vm_restarts_total',
    'wasm_mixer_access_log_entries_total', 'wasm_mixer_access_log_dropped_total', 'istio_requests_total', 'istio_request_duration_seconds',
    'process_cpu_seconds_total', 'process_resident_memory_bytes',
  ]) t.match(text.body, `# TYPE ${family} `, `serves ${family}`);
  t.match(text.body, 'wasm_mixer_vm_restarts_total{adapter="istio"} 0', 'restarts are exposed at 0');
  t.match(text.body, 'wasm_mixer_access_log_dropped_total{sink="null",reason="buffer_full"} 0', 'drops are exposed at 0');
  t.match(text.body, /wasm_mixer_adapter_call_duration_seconds_count\{adapter="istio",callback="proxy_on_log"\} 5/, 'per-adapter call latency, by callback');
  const p = await promtool(text.body);
  t.equal(p.code, 0, `promtool check metrics: no errors, no lint findings\n${p.output}`);

  const om = await request(proxy.adminPort!, '/metrics', { headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' } });
  t.equal(om.headers['content-type'], OPENMETRICS_CONTENT_TYPE);
  t.ok(om.body.endsWith('# EOF\n'));
  t.match(om.body, '# TYPE istio_requests counter\n');

  const gz = await request(proxy.adminPort!, '/metrics', { headers: { 'accept-encoding': 'gzip' } });
  t.equal(gz.headers['content-encoding'], 'gzip');
  t.equal(gz.headers.vary, 'Accept, Accept-Encoding');
  const unzipped = gunzipSync(gz.raw).toString();
  t.match(unzipped, '# TYPE istio_requests_total counter');
  t.ok(gz.raw.length < unzipped.length / 3, `gzip pays off (${gz.raw.length} of ${unzipped.length} bytes)`);

  const head = await request(proxy.adminPort!, '/metrics', { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.body, '');
});
