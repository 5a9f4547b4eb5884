// What an adapter writes: WASI stdout/stderr cut into whole lines, the
// credential scrubbing of guest log lines, and the warning when the per-callback
// log bounds (plugin/guest-log-budget.ts) dropped lines.

import { LogLevel } from '../abi/constants.js';
import type { HeaderPair } from '../abi/pairs.js';
import type { HostLogger } from '../log/logger.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import { MAX_FD_WRITE_BYTES } from '../limits.js';
import type { GuestLogBudget } from './guest-log-budget.js';

/** Partial stdout (fd 1) and stderr (fd 2) lines waiting for their newline. */
export class StdioLines {
  private readonly partial: Record<number, string> = { 1: '', 2: '' };

  /** Bytes held in partial lines (host-memory accounting). */
  get bufferedBytes(): number {
    return (this.partial[1]?.length ?? 0) + (this.partial[2]?.length ?? 0);
  }

  /** Appends chunks to fd's partial line and emits every whole line (and an over-long partial one). */
  write(fd: number, chunks: Uint8Array[], emit: (line: string) => void): void {
    let text = this.partial[fd]! + chunks.map((c) => Buffer.from(c).toString('utf8')).join('');
    let nl: number;
    let from = 0;
    while ((nl = text.indexOf('\n', from)) >= 0) {
      emit(text.slice(from, nl));
      from = nl + 1;
    }
    text = text.slice(from);
    if (text.length >= MAX_FD_WRITE_BYTES) {
      emit(text);
      text = '';
    }
    this.partial[fd] = text;
  }
}

const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'api-key', 'x-auth-token']);

/** Masks the values of this request's authorization/cookie/API-key headers in a guest log line. */
export function scrubRequestCredentials(message: string, headers: readonly HeaderPair[]): string {
  let out = message;
  for (const [k, v] of headers) {
    if (!CREDENTIAL_HEADERS.has(k) || v.length < 4) continue;
    const parts = [v];
    if (k === 'cookie') for (const c of v.split(';')) parts.push(c.trim(), c.slice(c.indexOf('=') + 1).trim());
    else {
      const sp = v.indexOf(' ');
      if (sp > 0) parts.push(v.slice(sp + 1));
    }
    for (const p of parts) if (p.length >= 4 && out.includes(p)) out = out.split(p).join('[redacted]');
  }
  return out;
}

/** Counts log lines dropped by the per-callback budget; says so at most once a minute per VM. */
export class DroppedLogReporter {
  private lastWarn = 0;

  constructor(
    private readonly adapter: string,
    private readonly metrics: MetricsRegistry,
    private readonly logger: HostLogger,
  ) {}

  report(b: GuestLogBudget): void {
    const name = this.adapter;
    this.metrics.counter('wasm_mixer_adapter_log_dropped_total', 'Adapter log lines dropped by the per-callback log bounds.', { adapter: name })(b.droppedLines);
    this.metrics.counter('wasm_mixer_adapter_log_dropped_bytes_total', 'Adapter log bytes dropped or cut by the log bounds.', { adapter: name })(b.droppedBytes);
    const now = Date.now();
    if (now - this.lastWarn < 60_000) return;
    this.lastWarn = now;
    this.logger.log(LogLevel.Warn, name, `adapter ${name} logged more than the per-callback bounds (lines, bytes) allow: ${b.droppedLines} lines and ${b.droppedBytes} bytes dropped or cut in one callback (counted in wasm_mixer_adapter_log_dropped_total; this warning repeats at most once a minute)`, { code: 'VM_HOST_LIMIT' });
  }
}
