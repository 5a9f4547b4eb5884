// Two workers behind one port (`wasm-mixer proxy` with workers: 2), through the real CLI:
// a local quota limit stays exact for the proxy whichever worker takes a request, and the
// admin port shows one merged /metrics and each worker's VMs on /adapters.

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startDemoUpstream } from '../../host/src/proxy/demo-upstream.js';
import { adminGet, blast, count, metricValue, projectAdapter, startCli, workersOf } from './helpers.js';

t.test('local limit of 500 admits exactly 500 across 2 workers; metrics merged; adapters per worker', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-workers-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const upstream = await startDemoUpstream(0);
  t.teardown(() => upstream.close());
  const proxy = await startCli(
    {
      workers: 2,
      listen: { port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'api', upstream: `http://127.0.0.1:${upstream.port}` }],
      plugins: [
        {
          name: 'quota',
          url: await projectAdapter('quota'),
          // A day-long window, so the test never straddles two windows; one counter per x-tenant.
          pluginConfig: { limits: [{ name: 'per_tenant', limit: 500, window: '1d', dimensions: { tenant: 'header:x-tenant' } }] },
        },
      ],
    },
    dir,
  );
  t.teardown(() => proxy.stop());

  // 1500 requests, 64 at a time over keep-alive connections that the primary spreads over both workers.
  const rs = await blast(proxy.port, 1500, 64, () => ({ headers: { 'x-tenant': 'acme' } }));
  t.equal(count(rs, 200), 500, 'exactly the limit admitted');
  t.equal(count(rs, 429), 1000, 'the rest denied with 429');
  // Another tenant has its own budget.
  const other = await blast(proxy.port, 40, 8, () => ({ headers: { 'x-tenant': 'other' } }));
  t.equal(count(other, 200), 40);

  const workers = await workersOf(proxy.adminPort);
  t.equal(workers.length, 2, '/adapters lists both workers');
  for (const w of workers) {
    t.ok(w.up && w.pid !== null, `worker ${w.worker} is up`);
    t.same(w.adapters.map((a) => a.name), ['quota'], `worker ${w.worker} runs its own quota VM`);
    t.ok(w.adapters[0]!.healthy);
    t.ok((w.requests ?? 0) >= 150, `worker ${w.worker} served a share of the load (${w.requests})`);
  }
  t.not(workers[0]!.pid, workers[1]!.pid);
  t.equal((workers[0]!.requests ?? 0) + (workers[1]!.requests ?? 0), 1540);

  const m = await adminGet(proxy.adminPort, '/metrics');
  t.equal(m.status, 200);
  const text = m.body;
  // counters: summed over the workers
  t.equal(metricValue(text, 'wasm_mixer_host_streams_total'), 1540, 'request counter summed over the workers');
  t.equal(metricValue(text, 'quota_requests_total{limit="per_tenant",result="allowed"}'), 540);
  t.equal(metricValue(text, 'quota_requests_total{limit="per_tenant",result="over_limit"}'), 1000);
  t.equal(metricValue(text, 'wasm_mixer_proxy_responses_total{route="api",code="429"}'), 1000);
  // histograms: merged bucket by bucket (one series, count = every call of both workers)
  const hist = /^wasm_mixer_adapter_call_duration_seconds_count\{adapter="quota",callback="proxy_on_request_headers"\} (\d+)$/m.exec(text);
  t.ok(hist, 'one merged histogram series for the quota adapter');
  t.equal(Number(hist![1]), 1540, 'histogram count = calls in both workers');
  t.equal(metricValue(text, 'wasm_mixer_adapter_call_duration_seconds_bucket{adapter="quota",callback="proxy_on_request_headers",le="+Inf"}'), 1540);
  // gauges: one series per process
  for (const w of ['1', '2']) t.equal(metricValue(text, `wasm_mixer_vm_up{adapter="quota",worker="${w}"}`), 1, `vm_up for worker ${w}`);
  t.match(text, /^process_resident_memory_bytes\{worker="primary"\} \d+/m);
  t.equal(metricValue(text, 'wasm_mixer_workers'), 2);
  t.equal(metricValue(text, 'wasm_mixer_workers_up'), 2);
  // Prometheus accepts the merged exposition.
  const lint = await new Promise<{ code: number; out: string }>((resolve) => {
    const p = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }));
    p.stdin!.end(text);
  });
  t.notMatch(lint.out, /error|duplicate/i, `promtool: ${lint.out}`);

  t.equal((await adminGet(proxy.adminPort, '/ready')).status, 200);
  t.equal(await proxy.stop(), 0, 'SIGTERM: every worker drained, the primary exited 0');
});
