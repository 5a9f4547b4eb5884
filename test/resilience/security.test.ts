// Security through the real proxy: capability grants per adapter (HTTP
// call-outs only to listed clusters, restricted ABI groups), no file system /
// network / environment except through host calls, secrets never in logs,
// /metrics, /adapters, /config or error messages, the admin port's exposure.
import t, { type Test } from 'tap';
import { startDemoUpstream, startProxy, type PluginConfig } from '../../host/src/index.js';
import { captureLogs, fixture, metric, request, upstreamHeaders, wat } from './helpers.js';

async function withSandbox(t: Test, plugin: Partial<PluginConfig>) {
  const up = await startDemoUpstream(0);
  const { logger, records } = captureLogs();
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }],
      clusters: { granted: { url: `http://127.0.0.1:${up.port}` }, other: { url: `http://127.0.0.1:${up.port}` } },
      plugins: [{ name: 'sandbox', url: 'sandbox.wasm', ...plugin }],
    },
    { modules: { 'sandbox.wasm': await fixture('sandbox') }, logger },
  );
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const res = await request(proxy.port, '/');
  return { h: upstreamHeaders(res), records, proxy, status: res.status };
}

t.test('HTTP call-outs only to granted clusters; no file system or sockets; only the plugin\'s environment', async (t) => {
  process.env.WASM_MIXER_TEST_HOST_SECRET = 'host-env-must-not-leak';
  t.teardown(() => void delete process.env.WASM_MIXER_TEST_HOST_SECRET);
  const { h, records, proxy } = await withSandbox(t, { clusters: ['granted'], vmConfig: { env: { PLUGIN_MODE: 'test' } } });
  t.equal(h['x-sandbox'], '0,2,0,0,52,52', 'call-out to "granted" OK, to "other" BAD_ARGUMENT; shared data and metrics allowed; path_open and sock_send ENOSYS');
  t.equal(h['x-sandbox-env'], '1,17', 'the module sees exactly PLUGIN_MODE=test (1 variable, 17 bytes), not the host environment');
  const denied = records.find((r) => r.code === 'CAPABILITY_DENIED');
  t.match(denied?.message, /adapter called proxy_http_call to cluster "other", which is not in its clusters grant; add it to plugins\[\]\.clusters for sandbox/);
  t.equal(metric((await request(proxy.adminPort!, '/metrics')).body, 'wasm_mixer_capability_denied_total', { adapter: 'sandbox', capability: 'http_call' }), 1);
});

t.test('no clusters listed: no call-outs at all (secure default)', async (t) => {
  const { h } = await withSandbox(t, {});
  t.equal(h['x-sandbox']!.split(',')[0], '2', 'proxy_http_call returns BAD_ARGUMENT');
});

t.test('restricted capability groups return INTERNAL_FAILURE and are logged once', async (t) => {
  const { h, records, proxy } = await withSandbox(t, { clusters: ['granted'], capabilities: ['modify_headers'] });
  t.equal(h['x-sandbox'], '0,2,10,10,52,52', 'shared_data and metrics refused with INTERNAL_FAILURE (as cpp-host does)');
  const msgs = records.filter((r) => r.code === 'CAPABILITY_DENIED').map((r) => r.message);
  t.ok(msgs.some((m) => /called proxy_set_shared_data, but capability "shared_data" is not granted; add "shared_data" to plugins\[\]\.capabilities for sandbox/.test(m)));
  t.ok(msgs.some((m) => /proxy_define_metric, but capability "metrics"/.test(m)));
  await request(proxy.port, '/again');
  t.equal(records.filter((r) => r.code === 'CAPABILITY_DENIED' && /shared_data/.test(r.message)).length, 1, 'logged once per VM, counted always');
  t.equal(metric((await request(proxy.adminPort!, '/metrics')).body, 'wasm_mixer_capability_denied_total', { adapter: 'sandbox', capability: 'shared_data' }), 2);
  const [a] = JSON.parse((await request(proxy.adminPort!, '/adapters')).body) as Array<Record<string, unknown>>;
  t.same(a!.capabilities, ['modify_headers']);
  t.same(a!.clusters, ['granted']);
});

const LEAKY = (configureOk: boolean) => `(module
  (import "env" "proxy_get_buffer_bytes" (func $buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0x100) "authorization")
  (data (i32.const 0x120) "cookie")
  (global $heap (mut i32) (i32.const 0x1000))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap)) (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $buf (i32.const 7) (i32.const 0) (i32.const -1) (i32.const 0x10) (i32.const 0x14)))
    (drop (call $log (i32.const 4) (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14))))
    (i32.const ${configureOk ? 1 : 0}))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (global.set $heap (i32.const 0x1000))
    (if (i32.eqz (call $get (i32.const 0) (i32.const 0x100) (i32.const 13) (i32.const 0x10) (i32.const 0x14)))
      (then (drop (call $log (i32.const 2) (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14))))))
    (if (i32.eqz (call $get (i32.const 0) (i32.const 0x120) (i32.const 6) (i32.const 0x10) (i32.const 0x14)))
      (then (drop (call $log (i32.const 2) (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14))))))
    (i32.const 0)))`;

const SECRETS = ['sk_live_SECRETKEY123', 'hmacSECRET456', 'envSECRET789', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJlLXNlY3JldA', 's3cr3tcookievalue', 'clusterPASS999'];

t.test('secrets never appear in logs, /metrics, /adapters, /config or error messages', async (t) => {
  const up = await startDemoUpstream(0);
  const { logger, records } = captureLogs();
  const pluginConfig = { apiKeys: [SECRETS[0]], hmacSecret: SECRETS[1], header: 'x-user' };
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }],
      clusters: { authz: { url: `http://svc:${SECRETS[5]}@127.0.0.1:1/check` } },
      plugins: [{ name: 'leaky', url: 'leaky.wasm', pluginConfig, vmConfig: { env: { API_TOKEN: SECRETS[2] } }, clusters: ['authz'] }],
    },
    { modules: { 'leaky.wasm': await wat(LEAKY(true)) }, logger },
  );
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const r = await request(proxy.port, '/', { headers: { authorization: `Bearer ${SECRETS[3]}`, cookie: `session=${SECRETS[4]}; theme=dark` } });
  t.equal(r.status, 200);
  t.ok(records.some((x) => x.source === 'leaky' && x.message.includes('[redacted]')), 'the adapter logged them, masked');
  const admin = async (p: string) => (await request(proxy.adminPort!, p)).body;
  const config = await admin('/config');
  t.match(config, /"hmacSecret": "\[redacted\]"/);
  t.match(config, /"API_TOKEN": "\[redacted\]"/);
  t.match(config, /"header": "x-user"/, 'non-secret fields are shown');
  const everything = [JSON.stringify(records), await admin('/metrics'), await admin('/adapters'), config].join('\n');
  for (const s of SECRETS) t.notOk(everything.includes(s), `${s.slice(0, 8)}… never appears`);

  const err = await startProxy(
    { listen: { port: 0 }, plugins: [{ name: 'leaky', url: 'leaky.wasm', pluginConfig }] },
    { modules: { 'leaky.wasm': await wat(LEAKY(false)) }, logger: captureLogs().logger },
  ).then(() => null, (e: Error & { code?: string }) => e);
  t.equal(err?.code, 'PLUGIN_CONFIGURE_FAILED');
  t.match(err?.message, /adapter leaky refused its configuration: .*\[redacted\]/, 'the adapter\'s error line is quoted, scrubbed');
  for (const s of SECRETS.slice(0, 2)) t.notOk(err!.message.includes(s));
});

t.test('the admin port stays on loopback unless allowRemote is set', async (t) => {
  await t.rejects(startProxy({ listen: { port: 0 }, admin: { address: '0.0.0.0', port: 0 } }, { logger: captureLogs().logger }), {
    code: 'ADMIN_FORBIDDEN',
    message: /admin\.address 0\.0\.0\.0 is not loopback; set admin\.allowRemote: true/,
  });
  const p = await startProxy({ listen: { port: 0 }, admin: { port: 0 } }, { logger: captureLogs().logger });
  t.teardown(() => p.close());
  const html = await request(p.adminPort!, '/reload', { method: 'POST', headers: { origin: 'http://attacker.example', 'content-type': 'text/plain' } });
  t.equal(html.status, 403);
  t.equal(JSON.parse(html.body).error, 'ADMIN_FORBIDDEN');
  t.equal((await request(p.adminPort!, '/reload', { method: 'POST' })).status, 200, 'curl from loopback can reload');
});
