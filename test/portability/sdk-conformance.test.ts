// Conformance: filters written against other projects' AssemblyScript SDKs, from
// npm (sdk-build.ts: @solo-io/proxy-runtime 0.1.8, the newest release, and
// @gcoredev/proxy-wasm-sdk-as 1.2.3), built at test time with the AssemblyScript
// each needs, load under the default limits and behave as in Envoy through the real
// proxy: proxy-runtime's wasm start section runs under metering and it finds its
// root context by root id; gcore's WASI command entry (_start), its WASI logging and
// environment; plain-string configuration; local replies through the sender's
// response callbacks; Content-Length kept by their no-op body callbacks.
//
// What the conformance suite tried, each through the real proxy:
//   SDK                              version  AssemblyScript       ABI    toolchain            test
//   @solo-io/proxy-runtime           0.1.8    0.14.13              0.2.0  asc, from npm        this file
//   @gcoredev/proxy-wasm-sdk-as      1.2.3    0.28.20 + wasi-shim  0.2.1  asc, from npm        this file
//   @solo-io/proxy-runtime           0.1.1    0.9.4                0.1.0  asc, from npm        sdk-conformance-abi010.test.ts
//   none: C against a spec header    -        -                    0.2.1  clang 14 + wasm-ld   c-filter.test.ts
//   none: C++ over a spec header     -        -                    0.2.1  clang++ 14, libc++,  cxx-filter.test.ts
//                                                                         wasi-libc (reactor)
//   none: Rust against the ABI       -        -                    0.2.1  rustc 1.63 (Debian)  rust-filter.test.ts
//                                                                         wasm32-wasi cdylib
// All load under the default limits and behave as in Envoy. Only these two other-SDK
// projects are reachable from this machine's registries (npm, Debian):
// @kong/proxy-wasm-sdk and @nobodyiam/proxy-runtime are 404 on npm, and the Rust, Go
// and C++ SDKs need crates.io, the Go module proxy or GitHub.
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../host/src/cli/main.js';
import { buildSdkFilter, SDK_BUILDS } from './sdk-build.js';
import { assertBodyKeepsLength, echoed, echoProxy, request } from './helpers.js';

const [prBuild, gcBuild] = SDK_BUILDS as [(typeof SDK_BUILDS)[0], (typeof SDK_BUILDS)[0]];
const [pr, gc] = await Promise.all([buildSdkFilter(prBuild), buildSdkFilter(gcBuild)]);
const { proxy, log, dir } = await echoProxy(t, 'wm-sdk-', { 'proxy-runtime.wasm': pr, 'gcore.wasm': gc }, {
  admin: { port: 0 },
  plugins: [
    { name: 'pr', url: 'proxy-runtime.wasm', rootId: 'conformance', pluginConfig: 'pr-config' },
    { name: 'gc', url: 'gcore.wasm', pluginConfig: 'gc-config', vmConfig: { env: { SDK_ENV: 'from-vm-config' } } },
  ],
});

t.test(`they load under the default limits: ${[prBuild, gcBuild].map((b) => b.label).join('; ')}`, async (t) => {
  const [a, b] = proxy.host.plugins;
  t.equal(a!.module.metered, true);
  t.equal(a!.module.hasStart, true, 'proxy-runtime 0.1.8 has a wasm start section, and it ran under metering');
  t.equal(a!.module.abiVersion, '0.2.0');
  t.equal(b!.module.abiVersion, '0.2.1');
  t.ok(b!.module.exports.has('_start'), 'gcore (wasi-shim) is a WASI command: _start');
});

t.test('request and response headers, configuration as a plain string, WASI environment', async (t) => {
  const r = await request(proxy.port, '/x');
  t.equal(r.status, 200);
  const h = echoed(r.body).headers;
  t.equal(h['x-sdk-config'], 'pr-config, gc-config', 'each filter got its plain-string configuration, in chain order');
  t.equal(h['x-sdk-env'], 'from-vm-config', 'gcore reads vmConfig.env through WASI environ_get');
  t.equal(r.headers['x-sdk'], 'gcore, proxy-runtime', 'response callbacks in reverse chain order');
});

t.test('a local reply runs the sender\'s response callbacks (Envoy); later filters do not see it', async (t) => {
  const r = await request(proxy.port, '/deny');
  t.equal(r.status, 403);
  t.equal(r.body, 'denied by proxy-runtime');
  t.equal(r.headers['x-sdk'], 'denied, proxy-runtime', 'its own on_response_headers added to its reply');
});

t.test('a body passes with its Content-Length (their body callbacks do not change it)', async (t) => {
  await assertBodyKeepsLength(t, proxy.port, 5000);
});

t.test('metrics and WASI logging', async (t) => {
  const deadline = Date.now() + 5000;
  const text = async () => (await request(proxy.adminPort!, '/metrics')).body;
  let m = await text();
  while (!/sdk_gcore_requests_total\S* [1-9]/.test(m) && Date.now() < deadline) m = await text();
  t.match(m, /sdk_proxy_runtime_requests_total\S* [1-9]/);
  t.match(m, /sdk_gcore_requests_total\S* [1-9]/);
  t.ok(log.logs.some((l) => l.source === 'gc' && /gcore conformance log/.test(l.message)), 'gcore logs through WASI fd_write');
});

t.test('wasm-mixer check says ok for both', async (t) => {
  const out: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  try {
    t.equal(await main(['check', join(dir, 'proxy-runtime.wasm'), join(dir, 'gcore.wasm')]), 0);
  } finally {
    console.log = orig;
  }
  t.match(out.join('\n'), /proxy-runtime\.wasm: ok .*ABI 0\.2\.0/);
  t.match(out.join('\n'), /gcore\.wasm: ok .*ABI 0\.2\.1/);
});
