// An embedder that stays in process never loads the gRPC stack (host/src/oop/index.ts
// promises it): importing the package must not load @grpc/grpc-js. Checked in a
// child process, on the built package (dist/, as `npm run build` leaves it).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** The @grpc/* files in the CommonJS module cache after importing `entry` (grpc-js is CommonJS, so it lands there). */
function grpcFilesLoadedBy(entry: string): string[] {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(new URL(entry, `file://${root}/`).href)});
    const cache = createRequire(import.meta.url).cache;
    console.log(JSON.stringify(Object.keys(cache).filter((k) => k.includes('/@grpc/'))));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!) as string[];
}

t.test('importing the package does not load @grpc/grpc-js', async (t) => {
  t.same(grpcFilesLoadedBy('dist/host/src/index.js'), [], 'no @grpc module in the cache');
});

t.test('the check sees grpc-js when a module does load it', async (t) => {
  t.ok(grpcFilesLoadedBy('dist/host/src/oop/client.js').some((f) => f.includes('/@grpc/grpc-js/')), 'oop/client.js loads grpc-js');
});
