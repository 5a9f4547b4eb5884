// The host functions' names live in one table (host/src/abi/names.ts). These
// checks fail when the import object actually built, the capability groups, the
// config schema or the SDK's declarations drift from it.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import { createImports } from '../../host/src/abi/imports.js';
import { ABI_0_1_0_ONLY, ABI_0_2_ONLY, CAPABILITIES, CAPABILITY_GROUPS, HOST_FUNCTIONS, IMPLEMENTED_IMPORTS, KNOWN_UNIMPLEMENTED_IMPORTS } from '../../host/src/abi/names.js';
import { CONFIG_SCHEMA } from '../../host/src/config/schema.js';
import { createLogger } from '../../host/src/log/logger.js';
import { MetricsRegistry } from '../../host/src/metrics/registry.js';
import { PluginVm } from '../../host/src/plugin/plugin-vm.js';
import { SharedStore } from '../../host/src/shared/shared-store.js';
import { loadModuleFile } from '../../host/src/vm/module.js';

const root = new URL('../../', import.meta.url);
const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

/** `@external("module", "name")` declarations in an SDK source file. */
async function sdkImports(file: string): Promise<Array<{ module: string; name: string }>> {
  const src = await readFile(new URL(file, root), 'utf8');
  return [...src.matchAll(/@external\(\s*"([^"]+)"\s*,\s*"([^"]+)"\s*\)/g)].map((m) => ({ module: m[1]!, name: m[2]! }));
}

/** The import object a real VM is instantiated with. */
async function builtImports(): Promise<WebAssembly.Imports> {
  const compiled = await loadModuleFile(new URL('wasm/header-check.wasm', root).pathname);
  const vm = new PluginVm(compiled, {
    name: 'names', rootId: '', vmId: 'names', pluginConfig: new Uint8Array(0), vmConfig: new Uint8Array(0), env: {},
    logLevel: LogLevel.Error, clusters: {}, logger: createLogger(LogLevel.Critical, () => {}), metrics: new MetricsRegistry(), shared: new SharedStore(),
  });
  return createImports(vm);
}

t.test('the import object has exactly the table, under env and both WASI module names', async (t) => {
  const imports = await builtImports();
  const env = HOST_FUNCTIONS.filter((f) => f.module === 'env').map((f) => f.name);
  const wasi = HOST_FUNCTIONS.filter((f) => f.module === 'wasi').map((f) => f.name);
  t.same(sorted(Object.keys(imports)), ['env', 'wasi_snapshot_preview1', 'wasi_unstable']);
  t.same(sorted(Object.keys(imports.env!)), sorted(env), 'env functions');
  t.same(sorted(Object.keys(imports.wasi_snapshot_preview1!)), sorted(wasi), 'WASI functions');
  t.equal(imports.wasi_unstable, imports.wasi_snapshot_preview1, 'one WASI object under both names');
  for (const f of HOST_FUNCTIONS) t.equal(typeof (f.module === 'env' ? imports.env : imports.wasi_snapshot_preview1)![f.name], 'function', `${f.module}.${f.name} is a function`);
});

t.test('the table has no duplicates, and its derived sets agree with it', async (t) => {
  const keys = HOST_FUNCTIONS.map((f) => `${f.module}.${f.name}`);
  t.equal(new Set(keys).size, keys.length, 'no name twice');
  t.same(sorted(ABI_0_1_0_ONLY), ['proxy_clear_route_cache', 'proxy_continue_request', 'proxy_continue_response', 'proxy_get_configuration']);
  t.same(sorted(ABI_0_2_ONLY), ['proxy_close_stream', 'proxy_continue_stream']);
  for (const f of HOST_FUNCTIONS) {
    const key = f.module === 'env' ? f.name : `wasi.${f.name}`;
    t.equal(IMPLEMENTED_IMPORTS.has(key), f.implemented, `${key} implemented: ${f.implemented}`);
    t.equal(KNOWN_UNIMPLEMENTED_IMPORTS.has(key), !f.implemented);
  }
  const granted = Object.values(CAPABILITY_GROUPS).flat();
  t.same(sorted(granted), sorted(HOST_FUNCTIONS.filter((f) => f.capability !== null).map((f) => f.name)), 'capability groups grant the table\'s functions');
  for (const fn of granted) t.ok(HOST_FUNCTIONS.some((f) => f.module === 'env' && f.name === fn), `${fn} is an env function`);
});

t.test('the config schema lists exactly the capability groups', async (t) => {
  const plugin = (CONFIG_SCHEMA.properties.plugins.items as { properties: { capabilities: { items: { enum: readonly string[] } } } }).properties;
  t.same([...plugin.capabilities.items.enum], [...CAPABILITIES]);
});

t.test('the SDK declares exactly the table\'s 0.2.x env functions (less what only Emscripten builds import)', async (t) => {
  const declared = [...(await sdkImports('sdk/assembly/abi/imports.ts')), ...(await sdkImports('sdk/assembly/abi/wasi.ts'))];
  t.ok(declared.length > 30, 'the SDK files were parsed');
  const env = declared.filter((d) => d.module === 'env').map((d) => d.name);
  const expected = HOST_FUNCTIONS.filter((f) => f.module === 'env' && f.abi !== '0.1.0' && !['emscripten_notify_memory_growth', 'pthread_equal'].includes(f.name)).map((f) => f.name);
  t.same(sorted(env), sorted(expected));
  for (const d of declared.filter((d) => d.module !== 'env')) {
    t.ok(HOST_FUNCTIONS.some((f) => f.module === 'wasi' && f.implemented && f.name === d.name), `SDK's ${d.module}.${d.name} is an implemented WASI function`);
  }
});
