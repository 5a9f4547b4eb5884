// Reload without dropping requests, through the real proxy: new VMs are built
// and configured first, swapped in atomically, in-flight requests finish on the
// old ones; a bad module, config or configure is rejected and the old keeps
// serving. Module sources by URL pinned by sha256, with a disk cache.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startProxy, validateConfig } from '../../host/src/index.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { captureLogs, fixture, metric, request, sleep, upstreamHeaders } from './helpers.js';
import { echoUpstream } from './helpers.js';

const yaml = (upstreamPort: number, plugin: string, extra = '') => `
listen: { port: 0 }
admin: { port: 0 }
routes: [{ name: r, upstream: "http://127.0.0.1:${upstreamPort}" }]
plugins:
  - name: p
    url: p.wasm
${plugin}
${extra}`;

t.test('reload swaps adapters without dropping a request, and refuses bad modules, configs and configures', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-reload-'));
  const up = await echoUpstream();
  await writeFile(join(dir, 'p.wasm'), await fixture('crashy'));
  const cfgFile = join(dir, 'mixer.yaml');
  await writeFile(cfgFile, yaml(up.port, ''));
  const { logger, records } = captureLogs();
  const { loadConfigFile } = await import('../../host/src/index.js');
  const { config, baseDir } = await loadConfigFile(cfgFile);
  const proxy = await startProxy(config, { baseDir, configFile: cfgFile, logger });
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const reload = (headers: Record<string, string> = {}) => request(proxy.adminPort!, '/reload', { method: 'POST', headers });

  // Requests in flight on the crashy VM while the module is replaced by spec-filter.
  const inFlight = Array.from({ length: 5 }, (_, i) => request(port(), `/slow/${i}`));
  await sleep(80);
  await writeFile(join(dir, 'p.wasm'), await compileGuest('spec-filter'));
  const r1 = await reload();
  t.equal(r1.status, 200);
  t.match(JSON.parse(r1.body), { ok: true, loaded: ['p'], kept: [], removed: [] });
  const old = await Promise.all(inFlight);
  t.same(old.map((r) => r.status), [200, 200, 200, 200, 200], 'requests in flight during the reload complete');
  t.ok(old.every((r) => r.headers['x-crashy-seen'] !== undefined), 'on the old VM (its response callback ran)');
  const fresh = await request(port(), '/after');
  t.equal(upstreamHeaders(fresh)['x-spec-filter'], 'seen', 'new requests run on the new VM');
  t.equal(fresh.headers['x-crashy-seen'], undefined);

  // An unchanged reload keeps the running VM (and its state).
  t.match(JSON.parse((await reload()).body), { ok: true, loaded: [], kept: ['p'] });

  // A broken module is refused; the old VM keeps serving.
  await writeFile(join(dir, 'p.wasm'), Buffer.from('this is not wasm at all'));
  const bad = await reload();
  t.equal(bad.status, 422);
  const badBody = JSON.parse(bad.body) as { error: string; cause: string; message: string };
  t.equal(badBody.error, 'RELOAD_FAILED');
  t.equal(badBody.cause, 'WASM_MALFORMED');
  t.match(badBody.message, /plugin p: .*p\.wasm is not a valid WebAssembly module/);
  t.match(badBody.message, /the running adapters keep serving/);
  t.equal(upstreamHeaders(await request(port(), '/still'))['x-spec-filter'], 'seen', 'the last good VM keeps serving');

  // A module without the ABI marker, and one with unknown imports.
  for (const [name, code] of [['no-abi-marker', 'WASM_ABI_MISSING'], ['unknown-import', 'WASM_IMPORT_UNKNOWN']] as const) {
    await writeFile(join(dir, 'p.wasm'), await compileGuest(name));
    const r = JSON.parse((await reload()).body) as { cause: string; message: string };
    t.equal(r.cause, code, `${name} is refused with ${code}`);
    t.match(r.message, /plugin p/);
  }
  await writeFile(join(dir, 'p.wasm'), await compileGuest('spec-filter'));

  // An invalid config names the field; a configure failure names the adapter.
  await writeFile(cfgFile, yaml(up.port, '    failStrategy: MAYBE'));
  const badCfg = JSON.parse((await reload()).body) as { cause: string; message: string };
  t.equal(badCfg.cause, 'CONFIG_INVALID');
  t.match(badCfg.message, /\/plugins\/0\/failStrategy: must be one of "FAIL_CLOSE", "FAIL_OPEN"/);
  await writeFile(cfgFile, yaml(up.port, '    pluginConfig: fail'));
  const badConf = JSON.parse((await reload()).body) as { cause: string; message: string };
  t.equal(badConf.cause, 'PLUGIN_CONFIGURE_FAILED');
  t.match(badConf.message, /adapter p refused its configuration/);
  t.equal(upstreamHeaders(await request(port(), '/still'))['x-spec-filter'], 'seen', 'still served by the last good VM');

  // Browsers and rebinding hosts cannot reload; GET is not a reload.
  t.equal((await reload({ origin: 'http://evil.example' })).status, 403);
  t.equal((await reload({ host: 'evil.example' })).status, 403);
  t.equal((await request(proxy.adminPort!, '/reload')).status, 405);

  // Reloads under load: no request fails.
  await writeFile(cfgFile, yaml(up.port, ''));
  let stop = false;
  const statuses: number[] = [];
  const load = (async () => {
    const t0 = Date.now();
    while (!stop && Date.now() - t0 < 10_000) {
      const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => request(port(), `/load/${i}`)));
      for (const r of rs) statuses.push(r.status);
    }
  })();
  for (let i = 0; i < 4; i++) {
    await writeFile(join(dir, 'p.wasm'), i % 2 === 0 ? await fixture('crashy') : await compileGuest('spec-filter'));
    t.equal((await reload()).status, 200, `reload ${i} under load`);
    await sleep(60);
  }
  stop = true;
  await load;
  t.ok(statuses.length > 50, `${statuses.length} requests during the reloads`);
  t.same([...new Set(statuses)], [200], 'every request under reload succeeded');
  const m = (await request(proxy.adminPort!, '/metrics')).body;
  t.equal(metric(m, 'wasm_mixer_reloads_total', { result: 'failed' }), 5);
  t.ok((metric(m, 'wasm_mixer_reloads_total', { result: 'ok' }) ?? 0) >= 6);
  t.ok(records.some((r) => r.code === 'RELOADED'));

  function port() {
    return proxy.port;
  }
});

t.test('file watch reloads when the module changes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-watch-'));
  const up = await echoUpstream();
  await writeFile(join(dir, 'p.wasm'), await compileGuest('trap'));
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }], plugins: [{ name: 'p', url: 'p.wasm' }], reload: { watch: true, debounceMs: 50 } },
    { baseDir: dir, logger: captureLogs().logger },
  );
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  t.equal(upstreamHeaders(await request(proxy.port, '/x'))['x-trap-count'], '1');
  await writeFile(join(dir, 'p.wasm'), await compileGuest('spec-filter'));
  let seen: string | undefined;
  for (let i = 0; i < 40 && seen === undefined; i++) {
    await sleep(100);
    seen = upstreamHeaders(await request(proxy.port, '/x'))['x-spec-filter'];
  }
  t.equal(seen, 'seen', 'the new module serves after the file changed');
});

t.test('modules by URL: pinned by sha256, fetched once, then served from the disk cache', async (t) => {
  const bytes = await compileGuest('spec-filter');
  const sha = createHash('sha256').update(bytes).digest('hex');
  let hits = 0;
  const srv = http.createServer((req, res) => {
    hits++;
    if (req.url?.startsWith('/m.wasm')) res.writeHead(200, { 'content-type': 'application/wasm' }).end(bytes);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const cache = await mkdtemp(join(tmpdir(), 'wm-cache-'));
  const up = await echoUpstream();
  t.teardown(() => up.close());
  const cfg = (url: string, pin?: string) => ({
    listen: { port: 0 },
    routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }],
    plugins: [{ name: 'remote', url, ...(pin ? { sha256: pin } : {}) }],
    moduleCache: { dir: cache, fetchTimeoutMs: 2000 },
  });
  const opts = () => ({ logger: captureLogs().logger });

  const p1 = await startProxy(cfg(`${base}/m.wasm?token=abc`, sha), opts());
  t.equal(upstreamHeaders(await request(p1.port, '/'))['x-spec-filter'], 'seen');
  await p1.close();
  t.equal(hits, 1);
  t.same(await readdir(cache), [`${sha}.wasm`], 'cached under its sha256');
  srv.closeAllConnections();
  await new Promise<void>((r) => srv.close(() => r()));

  const p2 = await startProxy(cfg(`${base}/m.wasm?token=abc`, sha), opts());
  t.equal(upstreamHeaders(await request(p2.port, '/'))['x-spec-filter'], 'seen', 'loads from the cache with the server gone');
  t.equal(p2.host.describe()[0]!.file, `${base}/m.wasm?…`, 'the token in the URL is not shown');
  await p2.close();

  const wrong = 'ab'.repeat(32);
  await t.rejects(startProxy(cfg(`${base}/m.wasm`, wrong), opts()), { code: 'WASM_FETCH_FAILED', message: /plugin remote: cannot fetch http:\/\/127\.0\.0\.1:\d+\/m\.wasm/ }, 'not cached and the server is gone');
  t.throws(() => validateConfig(cfg(`${base}/m.wasm`)), { code: 'CONFIG_INVALID', message: /\/plugins\/0: missing required field "sha256"/ }, 'a remote URL must be pinned');
});

t.test('a remote module whose bytes do not match the pin is refused and not cached', async (t) => {
  const bytes = await compileGuest('trap');
  const srv = http.createServer((_req, res) => res.writeHead(200).end(bytes));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))));
  const cache = await mkdtemp(join(tmpdir(), 'wm-cache-'));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/m.wasm`;
  await t.rejects(
    startProxy({ listen: { port: 0 }, plugins: [{ name: 'remote', url, sha256: 'cd'.repeat(32) }], moduleCache: { dir: cache } }, { logger: captureLogs().logger }),
    { code: 'WASM_SHA256_MISMATCH', message: /plugin remote: .*downloaded module has sha256 [0-9a-f]{64}, config pins cdcd/ },
  );
  t.same(await readdir(cache).catch(() => []), []);
});
