// The header-check example adapter, built from source and run in the real host
// through the in-process harness.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAdapter } from '../../../host/src/build/build-adapter.js';
import { loadAdapter } from '../../../host/testing/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const out = await mkdtemp(join(tmpdir(), 'header-check-'));
t.teardown(() => rm(out, { recursive: true, force: true }));
const built = await buildAdapter(join(here, '..'), { outDir: out });

t.test('denies a request without the header, allows and tags one with it', async (t) => {
  const h = await loadAdapter(built.wasmPath, { config: { header: 'X-User' }, logLevel: 'info' });
  t.teardown(() => h.close());

  const denied = await h.run({ path: '/a' });
  t.equal(denied.status, 403);
  t.same(JSON.parse(denied.body), { error: 'missing header x-user' });
  t.equal(denied.headers['content-type'], 'application/json');
  t.equal(denied.upstream, null);
  t.match(denied.localReply?.details, /header_check_missing$/);

  const allowed = await h.run({ path: '/b', headers: { 'x-user': 'ann' } }, { status: 204 });
  t.equal(allowed.status, 204);
  t.equal(allowed.upstream?.headers['x-header-check'], 'ok');

  t.equal(h.metric('header_check_requests_total', { result: 'denied' }), 1);
  t.equal(h.metric('header_check_requests_total', { result: 'allowed' }), 1);
  const lines = h.logsAt('info', 'header-check').map((r) => r.message);
  t.ok(lines.some((m) => /^GET \/a -> 403 in \d+us$/.test(m)), 'report() logged the denied request');
  t.ok(lines.some((m) => /^GET \/b -> 204 in \d+us$/.test(m)), 'report() logged the allowed request');
});

t.test('custom deny status', async (t) => {
  const h = await loadAdapter(built.wasmPath, { config: { header: 'x-key', deny_status: 401 } });
  t.teardown(() => h.close());
  t.equal((await h.run()).status, 401);
});

t.test('refuses a bad configuration with a clear message', async (t) => {
  await t.rejects(loadAdapter(built.wasmPath, { config: {} }), {
    code: 'PLUGIN_CONFIGURE_FAILED',
    message: /config "header": is required \(a string\)/,
  });
  await t.rejects(loadAdapter(built.wasmPath, { config: { header: 5, deny_status: 200 } }), {
    code: 'PLUGIN_CONFIGURE_FAILED',
    message: /config "header": must be a string, got number; config "deny_status": must be a 4xx or 5xx status/,
  });
  await t.rejects(loadAdapter(built.wasmPath, { config: '{"header": "x",}' }), {
    code: 'PLUGIN_CONFIGURE_FAILED',
    message: /not valid JSON: line 1, column 16: trailing comma before '}'/,
  });
});

t.test('exports only the per-request callbacks it uses', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const names = WebAssembly.Module.exports(new WebAssembly.Module(await readFile(built.wasmPath))).map((e) => e.name);
  for (const e of ['proxy_on_context_create', 'proxy_on_request_headers', 'proxy_on_log', 'proxy_on_delete']) t.ok(names.includes(e), `exports ${e}`);
  // a host skips a callback the module does not export: no guest call for these per request
  for (const e of ['proxy_on_response_headers', 'proxy_on_done']) t.notOk(names.includes(e), `does not export ${e}`);
});
