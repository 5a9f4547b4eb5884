// Reload across workers is all or nothing: a config whose new adapter fails to load in
// one worker is refused in every worker, and the old config keeps serving everywhere;
// a good one is applied in all of them. Real CLI, two workers, POST /reload.

import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startDemoUpstream } from '../../host/src/proxy/demo-upstream.js';
import { adminGet, blast, count, projectAdapter, startCli, workersOf } from './helpers.js';

t.test('a reload that fails in one worker is refused in all; a good one applies in all', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-workers-reload-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const upstream = await startDemoUpstream(0);
  t.teardown(() => upstream.close());
  const good = await readFile(await projectAdapter('header-check'));
  const sha256 = createHash('sha256').update(good).digest('hex');

  // The module server: while `split` is on, it waits until both workers have asked, then
  // answers the first with the module and the second with other bytes, so exactly one
  // worker fails (WASM_SHA256_MISMATCH) whatever their timing.
  let split = true;
  let held: http.ServerResponse[] = [];
  let fallback: NodeJS.Timeout | undefined;
  const answer = () => {
    clearTimeout(fallback);
    const [first, ...rest] = held;
    held = [];
    // Alone (the other worker found the module in the cache): that one fails.
    if (rest.length === 0) return void first?.writeHead(200).end(Buffer.concat([good, Buffer.from('tampered')]));
    first!.writeHead(200).end(good);
    for (const r of rest) r.writeHead(200).end(Buffer.concat([good, Buffer.from('tampered')]));
  };
  const server = http.createServer((req, res) => {
    if (!split) return void res.writeHead(200).end(good);
    held.push(res);
    if (held.length >= 2) answer();
    else fallback = setTimeout(answer, 5000);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  const moduleUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/header-check.wasm`;

  const base = {
    workers: 2,
    listen: { port: 0 },
    admin: { port: 0 },
    moduleCache: { dir: join(dir, 'cache') },
    routes: [{ name: 'api', upstream: `http://127.0.0.1:${upstream.port}` }],
    plugins: [] as unknown[],
  };
  const proxy = await startCli(base, dir, 'proxy');
  t.teardown(() => proxy.stop());
  t.equal(count(await blast(proxy.port, 40, 8), 200), 40, 'no adapter: everything passes');

  // The new config adds header-check (denies requests without x-user), fetched by URL.
  await writeFile(join(dir, 'proxy.json'), JSON.stringify({ ...base, plugins: [{ name: 'hc', url: moduleUrl, sha256, pluginConfig: { header: 'x-user' } }] }));
  const bad = await adminGet(proxy.adminPort, '/reload', 'POST');
  t.equal(bad.status, 422, 'reload refused');
  const err = JSON.parse(bad.body) as { ok: boolean; error: string; cause: string; message: string };
  t.equal(err.error, 'RELOAD_FAILED');
  t.equal(err.cause, 'WASM_SHA256_MISMATCH', 'the cause from the worker that failed');
  t.match(err.message, /failed in worker \d, so no worker applied it/);
  for (const w of await workersOf(proxy.adminPort)) t.same(w.adapters, [], `worker ${w.worker} kept the old config (no adapter)`);
  const during = await blast(proxy.port, 200, 16);
  t.equal(count(during, 200), 200, 'both workers still serve the old config: nothing denied');
  t.match((await adminGet(proxy.adminPort, '/metrics')).body, /wasm_mixer_reloads_total\{result="failed"\} [1-9]/);

  // The same config once the module server answers both: applied in both workers.
  split = false;
  const ok = await adminGet(proxy.adminPort, '/reload', 'POST');
  t.equal(ok.status, 200, ok.body);
  const body = JSON.parse(ok.body) as { ok: boolean; workers: number; loaded: string[] };
  t.equal(body.workers, 2);
  t.same(body.loaded, ['hc']);
  for (const w of await workersOf(proxy.adminPort)) t.same(w.adapters.map((a) => a.name), ['hc'], `worker ${w.worker} runs the new adapter`);
  const after = await blast(proxy.port, 200, 16);
  t.equal(count(after, 403), 200, 'every request, on either worker, goes through the new adapter');
  t.equal(count(await blast(proxy.port, 20, 4, () => ({ headers: { 'x-user': 'ann' } })), 200), 20);
  t.match(proxy.stderr(), /RELOAD_FAILED|rejected: it failed in worker/);
});
