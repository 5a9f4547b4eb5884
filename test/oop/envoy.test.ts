// The adapter server speaks Envoy's own out-of-process APIs: a grpc-js client
// built from the Envoy protos gets correct answers from
// envoy.service.auth.v3.Authorization/Check (ext_authz) and
// envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit, and a client that
// encodes the request by hand from the published field numbers gets the same.
// Also: grpc.health.v1 Check and Watch, through a graceful shutdown.

import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import t from 'tap';
import type { MixerConfig } from '../../host/src/config/schema.js';
import { call, creds, envoyPackage, protoFields as fields, rawCall } from './envoy-wire.js';
import { capture, fixtureDir, startServer, withAdapters } from './helpers.js';

const dir = await fixtureDir();
await withAdapters(dir, ['header-check', 'quota']);

const config: MixerConfig = {
  plugins: [
    { name: 'hc', url: 'header-check.wasm', phase: 'AUTHZ', pluginConfig: { header: 'x-user' } },
    { name: 'spec', url: 'spec.wasm', pluginConfig: 'ok' },
    {
      name: 'rl',
      url: 'quota.wasm',
      pluginConfig: { headers: 'x-ratelimit', limits: [{ name: 'per_key', limit: 3, window: '1h', dimensions: { key: 'header:x-api-key' } }] },
    },
  ],
  remote: { server: { extAuthz: { plugins: ['hc', 'spec'] }, rateLimit: { plugins: ['rl'] } } },
};
const log = capture();
const server = await startServer(config, { baseDir: dir, logger: log.logger });
let closed = false;
t.teardown(async () => {
  if (!closed) await server.close();
});

// Clients generated from the Envoy protos (the files in proto/, written from the published ones).
const pkg = envoyPackage(['envoy/service/auth/v3/external_auth.proto', 'envoy/service/ratelimit/v3/rls.proto', 'grpc/health/v1/health.proto']);
const authz = new pkg.envoy.service.auth.v3.Authorization(server.address, creds);
const rls = new pkg.envoy.service.ratelimit.v3.RateLimitService(server.address, creds);
const health = new pkg.grpc.health.v1.Health(server.address, creds);
t.teardown(() => {
  authz.close();
  rls.close();
  health.close();
});


const checkRequest = (path: string, headers: Record<string, string>) => ({
  attributes: {
    source: { address: { socket_address: { address: '10.1.2.3', port_value: 41000 } } },
    destination: { address: { socket_address: { address: '10.0.0.1', port_value: 8080 } } },
    request: {
      time: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
      http: { id: 'req-1', method: 'GET', path, host: 'api.example.com', scheme: 'https', protocol: 'HTTP/1.1', headers: { ':authority': 'api.example.com', ...headers } },
    },
  },
});

t.test('ext_authz: allow with header changes, deny with status, headers and body', async (t) => {
  const ok = await call<any>(authz, 'Check', checkRequest('/orders', { 'x-user': 'ann', 'x-request-id': 'req-1' }));
  t.equal(ok.status.code, 0, 'status OK allows');
  t.equal(ok.http_response, 'ok_response');
  const set = Object.fromEntries(ok.ok_response.headers.map((h: any) => [h.header.key, { value: h.header.value, append: h.append?.value ?? false }]));
  t.equal(set['x-header-check']?.value, 'ok', 'header-check set a header upstream');
  t.same(set['x-spec-filter'], { value: 'seen', append: true }, 'spec-filter added one (append)');
  t.same(
    ok.ok_response.response_headers_to_add.map((h: any) => [h.header.key, h.header.value]),
    [['x-spec-response', '1']],
    'response headers from the response phase',
  );

  const spoofed = await call<any>(authz, 'Check', checkRequest('/orders', { 'x-user': 'ann', 'x-header-check': 'forged' }));
  t.same(
    spoofed.ok_response.headers.filter((h: any) => h.header.key === 'x-header-check').map((h: any) => [h.header.value, h.append?.value ?? false]),
    [['ok', false]],
    'a header the client sent and the adapter replaced is overwritten (append: false), not appended',
  );

  const denied = await call<any>(authz, 'Check', checkRequest('/orders', {}));
  t.equal(denied.status.code, 7, 'PERMISSION_DENIED');
  t.equal(denied.http_response, 'denied_response');
  t.equal(denied.denied_response.status.code, 'Forbidden', '403 for the client');
  t.same(JSON.parse(denied.denied_response.body), { error: 'missing header x-user' });
  t.ok(denied.denied_response.headers.some((h: any) => h.header.key === 'content-type' && h.header.value === 'application/json'));
  t.match(denied.status.message, /hc: header_check_missing/);

  const spec = await call<any>(authz, 'Check', checkRequest('/deny/x', { 'x-user': 'ann' }));
  t.equal(spec.denied_response.status.code, 'Forbidden');
  t.equal(spec.denied_response.body, 'denied by spec-filter');
  // As in process (and in Envoy), the denying adapter's response callbacks ran on its own reply.
  t.same(spec.denied_response.headers.map((h: any) => [h.header.key, h.header.value]), [['x-spec', '1'], ['x-spec-response', '1']]);
});

t.test('ext_authz, encoded by hand from the published field numbers', async (t) => {
  // CheckRequest{attributes=1: AttributeContext{request=4: Request{http=2: HttpRequest{method=2, headers=3 (map), path=4, host=5}}}}
  const w = protobuf.Writer.create();
  const http = protobuf.Writer.create();
  http.uint32((2 << 3) | 2).string('GET');
  http.uint32((3 << 3) | 2).fork().uint32((1 << 3) | 2).string('x-user').uint32((2 << 3) | 2).string('bob').ldelim();
  http.uint32((4 << 3) | 2).string('/raw');
  http.uint32((5 << 3) | 2).string('raw.example.com');
  const request = protobuf.Writer.create();
  request.uint32((2 << 3) | 2).bytes(http.finish());
  const attrs = protobuf.Writer.create();
  attrs.uint32((4 << 3) | 2).bytes(request.finish());
  w.uint32((1 << 3) | 2).bytes(attrs.finish());
  const raw = (bytes: Uint8Array, to = 'Check') => rawCall(server.address, `/envoy.service.auth.v3.Authorization/${to}`, bytes);
  const res = fields(await raw(w.finish()));
  // CheckResponse{status=1: Status{code=1 (absent: 0)}, ok_response=3: OkHttpResponse{headers=2: HeaderValueOption{header=1: HeaderValue{key=1,value=2}}}}
  const status = fields(res.get(1)![0] as Uint8Array);
  t.equal(status.get(1)?.[0] ?? 0, 0, 'status.code OK');
  t.ok(res.has(3) && !res.has(2), 'ok_response (field 3), no denied_response (field 2)');
  const ok = fields(res.get(3)![0] as Uint8Array);
  const keys = (ok.get(2) ?? []).map((o) => Buffer.from(fields(fields(o as Uint8Array).get(1)![0] as Uint8Array).get(1)![0] as Uint8Array).toString());
  t.ok(keys.includes('x-header-check'), 'headers (field 2) carry the header set upstream');

  const deny = protobuf.Writer.create();
  const h2 = protobuf.Writer.create().uint32((2 << 3) | 2).string('GET').uint32((4 << 3) | 2).string('/').finish();
  deny.uint32((1 << 3) | 2).bytes(protobuf.Writer.create().uint32((4 << 3) | 2).bytes(protobuf.Writer.create().uint32((2 << 3) | 2).bytes(h2).finish()).finish());
  const d = fields(await raw(deny.finish()));
  t.equal(fields(d.get(1)![0] as Uint8Array).get(1)?.[0], 7, 'status.code PERMISSION_DENIED (7)');
  const denied = fields(d.get(2)![0] as Uint8Array);
  t.equal(fields(denied.get(1)![0] as Uint8Array).get(1)?.[0], 403, 'denied_response.status (field 1) .code (field 1) = 403');
  t.match(Buffer.from(denied.get(3)![0] as Uint8Array).toString(), /missing header x-user/, 'denied_response.body (field 3)');
});

t.test('ratelimit: OK until the limit, then OVER_LIMIT with the limit, remaining and body', async (t) => {
  const ask = (...keys: string[]) => call<any>(rls, 'ShouldRateLimit', { domain: 'api', descriptors: keys.map((k) => ({ entries: [{ key: 'x-api-key', value: k }] })) });
  for (let i = 1; i <= 3; i++) {
    const r = await ask('k1');
    t.equal(r.overall_code, 'OK', `request ${i}: OK`);
    t.equal(r.statuses[0].code, 'OK');
    t.equal(r.statuses[0].current_limit.requests_per_unit, 3, 'current_limit from X-RateLimit-Limit');
    t.equal(r.statuses[0].current_limit.unit, 'HOUR', 'unit from the policy window (w=3600)');
    t.equal(r.statuses[0].current_limit.name, 'per_key');
    t.equal(r.statuses[0].limit_remaining, 3 - i, 'limit_remaining');
  }
  const over = await ask('k1');
  t.equal(over.overall_code, 'OVER_LIMIT');
  t.equal(over.statuses[0].code, 'OVER_LIMIT');
  t.equal(over.statuses[0].limit_remaining, 0);
  t.ok(over.statuses[0].duration_until_reset.seconds > 0, 'duration_until_reset');
  t.match(Buffer.from(over.raw_body).toString(), /rate limit exceeded/, 'raw_body is the adapter\'s 429 body');
  t.ok(over.response_headers_to_add.some((h: any) => h.key === 'retry-after'), 'the 429 headers are returned');

  const mixed = await ask('k2', 'k1', 'k3');
  t.equal(mixed.overall_code, 'OVER_LIMIT', 'one descriptor over limit: the request is over limit');
  t.same(mixed.statuses.map((s: any) => s.code), ['OK', 'OVER_LIMIT', 'UNKNOWN'], 'descriptors after the denial are not evaluated');
  for (let i = 0; i < 3; i++) t.equal((await ask('k3')).overall_code, 'OK', 'k3 was not charged by the request that k1 denied');
  await t.rejects(call(rls, 'ShouldRateLimit', { domain: 'api', descriptors: [] }), { code: grpc.status.INVALID_ARGUMENT });
});

t.test('health: Check and Watch, NOT_SERVING when the server drains', async (t) => {
  t.equal((await call<any>(health, 'Check', { service: '' })).status, 'SERVING');
  t.equal((await call<any>(health, 'Check', { service: 'envoy.service.auth.v3.Authorization' })).status, 'SERVING');
  t.equal((await call<any>(health, 'Check', { service: 'wasm_mixer.v1.Mixer' })).status, 'SERVING');
  await t.rejects(call(health, 'Check', { service: 'no.such.Service' }), { code: grpc.status.NOT_FOUND });
  const seen: string[] = [];
  const watch = health.Watch({ service: '' });
  const ended = new Promise<void>((resolve) => {
    watch.on('data', (m: any) => seen.push(m.status));
    watch.on('end', () => resolve());
    watch.on('error', () => resolve());
  });
  while (seen.length === 0) await new Promise((r) => setTimeout(r, 10));
  t.same(seen, ['SERVING']);
  closed = true;
  await server.close();
  await ended;
  t.same(seen, ['SERVING', 'NOT_SERVING'], 'watchers hear NOT_SERVING before the server stops');
});
