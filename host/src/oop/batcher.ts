// Report batching (Mixer's report_batch.cc): finished requests are queued and
// sent as one Report when maxEntries are waiting or maxDelayMs after the first
// one, whichever comes first. Fire and forget: a failed Report is counted and
// dropped, never retried (telemetry must not pile up behind a dead server). At
// most maxPending entries wait; beyond that new ones are dropped and counted.
// With batching off every finished request is sent at once, alone.

import type { Bag } from './attributes.js';
import type { PbEffect } from './protos.js';

export interface ReportItem {
  readonly bag: Bag;
  readonly adapters: readonly string[];
  readonly sessionId: string;
  readonly replay: readonly PbEffect[];
}

export interface BatchSettings {
  enabled: boolean;
  maxEntries: number;
  maxDelayMs: number;
  maxPending: number;
}

export type SendBatch = (items: ReportItem[]) => Promise<void>;

export class ReportBatcher {
  private queue: ReportItem[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly inflight = new Set<Promise<void>>();
  dropped = 0;

  constructor(
    private readonly settings: BatchSettings,
    private readonly send: SendBatch,
    private readonly onDrop: (n: number) => void = () => {},
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  add(item: ReportItem): void {
    if (!this.settings.enabled) {
      this.dispatch([item]);
      return;
    }
    if (this.queue.length >= this.settings.maxPending) {
      this.dropped++;
      this.onDrop(1);
      return;
    }
    this.queue.push(item);
    if (this.queue.length >= this.settings.maxEntries) {
      this.flushNow();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => this.flushNow(), this.settings.maxDelayMs);
      this.timer.unref();
    }
  }

  /** Sends what is queued now, in batches of at most maxEntries. */
  flushNow(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.queue.length > 0) this.dispatch(this.queue.splice(0, Math.max(1, this.settings.maxEntries)));
  }

  /** Sends everything and waits for the sends in flight (for shutdown and tests). */
  async flush(): Promise<void> {
    this.flushNow();
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private dispatch(items: ReportItem[]): void {
    const p = this.send(items).catch(() => {});
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
