// When to replace a crashed VM (plugin `restart`), issue 11 "crash containment
// without an outage": the module is already compiled and instantiating it takes
// about a millisecond, so a crash is followed by an immediate, synchronous
// restart; the next request already runs on the fresh instance. Only a module
// that crashes on most of the requests it is given is held down (with
// exponential backoff), because restarting it would just fail those requests
// more slowly. One trapping request in fifty never stops the adapter.
//
// "Crash-looping": within restart.windowMs, more than restart.maxRestarts crashes
// AND more crashes than CRASH_LOOP_RATIO of the requests the VM was given since
// the first of those crashes. Restart failures count as crashes.

import {
  CRASH_LOOP_RATIO,
  DEFAULT_INITIAL_BACKOFF_MS,
  DEFAULT_MAX_BACKOFF_MS,
  DEFAULT_MAX_RESTARTS,
  DEFAULT_RESTART_WINDOW_MS,
} from '../limits.js';

/** Restart policy after a crash (plugin `restart`). */
export interface RestartPolicy {
  /** Crashes tolerated within windowMs before the crash-loop check applies (default 10). */
  maxRestarts?: number;
  windowMs?: number;
  /** While crash-looping: wait initialBackoffMs before the next restart, doubling up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface RestartDecision {
  /** 0: restart now. */
  readonly delayMs: number;
  readonly crashLooping: boolean;
  /** Crashes in the window, and requests given to the VM since the first of them. */
  readonly crashes: number;
  readonly requests: number;
}

/** What /adapters shows. */
export interface RestartState {
  state: 'running' | 'restarting' | 'crash-looping' | 'stopped';
  crashesInWindow: number;
  requestsInWindow: number;
  windowMs: number;
  /** When the next restart is due (crash-looping), ms since the epoch. */
  nextRestartAt: number | null;
}

export class RestartTracker {
  readonly maxRestarts: number;
  readonly windowMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  /** Requests given to the VM so far (all generations). */
  private requestsTotal = 0;
  /** Crashes in the window: when, and requestsTotal just before it. */
  private crashes: Array<{ at: number; requestsBefore: number }> = [];
  /** Consecutive backoffs while crash-looping. */
  private backoffs = 0;
  last: RestartDecision | null = null;
  nextRestartAt: number | null = null;

  constructor(p: RestartPolicy = {}, fallback: { maxRestarts?: number; windowMs?: number } = {}) {
    this.maxRestarts = p.maxRestarts ?? fallback.maxRestarts ?? DEFAULT_MAX_RESTARTS;
    this.windowMs = p.windowMs ?? fallback.windowMs ?? DEFAULT_RESTART_WINDOW_MS;
    this.initialBackoffMs = p.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    this.maxBackoffMs = p.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
  }

  /** A request was given to the VM (O(1): no clock read on the request path). */
  request(): void {
    this.requestsTotal++;
  }

  /**
   * A crash: restart now, or after a backoff when crash-looping. A failed restart
   * (`restartFailed`) always backs off, so a module that cannot start is not
   * re-instantiated in a tight loop.
   */
  crashed(now = Date.now(), restartFailed = false): RestartDecision {
    this.crashes = this.crashes.filter((c) => now - c.at < this.windowMs);
    this.crashes.push({ at: now, requestsBefore: this.requestsTotal });
    const crashes = this.crashes.length;
    // Requests since (and including) the one that caused the oldest crash in the window.
    const requests = this.requestsTotal - this.crashes[0]!.requestsBefore + 1;
    const crashLooping = crashes > this.maxRestarts && crashes > CRASH_LOOP_RATIO * requests;
    let delayMs = 0;
    if (crashLooping || restartFailed) {
      delayMs = Math.min(this.initialBackoffMs * 2 ** this.backoffs, this.maxBackoffMs);
      this.backoffs++;
    } else {
      this.backoffs = 0;
    }
    this.nextRestartAt = delayMs > 0 ? now + delayMs : null;
    this.last = { delayMs, crashLooping, crashes, requests };
    return this.last;
  }

  restarted(): void {
    this.nextRestartAt = null;
  }

  state(running: boolean, stopped: boolean, now = Date.now()): RestartState {
    const inWindow = this.crashes.filter((c) => now - c.at < this.windowMs);
    return {
      state: stopped ? 'stopped' : running ? 'running' : this.nextRestartAt !== null && this.last?.crashLooping ? 'crash-looping' : 'restarting',
      crashesInWindow: inWindow.length,
      requestsInWindow: inWindow.length === 0 ? 0 : this.requestsTotal - inWindow[0]!.requestsBefore + 1,
      windowMs: this.windowMs,
      nextRestartAt: this.nextRestartAt,
    };
  }
}
