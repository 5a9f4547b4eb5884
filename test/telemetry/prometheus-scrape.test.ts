// A real Prometheus server (Debian's prometheus, on loopback) scrapes the proxy's admin
// port, which it does in OpenMetrics (its default Accept header), and a PromQL query
// returns the request count the test produced. Bounded: 500 ms scrape interval, 30 s cap.
import t from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import { startProxy } from '../../host/src/index.js';
import { createLogger } from '../../host/src/log/logger.js';
import { buildOnce, hasBinary, request, startPrometheus, startUpstream } from './helpers.js';

if (!hasBinary('prometheus')) {
  t.skip('prometheus is not installed (npm run system-deps installs Debian\'s prometheus package)', () => {});
} else {
  t.test('Prometheus scrapes /metrics and a query returns the request count', async (t) => {
    const [prometheusWasm, loggingWasm] = await Promise.all([buildOnce('prometheus'), buildOnce('logging')]);
    const up = await startUpstream();
    t.teardown(() => up.close());
    const proxy = await startProxy(
      {
        listen: { port: 0 },
        admin: { port: 0 },
        routes: [{ name: 'backend', upstream: `http://127.0.0.1:${up.port}` }],
        plugins: [
          { name: 'istio', url: prometheusWasm, phase: 'STATS', pluginConfig: { overrides: [{ tagOverrides: { tenant: { value: "request.headers['x-tenant']" } } }] } },
          { name: 'access', url: loggingWasm, phase: 'STATS', pluginConfig: {} },
        ],
        accessLog: { sinks: [{ type: 'file', path: '/dev/null', name: 'null' }] },
      },
      { logger: createLogger(LogLevel.Warn, () => {}) },
    );
    t.teardown(() => proxy.close());

    const ok = 17;
    const failed = 4;
    for (let i = 0; i < ok; i++) await request(proxy.port, '/bytes/64', { headers: { 'x-tenant': i % 2 === 0 ? 'acme "east"' : 'beta\\west' } });
    for (let i = 0; i < failed; i++) await request(proxy.port, '/status/503');

    const prom = await startPrometheus([`127.0.0.1:${proxy.adminPort}`], 500);
    t.teardown(() => prom.stop());

    const deadline = Date.now() + 30_000;
    const value = async (q: string): Promise<number | null> => {
      const r = await prom.query(q);
      return r.length === 0 ? null : Number(r[0]!.value[1]);
    };
    let total: number | null = null;
    while (Date.now() < deadline) {
      total = await value('sum(istio_requests_total{job="wasm-mixer",response_code="200"})');
      if (total === ok) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    t.equal(total, ok, 'PromQL: the 200s the test sent');
    t.equal(await value('sum(istio_requests_total{response_code="503"})'), failed);
    t.equal(await value('sum(istio_requests_total{tenant="acme \\"east\\""})'), 9, 'label values with quotes survive the scrape');
    t.equal(await value('sum(istio_requests_total{tenant="beta\\\\west"})'), 8, 'and backslashes');
    t.equal(await value('sum(istio_request_duration_milliseconds_count{response_code="200"})'), ok);
    t.equal(await value('sum(istio_response_bytes_sum{response_code="200"})'), ok * 64);
    t.equal(await value('sum(wasm_mixer_access_log_entries_total)'), ok + failed, 'host metrics: access-log entries written');
    t.equal(await value('up{job="wasm-mixer"}'), 1);
    const targets = await prom.targets();
    t.equal(targets[0]?.health, 'up');
    t.equal(targets[0]?.lastError, '', 'no scrape errors (OpenMetrics parsed)');
    t.ok((await value('scrape_samples_scraped{job="wasm-mixer"}'))! > 100, 'every sample was ingested');
    // the scrape itself was OpenMetrics: counters keep their _total name, the le labels of Istio buckets are canonical floats
    t.equal(await value('count(istio_request_duration_milliseconds_bucket{le="0.5",response_code="200"})'), 2, 'le="0.5" series exist');
  });
}
