// Conformance, ABI 0.1.0 built by another SDK: a filter written against
// @solo-io/proxy-runtime 0.1.1 (the SDK's first npm release, AssemblyScript 0.9.4;
// sdk-build.ts) loads under the default limits and behaves as in Envoy through the
// real proxy: its wasm start section runs under metering, it finds its root context
// by root id through the plugin_root_id property, reads its plain-string
// configuration with the 0.1.0 proxy_get_configuration in on_configure, runs its
// two-parameter header callbacks, and its local reply goes through its own
// on_response_headers.
import { join } from 'node:path';
import t from 'tap';
import { buildSdkFilter, SDK_BUILDS } from './sdk-build.js';
import { assertBodyKeepsLength, echoed, echoProxy, metricsUntil, request, runCheck } from './helpers.js';

const build = SDK_BUILDS.find((b) => b.filter === 'proxy-runtime-0.1.1');
if (build === undefined) throw new Error('sdk-build.ts lists no proxy-runtime-0.1.1 build');
// A cold build (npm install, then asc) on a busy 2-core machine can take a minute.
t.setTimeout(240_000);
const { proxy, log, dir } = await echoProxy(t, 'wm-sdk010-', { 'proxy-runtime-0.1.1.wasm': await buildSdkFilter(build) }, {
  admin: { port: 0 },
  plugins: [{ name: 'old', url: 'proxy-runtime-0.1.1.wasm', rootId: 'conformance-old', pluginConfig: 'old-config' }],
});

t.test(`it loads under the default limits: ${build.label}`, async (t) => {
  const m = proxy.host.plugins[0]!.module;
  t.equal(m.abiVersion, '0.1.0', 'proxy_abi_version_0_1_0 detected');
  t.equal(m.metered, true);
  t.equal(m.hasStart, true, 'AssemblyScript 0.9 emits a wasm start section; it ran under metering');
  t.ok(log.logs.some((l) => l.source === 'old' && /returning context for conformance-old/.test(l.message)), 'the SDK found its root context by plugin_root_id');
});

t.test('request and response headers, configuration through proxy_get_configuration', async (t) => {
  const r = await request(proxy.port, '/x');
  t.equal(r.status, 200);
  t.equal(echoed(r.body).headers['x-sdk-config'], 'old-config', 'the plain-string plugin configuration, read in on_configure');
  t.equal(r.headers['x-sdk'], 'proxy-runtime-0.1.1', 'two-parameter on_response_headers ran');
});

t.test('a local reply runs the sender\'s response callbacks (Envoy)', async (t) => {
  const r = await request(proxy.port, '/deny-old');
  t.equal(r.status, 403);
  t.equal(r.body, 'denied by proxy-runtime 0.1.1');
  t.equal(r.headers['x-sdk'], 'proxy-runtime-0.1.1', 'its own on_response_headers added to its reply');
});

t.test('a body passes with its Content-Length (its body callback does not change it)', async (t) => {
  await assertBodyKeepsLength(t, proxy.port, 3000);
});

t.test('its counter, incremented in on_log, is exported', async (t) => {
  const m = await metricsUntil(proxy.adminPort!, /sdk_proxy_runtime_011_requests_total\S* [1-9]/);
  t.match(m, /sdk_proxy_runtime_011_requests_total\S* [1-9]/);
});

t.test('wasm-mixer check says ok, ABI 0.1.0', async (t) => {
  const { code, out } = await runCheck([join(dir, 'proxy-runtime-0.1.1.wasm')]);
  t.equal(code, 0);
  t.match(out, /proxy-runtime-0\.1\.1\.wasm: ok .*ABI 0\.1\.0/);
});
