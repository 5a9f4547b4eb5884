// Request/response over a node:cluster IPC channel (process.send / worker.send), both
// directions: the primary asks workers for metrics, adapters, readiness and reload
// phases; workers ask the primary for quota leases. Messages are JSON; a call that
// gets no answer in time (a stuck or dead peer) rejects instead of hanging.

export interface RpcMessage {
  readonly wm: 'req' | 'res';
  readonly id: number;
  readonly op?: string;
  readonly arg?: unknown;
  readonly ok?: boolean;
  readonly value?: unknown;
  readonly error?: { code: string; message: string; detail?: Record<string, unknown> };
}

export type RpcHandler = (arg: unknown) => unknown;

export class Rpc {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly handlers = new Map<string, RpcHandler>();

  /** `send` returns false when the channel is gone. */
  constructor(private readonly send: (m: RpcMessage) => boolean) {}

  handle(op: string, fn: RpcHandler): void {
    this.handlers.set(op, fn);
  }

  call<T>(op: string, arg: unknown, timeoutMs: number): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${op}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      let sent = false;
      try {
        sent = this.send({ wm: 'req', id, op, arg });
      } catch {
        sent = false;
      }
      if (!sent) this.fail(id, new Error(`${op}: the IPC channel is closed`));
    });
  }

  /** Feeds one message from the channel; returns false when it is not an RPC message. */
  receive(m: unknown): boolean {
    if (m === null || typeof m !== 'object') return false;
    const msg = m as RpcMessage;
    if (msg.wm === 'res') {
      const p = this.pending.get(msg.id);
      if (p === undefined) return true;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(Object.assign(new Error(msg.error?.message ?? 'failed'), { code: msg.error?.code ?? 'INTERNAL', detail: msg.error?.detail ?? {} }));
      return true;
    }
    if (msg.wm !== 'req') return false;
    const h = this.handlers.get(msg.op ?? '');
    const reply = (r: Omit<RpcMessage, 'wm' | 'id'>) => {
      try {
        this.send({ wm: 'res', id: msg.id, ...r });
      } catch {
        // the peer went away; nothing to answer
      }
    };
    if (h === undefined) {
      reply({ ok: false, error: { code: 'INTERNAL', message: `unknown operation ${msg.op}` } });
      return true;
    }
    Promise.resolve()
      .then(() => h(msg.arg))
      .then(
        (value) => reply({ ok: true, value }),
        (err: unknown) => reply({ ok: false, error: { code: (err as { code?: string }).code ?? 'INTERNAL', message: (err as Error)?.message ?? String(err), detail: jsonSafe((err as { detail?: unknown }).detail) } }),
      );
    return true;
  }

  /** Rejects every call in flight (the peer is gone). */
  close(reason: string): void {
    for (const id of [...this.pending.keys()]) this.fail(id, new Error(reason));
  }

  private fail(id: number, err: Error): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.reject(err);
  }
}

function jsonSafe(v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object') return {};
  try {
    return JSON.parse(JSON.stringify(v)) as Record<string, unknown>;
  } catch {
    return {};
  }
}
