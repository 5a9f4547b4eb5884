// Loading validates modules before any instance exists: the ABI marker, the
// allocator, and every import, with errors that name what is wrong.
import t from 'tap';
import { compileModule } from '../../host/src/index.js';
import { AdapterHarness } from '../../host/testing/index.js';
import { compileGuest } from '../fixtures/guests/index.js';

t.test('random bytes and truncated modules are WASM_MALFORMED', async (t) => {
  t.throws(() => compileModule(new Uint8Array([1, 2, 3, 4, 5]), 'junk.wasm'), { code: 'WASM_MALFORMED', message: /junk\.wasm is not a valid WebAssembly module/ });
  const good = await compileGuest('spec-filter');
  t.throws(() => compileModule(good.slice(0, good.length >> 1), 'half.wasm'), { code: 'WASM_MALFORMED' });
});

t.test('a module without the ABI marker is refused', async (t) => {
  const wasm = await compileGuest('no-abi-marker');
  t.throws(() => compileModule(wasm, 'm.wasm'), { code: 'WASM_ABI_MISSING', message: /exports no proxy_abi_version_\* marker/ });
});

t.test('ABI 0.1.0 loads; an unknown ABI version is refused with a clear error', async (t) => {
  const wasm = await compileGuest('abi-v010');
  t.equal(compileModule(wasm, 'old.wasm').abiVersion, '0.1.0');
  const future = Buffer.from(wasm);
  future.write('proxy_abi_version_9_9_9', future.indexOf('proxy_abi_version_0_1_0'), 'latin1');
  t.throws(() => compileModule(new Uint8Array(future), 'future.wasm'), { code: 'WASM_ABI_UNSUPPORTED', message: /proxy_abi_version_9_9_9/ });
});

t.test('imports outside the ABI are named at load time', async (t) => {
  const wasm = await compileGuest('unknown-import');
  const err = t.throws(() => compileModule(wasm, 'u.wasm')) as Error & { code: string };
  t.equal(err.code, 'WASM_IMPORT_UNKNOWN');
  t.match(err.message, /env\.proxy_does_not_exist/);
  t.match(err.message, /env\.fetch/);
});

t.test('a pinned sha256 that does not match is refused', async (t) => {
  t.throws(() => compileModule(new Uint8Array(0), 'x.wasm', '0'.repeat(64)), { code: 'WASM_SHA256_MISMATCH' });
});

t.test('gRPC call-outs link; a call to an upstream the plugin may not call is PARSE_FAILURE (spec)', async (t) => {
  const wasm = await compileGuest('unimplemented-import');
  const m = compileModule(wasm, 'grpc.wasm');
  t.same(m.unimplementedImports, [], 'proxy_grpc_call is implemented (test/portability/grpc-callout.test.ts)');
  const h = await AdapterHarness.create([{ wasm, name: 'grpc' }]);
  t.teardown(() => h.close());
  t.notOk(h.logs.some((r) => r.code === 'ABI_UNIMPLEMENTED'), 'no warning at load');
  const r = await h.run({ path: '/' });
  t.equal(r.upstream?.headers['x-grpc-status'], '4', 'the call to an ungranted upstream returned PARSE_FAILURE');
});

t.test('an allocator that returns bad pointers gets INVALID_MEMORY_ACCESS, nothing is written out of bounds', async (t) => {
  const h = await AdapterHarness.create([{ wasm: await compileGuest('bad-malloc'), name: 'bm' }]);
  t.teardown(() => h.close());
  const r = await h.run({ path: '/abc' });
  t.equal(r.upstream?.headers['x-bad-malloc'], '6,6,6,0');
  t.equal(r.upstream?.headers['x-bad-malloc-path'], '/abc');
  t.equal(r.upstream?.headers['x-bad-malloc-canary'], 'intact');
});
