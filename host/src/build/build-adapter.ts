// Builds AssemblyScript adapters into Proxy-Wasm ABI v0.2.1 modules.
//
//   buildAdapter('adapters/header-check')  ->  wasm/header-check.wasm
//
// An adapter folder holds assembly/index.ts (and optionally adapter.json with
// {"name": "...", "maxMemoryPages": N, "initialMemoryPages": N}). Its code imports the SDK as
// "wasm-mixer/sdk" and re-exports "wasm-mixer/sdk/exports". Those names
// resolve the way AssemblyScript resolves packages: first through
// node_modules/wasm-mixer (an adapter project that installed the npm package),
// and otherwise to the SDK of the wasm-mixer package running this build (so
// the adapters inside this repository need no node_modules of their own).
//
// Compiler flags and why (see sdk/README.md, "Build"):
//   -O3                       speed over size (adapters are small; calls are hot)
//   --runtime incremental     adapters allocate; stub never frees, minimal needs host-driven __collect
//   --use abort=mixer_abort   no env.abort import: the SDK logs CRITICAL via proxy_log and traps
//   --use seed=mixer_seed     Math.random seeds from WASI random_get, not env.seed
//   --use trace=mixer_trace   trace() logs at debug via proxy_log, not env.trace
//   --maximumMemory N         caps linear memory (default 256 pages = 16 MiB)
//   --initialMemory 16        1 MiB to start with (at most the cap; adapter.json "initialMemoryPages"
//                             sets another). AssemblyScript's collector starts its first cycle once
//                             half the initial heap is allocated: with the 2 pages asc would give, that
//                             was ~45 kB into every adapter's configure (parsing its JSON config), so
//                             each start ran, and V8 compiled, the collector's ~26 functions
//                             (bench/micro/startup.js: ~280 fewer page faults for the four without).
//                             The first cycle now comes with the requests; pages never touched cost nothing.
//   --exportStart _initialize top-level code (adapter registration, globals) runs when the host
//                             calls _initialize after instantiation (WASI reactor convention,
//                             which cpp-host and our host follow), not in the wasm start section:
//                             memory is then reachable, so hostcalls such as an abort's log line
//                             work during initialisation, and the host can meter it like a callback
//   no --bindings, no --exportRuntime: the host speaks Proxy-Wasm, not the AS loader protocol
//   assertions kept (no --noAssert): a failed assert traps with a logged message
//     instead of silently continuing in policy code
// After compiling, the module's imports and exports are checked; a module that
// would not load in a Proxy-Wasm host is reported as BUILD_FAILED and not written.

import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';
import { HostError } from '../errors.js';

export interface BuildOptions {
  /** Where NAME.wasm goes. Default: the `wasm/` folder of the nearest project root (a folder with package.json) at or above DIR. */
  outDir?: string;
  /** Unoptimized build with debug names and a source map (NAME.wasm.map). */
  debug?: boolean;
}

export interface BuildResult {
  name: string;
  wasmPath: string;
  bytes: number;
  /** Compiler warnings, if any (the build still succeeded). */
  warnings: string[];
}

/** Default memory cap in 64 KiB pages. */
export const DEFAULT_MAX_MEMORY_PAGES = 256;

/** Initial memory in 64 KiB pages (see --initialMemory above), lowered to the cap if that is smaller. */
export const INITIAL_MEMORY_PAGES = 16;

/** The abort/seed/trace replacements the SDK provides (sdk/assembly/runtime.ts). */
export const SDK_GLOBAL_ALIASES = ['abort=mixer_abort', 'seed=mixer_seed', 'trace=mixer_trace'] as const;

/** Exports every adapter module must have. */
const REQUIRED_EXPORTS = ['proxy_abi_version_0_2_1', 'proxy_on_memory_allocate', 'malloc', 'proxy_on_context_create', 'memory'];

/** The export that runs the module's top-level code (see --exportStart above). */
export const INIT_EXPORT = '_initialize';

/** Hints for imports AssemblyScript emits when an adapter uses something the host does not provide. */
const IMPORT_HINTS: Record<string, string> = {
  'env.abort': 'build with --use abort=mixer_abort (buildAdapter does) and import the SDK',
  'env.seed': 'Math.random needs the SDK (it routes seed to WASI random_get)',
  'env.trace': 'use log.debug() from the SDK',
  'env.Date.now': 'use now() from the SDK (nanoseconds)',
};

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

let cachedPackageRoot: string | null = null;

/** The root of the wasm-mixer package this code belongs to (works from host/src and from dist/). */
export function packageRoot(): string {
  if (cachedPackageRoot !== null) return cachedPackageRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && existsSync(join(dir, 'sdk', 'index.ts'))) {
      cachedPackageRoot = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new HostError('BUILD_FAILED', 'cannot locate the wasm-mixer package (sdk/index.ts) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

function projectRootOf(dir: string): string {
  let d = resolve(dir);
  for (;;) {
    if (existsSync(join(d, 'package.json'))) return d;
    const up = dirname(d);
    if (up === d) return process.cwd();
    d = up;
  }
}

interface AdapterManifest {
  name?: string;
  maxMemoryPages?: number;
  initialMemoryPages?: number;
}

async function readManifest(dir: string): Promise<AdapterManifest> {
  const file = join(dir, 'adapter.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return {};
  }
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw new HostError('BUILD_FAILED', `${file}: not valid JSON: ${(err as Error).message}`, { file });
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new HostError('BUILD_FAILED', `${file}: must be a JSON object`, { file });
  const o = m as Record<string, unknown>;
  const out: AdapterManifest = {};
  if (o.name !== undefined) {
    if (typeof o.name !== 'string' || !NAME_RE.test(o.name)) {
      throw new HostError('BUILD_FAILED', `${file}: "name" must be a string of letters, digits, ".", "_" or "-"`, { file });
    }
    out.name = o.name;
  }
  if (o.maxMemoryPages !== undefined) {
    if (typeof o.maxMemoryPages !== 'number' || !Number.isInteger(o.maxMemoryPages) || o.maxMemoryPages < 1 || o.maxMemoryPages > 16384) {
      throw new HostError('BUILD_FAILED', `${file}: "maxMemoryPages" must be an integer from 1 to 16384 (64 KiB pages)`, { file });
    }
    out.maxMemoryPages = o.maxMemoryPages;
  }
  if (o.initialMemoryPages !== undefined) {
    const max = out.maxMemoryPages ?? DEFAULT_MAX_MEMORY_PAGES;
    if (typeof o.initialMemoryPages !== 'number' || !Number.isInteger(o.initialMemoryPages) || o.initialMemoryPages < 1 || o.initialMemoryPages > max) {
      throw new HostError('BUILD_FAILED', `${file}: "initialMemoryPages" must be an integer from 1 to ${max} (64 KiB pages, at most "maxMemoryPages")`, { file });
    }
    out.initialMemoryPages = o.initialMemoryPages;
  }
  return out;
}

/**
 * Checks that compiled bytes form a loadable adapter: imports only env.proxy_*
 * (plus WASI random_get), and the ABI marker, allocator and callbacks exported.
 * Returns the problems found (empty when fine).
 */
export function checkAdapterModule(bytes: Uint8Array): string[] {
  const problems: string[] = [];
  let mod: WebAssembly.Module;
  try {
    mod = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    return [`not a valid wasm module: ${(err as Error).message}`];
  }
  for (const imp of WebAssembly.Module.imports(mod)) {
    const key = `${imp.module}.${imp.name}`;
    const ok = (imp.module === 'env' && imp.name.startsWith('proxy_') && imp.kind === 'function') || key === 'wasi_snapshot_preview1.random_get';
    if (!ok) problems.push(`imports ${key}, which a Proxy-Wasm host does not provide` + (IMPORT_HINTS[key] ? ` (${IMPORT_HINTS[key]})` : ''));
  }
  const exports = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
  const missing = REQUIRED_EXPORTS.filter((e) => !exports.has(e));
  if (missing.length > 0) {
    problems.push(`does not export ${missing.join(', ')}: assembly/index.ts must contain  export * from "wasm-mixer/sdk/exports";`);
  }
  const hasStartSection = hasSection(bytes, 8);
  if (hasStartSection) problems.push(`has a wasm start section: build with --exportStart ${INIT_EXPORT} so the host runs initialisation after linking`);
  return problems;
}

/** Whether a module has a section with this id (8 = start). */
function hasSection(bytes: Uint8Array, id: number): boolean {
  let pos = 8;
  while (pos < bytes.length) {
    const sid = bytes[pos++]!;
    let size = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[pos++]!;
      size |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
    }
    if (sid === id) return true;
    pos += size >>> 0;
  }
  return false;
}

/** Compiles one adapter folder to OUT/NAME.wasm. Throws HostError BUILD_FAILED with the compiler's diagnostics. */
export async function buildAdapter(dir: string, opts: BuildOptions = {}): Promise<BuildResult> {
  const adapterDir = resolve(dir);
  const entry = join(adapterDir, 'assembly', 'index.ts');
  if (!existsSync(entry)) {
    throw new HostError('BUILD_FAILED', `${adapterDir} is not an adapter folder: assembly/index.ts not found`, { dir: adapterDir });
  }
  const manifest = await readManifest(adapterDir);
  const name = manifest.name ?? basename(adapterDir);
  if (!NAME_RE.test(name)) {
    throw new HostError('BUILD_FAILED', `adapter name "${name}" (from the folder name) must be letters, digits, ".", "_" or "-"; set "name" in adapter.json`, { dir: adapterDir });
  }
  const outDir = resolve(opts.outDir ?? join(projectRootOf(adapterDir), 'wasm'));
  const wasmPath = join(outDir, `${name}.wasm`);

  // "wasm-mixer/..." imports that node_modules does not satisfy are looked up
  // under this (nonexistent) folder, which readFile maps onto our package root.
  const pkgRoot = packageRoot();
  const virtualPackages = join(pkgRoot, '.wasm-mixer-packages');
  const virtualSelf = join(virtualPackages, 'wasm-mixer') + sep;

  const args = [
    join('assembly', 'index.ts'),
    '--outFile', `${name}.wasm`,
    '--baseDir', adapterDir,
    '--runtime', 'incremental',
    '--exportStart', INIT_EXPORT,
    '--maximumMemory', String(manifest.maxMemoryPages ?? DEFAULT_MAX_MEMORY_PAGES),
    '--initialMemory', String(manifest.initialMemoryPages ?? Math.min(INITIAL_MEMORY_PAGES, manifest.maxMemoryPages ?? DEFAULT_MAX_MEMORY_PAGES)),
    '--path', virtualPackages,
    '--noColors',
    ...SDK_GLOBAL_ALIASES.flatMap((u) => ['--use', u]),
    ...(opts.debug ? ['--debug', '-O0', '--sourceMap'] : ['-O3']),
  ];

  const outputs = new Map<string, Uint8Array | string>();
  const stderr = asc.createMemoryStream();
  const stdout = asc.createMemoryStream();
  let result: Awaited<ReturnType<typeof asc.main>>;
  try {
    result = await asc.main(args, {
      stdout,
      stderr,
      readFile: async (filename, baseDir) => {
        let file = resolve(baseDir, filename);
        if (file.startsWith(virtualSelf)) file = join(pkgRoot, file.slice(virtualSelf.length));
        try {
          return await readFile(file, 'utf8');
        } catch {
          return null;
        }
      },
      writeFile: (filename, contents) => {
        outputs.set(basename(filename), contents);
      },
    });
  } catch (err) {
    throw new HostError('BUILD_FAILED', `${name}: the AssemblyScript compiler crashed: ${(err as Error).message}`, { dir: adapterDir }, { cause: err });
  }
  const diagnostics = stderr.toString().trim();
  if (result.error) {
    throw new HostError('BUILD_FAILED', `${name}: compilation failed\n${diagnostics || result.error.message}`, {
      dir: adapterDir,
      diagnostics,
    });
  }
  const binary = outputs.get(`${name}.wasm`);
  if (!(binary instanceof Uint8Array)) {
    throw new HostError('BUILD_FAILED', `${name}: the compiler produced no binary\n${diagnostics}`, { dir: adapterDir, diagnostics });
  }
  const problems = checkAdapterModule(binary);
  if (problems.length > 0) {
    throw new HostError('BUILD_FAILED', `${name}: the module would not load in a Proxy-Wasm host:\n  ${problems.join('\n  ')}`, {
      dir: adapterDir,
      problems,
    });
  }

  await mkdir(outDir, { recursive: true });
  for (const [file, contents] of outputs) {
    // write-then-rename so a host watching the folder never reads half a file
    const target = join(outDir, file);
    const tmp = `${target}.${process.pid}.tmp`;
    await writeFile(tmp, contents);
    await rename(tmp, target);
  }
  const warnings = diagnostics === '' ? [] : diagnostics.split(/\n\s*\n/).map((w) => w.trim()).filter((w) => w !== '');
  return { name, wasmPath, bytes: binary.byteLength, warnings };
}

/** Builds every folder of ROOT/adapters that has assembly/index.ts, in name order, into ROOT/wasm (or opts.outDir). */
export async function buildAllAdapters(root: string, opts: BuildOptions = {}): Promise<BuildResult[]> {
  const adaptersDir = resolve(root, 'adapters');
  let entries: string[];
  try {
    entries = (await readdir(adaptersDir)).sort();
  } catch {
    throw new HostError('BUILD_FAILED', `${adaptersDir}: no adapters folder`, { dir: adaptersDir });
  }
  const results: BuildResult[] = [];
  for (const e of entries) {
    const dir = join(adaptersDir, e);
    if (!(await stat(dir)).isDirectory() || !existsSync(join(dir, 'assembly', 'index.ts'))) continue;
    results.push(await buildAdapter(dir, { outDir: opts.outDir ?? join(resolve(root), 'wasm'), debug: opts.debug }));
  }
  return results;
}
