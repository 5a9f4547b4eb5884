// Builds the conformance filters in test/portability/sdk-filters/ against other
// projects' AssemblyScript SDKs, installed from the npm registry at test time
// (never committed), each with the AssemblyScript version it needs.
//
// Builds are cached under the OS temp dir, keyed by the packages and the filter
// source, so repeated runs take no time. An unreachable registry fails the test
// with a message that says so; it is never skipped.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SdkBuild {
  /** Folder under sdk-filters/ holding assembly/index.ts. */
  readonly filter: string;
  /** What a test calls it. */
  readonly label: string;
  /** Exact npm packages: the SDK and the AssemblyScript it needs. */
  readonly packages: Readonly<Record<string, string>>;
  /** asc arguments after the entry file and before -o. */
  readonly ascArgs: readonly string[];
}

// Unoptimised builds (the SDKs' "untouched"/debug targets): the same code as their
// release builds, compiled in a fraction of the time, which keeps this suite fast.
export const SDK_BUILDS: readonly SdkBuild[] = [
  {
    filter: 'proxy-runtime',
    label: '@solo-io/proxy-runtime 0.1.8 (AssemblyScript 0.14.13)',
    // 0.1.8 is the newest release on the registry; it needs AssemblyScript < 0.18
    // (its malloc imports rt/index-full, removed in 0.18: solo-io/proxy-runtime#52).
    packages: { '@solo-io/proxy-runtime': '0.1.8', assemblyscript: '0.14.13' },
    ascArgs: ['--use', 'abort=abort_proc_exit'],
  },
  {
    filter: 'gcore',
    label: '@gcoredev/proxy-wasm-sdk-as 1.2.3 (AssemblyScript 0.28.20, wasi-shim 0.1.0)',
    packages: { '@gcoredev/proxy-wasm-sdk-as': '1.2.3', assemblyscript: '0.28.20', '@assemblyscript/wasi-shim': '0.1.0' },
    ascArgs: ['--config', 'node_modules/@assemblyscript/wasi-shim/asconfig.json', '--use', 'abort=abort_proc_exit'],
  },
  {
    filter: 'proxy-runtime-0.1.1',
    label: '@solo-io/proxy-runtime 0.1.1 (AssemblyScript 0.9.4, ABI 0.1.0)',
    // The SDK's other release on the registry: an ABI 0.1.0 build. Its package.json
    // asks for assemblyscript ^0.9.1 (devDependencies); 0.9.4 is the newest 0.9.
    packages: { '@solo-io/proxy-runtime': '0.1.1', assemblyscript: '0.9.4' },
    ascArgs: ['--use', 'abort=abort_proc_exit'],
  },
];

const FILTERS = join(dirname(fileURLToPath(import.meta.url)), 'sdk-filters');
const CACHE = join(tmpdir(), 'wasm-mixer-sdk-conformance');
const INSTALL_TIMEOUT_MS = 180_000;
const BUILD_TIMEOUT_MS = 120_000;

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } }, (err, _out, stderr) => {
      if (err === null) return resolve();
      const tail = String(stderr).trim().split('\n').slice(-15).join('\n');
      reject(new Error(`${cmd} ${args.join(' ')} failed in ${cwd}${err.killed ? ` (killed after ${timeoutMs} ms)` : ''}:\n${tail || err.message}`));
    });
  });
}

async function sourceDigest(b: SdkBuild): Promise<string> {
  const h = createHash('sha256').update(JSON.stringify({ packages: b.packages, asc: b.ascArgs, v: 1 }));
  const dir = join(FILTERS, b.filter, 'assembly');
  for (const f of (await readdir(dir)).sort()) h.update(f).update(await readFile(join(dir, f)));
  return h.digest('hex').slice(0, 16);
}

const pending = new Map<string, Promise<Uint8Array>>();

/** The built filter's wasm bytes (from the cache, or installed and built now). */
export function buildSdkFilter(b: SdkBuild): Promise<Uint8Array> {
  let p = pending.get(b.filter);
  if (p === undefined) {
    p = build(b);
    pending.set(b.filter, p);
  }
  return p;
}

async function build(b: SdkBuild): Promise<Uint8Array> {
  const key = `${b.filter}-${await sourceDigest(b)}`;
  const done = join(CACHE, key);
  const wasm = join(done, 'filter.wasm');
  if (existsSync(wasm)) return new Uint8Array(await readFile(wasm));
  const work = `${done}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(work, { recursive: true });
  try {
    await writeFile(join(work, 'package.json'), JSON.stringify({ name: `sdk-conformance-${b.filter}`, private: true, dependencies: b.packages }));
    try {
      await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', '--no-package-lock'], work, INSTALL_TIMEOUT_MS);
    } catch (err) {
      throw new Error(
        `cannot install ${Object.entries(b.packages).map(([n, v]) => `${n}@${v}`).join(', ')} from the npm registry; ` +
          `the SDK conformance suite needs it (registry: ${process.env.npm_config_registry ?? 'npm default'}).\n${(err as Error).message}`,
      );
    }
    await cp(join(FILTERS, b.filter, 'assembly'), join(work, 'assembly'), { recursive: true });
    const asc = existsSync(join(work, 'node_modules/assemblyscript/bin/asc.js')) ? 'bin/asc.js' : 'bin/asc';
    await run(process.execPath, [join(work, 'node_modules/assemblyscript', asc), 'assembly/index.ts', ...b.ascArgs, asc === 'bin/asc' ? '-b' : '-o', 'filter.wasm'], work, BUILD_TIMEOUT_MS);
    const bytes = new Uint8Array(await readFile(join(work, 'filter.wasm')));
    // Publish atomically: only the wasm is kept, under its key.
    const stage = `${work}.out`;
    await mkdir(stage);
    await writeFile(join(stage, 'filter.wasm'), bytes);
    await rename(stage, done).catch(() => rm(stage, { recursive: true, force: true })); // a concurrent run won: same bytes
    return bytes;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
