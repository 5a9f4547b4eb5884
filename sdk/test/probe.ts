// Builds the SDK probe adapter once per test process.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAdapter, type BuildResult } from '../../host/src/build/build-adapter.js';

const here = dirname(fileURLToPath(import.meta.url));

export async function buildFixture(name: string): Promise<{ built: BuildResult; cleanup: () => Promise<void> }> {
  const out = await mkdtemp(join(tmpdir(), `sdk-${name}-`));
  const built = await buildAdapter(join(here, 'fixtures', name), { outDir: out });
  return { built, cleanup: () => rm(out, { recursive: true, force: true }) };
}
