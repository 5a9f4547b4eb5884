// Conformance, a third toolchain kind: a filter in C (test/portability/native-filters/),
// compiled at test time by clang + wasm-ld for wasm32 against a header written from
// the spec (native-build.ts), shaped like what the C++ SDK emits: ABI 0.2.1, malloc and
// proxy_on_memory_allocate, an _initialize that runs static constructors, and a
// registration under the empty root id. It loads under the default limits and
// behaves as in Envoy through the real proxy: VM and plugin configuration through
// proxy_get_buffer_bytes, request and response headers, a local reply with its
// headers that still runs the sender's response callback, Content-Length kept,
// a counter; the same module under another root id does nothing (no
// registration: the C++ SDK's default no-op contexts); on_configure returning
// false refuses the plugin.
import { join } from 'node:path';
import t from 'tap';
import { startProxy } from '../../host/src/index.js';
import { buildNativeFilter, C_BUILD } from './native-build.js';
import { assertBodyKeepsLength, capture, echoed, echoProxy, metricsUntil, request, runCheck } from './helpers.js';

// A cold compile (no cached build) on a busy 2-core machine can take a minute.
t.setTimeout(240_000);
const { proxy, log, dir, upstreamPort } = await echoProxy(t, 'wm-c-', { 'c-filter.wasm': await buildNativeFilter(C_BUILD) }, {
  admin: { port: 0 },
  plugins: [
    { name: 'c', url: 'c-filter.wasm', pluginConfig: 'c-config', vmConfig: { configuration: 'c-vm' } },
    { name: 'c-other', url: 'c-filter.wasm', rootId: 'other', pluginConfig: 'unused' },
  ],
});
const routes = [{ name: 'default', upstream: `http://127.0.0.1:${upstreamPort}` }];

t.test(`it loads under the default limits: ${C_BUILD.label}`, async (t) => {
  const [c, other] = proxy.host.plugins;
  t.equal(c!.module.abiVersion, '0.2.1');
  t.equal(c!.module.metered, true);
  for (const e of ['malloc', 'proxy_on_memory_allocate', 'memory', '_initialize']) t.ok(c!.module.exports.has(e), `exports ${e}`);
  t.equal(other!.module.abiVersion, '0.2.1');
  t.ok(log.logs.some((l) => l.source === 'c' && l.message === 'c filter configured: c-config'), 'its static constructor registered the empty root id before on_configure');
  t.notOk(log.logs.some((l) => l.source === 'c-other' && /c filter configured/.test(l.message)), 'root id "other" has no registration');
});

t.test('configuration read, request and response headers; another root id is a no-op', async (t) => {
  const r = await request(proxy.port, '/x');
  t.equal(r.status, 200);
  const h = echoed(r.body).headers;
  t.equal(h['x-c-config'], 'c-config', 'PLUGIN_CONFIGURATION in on_configure');
  t.equal(h['x-c-vm'], 'c-vm', 'VM_CONFIGURATION in on_vm_start');
  t.equal(r.headers['x-c-filter'], 'c', 'added once: the plugin under root id "other" did nothing');
});

t.test('a local reply on a condition, with its headers, runs the sender\'s response callback (Envoy)', async (t) => {
  const r = await request(proxy.port, '/x', { headers: { 'x-c-deny': 'no entry' } });
  t.equal(r.status, 451);
  t.equal(r.body, 'denied by c filter');
  t.equal(r.headers['x-c-reason'], 'no entry', 'the serialized header pairs of proxy_send_local_response');
  t.equal(r.headers['x-c-filter'], 'c', 'its own on_response_headers added to its reply');
  t.equal(r.headers['content-length'], String(Buffer.byteLength('denied by c filter')));
});

t.test('a body passes with its Content-Length (its body callback does not change it)', async (t) => {
  await assertBodyKeepsLength(t, proxy.port, 4000);
});

t.test('its counter, incremented in on_log, is exported', async (t) => {
  const m = await metricsUntil(proxy.adminPort!, /c_filter_requests_total\S* 3\n/);
  t.match(m, /c_filter_requests_total\S* 3\n/, 'one per request so far (3), the local reply included');
});

t.test('on_configure returning false refuses the plugin, as Envoy rejects its config', async (t) => {
  await t.rejects(
    startProxy({ listen: { port: 0 }, routes, plugins: [{ name: 'bad', url: 'c-filter.wasm', pluginConfig: 'fail-configure' }] }, { baseDir: dir, logger: capture().logger }),
    { code: 'PLUGIN_CONFIGURE_FAILED' },
  );
});

t.test('wasm-mixer check says ok, ABI 0.2.1', async (t) => {
  const { code, out } = await runCheck([join(dir, 'c-filter.wasm')]);
  t.equal(code, 0);
  t.match(out, /c-filter\.wasm: ok .*ABI 0\.2\.1/);
});
