// Runs the real `wasm-mixer` command (bin/wasm-mixer.js, the compiled dist/) as a child
// process: wait for a line on stderr, stop it with a signal, and pick free loopback ports.

import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { resolve } from 'node:path';

export const CLI = resolve('bin/wasm-mixer.js');

export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves when stderr has matched `re`; rejects if the process exits first or after timeoutMs. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  /** The exit code (waits for it). */
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

export function startCli(args: string[]): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    stderr: () => err,
    exited,
    waitFor(re, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (re.test(err)) return done(resolve);
          if (child.exitCode !== null) return done(() => reject(new Error(`wasm-mixer ${args.join(' ')} exited ${child.exitCode}: ${err}`)));
        };
        const done = (f: () => void) => {
          clearTimeout(timer);
          child.stderr!.off('data', check);
          child.off('exit', check);
          f();
        };
        const timer = setTimeout(() => done(() => reject(new Error(`timed out waiting for ${re} from wasm-mixer ${args.join(' ')}: ${err}`))), timeoutMs);
        child.stderr!.on('data', check);
        child.on('exit', check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Ports that were free a moment ago (the kernel picks them; the test then binds them itself). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<http.Server>((r) => {
      const s = http.createServer();
      s.listen(0, '127.0.0.1', () => r(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

export function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}
