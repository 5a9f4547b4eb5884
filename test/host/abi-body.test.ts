// Request and response bodies and trailers through the real host, driven by a
// guest written from the Proxy-Wasm ABI v0.2.1 spec (test/fixtures/guests/abi-body.wat;
// its header lists every observation key used below).
import http from 'node:http';
import t from 'tap';
import { startDemoUpstream, startProxy } from '../../host/src/index.js';
import { AdapterHarness } from '../../host/testing/index.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { guestHarness, recorder } from './guest-recorder.js';



const text = (b: unknown) => Buffer.from(b as Uint8Array).toString('utf8');

const harness = (t: { teardown(fn: () => unknown): void }, vmId: string) => guestHarness(t, 'abi-body', vmId, { name: 'body' });

t.test('request body: buffered until end_of_stream, read with clamped ranges, rewritten, forwarded', async (t) => {
  const { h, rec } = await harness(t, 'body-req');
  const s = h.stream({ method: 'POST', path: '/upload' });
  t.same(s.requestHeaders(false), { action: 'continue' });
  t.equal(rec.u32('hdr-eos'), 0, 'proxy_on_request_headers: end_of_stream false when a body follows');

  const first = s.requestBody(Buffer.from('hello'), false);
  t.ok(first instanceof Uint8Array && first.length === 0, 'StopIterationAndBuffer: nothing is forwarded yet');
  const last = s.requestBody(Buffer.from(' world'), true);
  t.ok(last instanceof Uint8Array, 'Continue at end of stream: the body is released synchronously');
  t.equal(text(last), '<<hi world>>!', 'the rewritten body is what is forwarded');

  t.equal(rec.text('req-calls'), '5,5,0,0;11,11,1,1;', 'body_size is the total buffered size; get_buffer_status agrees; flags=1 only at end of stream');
  t.same(rec.ret('req-full'), { status: 0, text: 'hello world', bytes: Buffer.from('hello world') }, 'get_buffer_bytes(0, body_size)');
  t.equal(rec.ret('req-mid').text, 'llo', 'get_buffer_bytes(2, 3)');
  t.equal(rec.ret('req-tail').text, 'ld', 'get_buffer_bytes(len-2, 100) is clamped to the end');
  t.same([rec.ret('req-past').status, rec.ret('req-past').bytes.length], [0, 0], 'a start past the end is OK and empty');
  t.equal(rec.ret('req-max').text, 'hello world', 'max_size 0xFFFFFFFF (usize::MAX) reads everything');
  t.same([rec.ret('req-rest').status, rec.ret('req-rest').text], [0, 'llo world'], 'start 2, max_size 0xFFFFFFFF: the rest of the body (clamped as cpp-host does, not BAD_ARGUMENT)');
  t.same(rec.u32s('req-set-st'), [0, 0, 0, 0], 'prepend, append at 0xFFFFFFFF, replace [2,7), append at len: all OK');
  t.equal(rec.ret('req-final').text, '<<hi world>>!', 'the guest reads back its own rewrite');

  t.equal(rec.u32('req-add-trailer-st'), 0, 'request trailers can be added from the last body callback');
  t.same(s.stream.requestTrailers, [['x-body-trailer', 'added']]);

  t.same(s.responseHeaders(200, [['content-type', 'text/plain']], false), { action: 'continue' });
  t.equal(rec.u32('resp-hdr-eos'), 0);
  const r1 = s.responseBody(Buffer.from('ab'), false);
  t.ok(r1 instanceof Uint8Array && r1.length === 0, 'response body buffered');
  t.equal(text(s.responseBody(Buffer.from('cd'), true)), '[abcd]', 'the whole response body replaced (start 0, size len)');
  t.equal(rec.text('resp-calls'), '2,2,0,0;4,4,1,1;');
  t.equal(rec.u32('resp-body-set-st'), 0);
  t.equal(rec.u32('resp-add-trailer-st'), 0, 'response trailers can be added from the last body callback');
  t.same(s.stream.responseTrailers, [['x-body-trailer', 'resp-added']]);

  s.finish();
  t.same(rec.pairs('log-req-trailers'), [['x-body-trailer', 'added']], 'proxy_on_log reads the request trailers');
  t.same(rec.pairs('log-resp-trailers'), [['x-body-trailer', 'resp-added']], 'proxy_on_log reads the response trailers');
});

t.test('harness run: rewritten bodies reach the upstream and the client; no body means end_of_stream on headers', async (t) => {
  const { h, rec } = await harness(t, 'body-run');
  const r = await h.run({ method: 'POST', path: '/x', body: 'hello world' }, { status: 201, body: 'pong' });
  t.equal(r.upstream?.body, '<<hi world>>!');
  t.equal(r.status, 201);
  t.equal(r.body, '[pong]');
  t.equal(rec.text('req-calls'), '11,11,1,1;', 'a body delivered in one piece: one call with end_of_stream');

  const g = await h.run({ path: '/get' }, { status: 204 });
  t.equal(g.upstream?.body, '');
  t.equal(rec.u32('hdr-eos'), 1, 'no request body: end_of_stream true on request headers');
  t.equal(rec.u32('resp-hdr-eos'), 1, 'no response body: end_of_stream true on response headers');
  t.equal(rec.text('req-calls'), '', 'no body callback without a body');
});

t.test('trailers: proxy_on_request_trailers / proxy_on_response_trailers see and modify them', async (t) => {
  const { h, rec } = await harness(t, 'body-trailers');
  const r = await h.run(
    { method: 'POST', path: '/pass/trailers', body: 'data', trailers: [['x-req-t', '1'], ['x-req-t', '2']] },
    { status: 200, body: 'resp', trailers: { 'x-resp-t': 'r' } },
  );
  t.equal(r.upstream?.body, 'data');
  t.equal(r.body, 'resp');
  t.equal(rec.text('req-calls'), '4,4,0,0;', 'end_of_stream is false on the last body chunk when trailers follow');
  t.equal(rec.text('resp-calls'), '4,4,0,0;');
  t.notOk(rec.has('req-add-trailer-st'), 'no end-of-stream body callback, so no attempt to add trailers');
  t.equal(rec.u32('req-trailers-n'), 2, 'num_trailers');
  t.same(rec.pairs('req-trailers'), [['x-req-t', '1'], ['x-req-t', '2']], 'request trailers in order, repeated names kept');
  t.equal(rec.u32('resp-trailers-n'), 1);
  t.same(rec.pairs('resp-trailers'), [['x-resp-t', 'r']]);
  t.same(rec.pairs('log-req-trailers'), [['x-req-t', '1'], ['x-req-t', '2'], ['x-seen-by-wasm', '1']], 'a trailer added in proxy_on_request_trailers is kept');
  t.same(rec.pairs('log-resp-trailers'), [['x-resp-t', 'r'], ['x-seen-by-wasm', '1']]);
});

t.test('a body held with StopIterationAndBuffer is released when trailers arrive', async (t) => {
  const { h } = await harness(t, 'body-held-trailers');
  const r = await h.run({ method: 'POST', path: '/x', body: 'hello world', trailers: { 'x-t': '1' } }, { body: 'abc', trailers: { 'x-u': '2' } });
  t.equal(r.upstream?.body, 'hello world', 'the request body is forwarded, not lost');
  t.equal(r.body, 'abc', 'the response body is forwarded, not lost');
});

t.test('the request body can be read and modified while the request is paused from proxy_on_request_body', { todo: 'host gap: PluginVm.buffer() serves HTTP_REQUEST_BODY only inside proxy_on_request_body (NOT_FOUND from proxy_on_http_call_response after set_effective_context), and the chain forwards the bytes it held, not the buffer; the spec (and Envoy) allow it while paused; see the report' }, async (t) => {
  const h = await AdapterHarness.create([{ wasm: await compileGuest('abi-body'), name: 'body', vmConfig: { vmId: 'body-paused' } }], {
    clusters: ['authz'],
    httpCall: async () => ({ headers: [[':status', '200']], body: new Uint8Array(0), trailers: [] }),
  });
  t.teardown(() => h.close());
  const rec = recorder((k) => h.sharedData('body-paused', k));
  const r = await h.run({ method: 'POST', path: '/callbody', body: 'hello world' });
  t.equal(r.status, 200, 'the call-out resumed the request');
  t.same(rec.u32s('paused-st'), [0, 0, 11, 0, 0], 'set_effective_context, get_buffer_status (11 bytes), set_buffer_bytes, continue_stream: all OK');
  t.equal(rec.ret('paused-body').text, 'hello world', 'the paused body is readable from the call-out callback');
  t.equal(r.upstream?.body, '<<hello world', 'and the change made there is forwarded');
});

// ------------------------------------------------------------------ the real proxy

interface Res { status: number; headers: http.IncomingHttpHeaders; body: string }

function send(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; chunks?: string[] } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`request ${path} timed out`)));
    req.on('error', reject);
    const parts = opts.chunks ?? [];
    let i = 0;
    const next = () => {
      if (i === parts.length) return void req.end();
      req.write(parts[i++]);
      setTimeout(next, 20);
    };
    next();
  });
}

interface Echo { method: string; url: string; headers: Record<string, string>; bodyBytes: number; body: string }

t.test('the real proxy forwards the rewritten request body and sends the rewritten response body', async (t) => {
  const upstream = await startDemoUpstream(0);
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }], plugins: [{ name: 'body', url: 'abi-body.wasm', vmConfig: { vmId: 'body-proxy' } }], logLevel: 'error' },
    { modules: { 'abi-body.wasm': await compileGuest('abi-body') } },
  );
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const rec = recorder((k) => proxy.host.shared.forVm('body-proxy').get(k)?.value);
  const checkLength = (r: Res, what: string) => {
    const cl = r.headers['content-length'];
    t.ok(cl === undefined || Number(cl) === Buffer.byteLength(r.body), `${what}: content-length absent or right (${cl})`);
  };

  // A body with a content-length: the client's length no longer holds after the rewrite.
  const a = await send(proxy.port, '/cl', { method: 'POST', headers: { 'content-type': 'text/plain', 'content-length': '11' }, chunks: ['hello world'] });
  t.equal(a.status, 200, 'the upstream accepts the forwarded request');
  checkLength(a, 'content-length request');
  const [echoA] = JSON.parse(a.body) as [Echo];
  t.equal(echoA.bodyBytes, 13);
  t.equal(echoA.body, '<<hi world>>!', 'the upstream received the rewritten body');
  t.equal(echoA.headers['content-length'], '13', 'the stale content-length is not forwarded: it is recomputed for the rewritten body');
  t.match(a.body, /^\[\{.*\}\]$/, 'the client received the rewritten response body ("[" + echo + "]")');

  // Chunked upload in several pieces: body_size grows while buffered.
  const b = await send(proxy.port, '/chunked', { method: 'POST', chunks: ['hel', 'lo wo', 'rld'] });
  t.equal(b.status, 200);
  checkLength(b, 'chunked request');
  const [echoB] = JSON.parse(b.body) as [Echo];
  t.equal(echoB.body, '<<hi world>>!');
  const calls = rec.text('req-calls').split(';').filter(Boolean).map((c) => c.split(',').map(Number));
  t.ok(calls.length >= 2, `several body callbacks (${calls.length})`);
  let prev = 0;
  for (const [i, [p, s, f, e]] of calls.entries()) {
    t.equal(s, p, `call ${i}: get_buffer_status size = body_size`);
    t.equal(f, e, `call ${i}: flags = end_of_stream`);
    t.equal(e, i === calls.length - 1 ? 1 : 0, `call ${i}: end_of_stream only on the last call`);
    t.ok(p! >= prev, `call ${i}: the buffered size never shrinks`);
    prev = p!;
  }
  t.equal(prev, 11, 'the last call sees the whole body');

  // A large body, buffered in the guest and rewritten.
  const big = 'hello' + 'x'.repeat(99_995);
  const c = await send(proxy.port, '/big', { method: 'POST', headers: { 'content-length': String(big.length) }, chunks: [big] });
  t.equal(c.status, 200);
  checkLength(c, 'large request');
  const [echoC] = JSON.parse(c.body) as [Echo];
  t.equal(echoC.bodyBytes, 100_002, '100000 + 2 (prepend) + 2 (append) - 3 (replace) + 1 (append)');
  t.ok(echoC.body.startsWith('<<hixxx'), 'the body starts with the rewritten prefix');

  // No request body: the response is still rewritten.
  const d = await send(proxy.port, '/get');
  t.equal(d.status, 200);
  checkLength(d, 'GET');
  t.equal((JSON.parse(d.body) as [Echo])[0].method, 'GET');
  t.equal(rec.u32('hdr-eos'), 1);
});
