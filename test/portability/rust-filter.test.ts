// Conformance, the Rust toolchain: a filter in Rust (test/portability/native-filters/
// filter.rs), written straight against the ABI (the Rust SDK is on crates.io, out of
// reach), compiled at test time by Debian's rustc for wasm32-wasi as a cdylib
// (native-build.ts): the module shape of a Rust SDK build (proxy_on_memory_allocate
// and no malloc, Rust's allocator, std's WASI imports with random_get for HashMap,
// the root factory set in _initialize). Through the real proxy it behaves as in
// Envoy: configuration, request and response headers, a local reply with headers
// through its own response callback, Content-Length kept, and the same module under
// an unregistered root id does nothing.
import { join } from 'node:path';
import t from 'tap';
import { buildNativeFilter, RUST_BUILD } from './native-build.js';
import { assertBodyKeepsLength, echoed, echoProxy, request, runCheck } from './helpers.js';

// A cold compile (no cached build) on a busy 2-core machine can take a minute.
t.setTimeout(240_000);
const { proxy, log, dir } = await echoProxy(t, 'wm-rust-', { 'rust-filter.wasm': await buildNativeFilter(RUST_BUILD) }, {
  plugins: [
    { name: 'rust', url: 'rust-filter.wasm', pluginConfig: 'rust-config' },
    { name: 'rust-none', url: 'rust-filter.wasm', rootId: 'unregistered' },
  ],
});

t.test(`it loads under the default limits: ${RUST_BUILD.label}`, async (t) => {
  const m = proxy.host.plugins[0]!.module;
  t.equal(m.abiVersion, '0.2.1');
  t.equal(m.metered, true);
  t.ok(m.exports.has('proxy_on_memory_allocate'), 'exports proxy_on_memory_allocate');
  t.notOk(m.exports.has('malloc'), 'and no malloc: the host allocates through proxy_on_memory_allocate');
  t.ok(m.exports.has('_initialize'));
  t.ok(log.logs.some((l) => l.source === 'rust' && l.message === 'rust filter configured: rust-config'), 'on_configure read PLUGIN_CONFIGURATION and logged it');
});

t.test('configuration and headers; an unregistered root id is a no-op', async (t) => {
  const r = await request(proxy.port, '/x');
  t.equal(r.status, 200);
  t.equal(echoed(r.body).headers['x-rust-config'], 'rust-config');
  t.equal(r.headers['x-rust'], 'rust', 'added once: the plugin under root id "unregistered" did nothing');
});

t.test('a local reply with headers runs the sender\'s response callback (Envoy)', async (t) => {
  const r = await request(proxy.port, '/x', { headers: { 'x-rust-deny': 'slow down' } });
  t.equal(r.status, 429);
  t.equal(r.body, 'denied by rust filter');
  t.equal(r.headers['x-rust-reason'], 'slow down');
  t.equal(r.headers['x-rust'], 'rust');
});

t.test('a body passes with its Content-Length (its body callback does not change it)', async (t) => {
  await assertBodyKeepsLength(t, proxy.port, 7000);
});

t.test('wasm-mixer check says ok, ABI 0.2.1', async (t) => {
  const { code, out } = await runCheck([join(dir, 'rust-filter.wasm')]);
  t.equal(code, 0);
  t.match(out, /rust-filter\.wasm: ok .*ABI 0\.2\.1/);
});
