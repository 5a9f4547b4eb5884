// Issue 15 item 6: ABI 0.1.0 modules load next to 0.2.x ones and behave as
// proxy-wasm-cpp-host runs them, through the real proxy: proxy_get_configuration,
// two-parameter header callbacks, OK-and-empty for a missing header,
// proxy_continue_request, proxy_clear_route_cache, on_done -> on_log -> on_delete.
import t from 'tap';
import { compileModule } from '../../host/src/vm/module.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { compileWat, echoed, echoProxy, request } from './helpers.js';

const { proxy, log } = await echoProxy(
  t,
  'wm-abi010-',
  { 'v010.wasm': await compileWat('abi-010'), 'fixture-v010.wasm': await compileGuest('abi-v010'), 'v021.wasm': await compileWat('parity') },
  {
    plugins: [
      { name: 'old', url: 'v010.wasm', pluginConfig: 'plain config', vmConfig: { configuration: 'vm bytes' } },
      { name: 'fixture', url: 'fixture-v010.wasm', pluginConfig: 'ok' },
      { name: 'new', url: 'v021.wasm' },
    ],
  },
);

t.test('0.1.0 and 0.2.1 modules run side by side in one chain', async (t) => {
  t.same(proxy.host.plugins.map((p) => p.module.abiVersion), ['0.1.0', '0.1.0', '0.2.1']);
  const r = await request(proxy.port, '/x');
  t.equal(r.status, 200);
  const h = echoed(r.body).headers;
  t.equal(h['x-v010-config'], 'plain config', 'proxy_get_configuration in on_configure: the plugin configuration');
  t.equal(h['x-v010-vm'], 'vm bytes', 'proxy_get_configuration in on_vm_start: the VM configuration');
  t.equal(h['x-v010-absent'], '0', 'a missing header is OK with an empty value in 0.1.0');
  t.equal(h['x-v010-route'], '0', 'proxy_clear_route_cache returns OK');
  t.equal(h['x-abi-v010'], '0', 'the fixture written for the 0.1.0 shim sees the same');
  t.equal(h['x-root-new'], '', 'the 0.2.1 module after them runs too');
  t.equal(r.headers['x-v010-response'], '1', 'two-parameter on_response_headers runs');
  t.equal(r.headers['x-abi-v010-response'], '1');
});

t.test('proxy_continue_request resumes a paused request', async (t) => {
  const r = await request(proxy.port, '/pause');
  t.equal(r.status, 200);
  t.equal(echoed(r.body).headers['x-v010-config'], 'plain config');
});

t.test('on_done, then on_log, then on_delete', async (t) => {
  const before = log.logs.length;
  await request(proxy.port, '/order');
  const deadline = Date.now() + 5000;
  const seen = () => log.logs.slice(before).filter((l) => l.source === 'old' && /^v010 /.test(l.message)).map((l) => l.message);
  while (seen().length < 3 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  t.same(seen(), ['v010 done', 'v010 log', 'v010 delete']);
});

t.test('ABI functions of the other version are refused at load, as cpp-host links them', async (t) => {
  const mixed = await compileWat('abi-010-mixed');
  t.throws(() => compileModule(mixed, 'mixed.wasm'), { code: 'WASM_IMPORT_UNKNOWN', message: /env\.proxy_continue_stream \(ABI 0\.2\.x only; the module declares 0\.1\.0\)/ });
  // An unknown marker is still refused with the versions this host speaks.
  const other = Buffer.from(await compileWat('abi-010'));
  other.write('proxy_abi_version_9_9_9', other.indexOf('proxy_abi_version_0_1_0'), 'latin1');
  t.throws(() => compileModule(new Uint8Array(other), 'future.wasm'), { code: 'WASM_ABI_UNSUPPORTED', message: /proxy_abi_version_9_9_9.*0\.2\.1, 0\.2\.0 and 0\.1\.0/ });
});
