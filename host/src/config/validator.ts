// The config schema's validator, generated ahead of time: `npm run build` writes ajv's standalone
// code for CONFIG_SCHEMA to dist/generated/config-validator.cjs (host/src/build/config-validator.ts),
// because importing ajv and compiling the schema cost every proxy, adapter-server and CLI start
// about 150 ms. It is loaded on first use, synchronously (validateConfig stays synchronous and the
// module has no top-level await), with the V8 code cache written next to it: the generated
// function is 150 kB of JavaScript that V8 otherwise parses and compiles at each start (~20 ms).
// V8 refuses a cache made by another V8 version or with other V8 flags; the code is then compiled
// as usual. If the file is missing, or was generated from another schema (tsc run without the
// generator), the schema is compiled here at run time as before: the same ajv and options, so
// the same verdicts and errors, only slower (README "Design notes").

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import type { ValidateFunction } from 'ajv';
import { CONFIG_SCHEMA, type MixerConfig } from './schema.js';
import { handBack, warmReader } from '../vm/scratch-read.js';

export const AJV_OPTIONS = { allErrors: true, strict: false } as const;
/** package.json "imports" maps it to dist/generated/config-validator.cjs, for dist/ and for the sources the tests run. */
const GENERATED = '#config-validator';
/** The same file, from dist/host/src/config/validator.js. */
export const GENERATED_FROM_DIST = '../../../generated/config-validator.cjs';
/** The code cache's file: the generated file's name plus this. */
export const CODE_CACHE_SUFFIX = '.v8-cache';

export interface ConfigValidator {
  validate: ValidateFunction<MixerConfig>;
  /** 'generated' by npm run build; 'runtime' when compiled here (missing or stale file). */
  source: 'generated' | 'runtime';
  /** Whether V8 used the code cache (false: none, or refused). */
  cached: boolean;
}

/** Identifies the schema and options a generated validator was made from. */
export function schemaHash(): string {
  return createHash('sha256').update(JSON.stringify([AJV_OPTIONS, CONFIG_SCHEMA])).digest('hex');
}

/** The generated CommonJS code as a V8 script (the same text when the cache is made and used, or V8 refuses it). */
export function validatorScript(file: string, cachedData?: Buffer): Script {
  return scriptOf(readFileSync(file, 'utf8'), file, cachedData);
}

function scriptOf(code: string, file: string, cachedData: Buffer | undefined): Script {
  return new Script(`(function (module, exports, require) {${code}\n})`, { filename: file, cachedData });
}

/** Runs the script made by validatorScript; returns the module's exports. */
export function runValidatorScript(script: Script, file: string): { default: ValidateFunction<MixerConfig>; schemaHash?: string } {
  const module = { exports: {} as { default: ValidateFunction<MixerConfig>; schemaHash?: string } };
  (script.runInThisContext() as (m: object, e: object, r: NodeJS.Require) => void)(module, module.exports, createRequire(file));
  return module.exports;
}

let loaded: ConfigValidator | undefined;

/** The process's validator, loaded on first use. */
export function configValidator(): ConfigValidator {
  return (loaded ??= loadConfigValidator());
}

/** Loads the generated validator (`file`: a path, in tests), or compiles the schema if it is missing or stale. */
export function loadConfigValidator(file?: string): ConfigValidator {
  const require = createRequire(import.meta.url);
  try {
    const path = file ?? generatedFile(require);
    const script = readScript(path);
    const m = runValidatorScript(script, path);
    if (m.schemaHash === schemaHash()) return { validate: m.default, source: 'generated', cached: script.cachedDataRejected === false };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'MODULE_NOT_FOUND' && code !== 'ENOENT') throw err;
  }
  const { Ajv } = require('ajv') as typeof import('ajv');
  return { validate: new Ajv(AJV_OPTIONS).compile<MixerConfig>(CONFIG_SCHEMA), source: 'runtime', cached: false };
}

/**
 * The generated validator: next to dist/ when this file runs from dist/host/src/config/ (a stat,
 * where resolving GENERATED through package.json "imports" costs ~1.3 ms of the start-up), else
 * (the sources the tests run) where "imports" maps it.
 */
function generatedFile(require: NodeJS.Require): string {
  const beside = fileURLToPath(new URL(GENERATED_FROM_DIST, import.meta.url));
  return existsSync(beside) ? beside : require.resolve(GENERATED);
}

/**
 * validatorScript, reading the code and its cache through two reused buffers handed on to
 * WasmHost.create for the modules (vm/scratch-read.ts): V8 is done with both once the Script exists.
 */
function readScript(path: string): Script {
  const code = warmReader();
  const cache = warmReader();
  try {
    const text = code.read(path).toString('utf8');
    let cachedData: Buffer | undefined;
    try {
      cachedData = cache.read(path + CODE_CACHE_SUFFIX);
    } catch {
      cachedData = undefined;
    }
    return scriptOf(text, path, cachedData);
  } finally {
    handBack(code);
    handBack(cache);
  }
}
