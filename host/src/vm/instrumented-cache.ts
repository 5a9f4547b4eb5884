// A content-addressed disk cache of instrumented modules (vm/metering.ts output), so that
// a restart does not rewrite the same module again: the rewrite is most of an adapter's
// load time. Key: sha256 of the input module's sha256, REWRITER_VERSION, the per-unit
// charges compiled into the rewriter and every rewrite option that changes its output.
//
// The cached bytes are compiled and run as the adapter, with no metering check of their
// own, so an entry is only used when it proves it is whole: a trailer holds the sha256 of
// everything before it, and the entry names its own key. A truncated, corrupted or
// misnamed entry is ignored (and removed); the module is then rewritten as if not cached.
// Integrity is not authenticity: whoever can write the directory can change what the
// adapters run, so the cache refuses a directory that another user owns or that group or
// others may write (it creates its own with mode 0700).
//
// Bounded: after each write, the least recently used entries go until the directory holds
// at most maxBytes. Every failure (unwritable directory, full disk) only costs a rewrite.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { BULK_FUEL_PER_BYTE, TABLE_FUEL_PER_ELEMENT } from '../limits.js';
import { REWRITER_VERSION, type RewriteOptions, type RewriteResult } from './metering.js';
import type { ScratchReader } from './scratch-read.js';

/** The environment variable that sets the cache directory, or turns the cache off with `off`. */
export const INSTRUMENTED_CACHE_ENV = 'WASM_MIXER_INSTRUMENTED_CACHE';
/** Default bound on the cache directory's size. */
export const DEFAULT_INSTRUMENTED_CACHE_MAX_MB = 64;

const MAGIC = 0x63696d77; // "wmic", little-endian
const FORMAT = 1;
const HEADER = 12; // magic, format, meta length
const DIGEST = 32;

/** What a cache entry restores besides the bytes: RewriteResult without them. */
export type InstrumentedMeta = Omit<RewriteResult, 'bytes'>;

export interface InstrumentedCacheOptions {
  dir: string;
  /** Bound on the directory's size (default DEFAULT_INSTRUMENTED_CACHE_MAX_MB). */
  maxBytes?: number;
}

export class InstrumentedCache {
  readonly dir: string;
  readonly maxBytes: number;
  /** Null until the directory was checked; false when it is unusable (not private, not creatable). */
  private usable: boolean | null = null;

  constructor(opts: InstrumentedCacheOptions) {
    this.dir = opts.dir;
    this.maxBytes = opts.maxBytes ?? DEFAULT_INSTRUMENTED_CACHE_MAX_MB * 1024 * 1024;
  }

  /** The cache key of a module (by its sha256, hex) rewritten with `opts`. */
  static key(sha256: string, opts: RewriteOptions): string {
    const parts = [
      REWRITER_VERSION,
      BULK_FUEL_PER_BYTE,
      TABLE_FUEL_PER_ELEMENT,
      sha256.toLowerCase(),
      opts.fuel ? 1 : 0,
      opts.initialFuel ?? 0,
      opts.maxMemoryPages ?? -1,
      opts.maxTableElements ?? -1,
      opts.callSiteCharges === false ? 0 : 1,
      opts.hostCallFuel ?? 0,
      opts.localFuel === false ? 0 : 1,
    ];
    return createHash('sha256').update(parts.join('/')).digest('hex');
  }

  /**
   * The cached rewrite for `key`, or null (missing, or not whole: then it is removed). Read
   * through `reader` (WasmHost.create), its bytes are a view of the reader's buffer, valid
   * until its next read: compile them before that.
   */
  get(key: string, reader?: ScratchReader): RewriteResult | null {
    if (!this.ready(false)) return null;
    const file = this.file(key);
    let raw: Buffer;
    try {
      raw = reader !== undefined ? reader.read(file) : readFileSync(file);
    } catch {
      return null;
    }
    const entry = decode(raw, key);
    if (entry === null) {
      tryUnlink(file);
      return null;
    }
    try {
      const now = new Date();
      utimesSync(file, now, now); // recently used: evicted last
    } catch {
      // read-only cache: still usable
    }
    return entry;
  }

  /** Stores a rewrite under `key`; failures are ignored (the next start rewrites again). */
  put(key: string, rw: RewriteResult): void {
    if (!this.ready(true)) return;
    const file = this.file(key);
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeFileSync(tmp, encode(key, rw), { mode: 0o600 });
      renameSync(tmp, file);
    } catch {
      tryUnlink(tmp);
      return;
    }
    this.evict();
  }

  private file(key: string): string {
    return join(this.dir, `${key}.wasm-instrumented`);
  }

  /** Whether the directory exists (created when `create`), belongs to this user and only this user may write it. */
  private ready(create: boolean): boolean {
    if (this.usable !== null) return this.usable;
    try {
      if (create) mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const st = statSync(this.dir);
      const uid = process.getuid?.();
      this.usable = st.isDirectory() && (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
    } catch {
      if (!create) return false; // not there yet: a put may create it
      this.usable = false;
    }
    return this.usable;
  }

  /** Removes least recently used entries until the directory is within maxBytes. */
  private evict(): void {
    let entries: Array<{ path: string; size: number; used: number }>;
    try {
      entries = readdirSync(this.dir)
        .filter((n) => n.endsWith('.wasm-instrumented'))
        .map((n) => {
          const path = join(this.dir, n);
          const st = statSync(path);
          return { path, size: st.size, used: st.mtimeMs };
        });
    } catch {
      return;
    }
    let total = entries.reduce((s, e) => s + e.size, 0);
    if (total <= this.maxBytes) return;
    entries.sort((a, b) => a.used - b.used);
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (tryUnlink(e.path)) total -= e.size;
    }
  }
}

function tryUnlink(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/** magic, format, meta length (u32 LE each), meta JSON (with the key), the module, sha256 of all before it. */
function encode(key: string, rw: RewriteResult): Uint8Array {
  const meta: InstrumentedMeta & { key: string } = {
    key,
    functions: rw.functions,
    siteCharged: rw.siteCharged,
    hostCallsCharged: rw.hostCallsCharged,
    loops: rw.loops,
    memory: rw.memory,
  };
  const metaBytes = Buffer.from(JSON.stringify(meta));
  const out = Buffer.allocUnsafe(HEADER + metaBytes.length + rw.bytes.length + DIGEST);
  out.writeUInt32LE(MAGIC, 0);
  out.writeUInt32LE(FORMAT, 4);
  out.writeUInt32LE(metaBytes.length, 8);
  metaBytes.copy(out, HEADER);
  out.set(rw.bytes, HEADER + metaBytes.length);
  const body = out.subarray(0, out.length - DIGEST);
  createHash('sha256').update(body).digest().copy(out, body.length);
  return out;
}

/** The entry's rewrite, or null unless it is whole and filed under `key`. */
function decode(raw: Buffer, key: string): RewriteResult | null {
  if (raw.length < HEADER + DIGEST + 8) return null;
  if (raw.readUInt32LE(0) !== MAGIC || raw.readUInt32LE(4) !== FORMAT) return null;
  const metaLength = raw.readUInt32LE(8);
  const body = raw.subarray(0, raw.length - DIGEST);
  if (HEADER + metaLength + 8 > body.length) return null;
  if (!createHash('sha256').update(body).digest().equals(raw.subarray(body.length))) return null;
  let meta: unknown;
  try {
    meta = JSON.parse(raw.toString('utf8', HEADER, HEADER + metaLength));
  } catch {
    return null;
  }
  if (!isMeta(meta) || meta.key !== key) return null;
  // A view of the module, not a copy (~0.6 ms for auth's): nothing keeps it once compiled.
  const bytes = body.subarray(HEADER + metaLength);
  return { bytes, functions: meta.functions, siteCharged: meta.siteCharged, hostCallsCharged: meta.hostCallsCharged, loops: meta.loops, memory: meta.memory };
}

function isMeta(m: unknown): m is InstrumentedMeta & { key: string } {
  if (typeof m !== 'object' || m === null) return false;
  const o = m as Record<string, unknown>;
  const mem = o.memory as Record<string, unknown> | null | undefined;
  const memOk = mem === null || (typeof mem === 'object' && mem !== undefined && typeof mem.initial === 'number' && (mem.maximum === null || typeof mem.maximum === 'number'));
  return typeof o.key === 'string' && typeof o.functions === 'number' && typeof o.siteCharged === 'number' && typeof o.loops === 'number' && typeof o.hostCallsCharged === 'boolean' && memOk;
}

/** $XDG_CACHE_HOME/wasm-mixer/instrumented, or ~/.cache/wasm-mixer/instrumented. */
export function defaultInstrumentedCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME && isAbsolute(process.env.XDG_CACHE_HOME) ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'wasm-mixer', 'instrumented');
}

/** Config's `moduleCache.instrumented` (host/src/config/types.ts). */
export interface InstrumentedCacheConfig {
  enabled?: boolean;
  dir?: string;
  maxMb?: number;
}

const byDir = new Map<string, InstrumentedCache>();

/**
 * The cache to use: the config's if it says (enabled: false turns it off), else
 * $WASM_MIXER_INSTRUMENTED_CACHE (a directory, or `off`), else the default directory.
 * One instance per directory and bound, so its directory check runs once.
 */
export function instrumentedCacheFor(config: InstrumentedCacheConfig = {}): InstrumentedCache | null {
  if (config.enabled === false) return null;
  const env = process.env[INSTRUMENTED_CACHE_ENV];
  if (config.dir === undefined && env !== undefined && env.trim().toLowerCase() === 'off') return null;
  const dir = config.dir ?? (env !== undefined && env.trim() !== '' ? env : defaultInstrumentedCacheDir());
  const maxBytes = Math.round((config.maxMb ?? DEFAULT_INSTRUMENTED_CACHE_MAX_MB) * 1024 * 1024);
  const id = `${dir}\0${maxBytes}`;
  let cache = byDir.get(id);
  if (cache === undefined) byDir.set(id, (cache = new InstrumentedCache({ dir, maxBytes })));
  return cache;
}
