// `wasm-mixer proxy --workers N`: the command-line side of the multi-worker proxy.

import type { MixerConfig } from '../config/schema.js';
import { startPrimary } from './primary.js';

/** Runs the primary until SIGINT/SIGTERM (drains every worker) ; SIGHUP reloads all workers or none. */
export async function runPrimaryCommand(
  config: MixerConfig,
  opts: { workers: number; baseDir: string; configFile?: string; configOverride?: (c: MixerConfig) => MixerConfig },
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
