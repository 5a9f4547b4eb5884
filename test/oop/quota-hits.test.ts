// A quota adapter that honours envoy.ratelimit.hits_addend (hits-quota.wat, 10 units):
// the server allocates N units in one run of it, Envoy's hits_addend reaches it through
// ShouldRateLimit, and prefetch through the proxy never admits more than the limit.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import t from 'tap';
import wabtInit from 'wabt';
import { protoDir } from '../../host/src/oop/protos.js';
import { startDemoUpstream } from '../../host/src/proxy/demo-upstream.js';
import { capture, fixtureDir, request, ROOT, startRemoteProxy, startServer } from './helpers.js';

const dir = await fixtureDir();
const wabt = await wabtInit();
const mod = wabt.parseWat('hits-quota.wat', await readFile(join(ROOT, 'test/oop/fixtures/hits-quota.wat'), 'utf8'));
await writeFile(join(dir, 'hits.wasm'), mod.toBinary({}).buffer);
mod.destroy();
const upstream = await startDemoUpstream(0);
t.teardown(() => upstream.close());

t.test('ShouldRateLimit passes hits_addend to the adapter', async (t) => {
  const server = await startServer({ plugins: [{ name: 'hits', url: 'hits.wasm', remote: { prefetch: true } }] }, { baseDir: dir, logger: capture().logger });
  t.teardown(() => server.close());
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync('envoy/service/ratelimit/v3/rls.proto', { includeDirs: [protoDir()], keepCase: true, enums: String })) as any;
  const rls = new pkg.envoy.service.ratelimit.v3.RateLimitService(server.address, grpc.credentials.createInsecure());
  t.teardown(() => rls.close());
  const ask = (hits: number) =>
    new Promise<any>((resolve, reject) => rls.ShouldRateLimit({ domain: 'd', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }], hits_addend: hits }, (e: Error | null, r: any) => (e ? reject(e) : resolve(r))));
  t.equal((await ask(4)).overall_code, 'OK', '4 of 10');
  t.equal((await ask(7)).overall_code, 'OVER_LIMIT', '4 + 7 > 10');
  t.equal((await ask(6)).overall_code, 'OK', '4 + 6 = 10');
  t.equal((await ask(1)).overall_code, 'OVER_LIMIT', 'exhausted');
});

t.test('prefetch with a hits-aware adapter: whole allocations in one run, never above the limit', async (t) => {
  const base = { plugins: [{ name: 'hits', url: 'hits.wasm', remote: { prefetch: true, quotaValidDurationMs: 60_000 } }], routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }] };
  const server = await startServer(base, { baseDir: dir, logger: capture().logger });
  const proxy = await startRemoteProxy({ ...base, remote: { address: server.address, plugins: 'all', quotaPrefetch: { minPrefetch: 4 } } }, { baseDir: dir, logger: capture().logger });
  t.teardown(async () => {
    await proxy.close();
    await server.close();
  });
  let admitted = 0;
  for (let i = 0; i < 20; i++) if ((await request(proxy.port, '/')).status === 200) admitted++;
  const checks = server.host.metrics.value('wasm_mixer_server_calls_total', { service: 'mixer', method: 'Check', code: 'OK' }) ?? 0;
  t.ok(admitted <= 10, `never above the limit (${admitted} of 20 admitted)`);
  t.ok(admitted >= 8, `prefetch does not starve (${admitted} admitted)`);
  t.ok(checks < 20, `${checks} Check calls for 20 requests`);
  t.ok((proxy.host.metrics.value('wasm_mixer_remote_quota_local_grants_total') ?? 0) >= 4, 'units used locally');
});

t.test('a retried allocation (same deduplication id) is answered from memory, not charged twice', async (t) => {
  const base = { plugins: [{ name: 'hits', url: 'hits.wasm', remote: { prefetch: true } }], routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }] };
  const server = await startServer(base, { baseDir: dir, logger: capture().logger });
  const proxy = await startRemoteProxy({ ...base, remote: { address: server.address, plugins: 'all' } }, { baseDir: dir, logger: capture().logger });
  t.teardown(async () => {
    await proxy.close();
    await server.close();
  });
  const { remoteClientOf } = await import('../../host/src/oop/remote-adapter.js');
  const client = remoteClientOf(proxy.host)!;
  const allocate = () => client.check({ adapters: [], quotas: { hits: { amount: 6, best_effort: true } }, deduplication_id: 'same-id' }, 2000, 'hits');
  const first = await allocate();
  const retry = await allocate();
  t.equal(first.quotas?.hits?.granted_amount, 6);
  t.equal(retry.quotas?.hits?.granted_amount, 6, 'the same answer');
  const fresh = await client.check({ adapters: [], quotas: { hits: { amount: 6, best_effort: true } } }, 2000, 'hits');
  t.equal(fresh.quotas?.hits?.granted_amount, 4, 'only 6 of 10 were used: the retry did not charge again (best effort gives the 4 left)');
});
