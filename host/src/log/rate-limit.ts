// Repeated warnings are rate-limited: a crash-looping VM or a down adapter server would
// otherwise log one line per rejected request (thousands a second). Per key — level,
// source, code and the message with its numbers masked — the first `burst` lines of each
// interval are written; the rest are counted, and one line per interval says how many
// similar lines were suppressed (same level, source and code, with `suppressed: N`).
// Only warn and error lines are limited (critical ones are rare state changes). Memory: at most
// `MAX_KEYS` keys per interval.

import { LogLevel } from '../abi/constants.js';
import type { HostLogger } from './logger.js';

export interface LogRateLimit {
  /** The window per key (default 5000 ms); 0 turns rate limiting off. */
  intervalMs?: number;
  /** Lines per key written in each window (default 1). */
  burst?: number;
}

export const DEFAULT_LOG_RATE_LIMIT = { intervalMs: 5000, burst: 1 } as const;
const MAX_KEYS = 1000;
const OVERFLOW_KEY = '\0overflow';

interface Window {
  start: number;
  written: number;
  suppressed: number;
  level: LogLevel;
  source: string;
  code: string | undefined;
  sample: string;
}

export interface RateLimitedLogger extends HostLogger {
  /** Writes the pending "N similar lines suppressed" lines now (on shutdown). */
  flush(): void;
}

export function rateLimitedLogger(inner: HostLogger, opts: LogRateLimit = {}): RateLimitedLogger {
  const intervalMs = opts.intervalMs ?? DEFAULT_LOG_RATE_LIMIT.intervalMs;
  const burst = opts.burst ?? DEFAULT_LOG_RATE_LIMIT.burst;
  const windows = new Map<string, Window>();
  let timer: NodeJS.Timeout | null = null;

  const summarize = (w: Window, now: number) => {
    if (w.suppressed === 0) return;
    const secs = Math.max(1, Math.round((now - w.start) / 1000));
    inner.log(w.level, w.source, `${w.suppressed} similar line(s) suppressed in the last ${secs} s, like: ${w.sample}`, { ...(w.code !== undefined ? { code: w.code } : {}), suppressed: w.suppressed });
  };
  const sweep = (all: boolean) => {
    const now = Date.now();
    for (const [key, w] of windows) {
      if (!all && now - w.start < intervalMs) continue;
      summarize(w, now);
      windows.delete(key);
    }
    if (windows.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };

  return {
    get level() {
      return inner.level;
    },
    log(level, source, message, extra) {
      if (level < inner.level) return;
      // Critical lines are rare state changes (an adapter declared crash-looping, the watchdog): never held back.
      if (level < LogLevel.Warn || level >= LogLevel.Critical || intervalMs <= 0) return inner.log(level, source, message, extra);
      const code = typeof extra?.code === 'string' ? extra.code : undefined;
      let key = `${level}\0${source}\0${code ?? ''}\0${message.slice(0, 300).replace(/\d+/g, '#')}`;
      const now = Date.now();
      let w = windows.get(key);
      if (w !== undefined && now - w.start >= intervalMs) {
        summarize(w, now);
        windows.delete(key);
        w = undefined;
      }
      if (w === undefined) {
        if (windows.size >= MAX_KEYS) {
          // Too many distinct lines in one window: count the rest under one key.
          key = OVERFLOW_KEY;
          w = windows.get(key);
          if (w === undefined) windows.set(key, (w = { start: now, written: burst, suppressed: 0, level, source: 'host', code: 'LOG_SUPPRESSED', sample: message.slice(0, 200) }));
        } else windows.set(key, (w = { start: now, written: 0, suppressed: 0, level, source, code, sample: message.slice(0, 200) }));
        timer ??= setInterval(() => sweep(false), intervalMs).unref();
      }
      if (w.written < burst) {
        w.written++;
        inner.log(level, source, message, extra);
      } else w.suppressed++;
    },
    flush() {
      sweep(true);
    },
  };
}
