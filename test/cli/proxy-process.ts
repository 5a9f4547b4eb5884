// The real CLI's proxy command (`node bin/wasm-mixer.js proxy --config FILE`) as a child
// process, for tests that need a whole process (workers, Redis failover, signals).

import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from '../oop/helpers.js';

export interface CliProxy {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly adminPort: number;
  stderr(): string;
  /** SIGTERM, then waits for the exit code (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Writes `config` to DIR/NAME.json and runs the real CLI on it (cwd `cwd`, default `dir`);
 * resolves once it prints its proxy and admin ports.
 */
export async function startProxyCli(config: unknown, dir: string, name = 'proxy', { timeoutMs = 45_000, cwd = dir }: { timeoutMs?: number; cwd?: string } = {}): Promise<CliProxy> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  const proc = spawn(process.execPath, [join(ROOT, 'bin', 'wasm-mixer.js'), 'proxy', '--config', file], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r((exitCode = code))));
  const ports = await new Promise<[number, number]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start in ${timeoutMs} ms: ${err}`)), timeoutMs);
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on http:\/\/[^:]+:(\d+) \(admin http:\/\/127\.0\.0\.1:(\d+)\)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve([Number(m[1]), Number(m[2])]);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`proxy exited with ${code}: ${err}`));
    });
  });
  return {
    proc,
    port: ports[0],
    adminPort: ports[1],
    stderr: () => err,
    stop: async (graceMs = 20_000) => {
      if (exitCode !== undefined) return exitCode;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
