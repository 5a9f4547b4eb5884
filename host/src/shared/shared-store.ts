// Process-wide shared data and shared queues, keyed by vm_id as in proxy-wasm-cpp-host.
// Node runs all VMs on one thread, so compare-and-swap needs no lock: a get/set pair
// from one adapter callback is never interleaved with another's.

export interface SharedEntry {
  readonly value: Uint8Array;
  readonly cas: number;
}

export type QueueListener = (queueId: number) => void;

interface Queue {
  readonly vmId: string;
  readonly name: string;
  readonly items: Uint8Array[];
  listener: QueueListener | null;
  notifyPending: boolean;
}

/** Bounds that keep a misbehaving adapter from growing host memory without limit. */
export interface SharedStoreLimits {
  maxKeysPerVm: number;
  maxValueBytes: number;
  maxQueueItems: number;
}

const DEFAULT_LIMITS: SharedStoreLimits = { maxKeysPerVm: 1_000_000, maxValueBytes: 1024 * 1024, maxQueueItems: 100_000 };

export class SharedStore {
  private readonly data = new Map<string, Map<string, SharedEntry>>();
  private readonly queues = new Map<number, Queue>();
  private readonly queueIds = new Map<string, number>();
  private nextCas = 1;
  private nextQueueId = 1;

  constructor(private readonly limits: SharedStoreLimits = DEFAULT_LIMITS) {}

  /** The view one VM gets: its own key space and queues. */
  forVm(vmId: string): SharedDataView {
    let map = this.data.get(vmId);
    if (map === undefined) {
      map = new Map();
      this.data.set(vmId, map);
    }
    return new SharedDataView(this, vmId, map);
  }

  /** @internal */ setEntry(map: Map<string, SharedEntry>, key: string, value: Uint8Array, cas: number): boolean {
    const cur = map.get(key);
    if (cas !== 0 && cur !== undefined && cur.cas !== cas) return false;
    if (value.length > this.limits.maxValueBytes) return false;
    if (cur === undefined && map.size >= this.limits.maxKeysPerVm) return false;
    const next = this.nextCas;
    this.nextCas = next >= 0xffffffff ? 1 : next + 1;
    map.set(key, { value, cas: next });
    return true;
  }

  registerQueue(vmId: string, name: string, listener: QueueListener): number {
    const key = `${vmId}\0${name}`;
    let id = this.queueIds.get(key);
    if (id === undefined) {
      id = this.nextQueueId++;
      this.queueIds.set(key, id);
      this.queues.set(id, { vmId, name, items: [], listener, notifyPending: false });
    } else {
      this.queues.get(id)!.listener = listener;
    }
    return id;
  }

  resolveQueue(vmId: string, name: string): number | undefined {
    return this.queueIds.get(`${vmId}\0${name}`);
  }

  enqueue(id: number, value: Uint8Array): boolean {
    const q = this.queues.get(id);
    if (q === undefined) return false;
    if (q.items.length >= this.limits.maxQueueItems) q.items.shift();
    q.items.push(value);
    if (q.listener !== null && !q.notifyPending) {
      q.notifyPending = true;
      setImmediate(() => {
        q.notifyPending = false;
        q.listener?.(id);
      });
    }
    return true;
  }

  /** undefined: no such queue; null: empty. */
  dequeue(id: number): Uint8Array | null | undefined {
    const q = this.queues.get(id);
    if (q === undefined) return undefined;
    return q.items.shift() ?? null;
  }

  /** Detaches a VM's listener (on VM shutdown) so a dead VM is never called. */
  unlisten(listener: QueueListener): void {
    for (const q of this.queues.values()) if (q.listener === listener) q.listener = null;
  }

  keys(vmId: string): string[] {
    return [...(this.data.get(vmId)?.keys() ?? [])];
  }
}

export class SharedDataView {
  constructor(
    private readonly store: SharedStore,
    readonly vmId: string,
    private readonly map: Map<string, SharedEntry>,
  ) {}

  get(key: string): SharedEntry | undefined {
    return this.map.get(key);
  }

  set(key: string, value: Uint8Array, cas: number): boolean {
    return this.store.setEntry(this.map, key, value, cas);
  }

  resolveQueue(vmId: string, name: string): number | undefined {
    return this.store.resolveQueue(vmId, name);
  }

  enqueue(id: number, value: Uint8Array): boolean {
    return this.store.enqueue(id, value);
  }

  dequeue(id: number): Uint8Array | null | undefined {
    return this.store.dequeue(id);
  }
}
