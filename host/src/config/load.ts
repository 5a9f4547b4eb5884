// Reads and validates a config file (YAML or JSON).

import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorObject } from 'ajv';
import { HostError } from '../errors.js';
import type { MixerConfig } from './schema.js';
import { configValidator } from './validator.js';
import { parseRedisUrl } from '../quota/redis-url.js';

export async function loadConfigFile(path: string): Promise<{ config: MixerConfig; baseDir: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new HostError('CONFIG_READ_FAILED', `cannot read config ${path}: ${(err as Error).message}`, { file: path }, { cause: err });
  }
  let raw: unknown;
  try {
    // yaml is imported only for YAML files: it costs a JSON config's start-up tens of ms.
    raw = path.endsWith('.json') ? JSON.parse(text) : (await import('yaml')).parse(text);
  } catch (err) {
    throw new HostError('CONFIG_INVALID', `${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`, { file: path }, { cause: err });
  }
  return { config: validateConfig(raw ?? {}, path), baseDir: dirname(resolve(path)) };
}

/** Validates a config object; throws CONFIG_INVALID naming every bad field. */
export function validateConfig(raw: unknown, source = 'config'): MixerConfig {
  const { validate } = configValidator();
  if (!validate(raw)) {
    const problems = (validate.errors ?? []).map(describe);
    throw new HostError('CONFIG_INVALID', `${source} is invalid:\n  - ${problems.join('\n  - ')}`, { file: source, problems });
  }
  const cfg = raw;
  const names = new Set<string>();
  for (const [i, p] of (cfg.plugins ?? []).entries()) {
    if (names.has(p.name)) throw new HostError('CONFIG_INVALID', `${source}: /plugins/${i}/name "${p.name}" is used twice; plugin names must be unique`, { file: source, field: `/plugins/${i}/name` });
    names.add(p.name);
    for (const c of p.clusters ?? []) {
      if (!cfg.clusters?.[c]) throw new HostError('CONFIG_INVALID', `${source}: /plugins/${i}/clusters names "${c}", which is not defined under clusters`, { file: source, field: `/plugins/${i}/clusters` });
    }
  }
  for (const [name, c] of Object.entries(cfg.clusters ?? {})) {
    // Redis Cluster / Sentinel urls carry a host list and a master name the schema's pattern cannot check.
    if (c.url.startsWith('redis')) {
      try {
        parseRedisUrl(c.url);
      } catch (err) {
        throw new HostError('CONFIG_INVALID', `${source}: /clusters/${name}/url: ${(err as Error).message}`, { file: source, field: `/clusters/${name}/url` });
      }
    }
  }
  const routes = new Set<string>();
  for (const [i, r] of (cfg.routes ?? []).entries()) {
    if (routes.has(r.name)) throw new HostError('CONFIG_INVALID', `${source}: /routes/${i}/name "${r.name}" is used twice`, { file: source, field: `/routes/${i}/name` });
    routes.add(r.name);
  }
  return cfg;
}

function describe(e: ErrorObject): string {
  const at = e.instancePath === '' ? '(top level)' : e.instancePath;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at}: unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
    case 'enum':
      return `${at}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'required':
      return `${at}: missing required field "${(e.params as { missingProperty: string }).missingProperty}"`;
    default:
      return `${at}: ${e.message ?? e.keyword}`;
  }
}

/** Resolves a plugin url (path relative to the config's folder, or file://) to a file path. */
export function resolveModulePath(url: string, baseDir: string): string {
  if (url.startsWith('file://')) return fileURLToPath(url);
  if (/^[a-z]+:\/\//i.test(url)) {
    throw new HostError('CONFIG_INVALID', `plugin url ${url}: only local files and file:// URLs are supported by this version`, { field: 'url' });
  }
  return isAbsolute(url) ? url : resolve(baseDir, url);
}
