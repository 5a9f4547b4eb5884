// The cache of instrumented modules (host/src/vm/instrumented-cache.ts): a restart loads
// the metered module from disk instead of rewriting it, an entry is used only when it is
// whole and filed under its own key (anything else is rewritten, never trusted), the
// directory stays within its bound, and a directory others may write is not used.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { compileModule, compileModuleAsync, instrumentOptions, type ModuleLimits } from '../../host/src/vm/module.js';
import { InstrumentedCache, INSTRUMENTED_CACHE_ENV, instrumentedCacheFor } from '../../host/src/vm/instrumented-cache.js';
import { FUEL_EXPORT, GROW_REFUSED_EXPORT, rewriteModule } from '../../host/src/vm/metering.js';
import { ScratchReader } from '../../host/src/vm/scratch-read.js';
import { compileWatText } from '../fixtures/guests/index.js';

const SPIN = await compileWatText(`(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 0))
  (func (export "spin") (loop $l (br $l))))`);
const sha = createHash('sha256').update(SPIN).digest('hex');

type T = Pick<typeof t, 'teardown' | 'ok' | 'throws'>;
const dirOf = (t: T): string => {
  const d = mkdtempSync(join(tmpdir(), 'wm-ic-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return join(d, 'cache');
};
const entries = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.wasm-instrumented'));
const entryFile = (dir: string, limits: ModuleLimits): string => join(dir, `${InstrumentedCache.key(sha, instrumentOptions(limits))}.wasm-instrumented`);

/** The spin loop stops on the budget: the module is metered. */
function stopsOnBudget(t: T, module: WebAssembly.Module): void {
  const e = new WebAssembly.Instance(module, {}).exports as Record<string, unknown>;
  const fuel = e[FUEL_EXPORT] as WebAssembly.Global;
  t.ok(fuel instanceof WebAssembly.Global, 'the fuel counter is there');
  fuel.value = 10_000;
  t.throws(() => (e.spin as () => void)(), WebAssembly.RuntimeError, 'the runaway loop traps');
  t.ok((fuel.value as number) < 0, 'on the budget');
}

t.test('the second compile of a module under the same limits is served from the cache', async (t) => {
  const cache = new InstrumentedCache({ dir: dirOf(t) });
  const first = compileModule(SPIN, 'spin.wasm', undefined, {}, { cache });
  t.equal(entries(cache.dir).length, 1, 'one entry written');
  t.equal(statSync(cache.dir).mode & 0o777, 0o700, 'in a private directory');
  stopsOnBudget(t, first.module);
  // Prove the hit: an entry that differs in a detail the rewrite would never change is what comes back.
  const key = InstrumentedCache.key(sha, instrumentOptions({}));
  const rw = cache.get(key)!;
  t.ok(rw, 'the entry reads back');
  t.same([...rw.bytes], [...rewriteModule(SPIN, instrumentOptions({})).bytes], 'holding exactly what the rewriter writes');
  cache.put(key, { ...rw, hostCallsCharged: !first.hostCallsCharged });
  const second = compileModule(SPIN, 'spin.wasm', undefined, {}, { cache });
  t.equal(second.hostCallsCharged, !first.hostCallsCharged, 'loaded from the entry, not rewritten');
  t.ok(second.exports.has('spin') && !second.exports.has(FUEL_EXPORT) && !second.exports.has(GROW_REFUSED_EXPORT), "the module's exports, without the ones the rewrite adds");
  stopsOnBudget(t, second.module);
});

t.test('a corrupted entry is detected, ignored and replaced: an unmetered module planted in it never runs', async (t) => {
  const cache = new InstrumentedCache({ dir: dirOf(t) });
  compileModule(SPIN, 'spin.wasm', undefined, {}, { cache });
  const file = entryFile(cache.dir, {});
  const good = readFileSync(file);
  // The original (unmetered) module in place of the instrumented one, header and trailer kept.
  const metaLength = good.readUInt32LE(8);
  const planted = Buffer.concat([good.subarray(0, 12 + metaLength), Buffer.from(SPIN), good.subarray(good.length - 32)]);
  writeFileSync(file, planted);
  const m = compileModule(SPIN, 'spin.wasm', undefined, {}, { cache });
  stopsOnBudget(t, m.module);
  t.same(readFileSync(file), good, 'the entry was rewritten whole');

  // One flipped bit anywhere, a truncated file, an empty file: all ignored.
  for (const [what, bytes] of [
    ['a flipped bit', Buffer.from(good).fill(good[good.length >> 1]! ^ 1, good.length >> 1, (good.length >> 1) + 1)],
    ['a truncated file', good.subarray(0, good.length - 40)],
    ['an empty file', Buffer.alloc(0)],
  ] as const) {
    writeFileSync(file, bytes);
    t.equal(cache.get(InstrumentedCache.key(sha, instrumentOptions({}))), null, `${what} is not a hit`);
    stopsOnBudget(t, compileModule(SPIN, 'spin.wasm', undefined, {}, { cache }).module);
    t.same(readFileSync(file), good, `${what} was replaced`);
  }
});

t.test('an entry is used only under its own key: other limits get their own rewrite', async (t) => {
  const cache = new InstrumentedCache({ dir: dirOf(t) });
  compileModule(SPIN, 'spin.wasm', undefined, { maxMemoryMb: 1 }, { cache });
  // The 1 MiB cap's entry copied to where the 2 MiB cap's entry goes.
  writeFileSync(entryFile(cache.dir, { maxMemoryMb: 2 }), readFileSync(entryFile(cache.dir, { maxMemoryMb: 1 })));
  const m = compileModule(SPIN, 'spin.wasm', undefined, { maxMemoryMb: 2 }, { cache });
  t.same(m.memoryPages, { initial: 1, maximum: 32 }, "the 2 MiB cap, not the copied entry's 1 MiB");
  t.equal(new WebAssembly.Instance(m.module, {}).exports.memory instanceof WebAssembly.Memory, true);
  t.equal(entries(cache.dir).length, 2);
  const unmetered = compileModule(SPIN, 'spin.wasm', undefined, { metering: false }, { cache });
  t.notOk(WebAssembly.Module.exports(unmetered.module).some((e) => e.name === FUEL_EXPORT), 'metering off has its own entry, without fuel');
  t.equal(entries(cache.dir).length, 3);
});

t.test('the directory stays within its bound, least recently used entries go first', async (t) => {
  const probe = new InstrumentedCache({ dir: dirOf(t) });
  compileModule(SPIN, 'spin.wasm', undefined, {}, { cache: probe });
  const size = statSync(join(probe.dir, entries(probe.dir)[0]!)).size;
  const cache = new InstrumentedCache({ dir: dirOf(t), maxBytes: Math.floor(size * 2.5) });
  for (const mb of [1, 2, 3, 4]) {
    compileModule(SPIN, 'spin.wasm', undefined, { maxMemoryMb: mb }, { cache });
    const total = entries(cache.dir).reduce((s, n) => s + statSync(join(cache.dir, n)).size, 0);
    t.ok(total <= cache.maxBytes, `after ${mb}: ${total} bytes <= ${cache.maxBytes}`);
  }
  t.same(entries(cache.dir).sort(), [entryFile(cache.dir, { maxMemoryMb: 3 }), entryFile(cache.dir, { maxMemoryMb: 4 })].map((f) => f.slice(cache.dir.length + 1)).sort(), 'the two most recent are kept');
});

t.test('a directory that group or others may write is not used', async (t) => {
  const dir = dirOf(t);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  const cache = new InstrumentedCache({ dir });
  stopsOnBudget(t, compileModule(SPIN, 'spin.wasm', undefined, {}, { cache }).module);
  t.same(entries(dir), [], 'nothing written');
  const elsewhere = new InstrumentedCache({ dir: dirOf(t) });
  compileModule(SPIN, 'spin.wasm', undefined, {}, { cache: elsewhere });
  writeFileSync(entryFile(dir, {}), readFileSync(entryFile(elsewhere.dir, {})));
  t.equal(new InstrumentedCache({ dir }).get(InstrumentedCache.key(sha, instrumentOptions({}))), null, 'a whole entry there is not read either');
});

t.test('which cache: config, then WASM_MIXER_INSTRUMENTED_CACHE (a directory, or off), then the default', async (t) => {
  const saved = process.env[INSTRUMENTED_CACHE_ENV];
  t.teardown(() => {
    if (saved === undefined) delete process.env[INSTRUMENTED_CACHE_ENV];
    else process.env[INSTRUMENTED_CACHE_ENV] = saved;
  });
  process.env[INSTRUMENTED_CACHE_ENV] = 'off';
  t.equal(instrumentedCacheFor(), null, 'off');
  t.equal(instrumentedCacheFor({ dir: '/tmp/x' })?.dir, '/tmp/x', 'a configured directory wins over the variable');
  process.env[INSTRUMENTED_CACHE_ENV] = '/tmp/wm-env-cache';
  t.equal(instrumentedCacheFor()?.dir, '/tmp/wm-env-cache');
  t.equal(instrumentedCacheFor({ enabled: false }), null, 'config enabled: false');
  t.equal(instrumentedCacheFor({ maxMb: 2 })?.maxBytes, 2 * 1024 * 1024);
  delete process.env[INSTRUMENTED_CACHE_ENV];
  t.match(instrumentedCacheFor()?.dir, /wasm-mixer[/\\]instrumented$/, 'the default');
});

t.test('errors are the same with a cache: a module the rewriter or compiler refuses is never cached', async (t) => {
  const cache = new InstrumentedCache({ dir: dirOf(t) });
  t.throws(() => compileModule(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 10, 3, 1, 1, 0xff]), 'bad.wasm', undefined, {}, { cache }), { code: 'WASM_MALFORMED' });
  const noMarker = await compileWatText('(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) (i32.const 0)))');
  t.throws(() => compileModule(noMarker, 'n.wasm', undefined, {}, { cache }), { code: 'WASM_ABI_MISSING' });
  const big = await compileWatText('(module (memory (export "memory") 40) (func (export "proxy_abi_version_0_2_1")) (func (export "malloc") (param i32) (result i32) (i32.const 0)))');
  t.throws(() => compileModule(big, 'big.wasm', undefined, { maxMemoryMb: 1 }, { cache }), { code: 'VM_MEMORY_LIMIT' });
  t.same(existsSync(cache.dir) ? readdirSync(cache.dir) : [], [], 'nothing cached');
});

t.test('compileModuleAsync (WasmHost.create) reads, checks and writes the same entries as compileModule', async (t) => {
  const cache = new InstrumentedCache({ dir: dirOf(t) });
  const first = await compileModuleAsync(SPIN, 'spin.wasm', undefined, {}, { cache });
  t.equal(entries(cache.dir).length, 1, 'a miss writes the entry');
  stopsOnBudget(t, first.module);
  const key = InstrumentedCache.key(sha, instrumentOptions({}));
  t.same(cache.get(key, new ScratchReader()), cache.get(key), 'read through a ScratchReader, the same entry');
  // A hit: the planted detail comes back (as in the sync test above).
  cache.put(key, { ...cache.get(key)!, hostCallsCharged: !first.hostCallsCharged });
  t.equal((await compileModuleAsync(SPIN, 'spin.wasm', undefined, {}, { cache })).hostCallsCharged, !first.hostCallsCharged, 'a hit is not rewritten');
  // The unmetered original planted in the entry: refused, removed, rewritten.
  const file = entryFile(cache.dir, {});
  compileModule(SPIN, 'spin.wasm', undefined, {}, { cache: null });
  const good = readFileSync(file);
  const metaLength = good.readUInt32LE(8);
  writeFileSync(file, Buffer.concat([good.subarray(0, 12 + metaLength), Buffer.from(SPIN), good.subarray(good.length - 32)]));
  t.equal(cache.get(key, new ScratchReader()), null, 'a corrupted entry is not a hit');
  t.notOk(existsSync(file), 'and is removed');
  stopsOnBudget(t, (await compileModuleAsync(SPIN, 'spin.wasm', undefined, {}, { cache })).module);
  t.ok(existsSync(file), 'then rewritten');
});

t.test('compileModuleAsync: the same errors as compileModule, nothing cached', async (t) => {
  const cache = new InstrumentedCache({ dir: dirOf(t) });
  const bad = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 10, 3, 1, 1, 0xff]);
  const noMarker = await compileWatText('(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) (i32.const 0)))');
  const big = await compileWatText('(module (memory (export "memory") 40) (func (export "proxy_abi_version_0_2_1")) (func (export "malloc") (param i32) (result i32) (i32.const 0)))');
  const cases: Array<[Uint8Array, ModuleLimits, string?]> = [
    [bad, {}],
    [bad, { metering: false, maxMemoryMb: 0 }],
    [noMarker, {}],
    [noMarker, { metering: false, maxMemoryMb: 0 }],
    [big, { maxMemoryMb: 1 }],
    [SPIN, {}, '0'.repeat(64)],
  ];
  for (const [bytes, limits, pin] of cases) {
    let sync: { code?: string; message?: string } = {};
    try {
      compileModule(bytes, 'm.wasm', pin, limits, { cache });
    } catch (err) {
      sync = err as typeof sync;
    }
    t.ok(sync.code, `compileModule refuses it (${sync.code})`);
    await t.rejects(compileModuleAsync(bytes, 'm.wasm', pin, limits, { cache }), { code: sync.code, message: sync.message }, `compileModuleAsync too, with the same message (${sync.code})`);
  }
  t.same(existsSync(cache.dir) ? readdirSync(cache.dir) : [], [], 'nothing cached');
});

t.test('compileModuleAsync with borrowed bytes (WasmHost reuses its read buffers): only read before its first await', async (t) => {
  const cache = new InstrumentedCache({ dir: dirOf(t) });
  const reader = new ScratchReader();
  const compileBorrowed = (reread?: () => Uint8Array) => {
    const borrowed = Uint8Array.from(SPIN);
    const p = compileModuleAsync(borrowed, 'spin.wasm', sha, {}, { cache, entryReader: reader, reread });
    borrowed.fill(0); // the next module read into the same buffer
    reader.read(process.execPath); // and the next entry
    return p;
  };
  const miss = await compileBorrowed();
  t.equal(miss.sha256, sha);
  t.equal(miss.bytes, SPIN.length, 'the size of the bytes it was given');
  stopsOnBudget(t, miss.module);
  const hit = await compileBorrowed();
  t.equal(hit.bytes, SPIN.length);
  t.equal(hit.hasStart, false);
  stopsOnBudget(t, hit.module);
  // A whole entry that V8 refuses (as a newer V8 might): the original is compiled to tell the
  // module's own fault from the rewriter's, so its bytes are read again.
  const key = InstrumentedCache.key(sha, instrumentOptions({}));
  cache.put(key, { ...cache.get(key)!, bytes: new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1]) });
  let reread = 0;
  await t.rejects(
    compileBorrowed(() => (reread++, SPIN)),
    { code: 'WASM_METERING_UNSUPPORTED' },
    'the rewriter is blamed, not the (overwritten) bytes: the original compiles',
  );
  t.equal(reread, 1, 'read again once');
});
