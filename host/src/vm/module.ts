// Loading and validating adapter modules: compile once, check the ABI marker,
// the allocator and every import before any instance is created.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ABI_MARKERS, type AbiVersion } from '../abi/constants.js';
import { ABI_0_1_0_ONLY, ABI_0_2_ONLY, IMPLEMENTED_IMPORTS, KNOWN_UNIMPLEMENTED_IMPORTS, WASI_MODULES } from '../abi/names.js';
import { HostError } from '../errors.js';
import { FUEL_EXPORT, GROW_REFUSED_EXPORT, rewriteModule, type RewriteOptions, type RewriteResult } from './metering.js';
import { InstrumentedCache, instrumentedCacheFor } from './instrumented-cache.js';
import { applyWasmFlags } from './v8-flags.js';
import type { ScratchReader } from './scratch-read.js';
import { DEFAULT_FUEL_PER_CALLBACK, DEFAULT_MAX_MEMORY_MB, DEFAULT_MAX_TABLE_ELEMENTS, HOST_CALL_FUEL, MAX_FUEL, START_FUEL_FACTOR } from '../limits.js';

/** Defaults for the isolation limits (docs/operating.md "Limits", host/src/limits.ts). */
export { DEFAULT_MAX_MEMORY_MB } from '../limits.js';

export interface ModuleLimits {
  /** Instrument the module with a work budget (default true). */
  metering?: boolean;
  /** Cap linear memory (MiB, default DEFAULT_MAX_MEMORY_MB; 0 = leave the module's own maximum). */
  maxMemoryMb?: number;
  /** Work budget of the wasm start function (default DEFAULT_START_FUEL; the host passes START_FUEL_FACTOR x limits.fuelPerCallback). */
  startFuel?: number;
  /** Cap every table (elements, default DEFAULT_MAX_TABLE_ELEMENTS); table.grow past it returns -1. */
  maxTableElements?: number;
}

/**
 * Budget of a wasm start function under the default limits: the same budget
 * _initialize, proxy_on_vm_start and proxy_on_configure get.
 */
export const DEFAULT_START_FUEL = Math.min(DEFAULT_FUEL_PER_CALLBACK * START_FUEL_FACTOR, MAX_FUEL);

export interface CompiledModule {
  readonly module: WebAssembly.Module;
  /** Where it came from (a file path, or `<bytes>`), for error messages. */
  readonly source: string;
  readonly sha256: string;
  readonly abiVersion: AbiVersion;
  readonly exports: ReadonlySet<string>;
  /** ABI or WASI imports the module declares that this host links to stubs. */
  readonly unimplementedImports: readonly string[];
  readonly bytes: number;
  /** True when the module was instrumented with a work budget (vm/metering.ts). */
  readonly metered: boolean;
  /**
   * True when the module charges HOST_CALL_FUEL for each host-function call itself, at the
   * call site (vm/metering.ts): the host then charges only the bytes its functions move.
   */
  readonly hostCallsCharged: boolean;
  /** True when the module has a wasm start function (it runs inside instantiation, under the start budget). */
  readonly hasStart: boolean;
  /** Linear memory limits after the cap, in 64 KiB pages. */
  readonly memoryPages: { initial: number; maximum: number | null } | null;
  /** The cap on table elements (null: tables left as declared, the module is not rewritten). */
  readonly maxTableElements: number | null;
}

export async function loadModuleFile(path: string, expectedSha256?: string, limits?: ModuleLimits): Promise<CompiledModule> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new HostError('WASM_MALFORMED', `cannot read wasm module ${path}: ${(err as Error).message}`, { file: path }, { cause: err });
  }
  return compileModule(bytes, path, expectedSha256, limits);
}

export interface CompileOptions {
  /**
   * Where instrumented modules are cached (vm/instrumented-cache.ts); null: no cache.
   * Default: instrumentedCacheFor() (the WASM_MIXER_INSTRUMENTED_CACHE variable, or the default directory).
   */
  cache?: InstrumentedCache | null;
  /** compileModuleAsync reads the cache entry through this reader (see InstrumentedCache.get). */
  entryReader?: ScratchReader;
  /**
   * Given when `bytes` are borrowed (a view of a ScratchReader's buffer, which WasmHost reuses for
   * the next module): compileModuleAsync reads them only before its first await, and calls this
   * for them again if a compile failure reported after it needs them.
   */
  reread?: () => Uint8Array;
}

export function compileModule(bytes: Uint8Array, source = '<bytes>', expectedSha256?: string, limits: ModuleLimits = {}, options: CompileOptions = {}): CompiledModule {
  const sha256 = pinnedSha256(bytes, source, expectedSha256);
  // Isolation: a work budget and a memory cap, compiled into the module itself.
  if (!instrumented(limits)) {
    const module = compileOriginal(bytes, source);
    return original(module, facts(bytes), source, sha256);
  }
  const opts = instrumentOptions(limits, source);
  const cache = options.cache === undefined ? instrumentedCacheFor() : options.cache;
  const key = cache === null ? '' : InstrumentedCache.key(sha256, opts);
  const hit = cache?.get(key) ?? null;
  const rw = hit ?? rewriteOrExplain(bytes, opts, source);
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(rw.bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    throw instrumentedCompileFailure(bytes, source, err);
  }
  return finish(module, rw, hit !== null, cache, key, opts, facts(bytes), source, sha256);
}

/**
 * compileModule off the main thread where it can be: a cached module is compiled with
 * WebAssembly.compile (validated on V8's background threads), so that WasmHost.create can compile
 * every adapter while it starts and configures the ones before it. Everything up to that call
 * (hash, cache entry read synchronously: a read from the page cache costs less than the event-loop
 * turns of async I/O) runs before the first await, and WebAssembly.compile copies the bytes, so
 * borrowed bytes (options.reread) and a reader's entry are free for the next module once it
 * returns. The same checks, errors and cache entries as compileModule.
 */
export async function compileModuleAsync(bytes: Uint8Array, source = '<bytes>', expectedSha256?: string, limits: ModuleLimits = {}, options: CompileOptions = {}): Promise<CompiledModule> {
  const sha256 = pinnedSha256(bytes, source, expectedSha256);
  const about = facts(bytes);
  const again = (): Uint8Array => options.reread?.() ?? bytes;
  if (!instrumented(limits)) {
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    } catch {
      compileOriginal(again(), source); // throws WASM_MALFORMED with the same message as compileModule
      throw new Error('unreachable');
    }
    return original(module, about, source, sha256);
  }
  const opts = instrumentOptions(limits, source);
  const cache = options.cache === undefined ? instrumentedCacheFor() : options.cache;
  const key = cache === null ? '' : InstrumentedCache.key(sha256, opts);
  const hit = cache === null ? null : cache.get(key, options.entryReader);
  const rw = hit ?? rewriteOrExplain(bytes, opts, source);
  let module: WebAssembly.Module;
  try {
    // After a rewrite, compiled at once: V8's async compile needs the main thread between its
    // steps, which the other modules' rewrites would keep busy (cold start 94 -> 111 ms).
    module = hit === null ? new WebAssembly.Module(rw.bytes as Uint8Array<ArrayBuffer>) : await WebAssembly.compile(rw.bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    throw instrumentedCompileFailure(again(), source, err);
  }
  return finish(module, rw, hit !== null, cache, key, opts, about, source, sha256);
}

/** What CompiledModule keeps of the original bytes. */
interface ByteFacts {
  hasStart: boolean;
  size: number;
}

function facts(bytes: Uint8Array): ByteFacts {
  return { hasStart: hasStartSection(bytes), size: bytes.length };
}

function pinnedSha256(bytes: Uint8Array, source: string, expectedSha256: string | undefined): string {
  applyWasmFlags(); // before V8 sees the first module: its tiering budgets are set when it is compiled
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (expectedSha256 !== undefined && expectedSha256.toLowerCase() !== sha256) {
    throw new HostError(
      'WASM_SHA256_MISMATCH',
      `${source}: sha256 is ${sha256}, config pins ${expectedSha256}; rebuild the module or update the pin`,
      { file: source },
    );
  }
  return sha256;
}

/** Whether `limits` ask for a rewrite (a work budget or a memory cap). */
function instrumented(limits: ModuleLimits): boolean {
  return (limits.metering ?? true) || (limits.maxMemoryMb ?? DEFAULT_MAX_MEMORY_MB) > 0;
}

function original(module: WebAssembly.Module, about: ByteFacts, source: string, sha256: string): CompiledModule {
  return { ...inspect(module, source, null), module, source, metered: false, hostCallsCharged: false, hasStart: about.hasStart, memoryPages: null, maxTableElements: null, sha256, bytes: about.size };
}

/**
 * Only the instrumented module is compiled (that validates it): the original is compiled
 * too only when something fails, so that its own faults are reported first, as their codes say.
 */
function rewriteOrExplain(bytes: Uint8Array, opts: RewriteOptions, source: string): RewriteResult {
  try {
    return rewriteModule(bytes, opts);
  } catch (err) {
    inspect(compileOriginal(bytes, source), source, null);
    throw err;
  }
}

function instrumentedCompileFailure(bytes: Uint8Array, source: string, err: unknown): HostError {
  inspect(compileOriginal(bytes, source), source, null);
  return new HostError('WASM_METERING_UNSUPPORTED', `${source}: the instrumented module does not compile (${(err as Error).message}); set limits.metering: false for this plugin and report the module`, { file: source }, { cause: err });
}

function finish(module: WebAssembly.Module, rw: RewriteResult, cached: boolean, cache: InstrumentedCache | null, key: string, opts: RewriteOptions, about: ByteFacts, source: string, sha256: string): CompiledModule {
  const info = inspect(module, source, addedExports(opts));
  if (cache !== null && !cached) cache.put(key, rw);
  return { ...info, module, source, metered: opts.fuel === true, hostCallsCharged: rw.hostCallsCharged, hasStart: about.hasStart, memoryPages: rw.memory, maxTableElements: opts.maxTableElements!, sha256, bytes: about.size };
}

/** How compileModule instruments a module under `limits` (metering or a memory cap on). */
export function instrumentOptions(limits: ModuleLimits, source = '<bytes>'): RewriteOptions {
  const maxMemoryMb = limits.maxMemoryMb ?? DEFAULT_MAX_MEMORY_MB;
  return {
    fuel: limits.metering ?? true,
    initialFuel: Math.min(limits.startFuel ?? DEFAULT_START_FUEL, MAX_FUEL),
    hostCallFuel: HOST_CALL_FUEL,
    maxMemoryPages: maxMemoryMb > 0 ? Math.max(1, Math.floor((maxMemoryMb * 1024 * 1024) / 65536)) : undefined,
    maxTableElements: limits.maxTableElements ?? DEFAULT_MAX_TABLE_ELEMENTS,
    source,
  };
}

/** The exports vm/metering.ts adds with these options, which are not the module's own. */
function addedExports(opts: RewriteOptions): ReadonlySet<string> {
  const added = new Set<string>();
  if (opts.fuel) added.add(FUEL_EXPORT);
  if (opts.maxMemoryPages !== undefined) added.add(GROW_REFUSED_EXPORT);
  return added;
}

function compileOriginal(bytes: Uint8Array, source: string): WebAssembly.Module {
  try {
    return new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    throw new HostError('WASM_MALFORMED', `${source} is not a valid WebAssembly module: ${(err as Error).message}`, { file: source }, { cause: err });
  }
}

/**
 * The ABI checks on a compiled module: its marker, allocator, memory export and imports.
 * `added` names exports the rewriter added, left out of the module's own.
 */
function inspect(module: WebAssembly.Module, source: string, added: ReadonlySet<string> | null): Pick<CompiledModule, 'abiVersion' | 'exports' | 'unimplementedImports'> {
  const exportNames = new Set<string>();
  for (const e of WebAssembly.Module.exports(module)) if (added === null || !added.has(e.name)) exportNames.add(e.name);
  const marker = ABI_MARKERS.find((m) => exportNames.has(m));
  if (marker === undefined) {
    const other = [...exportNames].find((n) => n.startsWith('proxy_abi_version_'));
    if (other !== undefined) {
      throw new HostError(
        'WASM_ABI_UNSUPPORTED',
        `${source} declares ${other}; this host speaks Proxy-Wasm ABI 0.2.1, 0.2.0 and 0.1.0 — rebuild it with an SDK for one of those`,
        { file: source, marker: other },
      );
    }
    throw new HostError(
      'WASM_ABI_MISSING',
      `${source} exports no proxy_abi_version_* marker, so it is not a Proxy-Wasm module; build it with a proxy-wasm SDK (e.g. wasm-mixer build)`,
      { file: source },
    );
  }
  if (!exportNames.has('proxy_on_memory_allocate') && !exportNames.has('malloc')) {
    throw new HostError(
      'WASM_NO_ALLOCATOR',
      `${source} exports neither proxy_on_memory_allocate nor malloc; the host needs one to pass data to the module`,
      { file: source },
    );
  }
  if (!exportNames.has('memory')) {
    throw new HostError('WASM_MALFORMED', `${source} does not export its memory`, { file: source });
  }
  const abiVersion: AbiVersion = marker === 'proxy_abi_version_0_2_1' ? '0.2.1' : marker === 'proxy_abi_version_0_2_0' ? '0.2.0' : '0.1.0';
  // As cpp-host links them: 0.1.0's stream functions only for 0.1.0 modules, 0.2.x's only for 0.2.x ones.
  const otherAbi = abiVersion === '0.1.0' ? ABI_0_2_ONLY : ABI_0_1_0_ONLY;
  const unknown: string[] = [];
  const unimplemented: string[] = [];
  for (const imp of WebAssembly.Module.imports(module)) {
    const name = `${imp.module}.${imp.name}`;
    const known = imp.kind === 'function' && (imp.module === 'env' || WASI_MODULES.has(imp.module));
    const key = imp.module === 'env' ? imp.name : `wasi.${imp.name}`;
    if (known && imp.module === 'env' && otherAbi.has(key)) {
      unknown.push(`${name} (ABI ${abiVersion === '0.1.0' ? '0.2.x' : '0.1.0'} only; the module declares ${abiVersion})`);
      continue;
    }
    if (known && IMPLEMENTED_IMPORTS.has(key)) continue;
    if (known && KNOWN_UNIMPLEMENTED_IMPORTS.has(key)) {
      unimplemented.push(name);
      continue;
    }
    unknown.push(`${name} (${imp.kind})`);
  }
  if (unknown.length > 0) {
    throw new HostError(
      'WASM_IMPORT_UNKNOWN',
      `${source} imports ${unknown.join(', ')}, which are not part of the Proxy-Wasm ABI or the WASI functions this host provides; remove them (AssemblyScript: build with --use abort=... so env.abort is not imported)`,
      { file: source, imports: unknown },
    );
  }
  return { abiVersion, exports: exportNames, unimplementedImports: unimplemented };
}

/** Whether a (valid) module has a start section (id 8). */
function hasStartSection(bytes: Uint8Array): boolean {
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos++]!;
    let size = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[pos++]!;
      size |= (b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    if (id === 8) return true;
    pos += size >>> 0;
  }
  return false;
}
