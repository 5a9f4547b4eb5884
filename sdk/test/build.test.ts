// buildAdapter / buildAllAdapters: outputs, naming, diagnostics, module checks.
import t from 'tap';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAdapter, buildAllAdapters, checkAdapterModule } from '../../host/src/build/build-adapter.js';

const root = await mkdtemp(join(tmpdir(), 'sdk-build-'));
t.teardown(() => rm(root, { recursive: true, force: true }));

const MINIMAL = `import { Adapter, register } from "wasm-mixer/sdk";
export * from "wasm-mixer/sdk/exports";
class A extends Adapter {}
register<A>();
`;

async function adapter(name: string, source: string, manifest?: unknown): Promise<string> {
  const dir = join(root, 'adapters', name);
  await mkdir(join(dir, 'assembly'), { recursive: true });
  await writeFile(join(dir, 'assembly', 'index.ts'), source);
  if (manifest !== undefined) await writeFile(join(dir, 'adapter.json'), JSON.stringify(manifest));
  return dir;
}

t.test('a minimal adapter builds; imports are env.proxy_* only; exports are complete', async (t) => {
  const dir = await adapter('minimal', MINIMAL);
  const out = join(root, 'out');
  const r = await buildAdapter(dir, { outDir: out });
  t.equal(r.name, 'minimal');
  t.equal(r.wasmPath, join(out, 'minimal.wasm'));
  const bytes = await readFile(r.wasmPath);
  t.equal(r.bytes, bytes.length);
  const mod = new WebAssembly.Module(bytes);
  const imports = WebAssembly.Module.imports(mod);
  t.ok(imports.length > 0);
  for (const i of imports) t.ok(i.module === 'env' && i.name.startsWith('proxy_'), `import ${i.module}.${i.name}`);
  const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
  for (const e of [
    'proxy_abi_version_0_2_1', 'malloc', 'proxy_on_memory_allocate', 'memory', '_initialize', 'proxy_on_context_create', 'proxy_on_vm_start',
    'proxy_on_configure', 'proxy_on_tick', 'proxy_on_queue_ready', 'proxy_on_foreign_function', 'proxy_on_request_headers',
    'proxy_on_response_headers', 'proxy_on_http_call_response',
    'proxy_on_grpc_receive_initial_metadata', 'proxy_on_grpc_receive', 'proxy_on_grpc_receive_trailing_metadata',
    'proxy_on_grpc_close', 'proxy_on_log', 'proxy_on_delete',
  ]) t.ok(exports.includes(e), `exports ${e}`);
  // proxy_on_done would only answer "done", which hosts assume of a module without it: one guest call less per request.
  t.notOk(exports.includes('proxy_on_done'), 'does not export proxy_on_done');
  t.notOk(exports.some((e) => e.startsWith('__')), 'no AssemblyScript runtime exports');
  // Body and trailer callbacks would make a host run every body chunk through the module.
  for (const e of ['proxy_on_request_body', 'proxy_on_response_body', 'proxy_on_request_trailers', 'proxy_on_response_trailers', 'proxy_on_downstream_data']) {
    t.notOk(exports.includes(e), `does not export ${e}, so bodies stream past the adapter`);
  }
  // top-level code runs from _initialize, not from a start section
  const instantiated = new WebAssembly.Instance(mod, { env: new Proxy({}, { get: () => () => 0 }) as WebAssembly.ModuleImports });
  t.type(instantiated.exports._initialize, 'function');
  const mem = WebAssembly.Module.exports(mod).find((e) => e.name === 'memory');
  t.ok(mem);
  t.same(checkAdapterModule(bytes), []);
});

t.test('the default output folder is wasm/ of the nearest project root', async (t) => {
  await writeFile(join(root, 'package.json'), '{"name":"my-adapters","private":true}');
  const dir = await adapter('defaults', MINIMAL);
  const r = await buildAdapter(dir);
  t.equal(r.wasmPath, join(root, 'wasm', 'defaults.wasm'));
  t.ok(existsSync(r.wasmPath));
});

t.test('adapter.json sets the name and the memory cap', async (t) => {
  const dir = await adapter('folder-name', MINIMAL, { name: 'renamed', maxMemoryPages: 32 });
  const r = await buildAdapter(dir, { outDir: join(root, 'out') });
  t.equal(r.name, 'renamed');
  t.ok(r.wasmPath.endsWith('/renamed.wasm'));
  // the declared maximum is enforced by the engine: growing past 32 pages fails
  const mod = new WebAssembly.Module(await readFile(r.wasmPath));
  const inst = new WebAssembly.Instance(mod, { env: new Proxy({}, { get: () => () => 0 }) as WebAssembly.ModuleImports });
  const memory = inst.exports.memory as WebAssembly.Memory;
  t.throws(() => memory.grow(32));
  await t.rejects(buildAdapter(await adapter('bad-manifest', MINIMAL, { maxMemoryPages: 'lots' })), { code: 'BUILD_FAILED', message: /maxMemoryPages/ });
  await t.rejects(buildAdapter(await adapter('bad-name', MINIMAL, { name: '../x' })), { code: 'BUILD_FAILED', message: /"name"/ });
});

t.test('debug builds carry a source map', async (t) => {
  const dir = await adapter('debuggable', MINIMAL);
  const r = await buildAdapter(dir, { outDir: join(root, 'dbg'), debug: true });
  t.ok(existsSync(`${r.wasmPath}.map`));
});

t.test('compile errors become BUILD_FAILED with the diagnostics', async (t) => {
  const dir = await adapter('broken', MINIMAL.replace('class A extends Adapter {}', 'class A extends Adapter { x: i32 = "no"; }'));
  await t.rejects(buildAdapter(dir, { outDir: join(root, 'out') }), {
    code: 'BUILD_FAILED',
    message: /broken: compilation failed[\s\S]*TS2322[\s\S]*assembly\/index\.ts/,
  });
  t.notOk(existsSync(join(root, 'out', 'broken.wasm')), 'nothing written');
});

t.test('modules a Proxy-Wasm host cannot load are refused', async (t) => {
  const noExports = await adapter('no-exports', MINIMAL.replace('export * from "wasm-mixer/sdk/exports";', ''));
  await t.rejects(buildAdapter(noExports, { outDir: join(root, 'out') }), { code: 'BUILD_FAILED', message: /export \* from "wasm-mixer\/sdk\/exports"/ });
  const dateNow = await adapter('date-now', MINIMAL.replace('class A extends Adapter {}', 'class A extends Adapter { t: i64 = Date.now(); }'));
  await t.rejects(buildAdapter(dateNow, { outDir: join(root, 'out') }), { code: 'BUILD_FAILED', message: /env\.Date\.now[\s\S]*use now\(\) from the SDK/ });
  await t.rejects(buildAdapter(join(root, 'nowhere')), { code: 'BUILD_FAILED', message: /assembly\/index\.ts not found/ });
});

t.test('buildAllAdapters builds every adapter folder', async (t) => {
  const r2 = await mkdtemp(join(tmpdir(), 'sdk-build-all-'));
  t.teardown(() => rm(r2, { recursive: true, force: true }));
  for (const n of ['b', 'a']) {
    await mkdir(join(r2, 'adapters', n, 'assembly'), { recursive: true });
    await writeFile(join(r2, 'adapters', n, 'assembly', 'index.ts'), MINIMAL);
  }
  await mkdir(join(r2, 'adapters', 'not-an-adapter'));
  const results = await buildAllAdapters(r2);
  t.same(results.map((r) => r.name), ['a', 'b']);
  t.ok(results.every((r) => r.wasmPath.startsWith(join(r2, 'wasm'))));
});
