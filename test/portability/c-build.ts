// Builds the C conformance filter (test/portability/c-filter/: filter.c against
// proxy_wasm.h, both written for this suite from the Proxy-Wasm spec) with the
// system's clang and wasm-ld for wasm32, no libc: the third toolchain kind of the
// conformance suite, next to AssemblyScript SDK builds and hand-written WAT.
//
// clang and lld come from Debian (scripts/system-deps.sh, `npm run system-deps`).
// When they are missing the test fails and says so; it is never skipped. Builds are
// cached under the OS temp dir, keyed by the compiler version, flags and sources.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), 'c-filter');
const CACHE = join(tmpdir(), 'wasm-mixer-c-conformance');
const TIMEOUT_MS = 60_000;

/** What the test reports as the toolchain. */
export const C_TOOLCHAIN = 'C, clang + wasm-ld (Debian lld), --target=wasm32 -nostdlib, ABI 0.2.1';

// Freestanding wasm32: no libc, so no memcpy/memset calls may be synthesised
// (-fno-builtin); memory is exported by wasm-ld; there is no _start (--no-entry),
// the filter exports _initialize itself, as an Emscripten reactor does.
const FLAGS = ['--target=wasm32', '-O2', '-nostdlib', '-ffreestanding', '-fno-builtin', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter', '-Wl,--no-entry', '-Wl,--strip-debug'];

function run(cmd: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: TIMEOUT_MS }, (err, out, stderr) => {
      if (err === null) return resolve(String(out));
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        return reject(new Error(`${cmd} is not installed: the C conformance filter is compiled with clang and wasm-ld (lld) at test time; run \`npm run system-deps\` (installs Debian's clang and lld)`));
      }
      reject(new Error(`${cmd} ${args.join(' ')} failed:\n${String(stderr).trim() || err.message}`));
    });
  });
}

let pending: Promise<Uint8Array> | undefined;

/** The compiled C filter's wasm bytes (from the cache, or compiled now). */
export function buildCFilter(): Promise<Uint8Array> {
  return (pending ??= build());
}

async function build(): Promise<Uint8Array> {
  const version = await run('clang', ['--version'], SRC);
  // clang finds wasm-ld by name; say which one is missing before clang's own message does.
  await run('wasm-ld', ['--version'], SRC);
  const h = createHash('sha256').update(JSON.stringify({ version, FLAGS }));
  for (const f of (await readdir(SRC)).sort()) h.update(f).update(await readFile(join(SRC, f)));
  const wasm = join(CACHE, `filter-${h.digest('hex').slice(0, 16)}.wasm`);
  if (existsSync(wasm)) return new Uint8Array(await readFile(wasm));
  await mkdir(CACHE, { recursive: true });
  const tmp = `${wasm}.tmp-${process.pid}-${Date.now()}`;
  try {
    await run('clang', [...FLAGS, '-o', tmp, 'filter.c'], SRC);
    const bytes = new Uint8Array(await readFile(tmp));
    await rename(tmp, wasm); // atomic publish; a concurrent run writes the same bytes
    return bytes;
  } finally {
    await rm(tmp, { force: true });
  }
}
