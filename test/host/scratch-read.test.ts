// ScratchReader (host/src/vm/scratch-read.ts): whole files through one reused buffer, each
// read a view that the next read overwrites; and WasmHost reads every local module through one
// (two different modules still load as themselves, errors still name the file).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import t from 'tap';
import { handBack, ScratchReader, warmReader } from '../../host/src/vm/scratch-read.js';
import { loadConfigValidator } from '../../host/src/config/validator.js';
import { writeConfigValidator } from '../../host/src/build/config-validator.js';
import { WasmHost } from '../../host/src/host.js';
import { compileWatText } from '../fixtures/guests/index.js';

const dir = mkdtempSync(join(tmpdir(), 'wm-scratch-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, bytes: Uint8Array): string => {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
};
const pattern = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

t.test('whole files, of any size, through one buffer', async (t) => {
  const reader = new ScratchReader();
  for (const [n, seed] of [[0, 1], [10, 2], [256 * 1024, 3], [256 * 1024 + 1, 4], [700_000, 5], [3, 6]] as const) {
    const want = pattern(n, seed);
    t.same(reader.read(file(`f${n}`, want)), want, `${n} bytes`);
  }
  const a = reader.read(file('a', pattern(100, 7)));
  reader.read(file('b', pattern(100, 8)));
  t.same(a, pattern(100, 8), 'a read is a view of the buffer: the next read overwrites it');
  t.throws(() => reader.read(join(dir, 'missing')), { code: 'ENOENT' });
  t.throws(() => reader.read(dir), { code: 'EISDIR' });
});

t.test('WasmHost reads its modules through one buffer: each plugin still gets its own module', async (t) => {
  const mod = (n: number) =>
    compileWatText(`(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1")) (func (export "malloc") (param i32) (result i32) (i32.const 0))
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1)) (func (export "which") (result i32) (i32.const ${n}))${' (func)'.repeat(n * 50)})`);
  const small = await mod(1);
  const large = await mod(400); // larger than the first: the buffer grows between the two
  const plugins = [
    { name: 'small', url: file('small.wasm', small) },
    { name: 'large', url: file('large.wasm', large) },
    { name: 'small-again', url: 'small.wasm' },
  ];
  const host = await WasmHost.create({ plugins }, { baseDir: dir, logger: { level: 0, log() {} } });
  t.teardown(() => host.close());
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  t.same(
    host.plugins.map((p) => [p.config.name, p.module.sha256, p.module.bytes]),
    [['small', sha(small), small.length], ['large', sha(large), large.length], ['small-again', sha(small), small.length]],
  );
  await t.rejects(WasmHost.create({ plugins: [...plugins, { name: 'gone', url: 'gone.wasm' }] }, { baseDir: dir }), {
    code: 'WASM_NOT_FOUND',
    message: /^plugin gone: wasm module not found: looked up .*gone\.wasm \(url "gone\.wasm" relative to /,
  });
});

// The hand-over: the config validator reads its code and V8 code cache through two readers and
// hands them back; WasmHost.create reads the modules through the same two (pages faulted once).
const buffer = (r: ScratchReader): Buffer | null => Reflect.get(r, 'buf') as Buffer | null;
const drain = () => {
  // Empties the spare list (a reader handed back by an earlier test).
  for (let i = 0; i < 3; i++) if (buffer(warmReader()) === null) break;
};

t.test('a reader handed back is the next one taken; two are kept at most, each once', async (t) => {
  drain();
  const a = new ScratchReader();
  const b = new ScratchReader();
  const c = new ScratchReader();
  handBack(a);
  handBack(a);
  handBack(b);
  handBack(c);
  t.equal(warmReader(), b);
  t.equal(warmReader(), a);
  const fresh = warmReader();
  t.not(fresh, c, 'the third was not kept');
  t.equal(buffer(fresh), null, 'a new reader');
});

t.test('loading the generated validator leaves its two readers, already filled, for the modules', async (t) => {
  drain();
  await mkdir('node_modules/.cache', { recursive: true });
  const dir = await mkdtemp(resolve('node_modules/.cache/wm-scratch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = await writeConfigValidator(join(dir, 'v.cjs'));
  t.equal(loadConfigValidator(file).source, 'generated');
  const code = warmReader();
  const cache = warmReader();
  t.not(buffer(code), null, 'a reader the validator read through');
  t.not(buffer(cache), null, 'and the other');
  t.not(code, cache);
  // The reader's bytes are the file's, whatever it read before.
  const other = await mkdtemp(join(tmpdir(), 'wm-scratch-'));
  t.teardown(() => rm(other, { recursive: true, force: true }));
  await writeFile(join(other, 'm.bin'), 'module bytes');
  t.equal(code.read(join(other, 'm.bin')).toString(), 'module bytes');
});
