// proxy_set_tick_period_milliseconds and shared queues: the two ways a VM is
// called on its root context without a request. Both stop with the VM, and a
// tick or queue wake-up for an older VM generation (or a failed VM) is dropped.

import type { SharedStore } from '../shared/shared-store.js';
import { MAX_TICK_PERIOD_MS, MIN_TICK_PERIOD_MS } from '../limits.js';
import { CallPhase } from './guest-call.js';

/** What ticks and queue wake-ups need from their VM. */
export interface RootCaller {
  readonly generation: number;
  readonly healthy: boolean;
  has(exportName: string): boolean;
  callRoot(phase: CallPhase, callback: string, call: (f: (...args: number[]) => number, rootId: number) => number | undefined): void;
}

export class TimersQueues {
  private tickTimer: NodeJS.Timeout | null = null;
  private readonly queueListener = (queueId: number) => this.queueReady(queueId);

  constructor(
    private readonly vm: RootCaller,
    private readonly shared: SharedStore,
    private readonly vmId: string,
  ) {}

  /** 0 stops the tick. Node runs a timer of more than 2^31-1 ms after 1 ms (TimeoutOverflowWarning): both ends are clamped. */
  setTickPeriod(ms: number, stopped: boolean): void {
    this.clearTick();
    if (ms === 0 || stopped) return;
    const period = Math.min(Math.max(ms, MIN_TICK_PERIOD_MS), MAX_TICK_PERIOD_MS);
    const gen = this.vm.generation;
    this.tickTimer = setInterval(() => {
      if (!this.vm.has('proxy_on_tick') || gen !== this.vm.generation || !this.vm.healthy) return;
      this.vm.callRoot(CallPhase.Tick, 'proxy_on_tick', (f, root) => f(root));
    }, period);
    this.tickTimer.unref();
  }

  clearTick(): void {
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = null;
  }

  registerQueue(name: string): number {
    return this.shared.registerQueue(this.vmId, name, this.queueListener);
  }

  private queueReady(queueId: number): void {
    if (!this.vm.has('proxy_on_queue_ready') || !this.vm.healthy) return;
    this.vm.callRoot(CallPhase.Queue, 'proxy_on_queue_ready', (f, root) => f(root, queueId));
  }

  /** The VM stopped: no more ticks, and its queues no longer wake it. */
  stop(): void {
    this.clearTick();
    this.shared.unlisten(this.queueListener);
  }
}
