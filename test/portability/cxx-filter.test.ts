// Conformance, the C++ toolchain: a filter in C++17 (test/portability/native-filters/
// filter.cc over context.cc, a small C++ layer written from the spec), compiled at
// test time by clang++ with libc++ and wasi-libc for wasm32-wasi as a WASI reactor
// (native-build.ts): the shape of a C++ SDK build (virtual context classes, factories
// registered by root id from static objects, std::unordered_map, libc malloc
// exported, printf through WASI fd_write). Two plugins share the module under two
// registered root ids, a third root id has no registration; through the real proxy
// it behaves as in Envoy: configuration, a NUL-separated property path, request and
// response headers in chain order, a local reply with headers through the sender's
// response callback only, Content-Length kept, a counter.
import { join } from 'node:path';
import t from 'tap';
import { buildNativeFilter, CXX_BUILD } from './native-build.js';
import { assertBodyKeepsLength, echoed, echoProxy, metricsUntil, request, runCheck } from './helpers.js';

// A cold compile (no cached build) on a busy 2-core machine can take a minute.
t.setTimeout(240_000);
const { proxy, log, dir } = await echoProxy(t, 'wm-cxx-', { 'cxx-filter.wasm': await buildNativeFilter(CXX_BUILD) }, {
  admin: { port: 0 },
  plugins: [
    { name: 'cxx', url: 'cxx-filter.wasm', pluginConfig: 'cxx-config' },
    { name: 'cxx-alt', url: 'cxx-filter.wasm', rootId: 'cxx-alt' },
    { name: 'cxx-none', url: 'cxx-filter.wasm', rootId: 'unregistered' },
  ],
});

t.test(`it loads under the default limits: ${CXX_BUILD.label}`, async (t) => {
  const m = proxy.host.plugins[0]!.module;
  t.equal(m.abiVersion, '0.2.1');
  t.equal(m.metered, true);
  t.equal(m.hasStart, false, 'a WASI reactor: no start section, _initialize instead');
  for (const e of ['malloc', 'proxy_on_memory_allocate', 'memory', '_initialize']) t.ok(m.exports.has(e), `exports ${e}`);
  t.ok(log.logs.some((l) => l.source === 'cxx' && /c\+\+ filter configured: cxx-config/.test(l.message)), 'printf in on_configure reached the log through WASI fd_write');
});

t.test('configuration, a property by NUL-separated path, headers in chain order; an unregistered root id is a no-op', async (t) => {
  const r = await request(proxy.port, '/x?a=1');
  t.equal(r.status, 200);
  const h = echoed(r.body).headers;
  t.equal(h['x-cxx-config'], 'cxx-config');
  t.equal(h['x-cxx-path'], '/x?a=1', 'property request\\0path');
  t.equal(r.headers['x-cxx'], 'alt, main', 'root ids "cxx-alt" and "" of one module, response callbacks in reverse chain order; "unregistered" added nothing');
});

t.test('a local reply with headers runs the sender\'s response callback only (Envoy)', async (t) => {
  const r = await request(proxy.port, '/cxx-deny');
  t.equal(r.status, 403);
  t.equal(r.body, 'denied by c++ filter');
  t.equal(r.headers['x-cxx-reason'], 'cxx-config');
  t.equal(r.headers['x-cxx'], 'main', 'the plugins after the sender never saw the request');
});

t.test('a body passes with its Content-Length (its body callback does not change it)', async (t) => {
  await assertBodyKeepsLength(t, proxy.port, 6000);
});

t.test('its counter, incremented in on_log, is exported', async (t) => {
  const m = await metricsUntil(proxy.adminPort!, /cxx_filter_requests_total\S* 3\n/);
  t.match(m, /cxx_filter_requests_total\S* 3\n/, 'one per request so far (3), the local reply included');
});

t.test('wasm-mixer check says ok, ABI 0.2.1', async (t) => {
  const { code, out } = await runCheck([join(dir, 'cxx-filter.wasm')]);
  t.equal(code, 0);
  t.match(out, /cxx-filter\.wasm: ok .*ABI 0\.2\.1/);
});
