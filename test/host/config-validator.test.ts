// The config validator that `npm run build` generates (ajv standalone code, host/src/build/
// config-validator.ts) and the run-time compile it replaces give the same verdicts and the
// same errors; a missing or stale generated file falls back to the run-time compile, and a
// refused V8 code cache to compiling the generated code.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { writeConfigValidator } from '../../host/src/build/config-validator.js';
import { CODE_CACHE_SUFFIX, configValidator, GENERATED_FROM_DIST, loadConfigValidator, validatorScript } from '../../host/src/config/validator.js';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const examples = await Promise.all(['quickstart', 'remote'].map(async (n) => parse(await readFile(`examples/${n}.yaml`, 'utf8')) as Record<string, unknown>));
const plugin = { name: 'a', url: 'a.wasm', sha256: 'ab'.repeat(32) };
const VALID: unknown[] = [...examples, {}, { plugins: [{ ...plugin, pluginConfig: { any: ['json', 1] } }] }];
const INVALID: unknown[] = [
  { listen: { port: 70000, bogus: 1 }, logLevel: 'loud' },
  { routes: [{ name: 'r', upstream: 'ftp://x' }], plugins: [{ ...plugin, failStrategy: 'FAIL_SOMETIMES', phase: 'LATE', bogus: 1 }] },
  { plugins: [{ name: 'a' }], workers: 'many' },
  { plugins: [{ ...plugin, vmConfig: { vmId: 7 } }] },
  { accessLog: { sinks: [{ type: 'kafka' }, { type: 'file' }] }, otlp: { endpoint: 3 } },
  { remote: { address: '', plugins: 'some', checkCache: { enabled: 'yes' } } },
  { clusters: { redis: { url: 42 } }, admin: { port: -1 } },
  [],
  'plugins: []',
];
// Inside the package, so the generated code's require('ajv/dist/runtime/...') resolves.
const scratch = () => mkdir('node_modules/.cache', { recursive: true }).then(() => mkdtemp(resolve('node_modules/.cache/wm-validator-')));

t.test('npm run build generated the validator this process uses', async (t) => {
  t.equal(configValidator().source, 'generated', 'dist/generated/config-validator.cjs is missing or was made from another schema: run npm run build');
});

t.test('from dist/, the validator is found beside it: the file package.json "imports" names', async (t) => {
  const fromDist = fileURLToPath(new URL(GENERATED_FROM_DIST, pathToFileURL(resolve('dist/host/src/config/validator.js'))));
  t.equal(fromDist, createRequire(import.meta.url).resolve('#config-validator'));
});

t.test('generated and run-time validators agree, errors included', async (t) => {
  const dir = await scratch();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const generated = loadConfigValidator(await writeConfigValidator(join(dir, 'v.cjs')));
  const runtime = loadConfigValidator(join(dir, 'missing.cjs'));
  t.equal(generated.source, 'generated');
  t.equal(runtime.source, 'runtime', 'a missing file falls back to compiling the schema');
  for (const [i, c] of VALID.entries()) {
    t.ok(generated.validate(c), `valid ${i}`);
    t.ok(runtime.validate(c), `valid ${i}: also at run time`);
  }
  for (const [i, c] of INVALID.entries()) {
    t.notOk(generated.validate(c), `invalid ${i}`);
    t.notOk(runtime.validate(c), `invalid ${i}: also at run time`);
    t.strictSame(generated.validate.errors, runtime.validate.errors, `invalid ${i}: the same errors`);
  }
});

t.test('the V8 code cache is used when valid, and a bad one only costs a compile', async (t) => {
  const dir = await scratch();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = await writeConfigValidator(join(dir, 'v.cjs'));
  const good = loadConfigValidator(file);
  t.same([good.source, good.cached], ['generated', true], 'made by this process (same V8, same flags): used');
  const copy = join(dir, 'copy.cjs');
  await writeFile(copy, await readFile(file));
  await writeFile(copy + CODE_CACHE_SUFFIX, 'not a code cache');
  const bad = loadConfigValidator(copy);
  t.same([bad.source, bad.cached], ['generated', false], 'refused by V8, the code is compiled');
  t.notOk(bad.validate(INVALID[0]));
  t.strictSame(bad.validate.errors, good.validate(INVALID[0]) ? null : good.validate.errors);
});

t.test('a generated file made from another schema is not used', async (t) => {
  const dir = await scratch();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = await writeConfigValidator(join(dir, 'v.cjs'));
  t.equal(loadConfigValidator(file).source, 'generated', 'untouched, it is used');
  const stale = join(dir, 'stale.cjs');
  await writeFile(stale, (await readFile(file, 'utf8')).replace(/schemaHash = "[0-9a-f]+"/, 'schemaHash = "0"'));
  t.equal(loadConfigValidator(stale).source, 'runtime', 'with another schema hash, the schema is compiled instead');
});

t.test('the generated validator carries the ajv helpers it needs: nothing goes through Node\'s module loader at run time', async (t) => {
  const dir = await scratch();
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = await writeConfigValidator(join(dir, 'v.cjs'));
  const asked: string[] = [];
  const module = { exports: {} as { default: (c: unknown) => boolean; schemaHash?: string } & { default: { errors?: unknown } } };
  const refuse = (id: string) => {
    asked.push(id);
    throw new Error(`required ${id}`);
  };
  (validatorScript(file).runInThisContext() as (m: object, e: object, r: (id: string) => unknown) => void)(module, module.exports, refuse);
  const validate = module.exports.default;
  const runtime = loadConfigValidator(join(dir, 'missing.cjs'));
  // An empty name breaks minLength (ajv's ucs2length helper); the enums and the rest as above.
  const cases = [...VALID, ...INVALID, { plugins: [{ ...plugin, name: '' }] }, { listen: { port: 8080, address: '' } }];
  for (const [i, c] of cases.entries()) {
    t.equal(validate(c), runtime.validate(c), `case ${i}: the same verdict`);
    t.strictSame(validate.errors ?? null, runtime.validate.errors ?? null, `case ${i}: the same errors`);
  }
  t.strictSame(asked, [], 'no require reached Node');
});
