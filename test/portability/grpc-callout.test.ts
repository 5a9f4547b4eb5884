// Issue 15 item 7: gRPC call-outs. A filter written from the spec (wat/grpc-filter.wat)
// runs in the real proxy and calls our own Envoy RLS v3 server (the adapter server of
// `wasm-mixer serve`, host/src/oop/envoy.ts) with a raw RateLimitRequest it serialised
// itself, and acts on the answer: OK lets the request through, OVER_LIMIT answers 429.
// Also: a stream (grpc.health.v1.Health/Check) with its callbacks in order, a deadline,
// an ungranted cluster, cancel.
import * as grpc from '@grpc/grpc-js';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startProxy } from '../../host/src/index.js';
import { projectAdapter, startServer } from '../oop/helpers.js';
import { capture, compileWat, echoed, request, startEcho } from './helpers.js';

const dir = await mkdtemp(join(tmpdir(), 'wm-grpc-'));
await writeFile(join(dir, 'grpc.wasm'), await compileWat('grpc-filter'));
await copyFile(await projectAdapter('quota'), join(dir, 'quota.wasm'));

// Our RLS: the quota adapter, one request per x-api-key per hour.
const rls = await startServer(
  {
    plugins: [{ name: 'rl', url: 'quota.wasm', pluginConfig: { headers: 'x-ratelimit', limits: [{ name: 'per_key', limit: 1, window: '1h', dimensions: { key: 'header:x-api-key' } }] } }],
    remote: { server: { rateLimit: { plugins: ['rl'] } } },
  },
  { baseDir: dir, logger: capture().logger },
);

// A server that takes the call and never answers (for the deadline).
const slow = new grpc.Server();
slow.register('/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit', () => {}, (b: Buffer) => b, (b: Buffer) => b, 'unary');
const slowPort = await new Promise<number>((res, rej) => slow.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));

// A server whose answer is larger than the 4 MiB a call-out may receive.
const big = new grpc.Server({ 'grpc.max_send_message_length': 8 * 1024 * 1024 });
big.register('/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit', (_call: unknown, cb: (e: null, v: Buffer) => void) => cb(null, Buffer.alloc(5 * 1024 * 1024, 1)), (b: Buffer) => b, (b: Buffer) => b, 'unary');
const bigPort = await new Promise<number>((res, rej) => big.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));

const up = await startEcho();
const log = capture();
const proxy = await startProxy(
  {
    listen: { port: 0 },
    routes: [{ name: 'default', upstream: `http://127.0.0.1:${up.port}` }],
    clusters: { rls: { url: `http://${rls.address}` }, slow: { url: `http://127.0.0.1:${slowPort}` }, big: { url: `http://127.0.0.1:${bigPort}` } },
    plugins: [{ name: 'shim', url: 'grpc.wasm', pluginConfig: 'api', clusters: ['rls', 'slow', 'big'] }],
  },
  { baseDir: dir, logger: log.logger },
);
t.teardown(async () => {
  await proxy.close();
  await up.close();
  await rls.close();
  slow.forceShutdown();
  big.forceShutdown();
  await rm(dir, { recursive: true, force: true });
});


t.test('a filter calls the Envoy RLS v3 server with proxy_grpc_call and acts on its answer', async (t) => {
  const first = await request(proxy.port, '/rls', { headers: { 'x-api-key': 'k1' } });
  t.equal(first.status, 200, 'OK: the request goes through');
  t.equal(echoed(first.body).headers['x-rls'], 'ok', 'the filter resumed the request after the answer');
  const second = await request(proxy.port, '/rls', { headers: { 'x-api-key': 'k1' } });
  t.equal(second.status, 429, 'OVER_LIMIT: the filter answers 429');
  t.equal(second.body, 'over limit');
  t.equal(second.headers['x-rls'], 'over');
  const other = await request(proxy.port, '/rls', { headers: { 'x-api-key': 'k2' } });
  t.equal(other.status, 200, 'another key has its own limit');
});

t.test('a stream gets initial metadata, the message, trailing metadata, then close, in order', async (t) => {
  const r = await request(proxy.port, '/health');
  t.equal(r.status, 200);
  const h = echoed(r.body).headers;
  t.equal(h['x-health-events'], 'imtc');
  t.equal(h['x-health-serving'], '1', 'HealthCheckResponse SERVING, passed through as bytes');
  t.equal(h['x-grpc-close'], '0', 'status OK');
});

t.test('a unary call past its deadline is closed with DEADLINE_EXCEEDED and the status message', async (t) => {
  const t0 = Date.now();
  const r = await request(proxy.port, '/slow', { headers: { 'x-api-key': 'k3' } });
  t.equal(r.status, 503);
  t.equal(r.headers['x-grpc-close'], String(grpc.status.DEADLINE_EXCEEDED));
  t.match(r.body, /deadline/i, 'proxy_get_status gives the status message');
  t.ok(Date.now() - t0 < 5000, 'the 300 ms deadline is kept');
});

t.test('only granted clusters: another name is PARSE_FAILURE (spec), logged once', async (t) => {
  const r = await request(proxy.port, '/ungranted');
  t.equal(echoed(r.body).headers['x-grpc-call-status'], '4');
  t.ok(log.logs.some((l) => l.code === 'CAPABILITY_DENIED' && /proxy_grpc_call to cluster "nope"/.test(l.message)));
});

t.test('proxy_grpc_cancel: OK, then NOT_FOUND', async (t) => {
  const r = await request(proxy.port, '/cancel');
  t.equal(echoed(r.body).headers['x-cancel'], '0,1');
});

t.test('at most 1024 call-outs open per VM: the next is INTERNAL_FAILURE; cancelled ones free their slots', async (t) => {
  for (let round = 0; round < 2; round++) {
    const r = await request(proxy.port, '/many');
    const h = echoed(r.body).headers;
    t.equal(h['x-many-ok'], '1', `round ${round}: exactly 1024 opened`);
    t.equal(h['x-many-last'], '10', `round ${round}: the 1025th is INTERNAL_FAILURE`);
  }
  const after = await request(proxy.port, '/health');
  t.equal(echoed(after.body).headers['x-grpc-close'], '0', 'call-outs work again after the cancels');
});

t.test('an answer over 4 MiB fails the call with RESOURCE_EXHAUSTED', async (t) => {
  const r = await request(proxy.port, '/big', { headers: { 'x-api-key': 'k4' } });
  t.equal(r.status, 503);
  t.equal(r.headers['x-grpc-close'], String(grpc.status.RESOURCE_EXHAUSTED));
});
