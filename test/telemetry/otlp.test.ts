// OTLP export with OpenTelemetry JS: access-log entries as log records and the metrics
// registry as OTLP metrics, received by a local OTLP/HTTP (JSON) endpoint; a collector that
// is down or hangs costs counted drops, never blocked requests or unbounded memory.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import { startProxy } from '../../host/src/index.js';
import { AccessLogRouter } from '../../host/src/log/access-log.js';
import { createLogger } from '../../host/src/log/logger.js';
import { MetricsRegistry } from '../../host/src/metrics/registry.js';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OtlpLogSink } from '../../host/src/telemetry/otlp-logs.js';
import { buildOnce, buildSetAttrs, freePort, request, startUpstream } from './helpers.js';

interface AnyValue { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean; kvlistValue?: { values: KeyValue[] } }
interface KeyValue { key: string; value: AnyValue }

const scalar = (v: AnyValue | undefined): unknown => {
  if (v === undefined) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.kvlistValue !== undefined) return Object.fromEntries(v.kvlistValue.values.map((kv) => [kv.key, scalar(kv.value)]));
  return null;
};
const attrs = (kvs: KeyValue[] | undefined): Record<string, unknown> => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, scalar(kv.value)]));

/** A minimal OTLP/HTTP JSON receiver. */
async function startCollector(mode: 'ok' | 'hang' = 'ok') {
  const logs: Array<Record<string, unknown>> = [];
  const metrics: Array<Record<string, unknown>> = [];
  const contentTypes = new Set<string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (mode === 'hang') return; // never answers
      contentTypes.add(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
      if (req.url === '/v1/logs') logs.push(body);
      else if (req.url === '/v1/metrics') metrics.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    logs,
    metrics,
    contentTypes,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('access logs and metrics reach an OTLP/HTTP collector', async (t) => {
  const collector = await startCollector();
  t.teardown(() => collector.close());
  const [logging, prometheus, setAttrs] = await Promise.all([buildOnce('logging'), buildOnce('prometheus'), buildSetAttrs()]);
  const up = await startUpstream();
  t.teardown(() => up.close());
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      routes: [{ name: 'backend', upstream: `http://127.0.0.1:${up.port}` }],
      plugins: [
        { name: 'attrs', url: setAttrs, phase: 'AUTHN' },
        { name: 'access', url: logging, phase: 'STATS', pluginConfig: {} },
        { name: 'istio', url: prometheus, phase: 'STATS', pluginConfig: {} },
      ],
      accessLog: { sinks: [{ type: 'otlp', intervalMs: 100 }] },
      otlp: { endpoint: `http://127.0.0.1:${collector.port}`, resource: { 'deployment.environment': 'test' }, metrics: { intervalMs: 300 } },
    },
    { logger: createLogger(LogLevel.Warn, () => {}) },
  );
  let closed = false;
  t.teardown(() => (closed ? undefined : proxy.close()));
  await request(proxy.port, '/bytes/5', { headers: { 'x-request-id': 'o-1', 'x-test-principal': 'carol' } });
  await request(proxy.port, '/bytes/5', { headers: { 'x-request-id': 'o-2' } });
  await request(proxy.port, '/status/500', { headers: { 'x-request-id': 'o-3' } });

  const records = () =>
    collector.logs.flatMap((b) => (b.resourceLogs as Array<{ resource: { attributes: KeyValue[] }; scopeLogs: Array<{ scope: { name: string }; logRecords: Array<Record<string, unknown>> }> }>)
      .flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords.map((r) => ({ r, scope: sl.scope.name, resource: attrs(rl.resource.attributes) })))));
  await until(() => records().length >= 3, "three log records");
  const got = records();
  t.same(got.map(({ r }) => (scalar(r.body as AnyValue) as Record<string, unknown>).request_id), ['o-1', 'o-2', 'o-3']);
  const first = got[0]!;
  const body = scalar(first.r.body as AnyValue) as Record<string, unknown>;
  t.equal(body.method, 'GET');
  t.equal(body.path, '/bytes/5');
  t.equal(body.response_code, 200, 'a JSON entry becomes a map body with typed values');
  t.equal(body.principal, 'carol');
  t.equal(first.r.severityText, 'INFO');
  t.equal(first.r.severityNumber, 9);
  t.equal(got[2]!.r.severityText, 'ERROR', 'a 500 is an error');
  t.equal(got[2]!.r.severityNumber, 17);
  t.same(attrs(first.r.attributes as KeyValue[]), { log_name: 'access', 'wasm_mixer.adapter': 'access' });
  t.equal(first.scope, 'wasm-mixer/access-log');
  t.equal(first.resource['service.name'], 'wasm-mixer');
  t.equal(first.resource['deployment.environment'], 'test');
  const ts = BigInt(first.r.timeUnixNano as string);
  t.ok(ts > 0n && Number(ts / 1_000_000n) <= Date.now(), 'timestamp is the request start');

  type Metric = { name: string; description: string; unit: string; sum?: { isMonotonic: boolean; aggregationTemporality: number; dataPoints: Array<{ attributes: KeyValue[]; asDouble?: number; asInt?: number }> }; histogram?: { dataPoints: Array<{ attributes: KeyValue[]; count: number | string; sum: number; explicitBounds: number[]; bucketCounts: Array<number | string> }> } };
  const latest = (name: string): Metric | undefined => {
    for (let i = collector.metrics.length - 1; i >= 0; i--) {
      for (const rm of collector.metrics[i]!.resourceMetrics as Array<{ scopeMetrics: Array<{ metrics: Metric[] }> }>) {
        for (const sm of rm.scopeMetrics) for (const m of sm.metrics) if (m.name === name) return m;
      }
    }
    return undefined;
  };
  const count200 = () => {
    const m = latest('istio_requests_total');
    // two series: one with source_principal carol, one unknown
    return (m?.sum?.dataPoints ?? []).filter((d) => attrs(d.attributes).response_code === '200').reduce((a, d) => a + Number(d.asDouble ?? d.asInt), 0);
  };
  await until(() => count200() === 2, 'an OTLP export with istio_requests_total{response_code="200"} = 2');
  const req = latest('istio_requests_total')!;
  t.equal(req.sum!.isMonotonic, true);
  t.equal(req.sum!.aggregationTemporality, 2, 'cumulative');
  t.equal(req.description, "Requests handled by the proxy, by Istio's standard labels.");
  const dur = latest('istio_request_duration_milliseconds')!;
  t.equal(dur.unit, 'milliseconds');
  const dp = dur.histogram!.dataPoints.find((d) => attrs(d.attributes).source_principal === 'carol')!;
  t.equal(Number(dp.count), 1);
  t.equal(attrs(dp.attributes).response_code, '200');
  t.same(dp.explicitBounds.slice(0, 4), [0.5, 1, 5, 10]);
  t.equal(dp.bucketCounts.length, dp.explicitBounds.length + 1);
  t.equal(dp.bucketCounts.reduce<number>((a, b) => a + Number(b), 0), 1);
  t.ok(latest('wasm_mixer_adapter_call_duration_seconds'), 'host metrics are exported too');
  t.ok([...collector.contentTypes].every((c) => c.startsWith('application/json')), 'OTLP/HTTP JSON');

  await proxy.close();
  closed = true;
  t.equal(proxy.host.metrics.value('wasm_mixer_access_log_entries_total', { sink: 'otlp' }), 3);
});

t.test('a collector that is down: entries are dropped as export_failed, requests are unaffected', async (t) => {
  const wasm = await buildOnce('logging');
  const up = await startUpstream();
  t.teardown(() => up.close());
  const deadPort = await freePort();
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      routes: [{ name: 'backend', upstream: `http://127.0.0.1:${up.port}` }],
      plugins: [{ name: 'access', url: wasm, phase: 'STATS', pluginConfig: {} }],
      accessLog: { sinks: [{ type: 'otlp', name: 'collector', intervalMs: 50 }] },
      otlp: { endpoint: `http://127.0.0.1:${deadPort}`, timeoutMs: 500, metrics: { enabled: false } },
    },
    { logger: createLogger(LogLevel.Critical, () => {}) },
  );
  t.teardown(() => proxy.close());
  for (let i = 0; i < 5; i++) t.equal((await request(proxy.port, '/ok')).status, 200);
  await until(() => (proxy.host.metrics.value('wasm_mixer_access_log_dropped_total', { sink: 'collector', reason: 'export_failed' }) ?? 0) === 5, 'five export_failed drops');
  t.equal(proxy.host.metrics.value('wasm_mixer_access_log_entries_total', { sink: 'collector' }), 0);
});

t.test('a collector that hangs: the queue is bounded by maxQueue and overflow is counted', async (t) => {
  const collector = await startCollector('hang');
  t.teardown(() => collector.close());
  const metrics = new MetricsRegistry();
  const router = new AccessLogRouter(metrics, createLogger(LogLevel.Critical, () => {}));
  const sink = new OtlpLogSink('slow', { url: `http://127.0.0.1:${collector.port}/v1/logs`, timeoutMs: 300, intervalMs: 20, maxBatch: 4, maxQueue: 10, resource: resourceFromAttributes({}) }, router.statsFor('slow'));
  router.add(sink);
  const entry = { adapter: 'a', logName: 'access', level: LogLevel.Info, format: 'text' as const, timeNs: 0n, line: Buffer.from('x') };
  for (let i = 0; i < 4; i++) router.write(entry);
  await new Promise((r) => setTimeout(r, 60)); // the first batch of 4 is now in flight, hanging
  let accepted = 0;
  const t0 = performance.now();
  for (let i = 0; i < 50; i++) if (router.write(entry)) accepted++;
  t.ok(performance.now() - t0 < 50, 'writing never waits for the collector');
  t.equal(accepted, 10, 'maxQueue entries wait while an export is in flight');
  t.ok(sink.buffered <= 10);
  t.equal(metrics.value('wasm_mixer_access_log_dropped_total', { sink: 'slow', reason: 'buffer_full' }), 40);
  await until(() => (metrics.value('wasm_mixer_access_log_dropped_total', { sink: 'slow', reason: 'export_failed' }) ?? 0) >= 4, 'the hanging export times out');
  await sink.close();
});
