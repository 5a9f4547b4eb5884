// Logging through proxy_log, gated on the host's level (proxy_get_log_level).
// The level is fetched at most once per callback: the dispatcher forgets it
// when a callback starts, so a level change on the host applies from the next
// callback on.

import { LogLevel } from "./abi/constants";
import * as host from "./hostcalls";

let cachedLevel: i32 = -1;

/** Forget the cached host log level (the dispatcher calls this on every callback). */
export function resetLogLevelCache(): void {
  cachedLevel = -1;
}

export namespace log {
  /** The host's current level (cached per callback). */
  export function level(): LogLevel {
    if (cachedLevel < 0) cachedLevel = host.getLogLevel();
    return <LogLevel>cachedLevel;
  }

  /** Whether a message at `l` would be logged; use it to skip building expensive messages. */
  export function enabled(l: LogLevel): bool {
    return <i32>l >= <i32>level();
  }

  export function write(l: LogLevel, message: string): void {
    if (enabled(l)) host.log(<i32>l, message);
  }

  export function trace(message: string): void { write(LogLevel.Trace, message); }
  export function debug(message: string): void { write(LogLevel.Debug, message); }
  export function info(message: string): void { write(LogLevel.Info, message); }
  export function warn(message: string): void { write(LogLevel.Warn, message); }
  export function error(message: string): void { write(LogLevel.Error, message); }
  export function critical(message: string): void { write(LogLevel.Critical, message); }
}
