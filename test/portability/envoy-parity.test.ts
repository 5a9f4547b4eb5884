// Issue 15 items 2-5, 8, 9 through the real proxy, with a filter written from the
// spec (wat/parity.wat): root ids, plain-string configuration, local replies that
// run the sender's response callbacks, Content-Length kept for body filters,
// local replies framed by the proxy, no misleading upstream error after a local
// reply from on_request_body, and the Emscripten imports cpp-host provides.
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { quickConfig } from '../../host/src/cli/main.js';
import { startProxy } from '../../host/src/index.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { capture, compileWat, echoed, echoProxy, rawHead, request } from './helpers.js';

const { proxy, log, dir, upstreamPort } = await echoProxy(
  t,
  'wm-parity-',
  { 'parity.wasm': await compileWat('parity'), 'spec.wasm': await compileGuest('spec-filter') },
  {
    plugins: [
      { name: 'a', url: 'parity.wasm' },
      { name: 'b', url: 'parity.wasm', rootId: 'shared' },
      { name: 'c', url: 'parity.wasm', rootId: 'shared' },
    ],
  },
);

t.test('root ids: empty by default, separate from the plugin name, shared by two plugins', async (t) => {
  const r = await request(proxy.port, '/x');
  t.equal(r.status, 200);
  const h = echoed(r.body).headers;
  t.equal(h['x-root-a'], '', 'plugin a runs under the empty root id (Envoy root_id default)');
  t.equal(h['x-root-b'], 'shared');
  t.equal(h['x-root-c'], 'shared', 'two plugins share one root id of the same module');
});

t.test('a local reply runs the response callbacks of the filter that sent it (as Envoy)', async (t) => {
  const r = await request(proxy.port, '/deny');
  t.equal(r.status, 451);
  t.equal(r.body, 'nope');
  t.equal(r.headers['x-local'], '1');
  t.equal(r.headers['x-filter-response'], 'seen', 'the header its on_response_headers sets is on its own 451');
});

t.test('Content-Length is kept when a filter has proxy_on_request_body but does not change the body', async (t) => {
  const r = await request(proxy.port, '/post', { method: 'POST', body: 'hello world', headers: { 'content-type': 'text/plain' } });
  t.equal(r.status, 200);
  const e = echoed(r.body);
  t.equal(e.headers['content-length'], '11', 'upstream sees the client Content-Length');
  t.equal(e.headers['transfer-encoding'], undefined, 'not re-sent chunked');
  t.equal(e.body, 'hello world');
  const chunked = await request(proxy.port, '/post', { method: 'POST', body: 'abc', headers: { 'transfer-encoding': 'chunked' } });
  t.equal(echoed(chunked.body).headers['transfer-encoding'], 'chunked', 'a chunked request stays chunked');
  t.equal(echoed(chunked.body).body, 'abc');
});

t.test('local replies are framed by the proxy: framing and hop-by-hop headers from the filter are dropped', async (t) => {
  const head = await rawHead(proxy.port, '/te');
  const [status, ...lines] = head.split('\r\n\r\n')[0]!.split('\r\n');
  t.match(status, /^HTTP\/1\.1 200/);
  const names = lines.map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
  t.notOk(names.includes('transfer-encoding'), 'no Transfer-Encoding next to Content-Length');
  t.equal(names.filter((n) => n === 'content-length').length, 1, 'exactly one Content-Length');
  t.ok(lines.some((l) => /^content-length: 5$/i.test(l)), 'Content-Length is the body length, not the filter\'s 999');
  t.notOk(lines.some((l) => /timeout=5/.test(l)), 'the filter\'s keep-alive header is dropped');
  t.ok(lines.some((l) => /^x-local: te$/i.test(l)), 'end-to-end headers are kept');
  t.equal(head.split('\r\n\r\n')[1], 'hello');
});

t.test('a local reply from on_request_body logs no upstream failure', async (t) => {
  const before = log.logs.length;
  const r = await request(proxy.port, '/body-deny', { method: 'POST', body: 'x'.repeat(1000) });
  t.equal(r.status, 413);
  t.equal(r.body, 'no body here');
  await new Promise((res) => setTimeout(res, 200));
  const after = log.logs.slice(before);
  t.notOk(after.some((l) => l.code === 'UPSTREAM_UNAVAILABLE' || /socket hang up/.test(l.message)), 'no UPSTREAM_UNAVAILABLE / socket hang up');
});

t.test('--adapter-config takes a plain string as well as JSON', async (t) => {
  const q = (cfg: string) => quickConfig(['--listen', '0', '--to', `http://127.0.0.1:${upstreamPort}`, '--adapter', join(dir, 'spec.wasm'), '--adapter-config', cfg]).config;
  t.equal(q('ok').plugins![0]!.pluginConfig, 'ok', 'plain text is passed as it is');
  t.same(q('{"a":1}').plugins![0]!.pluginConfig, { a: 1 }, 'JSON is still JSON');
  t.throws(() => q('{"a":'), { code: 'USAGE', message: /looks like JSON but does not parse/ });
  // Through the real proxy: spec-filter refuses the plain-string configuration "fail" and accepts "ok".
  await t.rejects(startProxy(q('fail'), { port: 0, logger: capture().logger }), { code: 'PLUGIN_CONFIGURE_FAILED' });
  const p = await startProxy(q('ok'), { port: 0, logger: capture().logger });
  t.teardown(() => p.close());
  const r = await request(p.port, '/y');
  t.equal(echoed(r.body).headers['x-spec-filter'], 'seen');
});

t.test('a streamed body whose length changes after its Content-Length went upstream: 502 BODY_LENGTH_CHANGED', async (t) => {
  const before = log.logs.length;
  // Two chunks, the second after the first was forwarded; the filter appends a byte at the end.
  const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/grow', method: 'POST', headers: { 'content-length': '10' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.write('12345');
    setTimeout(() => req.end('67890'), 300);
  });
  t.equal(r.status, 502);
  t.match(r.body, /changed length/);
  t.ok(log.logs.slice(before).some((l) => l.code === 'BODY_LENGTH_CHANGED'), 'logged with its code');
  const ok = await request(proxy.port, '/post', { method: 'POST', body: 'still serving' });
  t.equal(echoed(ok.body).body, 'still serving', 'the proxy keeps serving');
});
