// Envoy's rate limit service (RLS v3) and ext_authz, as Envoy uses them, against the
// adapter server running the project's quota adapter: a grpc-js client built from
// Envoy's protos (proto/envoy, field numbers as in envoyproxy/data-plane-api) checks
// each answer field by field.
//   - hits_addend: the request's, and a descriptor's own (which overrides it; 0 = check only),
//     charged as weighted hits;
//   - domain: remote.server.rateLimit.domains selects the plugins, counters are kept apart per
//     domain, an unknown domain gets OK with no limit (or NOT_FOUND with unknownDomain: error);
//   - current_limit carries requests_per_unit, unit and name on OK and OVER_LIMIT statuses;
//   - OK ext_authz answers set append_action as well as the deprecated append.
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import t, { type Test } from 'tap';
import type { MixerConfig } from '../../host/src/config/schema.js';
import { call, creds, envoyPackage, protoFields as fields, rawCall } from './envoy-wire.js';
import { capture, fixtureDir, startServer, withAdapters } from './helpers.js';

const dir = await fixtureDir();
await withAdapters(dir, ['header-check', 'quota']);

const perKey = (name: string, limit: number, window: string) => ({ limits: [{ name, limit, window, dimensions: { key: 'header:x-api-key' } }] });

const pkg = envoyPackage(['envoy/service/auth/v3/external_auth.proto', 'envoy/service/ratelimit/v3/rls.proto']);

async function serve(t: Test, config: MixerConfig) {
  const server = await startServer(config, { baseDir: dir, logger: capture().logger });
  const rls = new pkg.envoy.service.ratelimit.v3.RateLimitService(server.address, creds);
  const authz = new pkg.envoy.service.auth.v3.Authorization(server.address, creds);
  t.teardown(async () => {
    rls.close();
    authz.close();
    await server.close();
  });
  return { server, rls, authz };
}


type Descriptor = { key: string; hits?: number };
const rlRequest = (domain: string, descriptors: Descriptor[], hits?: number) => ({
  domain,
  descriptors: descriptors.map((d) => ({ entries: [{ key: 'x-api-key', value: d.key }], ...(d.hits !== undefined ? { hits_addend: { value: d.hits } } : {}) })),
  ...(hits !== undefined ? { hits_addend: hits } : {}),
});

/** One DescriptorStatus, field by field, without the reset duration (checked separately). */
const status = (s: any) => ({ code: s.code, current_limit: s.current_limit, limit_remaining: s.limit_remaining });
const limit = (requests_per_unit: number, unit: string, name: string) => ({ requests_per_unit, unit, name });

t.test('hits_addend: the request\'s and each descriptor\'s are charged as weighted hits', async (t) => {
  const { rls } = await serve(t, {
    plugins: [{ name: 'rl', url: 'quota.wasm', pluginConfig: perKey('per_key', 3, '1m') }],
    remote: { server: { rateLimit: { plugins: ['rl'] } } },
  });
  const ask = (descriptors: Descriptor[], hits?: number) => call<any>(rls, 'ShouldRateLimit', rlRequest('api', descriptors, hits));
  const l = limit(3, 'MINUTE', 'per_key');

  let r = await ask([{ key: 'a' }], 2);
  t.equal(r.overall_code, 'OK');
  t.same(status(r.statuses[0]), { code: 'OK', current_limit: l, limit_remaining: 1 }, 'hits_addend 2 of 3: 1 left');
  r = await ask([{ key: 'a' }], 2);
  t.equal(r.overall_code, 'OVER_LIMIT', 'another 2 do not fit in the 1 left');
  t.same(status(r.statuses[0]), { code: 'OVER_LIMIT', current_limit: l, limit_remaining: 1 }, 'the refused hits were not charged');
  t.ok(r.statuses[0].duration_until_reset.seconds > 0 && r.statuses[0].duration_until_reset.seconds <= 60, 'duration_until_reset within the minute');
  r = await ask([{ key: 'a' }]);
  t.same(status(r.statuses[0]), { code: 'OK', current_limit: l, limit_remaining: 0 }, 'hits_addend unset counts 1');

  r = await ask([{ key: 'b' }], 10);
  t.equal(r.overall_code, 'OVER_LIMIT', 'hits_addend 10 on a fresh key with a limit of 3');
  t.same(status(r.statuses[0]), { code: 'OVER_LIMIT', current_limit: l, limit_remaining: 3 });

  r = await ask([{ key: 'c', hits: 3 }], 1);
  t.same(status(r.statuses[0]), { code: 'OK', current_limit: l, limit_remaining: 0 }, 'the descriptor\'s hits_addend (3) overrides the request\'s (1)');
  r = await ask([{ key: 'c', hits: 0 }], 5);
  t.same(status(r.statuses[0]), { code: 'OK', current_limit: l, limit_remaining: 0 }, 'a descriptor hits_addend of 0 checks without charging (envoyproxy/ratelimit)');

  r = await ask([{ key: 'd', hits: 1 }, { key: 'e' }], 3);
  t.equal(r.overall_code, 'OK');
  t.same(r.statuses.map(status), [{ code: 'OK', current_limit: l, limit_remaining: 2 }, { code: 'OK', current_limit: l, limit_remaining: 0 }], 'per descriptor: 1 (its own) and 3 (the request\'s)');
});

t.test('domain: each configured domain has its own limits and counters; unknown domains get no limit', async (t) => {
  const { rls } = await serve(t, {
    plugins: [
      { name: 'rl_api', url: 'quota.wasm', pluginConfig: perKey('api_key', 2, '1m') },
      { name: 'rl_batch', url: 'quota.wasm', pluginConfig: perKey('batch_key', 4, '1h') },
    ],
    remote: { server: { rateLimit: { domains: { api: { plugins: ['rl_api'] }, batch: { plugins: ['rl_batch'] } } } } },
  });
  const ask = (domain: string) => call<any>(rls, 'ShouldRateLimit', rlRequest(domain, [{ key: 'k' }]));
  const api = [await ask('api'), await ask('api'), await ask('api')];
  t.same(api.map((r) => status(r.statuses[0])), [
    { code: 'OK', current_limit: limit(2, 'MINUTE', 'api_key'), limit_remaining: 1 },
    { code: 'OK', current_limit: limit(2, 'MINUTE', 'api_key'), limit_remaining: 0 },
    { code: 'OVER_LIMIT', current_limit: limit(2, 'MINUTE', 'api_key'), limit_remaining: 0 },
  ], 'domain api: its own limit, exhausted');
  const batch = await ask('batch');
  t.equal(batch.overall_code, 'OK', 'the same key under domain batch is not over limit');
  t.same(status(batch.statuses[0]), { code: 'OK', current_limit: limit(4, 'HOUR', 'batch_key'), limit_remaining: 3 }, 'domain batch: its own limit and counter');
  const unknown = await ask('nope');
  t.equal(unknown.overall_code, 'OK', 'an unknown domain is OK (envoyproxy/ratelimit answers OK for a domain it has no config for)');
  t.same(unknown.statuses.map((s: any) => ({ code: s.code, current_limit: s.current_limit })), [{ code: 'OK', current_limit: null }], 'with no limit');
});

t.test('domain: unknownDomain error fails the call, so Envoy\'s failure mode decides', async (t) => {
  const { rls } = await serve(t, {
    plugins: [{ name: 'rl', url: 'quota.wasm', pluginConfig: perKey('k', 2, '1m') }],
    remote: { server: { rateLimit: { domains: { api: { plugins: ['rl'] } }, unknownDomain: 'error' } } },
  });
  t.equal((await call<any>(rls, 'ShouldRateLimit', rlRequest('api', [{ key: 'k' }]))).overall_code, 'OK');
  await t.rejects(call(rls, 'ShouldRateLimit', rlRequest('other', [{ key: 'k' }])), { code: grpc.status.NOT_FOUND, details: /rate limit domain "other" is not configured/ });
});

t.test('domain without a mapping: one set of limits serves every domain, with counters kept apart per domain', async (t) => {
  const { rls } = await serve(t, {
    plugins: [{ name: 'rl', url: 'quota.wasm', pluginConfig: perKey('per_key', 1, '1h') }],
    remote: { server: { rateLimit: { plugins: ['rl'] } } },
  });
  const ask = (domain: string) => call<any>(rls, 'ShouldRateLimit', rlRequest(domain, [{ key: 'shared-key' }]));
  t.same([(await ask('api')).overall_code, (await ask('api')).overall_code], ['OK', 'OVER_LIMIT'], 'exhausted under api');
  t.same([(await ask('other')).overall_code, (await ask('other')).overall_code], ['OK', 'OVER_LIMIT'], 'other has its own counter');
});

t.test('ext_authz OK answers set append_action as well as append', async (t) => {
  const { server, authz } = await serve(t, {
    plugins: [
      { name: 'hc', url: 'header-check.wasm', phase: 'AUTHZ', pluginConfig: { header: 'x-user' } },
      { name: 'spec', url: 'spec.wasm', pluginConfig: 'ok' },
    ],
    remote: { server: { extAuthz: { plugins: ['hc', 'spec'] } } },
  });
  const req = { attributes: { request: { http: { method: 'GET', path: '/orders', host: 'api.example.com', headers: { 'x-user': 'ann', 'x-header-check': 'forged' } } } } };
  const ok = await call<any>(authz, 'Check', req);
  t.equal(ok.status.code, 0);
  const byKey = Object.fromEntries(ok.ok_response.headers.map((h: any) => [h.header.key, { value: h.header.value, append: h.append?.value ?? null, append_action: h.append_action }]));
  t.same(byKey['x-header-check'], { value: 'ok', append: false, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }, 'a replaced header: append false and OVERWRITE_IF_EXISTS_OR_ADD');
  t.same(byKey['x-spec-filter'], { value: 'seen', append: true, append_action: 'APPEND_IF_EXISTS_OR_ADD' }, 'an added header: append true and APPEND_IF_EXISTS_OR_ADD');
  t.same(ok.ok_response.response_headers_to_add.map((h: any) => [h.header.key, h.append?.value ?? null, h.append_action]), [['x-spec-response', true, 'APPEND_IF_EXISTS_OR_ADD']], 'response_headers_to_add: the same two fields');

  // On the wire: HeaderValueOption.append_action is field 3 (varint); OVERWRITE_IF_EXISTS_OR_ADD = 2.
  // APPEND_IF_EXISTS_OR_ADD = 0 is proto3's default, so it is not on the wire (Envoy reads it as unset = 0).
  const http = protobuf.Writer.create();
  http.uint32((2 << 3) | 2).string('GET');
  for (const [k, v] of [['x-user', 'bob'], ['x-header-check', 'forged']]) http.uint32((3 << 3) | 2).fork().uint32((1 << 3) | 2).string(k!).uint32((2 << 3) | 2).string(v!).ldelim();
  http.uint32((4 << 3) | 2).string('/raw');
  const body = protobuf.Writer.create().uint32((1 << 3) | 2).bytes(protobuf.Writer.create().uint32((4 << 3) | 2).bytes(protobuf.Writer.create().uint32((2 << 3) | 2).bytes(http.finish()).finish()).finish()).finish();
  const raw = await rawCall(server.address, '/envoy.service.auth.v3.Authorization/Check', body);
  const options = (fields(fields(raw).get(3)![0] as Uint8Array).get(2) ?? []).map((o) => fields(o as Uint8Array));
  const replaced = options.find((o) => Buffer.from(fields(o.get(1)![0] as Uint8Array).get(1)![0] as Uint8Array).toString() === 'x-header-check')!;
  t.same(replaced.get(3), [2], 'append_action (field 3) = 2 on the wire');
  t.same(fields(replaced.get(2)![0] as Uint8Array).get(1) ?? [0], [0], 'append (field 2, BoolValue) = false');
});
