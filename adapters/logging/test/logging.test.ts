// The logging adapter through the real proxy on real sockets: entries checked field by
// field (JSON and Envoy text formats), severity, redaction, sampling, local replies,
// upstream failures, exclusions, the proxy_log fallback, and configuration errors.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { LogLevel } from '../../../host/src/abi/constants.js';
import type { MixerConfig, PluginConfig } from '../../../host/src/config/schema.js';
import { startProxy, type RunningProxy } from '../../../host/src/index.js';
import { createLogger, type LogRecord } from '../../../host/src/log/logger.js';
import { buildOnce, buildSetAttrs, MemorySink, request, startUpstream, type Upstream } from '../../../test/telemetry/helpers.js';

const wasm = await buildOnce('logging');
const setAttrs = await buildSetAttrs();
const upstream: Upstream = await startUpstream();
t.teardown(() => upstream.close());

interface Running {
  proxy: RunningProxy;
  sink: MemorySink;
  logs: LogRecord[];
}

async function run(t: Test, pluginConfig: unknown, opts: { extra?: Partial<MixerConfig>; plugins?: PluginConfig[] } = {}): Promise<Running> {
  const sink = new MemorySink();
  const logs: LogRecord[] = [];
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      routes: [{ name: 'backend', upstream: `http://127.0.0.1:${upstream.port}` }],
      plugins: [
        { name: 'attrs', url: setAttrs, phase: 'AUTHN' },
        { name: 'access', url: wasm, phase: 'STATS', pluginConfig },
        ...(opts.plugins ?? []),
      ],
      ...opts.extra,
    },
    { accessLogSinks: [sink], logger: createLogger(LogLevel.Info, (r) => logs.push(r)) },
  );
  t.teardown(() => proxy.close());
  return { proxy, sink, logs };
}

t.test('JSON entry, field by field', async (t) => {
  const { proxy, sink } = await run(t, {});
  const before = Date.now();
  const res = await request(proxy.port, '/slow/30?x=1', {
    method: 'POST',
    body: 'hello world',
    headers: { 'user-agent': 'tester/1.0', 'x-request-id': 'req-fields-1', 'x-forwarded-for': '10.1.2.3', 'x-test-principal': 'alice', 'x-test-quota': 'ok' },
  });
  t.equal(res.status, 200);
  await sink.waitFor(1);
  const e = sink.json()[0]!;
  const entry = sink.entries[0]!;
  t.equal(entry.format, 'json');
  t.equal(entry.logName, 'access');
  t.equal(entry.adapter, 'access');
  t.equal(entry.level, LogLevel.Info, 'a 200 is logged at info');
  t.ok(Number(entry.timeNs / 1_000_000n) >= before - 5 && Number(entry.timeNs / 1_000_000n) <= Date.now(), 'envelope time is the request start');

  t.same(Object.keys(e), [
    'start_time', 'level', 'method', 'path', 'protocol', 'response_code', 'response_flags', 'response_code_details', 'bytes_received', 'bytes_sent',
    'duration', 'upstream_service_time', 'x_forwarded_for', 'user_agent', 'request_id', 'authority', 'upstream_host', 'upstream_cluster',
    'downstream_local_address', 'downstream_remote_address', 'route_name', 'principal', 'quota',
  ], 'Istio JSON keys in order, plus level, principal and quota');
  t.match(e.start_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const start = Date.parse(e.start_time as string);
  t.ok(start >= before - 5 && start <= Date.now(), 'start_time is when the request arrived');
  t.equal(e.level, 'info');
  t.equal(e.method, 'POST');
  t.equal(e.path, '/slow/30?x=1');
  t.equal(e.protocol, 'HTTP/1.1');
  t.equal(e.response_code, 200, 'typed: a number');
  t.equal(e.response_flags, null, 'no flags: null');
  t.equal(e.response_code_details, 'via_upstream');
  t.equal(e.bytes_received, 11, 'request body bytes');
  t.equal(e.bytes_sent, 2, 'response body bytes ("ok")');
  t.ok((e.duration as number) >= 30, `duration covers the upstream's 30 ms delay (${e.duration})`);
  t.ok((e.upstream_service_time as number) >= 30 && (e.upstream_service_time as number) <= (e.duration as number), 'time to the first upstream byte');
  t.equal(e.x_forwarded_for, '10.1.2.3');
  t.equal(e.user_agent, 'tester/1.0');
  t.equal(e.request_id, 'req-fields-1');
  t.equal(e.authority, `127.0.0.1:${proxy.port}`);
  t.equal(e.upstream_host, `127.0.0.1:${upstream.port}`);
  t.equal(e.upstream_cluster, 'backend');
  t.equal(e.downstream_local_address, `127.0.0.1:${proxy.port}`);
  t.match(e.downstream_remote_address, /^127\.0\.0\.1:\d+$/);
  t.equal(e.route_name, 'backend');
  t.equal(e.principal, 'alice', 'the principal set by the auth stage (mixer.principal)');
  t.equal(e.quota, 'ok', 'the quota decision (mixer.quota)');
});

t.test('severity from the status; local replies, upstream failures and no route carry flags and details', async (t) => {
  const dead = http.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const { proxy, sink } = await run(t, {}, {
    extra: {
      routes: [
        { name: 'dead', match: { prefix: '/dead' }, upstream: `http://127.0.0.1:${deadPort}` },
        { name: 'backend', match: { prefix: '/' }, upstream: `http://127.0.0.1:${upstream.port}` },
      ],
    },
  });
  const r404 = await request(proxy.port, '/status/404');
  const r503 = await request(proxy.port, '/status/503');
  const denied = await request(proxy.port, '/x', { headers: { 'x-test-deny': '429' } });
  const down = await request(proxy.port, '/dead/x');
  t.same([r404.status, r503.status, denied.status, down.status], [404, 503, 429, 503]);
  await sink.waitFor(4);
  const [a, b, c, d] = sink.json();
  t.same([a!.level, b!.level, c!.level, d!.level], ['warn', 'error', 'warn', 'error']);
  t.same(sink.entries.map((e) => e.level), [LogLevel.Warn, LogLevel.Error, LogLevel.Warn, LogLevel.Error], 'the envelope severity matches');
  t.equal(c!.response_flags, 'UAEX', 'denied by an adapter');
  t.equal(c!.response_code_details, 'adapter:attrs:test_denied');
  t.equal(c!.upstream_service_time, null, 'never reached the upstream');
  t.equal(c!.bytes_sent, Buffer.byteLength('denied by set-attrs\n'));
  t.equal(d!.response_flags, 'UF', 'upstream connection failure');
  t.equal(d!.response_code_details, 'upstream_connect_error');
  t.equal(d!.route_name, 'dead');
  t.equal(a!.response_flags, null);
});

t.test('no route: 404 with NR', async (t) => {
  const { proxy, sink } = await run(t, {}, { extra: { routes: [{ name: 'api', match: { prefix: '/api' }, upstream: `http://127.0.0.1:${upstream.port}` }] } });
  t.equal((await request(proxy.port, '/elsewhere')).status, 404);
  await sink.waitFor(1);
  const e = sink.json()[0]!;
  t.equal(e.response_code, 404);
  t.equal(e.response_flags, 'NR');
  t.equal(e.response_code_details, 'route_not_found');
  t.equal(e.route_name, null);
});

t.test('redaction of headers and query parameters (defaults plus configured)', async (t) => {
  const { proxy, sink } = await run(t, {
    add_fields: {
      auth: '%REQ(AUTHORIZATION)%',
      cookie: '%REQ(COOKIE)%',
      set_cookie: '%RESP(SET-COOKIE)%',
      api_key_header: '%REQ(X-API-KEY)%',
      secret: '%REQ(X-SECRET)%',
      plain: '%REQ(X-PLAIN)%',
      headers: '%CEL(request.headers)%',
      query: '%CEL(request.query)%',
    },
    redact: { headers: ['X-Secret'], query_params: ['session'] },
  });
  await request(proxy.port, '/p?api_key=k1&x=1&Token=t2&session=s3&password=p4&keep=yes', {
    headers: { authorization: 'Bearer abc.def', cookie: 'sid=1', 'x-api-key': 'key-1', 'x-secret': 'shh', 'x-plain': 'visible', 'x-want-cookie': '1' },
  });
  await sink.waitFor(1);
  const e = sink.json()[0]!;
  const line = sink.lines()[0]!;
  t.equal(e.path, '/p?api_key=[REDACTED]&x=1&Token=[REDACTED]&session=[REDACTED]&password=[REDACTED]&keep=yes');
  t.equal(e.query, 'api_key=[REDACTED]&x=1&Token=[REDACTED]&session=[REDACTED]&password=[REDACTED]&keep=yes');
  t.equal(e.auth, '[REDACTED]');
  t.equal(e.cookie, '[REDACTED]');
  t.equal(e.set_cookie, '[REDACTED]', 'response headers too');
  t.equal(e.api_key_header, '[REDACTED]');
  t.equal(e.secret, '[REDACTED]', 'configured header');
  t.equal(e.plain, 'visible');
  const hdrs = JSON.parse(e.headers as string) as Record<string, string>;
  t.equal(hdrs.authorization, '[REDACTED]', 'header maps are redacted');
  t.equal(hdrs['x-plain'], 'visible');
  for (const secret of ['abc.def', 'sid=1', 'key-1', 'shh', 'k1', 't2', 's3', 'p4', 'secret-cookie']) t.notOk(line.includes(secret), `"${secret}" never reaches the log`);
});

t.test('redaction defaults can be turned off and the replacement changed', async (t) => {
  const { proxy, sink } = await run(t, { add_fields: { auth: '%REQ(AUTHORIZATION)%' }, redact: { defaults: false, headers: ['x-other'], replacement: '***' } });
  await request(proxy.port, '/q?api_key=k1', { headers: { authorization: 'Bearer visible' } });
  await sink.waitFor(1);
  const e = sink.json()[0]!;
  t.equal(e.auth, 'Bearer visible');
  t.equal(e.path, '/q?api_key=k1');
});

/** The adapter's sampling hash (FNV-1a 32 over UTF-16 code units, low byte then high byte). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h = Math.imul(h ^ (c & 0xff), 0x01000193) >>> 0;
    if (c > 0xff) h = Math.imul(h ^ (c >> 8), 0x01000193) >>> 0;
  }
  return h >>> 0;
}

t.test('sampling keeps a deterministic share by request id, and every error', async (t) => {
  const ratio = 0.25;
  const { proxy, sink } = await run(t, { sample_ratio: ratio });
  const ids = Array.from({ length: 60 }, (_, i) => `sample-${i}`);
  for (const id of ids) await request(proxy.port, '/ok', { headers: { 'x-request-id': id } });
  for (let i = 0; i < 8; i++) await request(proxy.port, '/status/500', { headers: { 'x-request-id': `err-${i}` } });
  for (let i = 0; i < 4; i++) await request(proxy.port, '/status/404', { headers: { 'x-request-id': `nf-${i}` } });
  const expected = ids.filter((id) => fnv1a(id) / 4294967296 < ratio);
  t.ok(expected.length > 5 && expected.length < 30, `the hash spreads (${expected.length} of 60 sampled)`);
  await sink.waitFor(expected.length + 12);
  await new Promise((r) => setTimeout(r, 50));
  const got = sink.json();
  t.same(got.filter((e) => e.response_code === 200).map((e) => e.request_id), expected, 'exactly the ids whose hash falls under the ratio');
  t.equal(got.filter((e) => e.response_code === 500).length, 8, 'every 5xx is kept');
  t.equal(got.filter((e) => e.response_code === 404).length, 4, 'every 4xx is kept (always_log_status 400)');
});

t.test('sample_ratio 0 logs only errors; always_log_status raises the bar', async (t) => {
  const { proxy, sink } = await run(t, { sample_ratio: 0, always_log_status: 500 });
  for (let i = 0; i < 5; i++) await request(proxy.port, '/ok');
  await request(proxy.port, '/status/404');
  await request(proxy.port, '/status/502');
  await request(proxy.port, '/x', { headers: { 'x-test-deny': '403' } });
  await sink.waitFor(2);
  await new Promise((r) => setTimeout(r, 50));
  t.same(sink.json().map((e) => e.response_code), [502, 403], 'the 502, and the 403 because a response flag (UAEX) marks it');
});

t.test('Envoy text format: the default line, and custom operators', async (t) => {
  const { proxy, sink } = await run(t, { format: 'text' }, {
    plugins: [{
      name: 'custom',
      url: wasm,
      phase: 'STATS',
      pluginConfig: {
        format: 'text',
        log_name: 'custom',
        text_format: '%START_TIME(%s)% %REQ(X-MISSING?USER-AGENT):4% %RESPONSE_CODE% 100%% %CEL(mixer.principal)% %FILTER_STATE(mixer.quota)% %SEVERITY% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %START_TIME(%Y/%m/%d %H:%M:%E3S)%\n',
      },
    }],
  });
  const before = Math.floor(Date.now() / 1000);
  await request(proxy.port, '/bytes/7?a=b', { headers: { 'user-agent': 'curl/8.0', 'x-request-id': 'text-1', 'x-test-principal': 'bob' } });
  await sink.waitFor(2);
  const [line, custom] = sink.lines();
  t.match(line!, new RegExp(`^\\[\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\] "GET /bytes/7\\?a=b HTTP/1\\.1" 200 - 0 7 \\d+ - "-" "curl/8\\.0" "text-1" "127\\.0\\.0\\.1:${proxy.port}" "127\\.0\\.0\\.1:${upstream.port}"$`), 'Envoy default format');
  t.equal(sink.entries[0]!.format, 'text');
  const m = /^(\d+) curl 200 100% bob - info 127\.0\.0\.1 (\d{4})\/(\d\d)\/(\d\d) \d\d:\d\d:\d\d\.\d{3}$/.exec(custom!);
  t.ok(m, `custom format: ${custom}`);
  t.ok(Number(m?.[1]) >= before && Number(m?.[1]) <= Date.now() / 1000 + 1, 'START_TIME(%s) is epoch seconds');
  t.equal(sink.entries[1]!.logName, 'custom');
});

t.test('json_format replaces the fields, typed values and omit_empty_values', async (t) => {
  const { proxy, sink } = await run(t, {
    json_format: { code: '%RESPONSE_CODE%', route: 'route=%ROUTE_NAME%', tenant: '%REQ(X-TENANT)%', ms: '%DURATION%' },
    omit_empty_values: true,
  });
  await request(proxy.port, '/ok');
  await sink.waitFor(1);
  const e = sink.json()[0]!;
  t.same(Object.keys(e), ['code', 'route', 'ms'], 'the missing tenant is left out');
  t.equal(e.code, 200);
  t.equal(e.route, 'route=backend', 'several segments make a string');
  t.type(e.ms, 'number');
});

t.test('remove_fields and add_fields edit the default set', async (t) => {
  const { proxy, sink } = await run(t, { remove_fields: ['x_forwarded_for', 'quota', 'principal'], add_fields: { tenant: '%REQ(X-TENANT)%', level: '%RESPONSE_CODE%' } });
  await request(proxy.port, '/ok', { headers: { 'x-tenant': 'acme' } });
  await sink.waitFor(1);
  const e = sink.json()[0]!;
  t.notOk('x_forwarded_for' in e);
  t.notOk('quota' in e);
  t.equal(e.tenant, 'acme');
  t.equal(e.level, 200, 'an added field replaces a default of the same name');
});

t.test('exclude_paths skips health checks', async (t) => {
  const { proxy, sink } = await run(t, { exclude_paths: ['/healthz', '/internal/*'] });
  await request(proxy.port, '/healthz');
  await request(proxy.port, '/healthz?full=1');
  await request(proxy.port, '/internal/metrics');
  await request(proxy.port, '/kept');
  await sink.waitFor(1);
  await new Promise((r) => setTimeout(r, 50));
  t.same(sink.json().map((e) => e.path), ['/kept']);
});

t.test('a host without wasm_mixer.access_log gets the entries through proxy_log', async (t) => {
  const { proxy, sink, logs } = await run(t, {});
  proxy.host.telemetry.foreign.setGrant((_adapter, name) => name !== 'wasm_mixer.access_log');
  await request(proxy.port, '/one', { headers: { 'x-request-id': 'fb-1' } });
  await request(proxy.port, '/two', { headers: { 'x-request-id': 'fb-2' } });
  await new Promise((r) => setTimeout(r, 50));
  t.equal(sink.entries.length, 0);
  const lines = logs.filter((r) => r.source === 'access' && r.level === 'info').map((r) => r.message);
  const said = logs.filter((r) => r.source === 'access' && r.level === 'warn' && /not available in this host/.test(r.message));
  t.equal(said.length, 1, 'says once, at warn, that it falls back');
  const entries = lines.filter((m) => m.startsWith('{')).map((m) => JSON.parse(m) as Record<string, unknown>);
  t.same(entries.map((e) => e.request_id), ['fb-1', 'fb-2']);
});

t.test('configuration errors name the field', async (t) => {
  const bad = async (cfg: unknown, msg: RegExp) => {
    await t.rejects(
      startProxy({ listen: { port: 0 }, plugins: [{ name: 'access', url: wasm, pluginConfig: cfg }] }, { logger: createLogger(LogLevel.Critical) }),
      { code: 'PLUGIN_CONFIGURE_FAILED', message: msg },
    );
  };
  await bad({ format: 'xml' }, /config "format": must be "json" or "text"/);
  await bad({ format: 'text', text_format: '%NOPE%' }, /config "text_format": unknown command operator %NOPE%/);
  await bad({ format: 'text', text_format: '%REQ%' }, /%REQ% needs an argument/);
  await bad({ add_fields: { x: '%CEL(request.headers[x])%' } }, /add_fields\.x.*must be a quoted string/);
  await bad({ sample_ratio: 2 }, /config "sample_ratio": must be between 0 and 1/);
  await bad({ sampling: 1 }, /config "sampling": unknown key/);
  await bad({ text_format: '%PROTOCOL%' }, /applies to format "text" only/);
  await bad({ redact: { header: ['x'] } }, /config "redact.header": unknown key/);
});

t.test('config.example.json is a valid configuration', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const cfg = JSON.parse(await readFile(new URL('../config.example.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  const { proxy, sink } = await run(t, { ...cfg, sample_ratio: 1 });
  await request(proxy.port, '/ok?signature=abc', { headers: { 'x-tenant': 'acme' } });
  await request(proxy.port, '/healthz');
  await sink.waitFor(1);
  const e = sink.json()[0]!;
  t.equal(e.tenant, 'acme');
  t.equal(e.path, '/ok?signature=[REDACTED]');
  t.notOk('x_forwarded_for' in e);
});

t.test('the same entries without batched attribute reads (a host without wasm_mixer.get_property_set)', async (t) => {
  const { proxy, sink } = await run(t, { add_fields: { ua: '%CEL(request.headers["user-agent"])%', port: '%CEL(source.port)%' } });
  const send = () => request(proxy.port, '/same?api_key=x', { headers: { 'user-agent': 'same/1', 'x-request-id': 'same', 'x-test-principal': 'pat' } });
  await send();
  proxy.host.telemetry.foreign.setGrant((_adapter, name) => name !== 'wasm_mixer.get_property_set');
  await send();
  await sink.waitFor(2);
  const [batched, single] = sink.json();
  const stable = (e: Record<string, unknown>) => {
    const { start_time: _s, duration: _d, upstream_service_time: _u, downstream_remote_address: _r, port: _p, ...rest } = e;
    return rest;
  };
  t.same(stable(single!), stable(batched!), 'every field but times and the client port is the same');
  t.equal(batched!.ua, 'same/1');
  t.type(single!.port, 'number');
  t.equal(single!.path, '/same?api_key=[REDACTED]');
});

// Values are copied eight bytes at a time, and a value with a byte JSON escapes (", \, a
// control character) goes through the escaper: lines must be exactly what JSON.stringify
// writes, at every length and escape position, whether the entry reaches the host through
// wasm_mixer.access_log or, as in Envoy, through proxy_log with one proxy_get_property per
// attribute.
const copyCases: string[] = [];
for (let n = 1; n <= 70; n++) copyCases.push('abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2).slice(0, n));
for (const at of [0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 30]) {
  for (const c of ['"', '\\', '\t']) if (at > 0 || c !== '\t') copyCases.push(`${'x'.repeat(at)}${c}${'y'.repeat(31 - at)}`); // HTTP trims a leading tab
}
copyCases.push('a\tb"c\\d', '"', '\\\\', `${'z'.repeat(80)}"`);
// Latin-1 header bytes: get_property_set hands them over as the UTF-8 of the header string,
// proxy_get_property as the bytes themselves (abi/guest-io.ts copyOutString), so the two
// paths differ here, as they did before this test: checked through access_log only.
const latin1Case = 'caf\u00e9 na\u00efve';

async function copyLines(t: Test, pluginConfig: unknown, cases: string[], standard: boolean): Promise<string[]> {
  const { proxy, sink, logs } = await run(t, pluginConfig);
  if (standard) proxy.host.telemetry.foreign.setGrant((_adapter, name) => name !== 'wasm_mixer.access_log' && name !== 'wasm_mixer.get_property_set');
  for (const [i, v] of cases.entries()) await request(proxy.port, '/c', { headers: { 'x-v': v, 'x-request-id': `copy-${i}`, 'x-api-key': 'k' } });
  if (!standard) {
    await sink.waitFor(cases.length);
    return sink.lines();
  }
  await new Promise((r) => setTimeout(r, 50));
  t.equal(sink.entries.length, 0, 'nothing through access_log');
  return logs.filter((r) => r.source === 'access' && r.level === 'info' && r.message.includes('copy-')).map((r) => r.message);
}

for (const standard of [false, true]) {
  const how = standard ? 'through proxy_log and proxy_get_property (the standard ABI)' : 'through wasm_mixer.access_log';
  t.test(`values are copied and JSON-escaped exactly at every length and escape position, ${how}`, async (t) => {
    const cases = standard ? copyCases : [...copyCases, latin1Case];
    // v and id are written by formatJSON itself; the others through Entry.write (truncated, '?' alternative, redacted, a CEL header)
    const json_format = { v: '%REQ(X-V)%', id: '%REQ(X-REQUEST-ID)%', t: '%REQ(X-V):5%', a: '%REQ(X-NOPE?X-V)%', k: '%REQ(X-API-KEY)%', c: '%CEL(request.headers["x-v"])%', n: '%BYTES_RECEIVED%' };
    const lines = await copyLines(t, { json_format }, cases, standard);
    t.same(lines, cases.map((v, i) => JSON.stringify({ v, id: `copy-${i}`, t: v.slice(0, 5), a: v, k: '[REDACTED]', c: v, n: 0 })));
  });
  t.test(`text lines copy values as they are, ${how}`, async (t) => {
    const lines = await copyLines(t, { format: 'text', text_format: '%REQ(X-V)%|%REQ(X-REQUEST-ID)%|%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%' }, copyCases, standard);
    t.same(lines, copyCases.map((v, i) => `${v}|copy-${i}|127.0.0.1`));
  });
}

t.test('exports only the per-request callbacks it uses (log phase only)', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const names = WebAssembly.Module.exports(new WebAssembly.Module(await readFile(await buildOnce('logging')))).map((e) => e.name);
  for (const e of ['proxy_on_context_create', 'proxy_on_log', 'proxy_on_delete']) t.ok(names.includes(e), `exports ${e}`);
  // a host skips a callback the module does not export: two guest calls fewer per request
  for (const e of ['proxy_on_request_headers', 'proxy_on_response_headers', 'proxy_on_done']) t.notOk(names.includes(e), `does not export ${e}`);
});
