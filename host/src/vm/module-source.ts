// Where adapter modules come from: a local file (path or file:// URL), or an
// http(s) URL pinned by sha256, as Istio's WasmPlugin does. Remote modules are
// cached on disk under their sha256, so a restart or a reload does not depend
// on the network, and a module is only ever used if its bytes match the pin.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostError } from '../errors.js';
import type { ScratchReader } from './scratch-read.js';

export interface ModuleSourceOptions {
  /** Folder that relative paths are resolved against. */
  baseDir: string;
  /** Where fetched modules are kept (default: $XDG_CACHE_HOME/wasm-mixer/modules or ~/.cache/wasm-mixer/modules). */
  cacheDir?: string;
  /** Per-fetch timeout (default 30 s). */
  fetchTimeoutMs?: number;
  /** Largest module accepted over the network (default 64 MiB). */
  maxBytes?: number;
  /** The plugin's name, for error messages. */
  plugin?: string;
}

export interface ModuleBytes {
  bytes: Uint8Array;
  /** A printable source for messages: the file path, or the URL without credentials or query. */
  source: string;
  /** For remote modules: whether the bytes came from the disk cache. */
  cached?: boolean;
  /** The cache file a remote module was read from or written to. */
  cacheFile?: string;
}

export const DEFAULT_MAX_MODULE_BYTES = 64 * 1024 * 1024;

export function isRemoteUrl(url: string): boolean {
  return /^https?:\/\//i.test(url);
}

export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME && isAbsolute(process.env.XDG_CACHE_HOME) ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'wasm-mixer', 'modules');
}

/** A URL safe to print: no user:password, no query string or fragment (they may carry tokens). */
export function printableUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '<invalid url>';
  }
}

/**
 * Reads a local module file. A missing file is WASM_NOT_FOUND, naming the path looked up and
 * what it was resolved from (`lookedUp`); any other read error is WASM_MALFORMED.
 */
export async function readLocalModule(path: string, lookedUp: string, plugin?: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw localReadError(err, path, lookedUp, plugin);
  }
}

/**
 * readLocalModule, synchronously, through `reader`: the bytes are a view of its buffer, valid
 * until its next read (WasmHost reads every module through one: vm/scratch-read.ts).
 */
export function readLocalModuleSync(path: string, lookedUp: string, plugin: string | undefined, reader: ScratchReader): Uint8Array {
  try {
    return reader.read(path);
  } catch (err) {
    throw localReadError(err, path, lookedUp, plugin);
  }
}

function localReadError(err: unknown, path: string, lookedUp: string, plugin: string | undefined): HostError {
  const e = err as NodeJS.ErrnoException;
  const detail = { adapter: plugin, file: path, field: 'url' };
  if (e.code === 'ENOENT' || e.code === 'ENOTDIR') {
    return new HostError('WASM_NOT_FOUND', `wasm module not found: looked up ${path} (${lookedUp}); build it (npm run build, or wasm-mixer build DIR) or fix the path`, detail, { cause: err });
  }
  return new HostError('WASM_MALFORMED', `cannot read wasm module ${path}: ${e.message}`, detail, { cause: err });
}

/**
 * Where a local `url` (a path, relative to `baseDir`, or a file:// URL) points, and how it was
 * resolved (for WASM_NOT_FOUND); null for http(s) URLs. Other schemes are CONFIG_INVALID.
 */
export function localModulePath(url: string, baseDir: string, plugin?: string): { path: string; lookedUp: string } | null {
  if (isRemoteUrl(url)) return null;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !url.startsWith('file://')) {
    throw new HostError('CONFIG_INVALID', `url ${printableUrl(url)}: only local paths, file:// and http(s):// URLs are supported`, { adapter: plugin, field: 'url' });
  }
  const path = url.startsWith('file://') ? fileURLToPath(url) : isAbsolute(url) ? url : resolve(baseDir, url);
  const lookedUp = url.startsWith('file://') || isAbsolute(url) ? `url "${url}"` : `url "${url}" relative to ${baseDir}`;
  return { path, lookedUp };
}

const sha256hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Reads a module's bytes from wherever `url` points. Remote URLs need `sha256`. */
export async function readModuleBytes(url: string, sha256: string | undefined, opts: ModuleSourceOptions): Promise<ModuleBytes> {
  const who = ''; // the host prefixes `plugin NAME: `
  const local = localModulePath(url, opts.baseDir, opts.plugin);
  if (local !== null) return { bytes: await readLocalModule(local.path, local.lookedUp, opts.plugin), source: local.path };
  const source = printableUrl(url);
  if (sha256 === undefined) {
    throw new HostError('CONFIG_INVALID', `${who}url ${source} is remote, so it must be pinned: add sha256 (the module's SHA-256, as printed by wasm-mixer check)`, { adapter: opts.plugin, field: 'sha256' });
  }
  const pin = sha256.toLowerCase();
  const dir = opts.cacheDir ?? defaultCacheDir();
  const cacheFile = join(dir, `${pin}.wasm`);
  try {
    const cached = await readFile(cacheFile);
    if (sha256hex(cached) === pin) return { bytes: cached, source, cached: true, cacheFile };
    await rm(cacheFile, { force: true }); // corrupted: fetch again
  } catch {
    // not cached yet
  }
  const bytes = await fetchBytes(url, source, who, opts);
  const got = sha256hex(bytes);
  if (got !== pin) {
    throw new HostError(
      'WASM_SHA256_MISMATCH',
      `${who}${source}: downloaded module has sha256 ${got}, config pins ${pin}; the module changed upstream or the pin is wrong — nothing was cached or loaded`,
      { adapter: opts.plugin, file: source, field: 'sha256' },
    );
  }
  try {
    await mkdir(dir, { recursive: true });
    const tmp = `${cacheFile}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, cacheFile);
  } catch {
    // An unwritable cache only costs a refetch next time.
  }
  return { bytes, source, cached: false, cacheFile };
}

async function fetchBytes(url: string, source: string, _who: string, opts: ModuleSourceOptions): Promise<Uint8Array> {
  const max = opts.maxBytes ?? DEFAULT_MAX_MODULE_BYTES;
  const timeout = opts.fetchTimeoutMs ?? 30_000;
  const fail = (why: string, cause?: unknown): never => {
    throw new HostError('WASM_FETCH_FAILED', `cannot fetch ${source}: ${why}; check the URL, or pre-seed the module cache`, { adapter: opts.plugin, file: source, field: 'url' }, { cause });
  };
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeout), redirect: 'follow' });
  } catch (err) {
    return fail((err as Error).name === 'TimeoutError' ? `no answer within ${timeout} ms` : ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message, err);
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    return fail(`HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) {
    await res.body?.cancel().catch(() => {});
    return fail(`module is ${declared} bytes, over the ${max}-byte limit`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > max) {
        await reader.cancel();
        return fail(`module is over the ${max}-byte limit`);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof HostError) throw err;
    return fail(`download interrupted: ${(err as Error).message}`, err);
  }
  return Buffer.concat(chunks);
}
