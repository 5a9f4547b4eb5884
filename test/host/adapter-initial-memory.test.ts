// Adapters are built to start with INITIAL_MEMORY_PAGES (1 MiB) of linear memory, or their cap if
// lower (host/src/build/build-adapter.ts): with the 2 pages asc gives them, AssemblyScript's
// collector started a cycle inside every adapter's configure, and the four benchmark adapters
// ran, and V8 compiled, its functions at each start.
import { cp, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import t from 'tap';
import { buildAdapter, INITIAL_MEMORY_PAGES } from '../../host/src/build/build-adapter.js';
import { compileModule } from '../../host/src/vm/module.js';

const initialPages = (bytes: Uint8Array): number | undefined => compileModule(bytes, 'm.wasm', undefined, {}, { cache: null }).memoryPages?.initial;

t.test('the adapters built here start with 1 MiB of linear memory', async (t) => {
  t.equal(INITIAL_MEMORY_PAGES, 16);
  for (const name of ['auth', 'quota', 'logging', 'prometheus', 'header-check']) {
    t.equal(initialPages(await readFile(`wasm/${name}.wasm`)), INITIAL_MEMORY_PAGES, `${name} (npm run build)`);
  }
});

t.test('an adapter capped below 1 MiB starts at its cap; adapter.json "initialMemoryPages" sets another start', async (t) => {
  await mkdir('node_modules/.cache', { recursive: true });
  const dir = await mkdtemp(resolve('node_modules/.cache/wm-initial-memory-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const src = join(dir, 'small');
  await cp('adapters/header-check', src, { recursive: true });
  await writeFile(join(src, 'adapter.json'), JSON.stringify({ name: 'small', maxMemoryPages: 8 }));
  const r = await buildAdapter(src, { outDir: join(dir, 'out') });
  t.equal(initialPages(await readFile(r.wasmPath)), 8);
  await writeFile(join(src, 'adapter.json'), JSON.stringify({ name: 'small', initialMemoryPages: 3 }));
  t.equal(initialPages(await readFile((await buildAdapter(src, { outDir: join(dir, 'out') })).wasmPath)), 3, 'initialMemoryPages: 3');
  await writeFile(join(src, 'adapter.json'), JSON.stringify({ name: 'small', maxMemoryPages: 8, initialMemoryPages: 9 }));
  await t.rejects(buildAdapter(src, { outDir: join(dir, 'out') }), { code: 'BUILD_FAILED', message: /"initialMemoryPages" must be an integer from 1 to 8/ });
});
