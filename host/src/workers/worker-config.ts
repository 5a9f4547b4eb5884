// What a worker runs of the proxy's config, and how many workers there are.

import { availableParallelism } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import type { MixerConfig } from '../config/schema.js';
import { HostError } from '../errors.js';

export const MAX_WORKERS = 256;

/** `workers` from the command line (wins) or the config; "auto" and the default are one per core. */
export function resolveWorkers(cli: string | undefined, config: MixerConfig): number {
  const v: unknown = cli ?? config.workers ?? 'auto';
  if (v === 'auto') return Math.max(1, Math.min(MAX_WORKERS, availableParallelism()));
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) {
    throw new HostError('USAGE', `--workers must be "auto" or a whole number from 1 to ${MAX_WORKERS}, got "${String(v)}"`);
  }
  return n;
}

/**
 * The config a worker runs: no admin port and no file watch (the primary owns
 * them), its own access-log files (`access.log` → `access.w2.log`: rotation by
 * size cannot be shared between processes) and, with OTLP, a resource attribute
 * naming the worker so its series do not overwrite another worker's.
 */
export function workerView(config: MixerConfig, id: number, workers: number): MixerConfig {
  const c: MixerConfig = { ...config, admin: undefined, reload: config.reload ? { ...config.reload, watch: false } : undefined };
  if (workers <= 1) return c;
  if (config.accessLog?.sinks) {
    c.accessLog = { ...config.accessLog, sinks: config.accessLog.sinks.map((s) => (s.type === 'file' && s.path ? { ...s, path: perWorkerPath(s.path, id) } : s)) };
  }
  if (config.otlp) c.otlp = { ...config.otlp, resource: { ...config.otlp.resource, 'wasm_mixer.worker': String(id) } };
  return c;
}

export function perWorkerPath(path: string, id: number): string {
  const ext = extname(path);
  return join(dirname(path), `${basename(path, ext)}.w${id}${ext}`);
}
