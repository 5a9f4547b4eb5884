// The discipline around every call into the guest (as in proxy-wasm-cpp-host):
// the current context and callback phase are set before the call and restored
// after it; an outermost call gets the work budget, is marked as running for the
// watchdog, and has its host charges and log budget settled when it returns.
// A trap is named here (budget, memory cap, stack, proc_exit); what a crash does
// to the VM is plugin/plugin-vm.ts's business.

import { ProcExit } from '../abi/wasi.js';
import { describeError, type HostErrorCode } from '../errors.js';
import { StreamContext, type Direction } from '../stream/stream-context.js';
import { runningAdapter } from '../watchdog.js';
import type { FuelCounter } from './fuel-counter.js';
import { GuestLogBudget } from './guest-log-budget.js';
import { HostBudgetExceeded, HostMeter } from './host-meter.js';

/** Which callback the guest is in; decides which header maps and buffers the ABI may touch. */
export const enum CallPhase {
  None,
  VmStart,
  Configure,
  RequestHeaders,
  RequestBody,
  RequestTrailers,
  ResponseHeaders,
  ResponseBody,
  ResponseTrailers,
  Log,
  Done,
  Tick,
  Queue,
  HttpCallResponse,
  GrpcCallback,
}

export interface RootContext {
  readonly kind: 'root';
  readonly id: number;
}
export type GuestContext = RootContext | StreamContext;

let nextContextId = 1;
/** Context ids are unique in the process (the ABI passes them as u32). */
export function newContextId(): number {
  const id = nextContextId;
  nextContextId = id >= 0xfffffff0 ? 1 : id + 1;
  return id;
}

/** A request's context re-created in a replacement VM; wakes and failures go to the chain's original context. */
export class MigratedContext extends StreamContext {
  constructor(id: number, readonly origin: StreamContext, generation: number) {
    super(id, origin.stream, generation);
  }
  override wake(direction: Direction | null): void {
    this.origin.wake(direction);
  }
  override fail(err: Error): void {
    this.origin.fail(err);
  }
}

/** What a trap was: the error code and a reason for logs. */
export interface TrapCause {
  code: HostErrorCode;
  reason: string;
}

/** The per-VM state of guest calls: the current context and phase, the work budget and its high-water mark. */
export class GuestCalls {
  current: GuestContext | null = null;
  /** Set by proxy_set_effective_context for the rest of the callback. */
  effective: GuestContext | null = null;
  phase = CallPhase.None;
  /** The metering globals of this instance (null for an unmetered module). */
  fuel: FuelCounter | null = null;
  growRefused: WebAssembly.Global | null = null;
  /** Work budget of the next outermost call. */
  get budget(): number {
    return this.nextBudget;
  }
  set budget(v: number) {
    this.nextBudget = v;
    this.primed = null;
  }
  private nextBudget = 0;
  /**
   * The counter already holding the next call's budget: an outermost call's end swaps the
   * budget in while it reads what the call left (one call into wasm per callback, not a set
   * and a get). Null when the budget or the counter changed since: the next call sets it.
   */
  private primed: FuelCounter | null = null;
  /** Whether the last outermost call left the counter below zero (its end already refilled it). */
  private exhausted = false;
  /** The most fuel one callback used, for sizing the budget. */
  fuelHighWater = 0;
  private depth = 0;
  /** Host functions' charges against the work budget (plugin/host-meter.ts). */
  readonly hostMeter = new HostMeter();
  /** The per-callback log bounds (plugin/guest-log-budget.ts). */
  readonly logBudget = new GuestLogBudget();

  constructor(
    /** This adapter's id for the watchdog's "running" slot. */
    private readonly watchdogId: number,
    /** Called after an outermost call that dropped log lines or bytes. */
    private readonly onDroppedLogs: (budget: GuestLogBudget) => void,
  ) {}

  /** The context ABI calls act on now: the effective one if set, else the current one. */
  context(): GuestContext | null {
    return this.effective ?? this.current;
  }

  streamContext(): StreamContext | null {
    const c = this.effective ?? this.current;
    return c !== null && c instanceof StreamContext ? c : null;
  }

  /** Runs fn with ctx current in phase; an outermost call is budgeted and accounted. */
  run<T>(ctx: GuestContext, phase: CallPhase, fn: () => T): T {
    const prevCurrent = this.current;
    const prevEffective = this.effective;
    const prevPhase = this.phase;
    const fuel = this.fuel;
    const outermost = this.enter(ctx, phase);
    try {
      return fn();
    } finally {
      this.leave(outermost, fuel, prevCurrent, prevEffective, prevPhase);
    }
  }

  /**
   * run() for the per-request callbacks, without a closure: calls export f with argc
   * (1 to 3) i32 arguments.
   */
  call(ctx: GuestContext, phase: CallPhase, f: (...args: number[]) => number | undefined, argc: number, a: number, b: number, c: number): number | undefined {
    const prevCurrent = this.current;
    const prevEffective = this.effective;
    const prevPhase = this.phase;
    const fuel = this.fuel;
    const outermost = this.enter(ctx, phase);
    try {
      return argc === 1 ? f(a) : argc === 2 ? f(a, b) : f(a, b, c);
    } finally {
      this.leave(outermost, fuel, prevCurrent, prevEffective, prevPhase);
    }
  }

  /** Makes ctx current in phase; true for an outermost call (which gets the budget). */
  private enter(ctx: GuestContext, phase: CallPhase): boolean {
    this.current = ctx;
    this.effective = null;
    this.phase = phase;
    const outermost = this.depth === 0;
    if (outermost) {
      runningAdapter[0] = this.watchdogId;
      const fuel = this.fuel;
      // Anything run on the counter since the last call's end (nothing on the host's paths)
      // is charged to this call: its budget is never more than `budget`.
      if (fuel !== null && this.primed !== fuel) fuel.set(this.nextBudget);
      this.exhausted = false;
      this.hostMeter.pending = 0;
      this.logBudget.begin();
    }
    this.depth++;
    return outermost;
  }

  /** Undoes enter (the caller kept what it replaced) after the call returned or threw. */
  private leave(outermost: boolean, fuel: FuelCounter | null, prevCurrent: GuestContext | null, prevEffective: GuestContext | null, prevPhase: CallPhase): void {
    this.depth--;
    if (outermost) {
      runningAdapter[0] = 0;
      const charged = this.hostMeter.take();
      if (fuel !== null) {
        const left = fuel.swap(this.nextBudget);
        this.primed = fuel;
        if (left < 0) this.exhausted = true;
        const used = this.nextBudget - left + charged;
        if (used > this.fuelHighWater) this.fuelHighWater = used;
      }
      if (this.logBudget.droppedLines > 0 || this.logBudget.droppedBytes > 0) this.onDroppedLogs(this.logBudget);
    }
    this.current = prevCurrent;
    this.effective = prevEffective;
    this.phase = prevPhase;
  }

  /** Names the reason for a trap: budget, memory cap, stack, proc_exit, or the engine's message. */
  classify(err: unknown, maxMemoryPages: number, memoryBytes: number): TrapCause {
    if ((this.fuel !== null && (this.exhausted || this.fuel.get() < 0)) || err instanceof HostBudgetExceeded) {
      return { code: 'VM_BUDGET_EXCEEDED', reason: `exceeded its work budget of ${this.budget} fuel units (limits.fuelPerCallback)` };
    }
    if (err instanceof ProcExit) return { code: 'VM_TRAP', reason: `proc_exit(${err.exitCode})` };
    const refused = this.growRefused === null ? 0 : (this.growRefused.value as number);
    if (refused > 0) {
      return {
        code: 'VM_MEMORY_LIMIT',
        reason: `trapped after memory.grow was refused ${refused} time(s) at the cap of ${(maxMemoryPages * 65536) / 1048576} MiB (limits.maxMemoryMb; memory was ${memoryBytes / 1048576} MiB): ${describeError(err)}`,
      };
    }
    if (err instanceof RangeError && /call stack/i.test(err.message)) return { code: 'VM_TRAP', reason: 'stack overflow (Maximum call stack size exceeded)' };
    return { code: 'VM_TRAP', reason: describeError(err) };
  }
}
