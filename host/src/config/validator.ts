// The config schema's validator, generated ahead of time: `npm run build` writes ajv's standalone
// code for CONFIG_SCHEMA to dist/generated/config-validator.cjs (host/src/build/config-validator.ts),
// because importing ajv and compiling the schema cost every proxy, adapter-server and CLI start
// about 150 ms. It is loaded on first use with require(), so validateConfig stays synchronous and
// the module has no top-level await. If the file is missing, or was generated from another schema
// (tsc run without the generator), the schema is compiled here at run time as before: the same
// ajv and options, so the same verdicts and errors, only slower (README "Design notes").

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';
import { CONFIG_SCHEMA, type MixerConfig } from './schema.js';

export const AJV_OPTIONS = { allErrors: true, strict: false } as const;
/** package.json "imports": one specifier for dist/ and for the sources run by the tests. */
const GENERATED = '#config-validator';

export interface ConfigValidator {
  validate: ValidateFunction<MixerConfig>;
  /** 'generated' by npm run build; 'runtime' when compiled here (missing or stale file). */
  source: 'generated' | 'runtime';
}

/** Identifies the schema and options a generated validator was made from. */
export function schemaHash(): string {
  return createHash('sha256').update(JSON.stringify([AJV_OPTIONS, CONFIG_SCHEMA])).digest('hex');
}

let loaded: ConfigValidator | undefined;

/** The process's validator, loaded on first use. */
export function configValidator(): ConfigValidator {
  return (loaded ??= loadConfigValidator());
}

/** Loads the generated validator at `specifier` (a path in tests), or compiles the schema if it is missing or stale. */
export function loadConfigValidator(specifier = GENERATED): ConfigValidator {
  const require = createRequire(import.meta.url);
  try {
    const m = require(specifier) as { default: ValidateFunction<MixerConfig>; schemaHash?: string };
    if (m.schemaHash === schemaHash()) return { validate: m.default, source: 'generated' };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
  }
  const { Ajv } = require('ajv') as typeof import('ajv');
  return { validate: new Ajv(AJV_OPTIONS).compile<MixerConfig>(CONFIG_SCHEMA), source: 'runtime' };
}
