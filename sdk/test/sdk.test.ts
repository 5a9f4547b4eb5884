// The SDK's high layer against the real host, through the in-process harness.
import t from 'tap';
import { AdapterHarness, loadAdapter } from '../../host/testing/index.js';
import { buildFixture } from './probe.js';

const { built, cleanup } = await buildFixture('sdk-probe');
t.teardown(cleanup);
const wasm = built.wasmPath;
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString('utf8'));

t.test('request attributes, header access and mutation, response headers', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe' });
  t.teardown(() => h.close());
  const r = await h.run(
    { method: 'POST', path: '/props?a=1', host: 'svc.local', headers: [['x-foo', 'one'], ['x-foo', 'two'], ['x-remove-me', 'bye']], sourceAddress: '10.1.2.3', sourcePort: 5555 },
    { status: 201, headers: { 'x-up': 'u', 'x-up-remove': 'gone' } },
  );
  const u = r.upstream!.headers;
  t.equal(u['x-method'], 'POST');
  t.equal(u['x-path'], '/props?a=1');
  t.equal(u['x-url-path'], '/props');
  t.equal(u['x-query'], 'a=1');
  t.equal(u['x-host'], 'svc.local');
  t.equal(u['x-source-ip'], '10.1.2.3');
  t.equal(u['x-source-port'], '5555');
  t.equal(u['x-source-address'], '10.1.2.3:5555');
  t.equal(u['x-time-ok'], '1', 'request.time is a recent ns timestamp, now() agrees');
  t.equal(u['x-plugin'], 'probe');
  t.equal(u['x-foo-seen'], 'one', 'header() returns the first value');
  t.equal(u['x-foo-all'], 'one|two', 'headers() keeps repeated values in order');
  t.equal(u['x-absent-seen'], 'null', 'a missing header is null');
  t.equal(u['x-pseudo-method'], 'POST', 'pseudo-headers are in the request map');
  t.equal(u['x-map-foo'], 'one', 'map-valued property decodes from the pairs format');
  t.equal(u['x-missing'], 'null', 'unknown property is null');
  t.equal(u['x-added'], '1, 2', 'addHeader appends');
  t.notOk('x-remove-me' in u, 'removeHeader removes');
  t.equal(r.status, 201);
  t.equal(r.headers['x-resp-added'], '1');
  t.equal(r.headers['x-resp-set'], '2');
  t.equal(r.headers['x-on-response'], '201', 'headers queued in onResponse are applied too');
  t.notOk('x-up-remove' in r.headers, 'removeResponseHeader removes');
  t.equal(r.headers['x-up'], 'u');
});

t.test('bytes: headers and properties read into reused buffers, compared without strings', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe', vmConfig: { vmId: 'bytes-vm' } });
  t.teardown(() => h.close());
  const long = 'L'.repeat(300);
  await h.run({ path: '/bytes', headers: { 'x-foo': 'one', 'x-long': long } });
  const parts = text(h.sharedData('bytes-vm', 'bytes'))!.split('|');
  t.same(parts, [
    'has',
    'no',
    `300:${long}`,
    'one:same',
    'eqnene',
    'swnono',
    'eqneswno',
    'absent:0',
    '"a\\"b\\\\c\\n\\r\\t\\b\\f\\u0001é"',
    'same',
    'GET,one,-1,eq,time',
    '110100',
    '40:40:-1',
    '1',
  ]);
  t.equal(JSON.parse(parts[8]!), 'a"b\\c\n\r\t\b\f\u0001é', 'the escapes are JSON');
});

t.test('report(): full attribute set after the response', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe', vmConfig: { vmId: 'report-vm' } });
  t.teardown(() => h.close());
  await h.run({ path: '/props', body: 'abcd' }, { status: 202, headers: { 'x-up': 'u' }, body: 'hello' });
  const rep = JSON.parse(text(h.sharedData('report-vm', 'last-report'))!);
  t.equal(rep.method, 'GET');
  t.equal(rep.path, '/props');
  t.equal(rep.code, 202);
  // the in-process harness counts response body bytes only; the proxy fills the rest
  t.equal(rep.responseSize, 5);
  for (const k of ['requestSize', 'requestTotalSize', 'responseTotalSize']) t.ok(Number.isInteger(rep[k]) && rep[k] >= 0, `${k} is an int64`);
  t.ok(rep.responseTotalSize >= rep.responseSize);
  t.ok(rep.duration > 0, 'duration in ns');
  t.equal(rep['x-up'], 'u', 'response headers readable in report');
  t.equal(rep.quoted, '"q\\"\\n"');
});

t.test('onEnd(): runs from proxy_on_delete, after report, once per request', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe' });
  t.teardown(() => h.close());
  await h.run({ path: '/a' });
  await h.run({ path: '/b' });
  t.equal(h.metric('sdk_probe_ended_total', { after_report: 'yes' }), 2);
  t.notOk(h.metric('sdk_probe_ended_total', { after_report: 'no' }), 'never before report');
});

t.test('plugin_root_id selects among registered adapters, "" is the default', async (t) => {
  const second = await loadAdapter(wasm, { name: 'second', rootId: 'second-root' });
  t.teardown(() => second.close());
  t.equal((await second.run({ path: '/deny' })).upstream?.headers['x-second'], '1');
  const dflt = await loadAdapter(wasm, { name: 'anything-else' });
  t.teardown(() => dflt.close());
  t.equal((await dflt.run({ path: '/deny' })).status, 418);
});

t.test('deny with status, body, headers and details', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe' });
  t.teardown(() => h.close());
  const r = await h.run({ path: '/deny' });
  t.equal(r.status, 418);
  t.equal(r.body, 'teapot');
  t.equal(r.headers['x-deny'], '1');
  t.match(r.localReply?.details, /probe_deny$/);
  t.equal(r.upstream, null);
});

t.test('setProperty passes values to a later adapter in the same request', async (t) => {
  const h = await AdapterHarness.create([
    { wasm, name: 'writer' },
    { wasm, name: 'reader', config: { mode: 'reader' } },
  ]);
  t.teardown(() => h.close());
  const r = await h.run({ path: '/set' });
  t.equal(r.upstream?.headers['x-principal-seen'], 'alice');
  t.equal(r.upstream?.headers['x-n'], '42', 'int64 property round-trips');
  const other = await h.run({ path: '/other' });
  t.equal(other.upstream?.headers['x-principal-seen'], 'null', 'filter state is per request');
});

t.test('HTTP call-out: pause, then allow or deny from the callback', async (t) => {
  const seen: string[] = [];
  const h = await loadAdapter(wasm, {
    name: 'probe',
    clusters: ['authz'],
    httpCall: async (req) => {
      const path = req.headers.find(([k]) => k === ':path')?.[1] ?? '';
      const user = req.headers.find(([k]) => k === 'x-user')?.[1] ?? '';
      seen.push(`${path} ${user} ${Buffer.from(req.body).toString()}`);
      if (path === '/first') return { headers: [[':status', '201']], body: new Uint8Array(), trailers: [] };
      if (path === '/second') return { headers: [[':status', '202']], body: new Uint8Array(), trailers: [] };
      if (user === 'bob') return { headers: [[':status', '403']], body: Buffer.from('no bob'), trailers: [] };
      if (user === 'down') throw new Error('connection refused');
      return { headers: [[':status', '200'], ['x-user', user]], body: Buffer.from('{"principal":"p-' + user + '"}'), trailers: [] };
    },
  });
  t.teardown(() => h.close());
  const ok = await h.run({ path: '/call', headers: { 'x-user': 'ann' } });
  t.equal(ok.status, 200);
  t.equal(ok.upstream?.headers['x-authz-user'], 'ann', 'headers set from the callback reach the upstream');
  t.equal(ok.upstream?.headers['x-principal'], 'p-ann', 'call-out body parsed as JSON');
  t.equal(ok.headers['x-authz'], 'checked');
  t.same(seen[0], '/check ann ping');
  const no = await h.run({ path: '/call', headers: { 'x-user': 'bob' } });
  t.equal(no.status, 403);
  t.equal(no.body, 'authz said 403: no bob');
  const down = await h.run({ path: '/call', headers: { 'x-user': 'down' } });
  t.equal(down.status, 503, 'a failed call-out reaches the callback as failed');
  const chain = await h.run({ path: '/chain' });
  t.equal(chain.upstream?.headers['x-chain'], '201,202', 'a callback can pause again and make a second call');
  const refused = await h.run({ path: '/call-refused' });
  t.equal(refused.status, 502, 'a call the host refuses returns false');
});

t.test('a reused context is fresh: nothing of an ended request shows in the next one', async (t) => {
  const h = await loadAdapter(wasm, {
    name: 'probe',
    clusters: ['authz'],
    httpCall: async () => ({ headers: [[':status', '200'], ['x-user', 'ann']], body: new Uint8Array(), trailers: [] }),
  });
  t.teardown(() => h.close());
  const probe = async () => {
    const r = await h.run({ method: 'GET', path: '/pool-check', host: 'second.local', headers: { 'x-request-id': 'id-2' }, sourceAddress: '10.0.0.2', sourcePort: 2222 });
    t.notOk('x-stale' in r.headers, 'a response-header op queued by the ended request is not applied');
    return r.upstream!.headers['x-pool']!.split('|');
  };
  const dirty = await h.run({ method: 'POST', path: '/pool-dirty', host: 'first.local', headers: { 'x-request-id': 'id-1' }, sourceAddress: '10.0.0.1', sourcePort: 1111 });
  t.equal(dirty.status, 409);
  const p = await probe();
  t.equal(p[0], 'reused', 'the ended request\'s object serves the next request (no allocation)');
  t.equal(p[1], 'id-fresh', 'with the new context id');
  t.equal(p[2], 'GET /pool-check second.local http id-2 10.0.0.2:2222', 'cached attributes are the new request\'s');
  t.equal(p[3], 'no-local', 'locals are gone');
  t.equal(p[4], '--0', 'not paused, not denied, no calls pending');
  // A paused request with a call-out is one the adapter may still hold: it is never reused.
  const call = await h.run({ path: '/call', headers: { 'x-user': 'ann' } });
  t.equal(call.status, 200);
  for (let i = 0; i < 3; i++) {
    const q = await probe();
    t.equal(q[5], 'held-kept', 'a request that was paused is not handed to a later one');
    t.equal(q[6], 'held-intact', 'and keeps its own context id');
    t.equal(q[3], 'no-local');
  }
});

t.test('ByteBuffer: short raw copies and one-pass str() write the same bytes as memory.copy and UTF-8 encode', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe' });
  t.teardown(() => h.close());
  const r = await h.run({ path: '/copy' });
  t.equal(r.status, 200, r.body);
  t.equal(JSON.stringify(r.upstream?.headers['x-copy']), '"ok"');
});

t.test('the context id table agrees with Map over random sets and deletes', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe' });
  t.teardown(() => h.close());
  const r = await h.run({ path: '/idtable' });
  t.match(r.upstream?.headers['x-idtable'], /^ok (\d+) \1$/);
});

t.test('onTick, adapter-level call-outs, onQueueReady', async (t) => {
  const h = await loadAdapter(wasm, {
    name: 'probe',
    config: { mode: 'ticker' },
    vmConfig: { vmId: 'ticker' },
    clusters: ['authz'],
    httpCall: async () => ({ headers: [[':status', '200']], body: Buffer.from('tock'), trailers: [] }),
  });
  t.teardown(() => h.close());
  const deadline = Date.now() + 5000;
  while (text(h.sharedData('ticker', 'tick-call')) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.equal(text(h.sharedData('ticker', 'tick-call')), '200:tock:same', 'call made from onTick answered to the adapter callback');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(text(h.sharedData('ticker', 'ticks')), '2', 'setTickPeriod(0) stopped the timer');
  await h.run({ path: '/q' });
  while (text(h.sharedData('ticker', 'queue-ready')) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.equal(text(h.sharedData('ticker', 'queue-ready')), 'from /q');
});

t.test('shared data with CAS, shared queues', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe', vmConfig: { vmId: 'shared-vm' } });
  t.teardown(() => h.close());
  const a = await h.run({ path: '/shared' });
  t.equal(a.upstream?.headers['x-shared'], '1');
  t.equal(a.upstream?.headers['x-never'], 'null');
  const b = await h.run({ path: '/shared' });
  t.equal(b.upstream?.headers['x-shared'], '2');
  t.equal(b.upstream?.headers['x-stale'], 'false', 'a stale CAS is refused');
  t.equal(text(h.sharedData('shared-vm', 'counter')), '2');
  const q = await h.run({ path: '/queue' });
  t.equal(q.upstream?.headers['x-queue'], 'hello,world,empty');
  t.equal(q.upstream?.headers['x-queue-same'], '1');
  t.equal(q.upstream?.headers['x-queue-none'], 'null');
});

t.test('metrics: counters with labels, escaping, gauges, histograms', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe' });
  t.teardown(() => h.close());
  const r = await h.run({ path: '/metrics' });
  t.equal(r.upstream?.headers['x-gauge'], '5');
  t.equal(r.upstream?.headers['x-escaped-name'], 'sdk_probe_escape_total{v="a\\"b\\\\c\\nd"}');
  t.equal(h.metric('sdk_probe_escape_total', { v: 'a"b\\c\nd' }), 1, 'host parsed the escaped label value back');
  t.equal(h.metric('sdk_probe_requests_total', { kind: 'metrics' }), 2);
  t.equal(h.metric('sdk_probe_requests_total'), 1);
  t.equal(h.metric('sdk_probe_gauge'), 5);
  t.equal(h.metric('sdk_probe_latency_ns'), 1);
  t.match(h.metricsText(), /sdk_probe_escape_total\{[^}]*v="a\\"b\\\\c\\nd"[^}]*\} 1/);
});

t.test('logging is gated on the host level', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe', logLevel: 'warn' });
  t.teardown(() => h.close());
  await h.run({ path: '/log' });
  const lines = h.logs.filter((r) => r.source === 'probe').map((r) => `${r.level} ${r.message}`);
  t.ok(lines.includes('warn warn line'));
  t.ok(lines.includes('error error line'));
  t.notOk(lines.some((l) => /trace line|debug line|info line/.test(l)), 'below-level messages are not sent');
});

t.test('abort logs CRITICAL with the message and location, then traps', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe' });
  t.teardown(() => h.close());
  const r = await h.run({ path: '/abort' });
  t.equal(r.upstream, null, 'the trapped request does not pass (fail closed)');
  const crit = h.logs.filter((l) => l.level === 'critical').map((l) => l.message);
  t.ok(crit.includes('abort: boom'), crit.join('\n'));
  const h2 = await loadAdapter(wasm, { name: 'probe' });
  t.teardown(() => h2.close());
  const a = await h2.run({ path: '/assert' });
  t.equal(a.upstream, null);
  t.ok(
    h2.logs.some((l) => l.level === 'critical' && /^abort: x-never must be set at assembly\/index\.ts:\d+:\d+$/.test(l.message)),
    'assert() keeps its message and location',
  );
});

t.test('trace() and Math.random work without env imports', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe', logLevel: 'debug' });
  t.teardown(() => h.close());
  await h.run({ path: '/trace' });
  t.ok(h.logs.some((l) => l.level === 'debug' && l.message === 'trace via --use 1.5 2.0'), 'trace goes to proxy_log at debug');
  const r = await h.run({ path: '/random' });
  t.equal(r.upstream?.headers['x-random'], 'ok');
});

t.test('configuration: errors name the key path; JSON edge cases', async (t) => {
  await t.rejects(loadAdapter(wasm, { name: 'probe', config: { mode: 'refuse' } }), { code: 'PLUGIN_CONFIGURE_FAILED', message: /refused on purpose/ });
  await t.rejects(loadAdapter(wasm, { name: 'probe', config: { mode: 7 } }), { message: /config "mode": must be a string, got number/ });
  await t.rejects(loadAdapter(wasm, { name: 'probe', config: { mode: 'json', echo: { i: 1.5 } } }), {
    message: /config "echo.s": is required \(a string\); config "echo.i": must be an integer, got number/,
  });
  // empty configuration is an empty object
  const e = await loadAdapter(wasm, { name: 'probe', config: '' });
  e.close();
});

const jsonCases: [string, string][] = [
  ['{"mode":"json","a":[1,-2,3.5,1e3,-0.25E-2,true,false,null],"b":{}}', '{"mode":"json","a":[1,-2,3.5,1000.0,-0.0025,true,false,null],"b":{}}'],
  ['  {"mode" : "json" , "s":"\\u00e9\\n\\t\\"\\\\\\/\\b\\f\\r\\ud83d\\ude00"}  ', '{"mode":"json","s":"é\\n\\t\\"\\\\/\\b\\f\\r😀"}'],
  ['{"mode":"json","big":9223372036854775807,"neg":-9223372036854775808,"over":9223372036854775808}', '{"mode":"json","big":9223372036854775807,"neg":-9223372036854775808,"over":9223372036854776000.0}'],
  ['{"mode":"json","dup":1,"dup":2}', '{"mode":"json","dup":2}'],
  ['{"mode":"json","u":"ünï","ctl":"\\u0001"}', '{"mode":"json","u":"ünï","ctl":"\\u0001"}'],
];

t.test('JSON parser: valid documents round-trip', async (t) => {
  for (const [input, expected] of jsonCases) {
    const h = await loadAdapter(wasm, { name: 'probe', config: input, vmConfig: { vmId: 'json' } });
    const out = text(h.sharedData('json', 'json-out'));
    h.close();
    // "over" does not fit in i64: kept as an f64
    t.equal(out, expected, input);
  }
  const h = await loadAdapter(wasm, { name: 'probe', config: { mode: 'json', echo: { s: 'x', i: 12 } }, vmConfig: { vmId: 'json2' } });
  t.equal(text(h.sharedData('json2', 'json-echo')), 'x|12');
  h.close();
});

const badJson: [string, RegExp][] = [
  ['{"a":1,}', /line 1, column 8: trailing comma before '}'/],
  ['[1,2', /line 1, column 5: unexpected end of input in array/],
  ['{"a" 1}', /line 1, column 6: unexpected '1', expected ':' after an object key/],
  ['{"a":01}', /line 1, column 6: invalid number: leading zero/],
  ['{"a":"x\ny"}', /line 1, column 8: control character U\+000A must be escaped/],
  ['{\n  "a": tru\n}', /line 2, column 8: invalid literal, expected 'true'/],
  ['{"a":"\\x"}', /line 1, column 7: invalid escape '\\x'/],
  ['{"a":"\\u12g4"}', /line 1, column 7: invalid \\u escape/],
  ['{"a":1} x', /line 1, column 9: unexpected 'x' after the JSON value/],
  ['{"a":"open', /line 1, column 6: unterminated string/],
  ['{"a":1.}', /invalid number: expected a digit after '.'/],
  ['{"a":-}', /invalid number: expected a digit/],
  ['[' .repeat(200) + ']'.repeat(200), /nesting deeper than 128 levels/],
];

t.test('JSON parser: malformed documents give positioned errors, never traps', async (t) => {
  for (const [input, re] of badJson) {
    await t.rejects(loadAdapter(wasm, { name: 'probe', config: input }), { code: 'PLUGIN_CONFIGURE_FAILED', message: re }, input.slice(0, 40));
  }
});

t.test('memory stays flat and nothing stays pinned over 100k requests', async (t) => {
  const h = await loadAdapter(wasm, { name: 'probe', logLevel: 'error' });
  t.teardown(() => h.close());
  const paths = ['/props', '/deny', '/metrics', '/shared', '/bytes', '/x'];
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) await h.run({ path: paths[i % paths.length]!, headers: { 'x-foo': 'v'.repeat(i % 300) } }, { status: 200, headers: { 'x-up': 'u' } });
  };
  await run(10_000);
  const early = h.metric('sdk_probe_memory_bytes')!;
  await run(90_000);
  const late = h.metric('sdk_probe_memory_bytes')!;
  t.equal(h.metric('sdk_probe_pending_buffers'), 0, 'no host buffer left pinned at report time');
  t.equal(h.metric('sdk_probe_live_contexts'), 2, 'only the root and the reporting stream are tracked');
  t.ok(late <= early, `linear memory flat: ${early} bytes after 10k, ${late} bytes after 100k`);
  // The probe starts with 2 pages (fixtures/sdk-probe/adapter.json "initialMemoryPages"), not the
  // 16 adapters get by default, so that a leak shows as growth here.
  t.ok(late <= 2 * 65536 * 4, `memory small: ${late} bytes`);
});
