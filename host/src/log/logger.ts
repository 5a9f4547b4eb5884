// The host's log sink for adapter logs (proxy_log, WASI stdout/stderr) and its own
// events. JSON lines on stderr by default; tests and embedders pass their own sink.

import { LOG_LEVEL_NAMES, LogLevel, type LogLevelName } from '../abi/constants.js';

export interface LogRecord {
  time: string;
  level: LogLevelName;
  /** The adapter, or "host". */
  source: string;
  message: string;
  code?: string;
  [extra: string]: unknown;
}

export type LogSink = (record: LogRecord) => void;

export interface HostLogger {
  log(level: LogLevel, source: string, message: string, extra?: Record<string, unknown>): void;
  readonly level: LogLevel;
}

export function parseLogLevel(name: string): LogLevel {
  const i = LOG_LEVEL_NAMES.indexOf(name as LogLevelName);
  if (i < 0) throw new Error(`unknown log level "${name}"; use one of ${LOG_LEVEL_NAMES.join(', ')}`);
  return i as LogLevel;
}

export const stderrSink: LogSink = (r) => {
  process.stderr.write(JSON.stringify(r) + '\n');
};

export function createLogger(level: LogLevel = LogLevel.Info, sink: LogSink = stderrSink): HostLogger {
  return {
    level,
    log(l, source, message, extra) {
      if (l < level) return;
      sink({ time: new Date().toISOString(), level: LOG_LEVEL_NAMES[l]!, source, message, ...extra });
    },
  };
}
