// Builds the native conformance filters in test/portability/native-filters/, written
// for this suite from the Proxy-Wasm spec, with Debian's LLVM toolchain:
//   C    filter.c against proxy_wasm.h: clang + wasm-ld for wasm32, no libc;
//   C++  filter.cc + context.cc (a small C++ layer over proxy_wasm.h): clang++ with
//        libc++ and wasi-libc for wasm32-wasi, a WASI reactor, the toolchain shape
//        of a C++ SDK build;
//   Rust filter.rs, straight against the ABI: Debian's rustc for wasm32-wasi, a
//        cdylib, the module shape of a Rust SDK build.
// The other toolchain kinds of the conformance suite are AssemblyScript SDK builds
// (sdk-build.ts) and hand-written WAT.
//
// The compilers and the wasm32 libraries come from Debian (scripts/system-deps.sh,
// `npm run system-deps`). When they are missing the test fails and says so; it is
// never skipped. Builds are cached under the OS temp dir, keyed by the compiler
// version, the flags and the sources.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), 'native-filters');
const CACHE = join(tmpdir(), 'wasm-mixer-c-conformance');
const TIMEOUT_MS = 120_000;
const SYSTEM_DEPS = 'run `npm run system-deps` (installs Debian\'s clang, lld, libc++-dev-wasm32, libclang-rt-dev-wasm32, rustc and libstd-rust-dev-wasm32)';

export interface NativeBuild {
  readonly name: string;
  /** What a test calls it. */
  readonly label: string;
  readonly compiler: 'clang' | 'clang++' | typeof DEBIAN_RUSTC;
  readonly args: readonly string[];
  /** The files under native-filters/ it reads: the cache key. */
  readonly inputs: readonly string[];
}

// Debian's, by path: a rustup toolchain earlier on PATH usually has no wasm32 std.
const DEBIAN_RUSTC = '/usr/bin/rustc';

const WARNINGS = ['-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter'];

export const C_BUILD: NativeBuild = {
  name: 'c',
  label: 'C, clang + wasm-ld (Debian lld), --target=wasm32 -nostdlib, ABI 0.2.1',
  compiler: 'clang',
  // Freestanding: no memcpy/memset calls may be synthesised (-fno-builtin); wasm-ld
  // exports memory; no _start (--no-entry): the filter exports _initialize itself.
  args: ['--target=wasm32', '-O2', '-nostdlib', '-ffreestanding', '-fno-builtin', ...WARNINGS, '-Wl,--no-entry', '-Wl,--strip-debug', 'filter.c'],
  inputs: ['filter.c', 'proxy_wasm.h'],
};

export const CXX_BUILD: NativeBuild = {
  name: 'cxx',
  label: 'C++17, clang++ + libc++ + wasi-libc (Debian), --target=wasm32-wasi reactor, ABI 0.2.1',
  compiler: 'clang++',
  // -mexec-model=reactor: wasi-libc's crt1-reactor exports _initialize, which runs the
  // static constructors (the registrations); malloc is exported as C++ SDK builds do.
  args: ['--target=wasm32-wasi', '--sysroot=/usr', '-mexec-model=reactor', '-O2', '-std=c++17', '-fno-exceptions', ...WARNINGS, '-Wl,--export=malloc', '-Wl,--strip-debug', 'context.cc', 'filter.cc'],
  inputs: ['context.cc', 'context.hpp', 'filter.cc', 'proxy_wasm.h'],
};

export const RUST_BUILD: NativeBuild = {
  name: 'rust',
  label: 'Rust 2021, Debian rustc + libstd-rust-dev-wasm32, --target wasm32-wasi cdylib, ABI 0.2.1',
  compiler: DEBIAN_RUSTC,
  args: ['--edition', '2021', '--target', 'wasm32-wasi', '--crate-type', 'cdylib', '-C', 'opt-level=2', '-C', 'panic=abort', '-C', 'strip=debuginfo', '-D', 'warnings', 'filter.rs'],
  inputs: ['filter.rs'],
};

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: SRC, timeout: TIMEOUT_MS }, (err, out, stderr) => {
      if (err === null) return resolve(String(out));
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new Error(`${cmd} is not installed: the native conformance filters are compiled at test time; ${SYSTEM_DEPS}`));
      }
      reject(new Error(`${cmd} ${args.join(' ')} failed${err.killed ? ` (killed after ${TIMEOUT_MS} ms)` : ''}:\n${String(stderr).trim() || err.message}\n(if a header or library for wasm32 is missing: ${SYSTEM_DEPS})`));
    });
  });
}

const pending = new Map<string, Promise<Uint8Array>>();

/** The built filter's wasm bytes (from the cache, or compiled now). */
export function buildNativeFilter(b: NativeBuild): Promise<Uint8Array> {
  let p = pending.get(b.name);
  if (p === undefined) {
    p = build(b);
    pending.set(b.name, p);
  }
  return p;
}

async function build(b: NativeBuild): Promise<Uint8Array> {
  const version = await run(b.compiler, ['--version']);
  // clang finds wasm-ld by name; say which one is missing before clang's own message does.
  await run('wasm-ld', ['--version']);
  const h = createHash('sha256').update(JSON.stringify({ version, b }));
  for (const f of b.inputs) h.update(f).update(await readFile(join(SRC, f)));
  const wasm = join(CACHE, `${b.name}-${h.digest('hex').slice(0, 16)}.wasm`);
  if (existsSync(wasm)) return new Uint8Array(await readFile(wasm));
  await mkdir(CACHE, { recursive: true });
  const tmp = `${wasm}.tmp-${process.pid}-${Date.now()}`;
  try {
    await run(b.compiler, [...b.args, '-o', tmp]);
    const bytes = new Uint8Array(await readFile(tmp));
    await rename(tmp, wasm); // atomic publish; a concurrent run writes the same bytes
    return bytes;
  } finally {
    await rm(tmp, { force: true });
  }
}
