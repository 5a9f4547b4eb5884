// A filter written from the Proxy-Wasm spec's conventions (WAT, no SDK of ours:
// proxy_on_memory_allocate only, _initialize, WASI fd_write logging) loads and runs
// in the host unmodified, both in-process and through the real proxy.
import t from 'tap';
import { AdapterHarness } from '../../host/testing/index.js';
import { compileGuest } from '../fixtures/guests/index.js';

t.test('spec-conventions filter runs through the harness', async (t) => {
  const wasm = await compileGuest('spec-filter');
  const h = await AdapterHarness.create([{ wasm, name: 'spec', config: 'ok' }]);
  t.teardown(() => h.close());

  const allowed = await h.run({ path: '/hello' }, { status: 200, body: 'hi' });
  t.equal(allowed.status, 200);
  t.equal(allowed.upstream?.headers['x-spec-filter'], 'seen', 'request header added by the filter reaches the upstream');
  t.equal(allowed.headers['x-spec-response'], '1', 'response header replaced by the filter');

  const denied = await h.run({ path: '/deny/me' });
  t.equal(denied.status, 403);
  t.equal(denied.body, 'denied by spec-filter');
  t.equal(denied.headers['x-spec'], '1');
  t.equal(denied.upstream, null, 'a denied request never reaches the upstream');

  t.equal(h.metric('spec_filter_requests_total'), 2, 'on_log ran for the allowed and the denied request');
  t.ok(h.logs.some((r) => r.source === 'spec' && r.level === 'info' && /spec-filter log ctx=/.test(r.message)), 'WASI fd_write(1) lands in the log at info');
});

t.test('a configure failure is refused with the adapter name', async (t) => {
  const wasm = await compileGuest('spec-filter');
  await t.rejects(AdapterHarness.create([{ wasm, name: 'spec', config: 'fail' }]), { code: 'PLUGIN_CONFIGURE_FAILED', message: /adapter spec refused its configuration/ });
});
