// In-process vs out-of-process equivalence: the same request sequence through the
// proxy with every adapter in process, with every adapter in the adapter server,
// and with a mix (consecutive remote adapters share one Check; an in-process
// adapter sits between remote segments). The answers (status, headers, body, what
// reached the upstream), the adapters' log lines, the access-log entries and the
// adapters' metric values must be the same. The check cache, report batching and
// sessions are on (the defaults): cached checks replay their metric updates and
// log lines, so even with cache hits the numbers match.
//
// The chain: the project's adapters (wasm/ from npm run build, else built once for
// the test): auth (API keys) -> header-check -> quota (local) -> logging +
// prometheus (STATS) -> spec-filter (a WAT fixture written from the Proxy-Wasm spec).

import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { MixerConfig, PluginConfig } from '../../host/src/config/schema.js';
import type { AccessLogEntry, AccessLogSink } from '../../host/src/log/access-log.js';
import type { LogRecord } from '../../host/src/log/logger.js';
import type { MetricsRegistry } from '../../host/src/metrics/registry.js';
import { remoteClientOf } from '../../host/src/oop/remote-adapter.js';
import { capture, fixtureDir, request, startRemoteProxy, startServer, withAdapters } from './helpers.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

class Sink implements AccessLogSink {
  readonly entries: AccessLogEntry[] = [];
  readonly name = 'memory';
  readonly buffered = 0;
  write(e: AccessLogEntry): boolean {
    this.entries.push(e);
    return true;
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** An upstream that echoes the request line and headers (minus per-connection ones), in order. */
async function echoUpstream(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Array<[string, string]> = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const k = req.rawHeaders[i]!.toLowerCase();
        if (k !== 'host' && k !== 'connection') headers.push([k, req.rawHeaders[i + 1]!]);
      }
      const m = /^\/status\/(\d+)/.exec(req.url ?? '');
      const body = JSON.stringify({ method: req.method, url: req.url, headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(m ? Number(m[1]) : 200, { 'content-type': 'application/json', 'x-upstream': 'echo', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

const ADAPTERS = ['auth', 'header-check', 'quota', 'logging', 'prometheus'];

function chain(): PluginConfig[] {
  const spec: PluginConfig = { name: 'spec', url: 'spec.wasm', pluginConfig: 'ok' };
  return [
    {
      name: 'auth',
      url: 'auth.wasm',
      phase: 'AUTHN',
      pluginConfig: {
        api_keys: {
          sources: [{ header: 'x-api-key' }],
          keys: [
            { name: 'svc-a', tenant: 'acme', sha256: sha('key-a') },
            { name: 'svc-b', tenant: 'globex', sha256: sha('key-b') },
          ],
        },
        route_requirements: [{ match: { paths: ['/public/**'] }, requires: 'none' }],
      },
    },
    { name: 'header-check', url: 'header-check.wasm', phase: 'AUTHZ', priority: 10, pluginConfig: { header: 'x-auth-tenant', deny_status: 403 } },
    {
      name: 'quota',
      url: 'quota.wasm',
      phase: 'AUTHZ',
      priority: 0,
      pluginConfig: { headers: 'x-ratelimit', limits: [{ name: 'per_tenant', limit: 4, window: '1h', dimensions: { tenant: 'header:x-auth-tenant' } }] },
    },
    { name: 'access', url: 'logging.wasm', phase: 'STATS', pluginConfig: { format: 'json' } },
    { name: 'prom', url: 'prometheus.wasm', phase: 'STATS', pluginConfig: {} },
    spec,
  ];
}

interface Step {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

function steps(): Step[] {
  const s: Step[] = [];
  const id = () => ({ 'x-request-id': `req-${s.length}` });
  const a = (extra: Record<string, string> = {}) => ({ ...id(), 'x-api-key': 'key-a', ...extra });
  const b = (extra: Record<string, string> = {}) => ({ ...id(), 'x-api-key': 'key-b', ...extra });
  s.push({ path: '/orders', headers: id() }); // no credentials
  s.push({ path: '/orders', headers: { ...id(), 'x-api-key': 'wrong' } });
  for (let i = 0; i < 6; i++) s.push({ path: `/orders/${i % 2}`, headers: a({ 'user-agent': 'equiv/1.0' }) }); // quota 4 per tenant
  s.push({ path: '/public/info', headers: id() }); // auth needs nothing, header-check denies (no tenant)
  s.push({ path: '/status/404', headers: b() });
  s.push({ path: '/status/503', headers: b({ accept: 'application/json', 'x-multi': 'one' }) });
  s.push({ method: 'POST', path: '/upload?x=1&y=2', headers: b({ 'content-type': 'text/plain' }), body: 'hello body' });
  s.push({ path: '/deny/this', headers: b() }); // spec-filter denies
  s.push({ path: '/deny/this', headers: b() }); // same again: a cache hit in remote mode
  s.push({ path: '/again', headers: b() }); // globex: 5th request -> over quota
  s.push({ path: '/public/info', headers: id() });
  return s;
}

const stats: Array<{ mode: string; hits: number; replayed: number; sessionsLeft: number }> = [];

interface Observed {
  responses: unknown[];
  logs: string[];
  access: string[];
  metrics: Record<string, number>;
}

const TIME_HEADERS = new Set(['date', 'connection', 'keep-alive', 'x-ratelimit-reset', 'ratelimit-reset', 'retry-after']);

function normalize(text: string): string {
  return text
    .replace(/ctx=\d+/g, 'ctx=N')
    .replace(/in [0-9.]+us/g, 'in Nus')
    .replace(/"retry_after":\d+/g, '"retry_after":N');
}

function adapterLogs(logs: LogRecord[], adapters: Set<string>): string[] {
  return logs
    .filter((r) => adapters.has(r.source) && r.code === undefined && !/^adapter (loaded|runs out of process)/.test(r.message))
    .map((r) => `${r.source} ${r.level} ${normalize(r.message)}`)
    .sort();
}

function accessLines(sink: Sink): string[] {
  return sink.entries
    .map((e) => {
      const j = JSON.parse(Buffer.from(e.line).toString('utf8')) as Record<string, unknown>;
      for (const k of Object.keys(j)) {
        if (/time|duration|latency|start/i.test(k)) j[k] = 'T';
        else if (typeof j[k] === 'string') j[k] = (j[k] as string).replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT');
      }
      return `${e.adapter} ${e.level} ${JSON.stringify(j)}`;
    })
    .sort();
}

/** Adapter metric values (host metrics excluded); histograms by sample count only (their values are timings). */
function adapterMetrics(...registries: MetricsRegistry[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const reg of registries) {
    for (const line of reg.render().split('\n')) {
      if (line === '' || line.startsWith('#') || /^(wasm_mixer_|process_|nodejs_)/.test(line)) continue;
      if (/_bucket\{|_sum[{ ]/.test(line)) continue;
      const sp = line.lastIndexOf(' ');
      const series = line.slice(0, sp);
      if (/_count[{ ]/.test(series + ' ') && /duration/.test(series)) {
        out[series] = (out[series] ?? 0) + Number(line.slice(sp + 1));
        continue;
      }
      out[series] = (out[series] ?? 0) + Number(line.slice(sp + 1));
    }
  }
  return out;
}

async function run(t: Tap.Test, mode: 'in-process' | 'remote' | 'mixed'): Promise<Observed> {
  const dir = await fixtureDir();
  await withAdapters(dir, ADAPTERS);
  const up = await echoUpstream();
  const plugins = chain();
  const names = new Set(plugins.map((p) => p.name));
  const base: MixerConfig = { routes: [{ name: 'api', upstream: `http://127.0.0.1:${up.port}` }], plugins };
  const proxyLog = capture();
  const proxySink = new Sink();
  const serverLog = capture();
  const serverSink = new Sink();
  let config: MixerConfig = base;
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  if (mode !== 'in-process') {
    server = await startServer(base, { baseDir: dir, logger: serverLog.logger, accessLogSinks: [serverSink] });
    const remoteNames = mode === 'remote' ? 'all' : ['auth', 'header-check', 'access', 'prom'].filter((n) => names.has(n));
    config = { ...base, remote: { address: server.address, plugins: remoteNames.length === 0 ? 'all' : remoteNames } };
  }
  const proxy = await startRemoteProxy(config, { baseDir: dir, logger: proxyLog.logger, accessLogSinks: [proxySink] });
  t.teardown(async () => {
    await proxy.close();
    await server?.close();
    await up.close();
  });
  // Only what the requests cause: the server loads every plugin (VM start lines would differ in mixed mode).
  proxyLog.logs.length = 0;
  serverLog.logs.length = 0;
  const responses: unknown[] = [];
  for (const st of steps()) {
    const r = await request(proxy.port, st.path, { method: st.method, headers: st.headers, body: st.body });
    const headers = Object.entries(r.headers)
      .filter(([k]) => !TIME_HEADERS.has(k))
      .map(([k, v]) => `${k}: ${String(v).replace(/\d+/g, (d) => (k.includes('ratelimit') || k === 'retry-after' ? 'N' : d))}`);
    responses.push({ step: `${st.method ?? 'GET'} ${st.path}`, status: r.status, headers, body: normalize(r.body) });
  }
  // Reports are batched: send them, and let the log phase run.
  await new Promise((r) => setTimeout(r, 50));
  const client = remoteClientOf(proxy.host);
  if (client) await client.flush();
  if (client && server) {
    const hits = proxy.host.metrics.value('wasm_mixer_remote_check_cache_hits_total') ?? 0;
    const replayed = server.host.metrics.value('wasm_mixer_server_replayed_effects_total') ?? 0;
    t.comment(`${mode}: ${client.cache?.stats.hits ?? 0} cache hits, ${client.cache?.stats.misses ?? 0} misses, ${replayed} effects replayed, ${server.sessions} sessions left`);
    stats.push({ mode, hits, replayed, sessionsLeft: server.sessions });
  }
  return {
    responses,
    logs: adapterLogs([...proxyLog.logs, ...serverLog.logs], names),
    access: accessLines(proxySink).concat(accessLines(serverSink)).sort(),
    metrics: server ? adapterMetrics(proxy.host.metrics, server.host.metrics) : adapterMetrics(proxy.host.metrics),
  };
}

t.test('in-process and out-of-process runs give the same decisions, logs and metrics', async (t) => {
  t.comment('chain: auth, header-check, quota, access (logging), prom (prometheus), spec (fixture)');
  const baseline = await run(t, 'in-process');
  t.ok(baseline.responses.length > 0);
  t.ok(Object.keys(baseline.metrics).length > 0, 'adapters recorded metrics');

  for (const mode of ['remote', 'mixed'] as const) {
    await t.test(mode, async (t) => {
      const other = await run(t, mode);
      t.same(other.responses, baseline.responses, 'same status, headers and body for every request (and the same request at the upstream)');
      t.same(other.logs, baseline.logs, 'same adapter log lines');
      t.same(other.access, baseline.access, 'same access-log entries');
      t.same(other.metrics, baseline.metrics, 'same adapter metric values');
    });
  }
  for (const s of stats) t.equal(s.sessionsLeft, 0, `${s.mode}: every Check's session was closed by its Report`);
  const mixed = stats.find((s) => s.mode === 'mixed')!;
  t.ok(mixed.hits > 0, 'mixed: some checks were answered from the proxy cache');
  t.ok(mixed.replayed > 0, 'mixed: the cached checks replayed their metric updates in the server');
});
