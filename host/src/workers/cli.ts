// `wasm-mixer proxy --workers N`: the command-line side of the multi-worker proxy.

import type { MixerConfig } from '../config/schema.js';
import { HostError } from '../errors.js';
import { startPrimary } from './primary.js';

/** Takes `--workers N` / `--workers=N` out of the proxy's arguments (the rest are parsed as before). */
export function takeWorkersFlag(args: string[]): { workers: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let workers: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--workers') {
      const v = args[i + 1];
      if (v === undefined || v.startsWith('--')) throw new HostError('USAGE', '--workers needs a value: a number of processes, or "auto" (one per core)');
      workers = v;
      i++;
    } else if (a.startsWith('--workers=')) workers = a.slice('--workers='.length);
    else rest.push(a);
  }
  return { workers, rest };
}

/** Runs the primary until SIGINT/SIGTERM (drains every worker) ; SIGHUP reloads all workers or none. */
export async function runPrimaryCommand(
  config: MixerConfig,
  opts: { workers: number; baseDir: string; configFile?: string; port?: number; adminPort?: number },
  waitForSignal: () => Promise<void>,
): Promise<number> {
  const primary = await startPrimary(config, opts);
  const onHup = () => void primary.reload('SIGHUP').catch(() => {}); // logged; the old config keeps serving
  process.on('SIGHUP', onHup);
  console.error(`wasm-mixer proxy listening on http://${config.listen?.address ?? '127.0.0.1'}:${primary.port}${primary.adminPort !== null ? ` (admin http://127.0.0.1:${primary.adminPort})` : ''}; ${opts.workers} workers`);
  await waitForSignal();
  console.error('wasm-mixer: shutting down, draining in-flight requests in every worker');
  process.off('SIGHUP', onHup);
  await primary.close();
  return 0;
}
