// Per-callback bounds on what an adapter may log (proxy_log and WASI stdout/
// stderr): at most MAX_LOG_LINES_PER_CALLBACK lines and MAX_LOG_BYTES_PER_CALLBACK
// bytes per guest callback, each line cut at MAX_LOG_MESSAGE_BYTES. Lines past
// the budget are not even decoded; they are counted and reported once per
// callback (and in wasm_mixer_adapter_log_dropped_total).

import { MAX_LOG_BYTES_PER_CALLBACK, MAX_LOG_LINES_PER_CALLBACK, MAX_LOG_MESSAGE_BYTES } from '../limits.js';

export class GuestLogBudget {
  private lines = 0;
  private bytes = 0;
  droppedLines = 0;
  droppedBytes = 0;

  /** At the start of an outermost guest callback. */
  begin(): void {
    this.lines = 0;
    this.bytes = 0;
    this.droppedLines = 0;
    this.droppedBytes = 0;
  }

  /** True when a line of `size` bytes may be logged in this callback (it is then counted, at its cut length). */
  admit(size: number): boolean {
    const cut = Math.min(size, MAX_LOG_MESSAGE_BYTES);
    if (this.lines >= MAX_LOG_LINES_PER_CALLBACK || this.bytes + cut > MAX_LOG_BYTES_PER_CALLBACK) {
      this.droppedLines++;
      this.droppedBytes += size;
      return false;
    }
    this.lines++;
    this.bytes += cut;
    if (size > cut) this.droppedBytes += size - cut;
    return true;
  }

  /** Bytes dropped without being a whole line (fd_write past its per-call bound). */
  dropBytes(n: number): void {
    this.droppedBytes += n;
  }
}

/** `text` cut to MAX_LOG_MESSAGE_BYTES characters, saying how much was cut. */
export function cutLogLine(text: string, totalBytes = text.length): string {
  if (totalBytes <= MAX_LOG_MESSAGE_BYTES && text.length <= MAX_LOG_MESSAGE_BYTES) return text;
  return `${text.slice(0, MAX_LOG_MESSAGE_BYTES)} ...[truncated, ${totalBytes} bytes]`;
}
