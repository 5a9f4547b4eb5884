// host/src has no import cycles (type-only imports count too): dependency-cruiser
// with the rules in .dependency-cruiser.cjs. A cycle fails with the modules in it.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';

const root = fileURLToPath(new URL('../../', import.meta.url));
// The package's own CLI (a devDependency; its exports do not include bin/).
const cli = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

t.test('host/src has no import cycles', async (t) => {
  const run = promisify(execFile);
  const r = await run(process.execPath, [cli, 'host/src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], { cwd: root, encoding: 'utf8' }).catch(
    (err: { stdout?: string; stderr?: string; code?: number }) => ({ stdout: err.stdout ?? '', stderr: `${err.stderr ?? ''} (exit ${err.code})` }),
  );
  t.match(r.stdout, /no dependency violations found/, `dependency-cruiser: ${r.stdout.trim()} ${r.stderr.trim()}`);
  t.notMatch(r.stdout, /no-circular/);
});
