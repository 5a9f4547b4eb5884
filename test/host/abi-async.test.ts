// Asynchronous stream control through the real host, driven by a guest written from
// the Proxy-Wasm ABI v0.2.1 spec (test/fixtures/guests/abi-async.wat; its header
// lists the behaviour per path and every observation key used below): HTTP
// call-outs answered on the root context, proxy_set_effective_context back to the
// paused stream, continue / local reply / close from there, deferred proxy_done
// from a tick, a call-out and a queue, and proxy_close_stream on the real proxy.
import http from 'node:http';
import t from 'tap';
import { startDemoUpstream, startProxy } from '../../host/src/index.js';
import type { HttpCallRequest, HttpCallResult } from '../../host/testing/index.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { guestHarness, recorder } from './guest-recorder.js';
import { serialize, type Pairs } from './pairs-codec.js';



const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

const header = (req: HttpCallRequest, name: string) => req.headers.find(([k]) => k === name)?.[1];

/** Answers the guest's call-outs by :path, as an authorization service would. */
async function answer(req: HttpCallRequest): Promise<HttpCallResult> {
  const path = header(req, ':path') ?? '';
  if (path === '/call-allow') {
    return { headers: [[':status', '200'], ['x-answer', 'yes'], ['x-answer', 'second']], body: Buffer.from('allowed-body'), trailers: [['x-call-trailer', 't1']] };
  }
  if (path === '/call-deny') return { headers: [[':status', '403']], body: Buffer.from('nope'), trailers: [] };
  if (path === '/call-fail') throw new Error('connection refused');
  if (path === '/done') await sleep(50);
  return { headers: [[':status', '200']], body: new Uint8Array(0), trailers: [] };
}

async function harness(t: { teardown(fn: () => unknown): void }, vmId: string) {
  const seen: HttpCallRequest[] = [];
  const { h, rec } = await guestHarness(t, 'abi-async', vmId, { name: 'async' }, {
    clusters: ['authz'],
    httpCall: (req) => {
      seen.push(req);
      return answer(req);
    },
  });
  return { h, seen, rec };
}

t.test('call-out from a stream, answered on the root context; continue the paused request from there', async (t) => {
  const { h, seen, rec } = await harness(t, 'async-allow');
  t.equal(rec.u32('queue-reg-st'), 0, 'proxy_register_shared_queue in proxy_on_configure');
  t.same(rec.u32s('queue-resolve'), [0, 1], 'proxy_resolve_shared_queue("" = own VM) finds the same queue id');
  const r = await h.run({ path: '/call-allow', headers: { 'x-client': 'c' } });
  t.equal(r.status, 200);
  t.equal(r.upstream?.headers['x-authz'], 'ok', 'a header added through the effective context reaches the upstream');
  t.equal(r.upstream?.headers['x-client'], 'c');

  const [status, token] = rec.u32s('call-st');
  t.equal(status, 0, 'proxy_http_call OK');
  t.ok(token! > 0, 'a call id is returned');
  t.equal(seen.length, 1);
  const call = seen[0]!;
  t.equal(call.cluster, 'authz');
  t.same(call.headers, [[':method', 'POST'], [':path', '/call-allow'], [':authority', 'authz.local'], ['x-from', 'abi-async']], 'the call-out headers as serialized by the guest');
  t.equal(Buffer.from(call.body).toString(), 'ping');
  t.equal(call.timeoutMs, 2000);

  t.same(rec.u32s('cr-args'), [1, token, 3, 12, 1], 'proxy_on_http_call_response(root, call_id, num_headers, body_size, num_trailers)');
  t.same(rec.status('cr-status'), { status: 0, code: 0, message: '' }, 'proxy_get_status: a successful call');
  const headers: Pairs = [[':status', '200'], ['x-answer', 'yes'], ['x-answer', 'second']];
  t.same(rec.pairs('cr-headers'), headers, 'HTTP_CALL_RESPONSE_HEADERS (map 6), :status first');
  t.same(rec.u32s('cr-size'), [0, serialize(headers).length], 'get_header_map_size on map 6');
  t.equal(rec.ret('cr-status-hdr').text, '200');
  t.equal(rec.ret('cr-answer').text, 'yes', 'first of a repeated call-out response header');
  t.same(rec.pairs('cr-trailers'), [['x-call-trailer', 't1']], 'HTTP_CALL_RESPONSE_TRAILERS (map 7)');
  t.same(rec.u32s('cr-body-status'), [0, 12, 1], 'HTTP_CALL_RESPONSE_BODY (buffer 4): size, end of stream');
  t.same(rec.ret('cr-body'), { status: 0, text: 'allowed-body', bytes: Buffer.from('allowed-body') });
  t.same(rec.u32s('cr-action-st'), [0, 0, 0], 'set_effective_context, add header, continue_stream(HTTP_REQUEST): OK');
  t.equal(h.host.plugins[0]!.vm.liveStreams, 0, 'the stream context is gone after the request');
});

t.test('local reply from the call-out callback, with the call-out body', async (t) => {
  const { h, rec } = await harness(t, 'async-deny');
  const r = await h.run({ path: '/call-deny' });
  t.equal(r.status, 403);
  t.equal(r.body, 'nope');
  t.equal(r.headers['x-denied'], '1');
  t.equal(r.upstream, null, 'the denied request never reaches the upstream');
  t.equal(r.localReply?.details, 'adapter:async:authz_denied');
  t.same(rec.u32s('cr-action-st'), [0, 0]);
  t.same(rec.u32s('cr-args').slice(2), [1, 4, 0]);
});

t.test('a failed call-out: num_headers 0, proxy_get_status says why', async (t) => {
  const { h, rec } = await harness(t, 'async-fail');
  const r = await h.run({ path: '/call-fail' });
  t.equal(r.status, 503);
  t.equal(r.body, 'call-out failed');
  t.equal(r.headers['x-call-failed'], '1');
  t.same(rec.u32s('cr-args').slice(2), [0, 0, 0], 'num_headers 0 means the call failed');
  const st = rec.status('cr-status');
  t.equal(st.status, 0, 'proxy_get_status OK');
  t.not(st.code, 0, `a failed call has a non-zero status code (${st.code})`);
  t.ok(st.message.length > 0, `and a message (${st.message})`);
  t.notOk(rec.has('cr-headers'), 'no maps read for a failed call');
});

t.test('proxy_close_stream from the call-out callback, and from request and response headers', async (t) => {
  const { h, rec } = await harness(t, 'async-close');
  const a = await h.run({ path: '/call-close' });
  t.same(a.localReply, { status: 0, adapter: '', details: 'reset' }, 'closed from proxy_on_http_call_response');
  t.equal(a.upstream, null);
  t.same(rec.u32s('cr-action-st'), [0, 0]);

  const b = await h.run({ path: '/close-request' });
  t.equal(b.localReply?.details, 'reset', 'closed from proxy_on_request_headers');
  t.equal(b.upstream, null);
  t.equal(rec.u32('close-req-st'), 0);

  const c = await h.run({ path: '/close-response' }, { status: 200, headers: { 'x-up': 'u' } });
  t.equal(c.localReply?.details, 'reset', 'closed from proxy_on_response_headers');
  t.equal(c.upstream?.path, '/close-response', 'the request had reached the upstream');
  t.equal(rec.u32('close-resp-st'), 0);

  const d = await h.run({ path: '/fine' });
  t.equal(d.status, 200, 'the VM keeps serving');
});

t.test('pause the response, resume it from the call-out callback (continue_stream HTTP_RESPONSE)', async (t) => {
  const { h, rec } = await harness(t, 'async-resp');
  const r = await h.run({ path: '/pause-response' }, { status: 201, headers: { 'x-up': 'u' } });
  t.equal(r.status, 201);
  t.equal(r.headers['x-late-response'], '1', 'response header added through the effective context');
  t.equal(r.headers['x-up'], 'u');
  t.equal(rec.u32s('resp-call-st')[0], 0);
  t.same(rec.u32s('resp-continue-st'), [0, 0, 0]);
});

t.test('proxy_on_done returning 0: proxy_on_log only after proxy_done()', async (t) => {
  const { h, rec } = await harness(t, 'async-done');
  const vm = h.host.plugins[0]!.vm;
  const logged = (path: string) => rec.text('log-paths', '').split(';').includes(path);

  await h.run({ path: '/before' });
  t.ok(logged('/before'), 'proxy_on_done returning 1: proxy_on_log at once');

  // from proxy_on_tick
  await h.run({ path: '/done-tick' });
  t.notOk(logged('/done-tick'), 'not logged when the request ends');
  t.equal(vm.liveStreams, 1, 'the context is kept while done is pending');
  t.equal(rec.u32('tick-armed'), 0);
  t.ok(await until(() => logged('/done-tick')), 'logged after proxy_done() from proxy_on_tick');
  t.same(rec.u32s('tick-done-st'), [1, 0, 0, 1, 0], 'tick on the root; set_effective_context OK, proxy_done OK, a second proxy_done NOT_FOUND, tick period 0 OK');
  t.equal(vm.liveStreams, 0, 'the context is deleted after proxy_on_log');

  // from proxy_on_http_call_response
  await h.run({ path: '/done-call' });
  t.equal(rec.u32('done-call-call-st'), 0, 'call-out made from proxy_on_done');
  t.notOk(logged('/done-call'), 'not logged while the call-out is in flight');
  t.ok(await until(() => logged('/done-call')), 'logged after proxy_done() from the call-out callback');
  t.same(rec.u32s('done-call-st'), [0, 0]);

  // from proxy_on_queue_ready
  await h.run({ path: '/done-queue' });
  t.equal(rec.u32('done-queue-enq-st'), 0, 'enqueued from proxy_on_done');
  t.notOk(logged('/done-queue'), 'not logged before the queue is served');
  t.ok(await until(() => logged('/done-queue')), 'logged after proxy_done() from proxy_on_queue_ready');
  t.same(rec.u32s('queue-done-st'), [1, 0, 0, 0, 1], 'queue id, dequeue, set_effective_context, proxy_done, root context');
  t.equal(vm.liveStreams, 0);
  t.same(rec.text('log-paths', '').split(';').filter(Boolean), ['/before', '/done-tick', '/done-call', '/done-queue'], 'each request logged exactly once');
});

// ------------------------------------------------------------------ the real proxy

type Outcome = { status: number; body: string; headers: http.IncomingHttpHeaders } | { error: string };

function request(port: number, path: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

t.test('the real proxy: call-out to a real cluster, and proxy_close_stream resets the connection', async (t) => {
  const upstream = await startDemoUpstream(0);
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }],
      clusters: { authz: { url: `http://127.0.0.1:${upstream.port}` } },
      plugins: [{ name: 'async', url: 'abi-async.wasm', clusters: ['authz'], vmConfig: { vmId: 'async-proxy' } }],
      logLevel: 'error',
    },
    { modules: { 'abi-async.wasm': await compileGuest('abi-async') } },
  );
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const rec = recorder((k) => proxy.host.shared.forVm('async-proxy').get(k)?.value);

  const allowed = await request(proxy.port, '/call-allow');
  t.ok('status' in allowed && allowed.status === 200, 'allowed by the real call-out');
  if ('status' in allowed) t.equal((JSON.parse(allowed.body) as { headers: Record<string, string> }).headers['x-authz'], 'ok');
  const callHeaders = rec.pairs('cr-headers');
  t.equal(callHeaders[0]?.[0], ':status', 'the real transport puts :status first in map 6');
  t.equal(callHeaders.find(([k]) => k === 'content-type')?.[1], 'application/json', 'call-out response headers lower-cased');
  const body = JSON.parse(rec.ret('cr-body').text) as { method: string; url: string; body: string; headers: Record<string, string> };
  t.same([body.method, body.url, body.body, body.headers['x-from'], body.headers.host], ['POST', '/call-allow', 'ping', 'abi-async', 'authz.local'], 'the cluster received the call-out as serialized by the guest');

  for (const path of ['/close-request', '/close-response', '/call-close']) {
    const r = await request(proxy.port, path);
    t.ok('error' in r, `${path}: the client sees the connection reset (${'error' in r ? r.error : `status ${(r as { status: number }).status}`})`);
  }
  t.equal(rec.u32('close-req-st'), 0);
  t.equal(rec.u32('close-resp-st'), 0);

  const after = await request(proxy.port, '/still-serving');
  t.ok('status' in after && after.status === 200, 'the proxy keeps serving after resets');
});
