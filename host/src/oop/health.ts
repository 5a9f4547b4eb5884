// grpc.health.v1.Health (grpc/grpc doc/health-checking.md): Check answers at once,
// Watch streams the status and every change. "" is the server as a whole; each
// service the server exposes answers for itself. NOT_SERVING while draining or
// while an adapter VM is down (the same rule as the admin port's /ready).

import * as grpc from '@grpc/grpc-js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

const CODE: Record<ServingStatus | 'SERVICE_UNKNOWN', number> = { SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 };

interface Watch {
  readonly call: grpc.ServerWritableStream<{ service?: string }, { status: number }>;
  last: number;
}

export class HealthService {
  private readonly watches = new Set<Watch>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly status: () => ServingStatus,
    private readonly services: readonly string[],
  ) {}

  private statusOf(service: string): number | null {
    if (service !== '' && !this.services.includes(service)) return null;
    return CODE[this.status()];
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Check: (call: grpc.ServerUnaryCall<{ service?: string }, { status: number }>, cb: grpc.sendUnaryData<{ status: number }>) => {
        const s = this.statusOf(call.request.service ?? '');
        if (s === null) cb({ code: grpc.status.NOT_FOUND, details: `unknown service "${call.request.service}"` } as grpc.ServiceError);
        else cb(null, { status: s });
      },
      Watch: (call: grpc.ServerWritableStream<{ service?: string }, { status: number }>) => {
        const w: Watch = { call, last: -1 };
        this.watches.add(w);
        call.on('cancelled', () => this.watches.delete(w));
        call.on('close', () => this.watches.delete(w));
        this.push(w);
      },
    };
  }

  private push(w: Watch): void {
    const s = this.statusOf(w.call.request.service ?? '') ?? CODE.SERVICE_UNKNOWN;
    if (s === w.last) return;
    w.last = s;
    w.call.write({ status: s });
  }

  /** Sends changes to watchers (also polled every second: VM health changes on its own). */
  update(): void {
    for (const w of this.watches) this.push(w);
  }

  start(): void {
    this.timer = setInterval(() => this.update(), 1000);
    this.timer.unref();
  }

  /** Ends every Watch stream (a graceful shutdown waits for open calls). */
  endWatches(): void {
    for (const w of this.watches) w.call.end();
    this.watches.clear();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.endWatches();
  }
}
