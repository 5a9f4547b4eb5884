// Process-wide shared data and shared queues, keyed by vm_id as in proxy-wasm-cpp-host.
// Node runs all VMs on one thread, so compare-and-swap needs no lock: a get/set pair
// from one adapter callback is never interleaved with another's.
//
// Host memory is bounded and accounted per vm_id (docs/operating.md "Limits"):
// shared-data keys and bytes (keys + values + a per-entry overhead), and the
// bytes of the queues a vm_id registered (the oldest items are dropped to make room).

import {
  DEFAULT_QUEUE_MAX_BYTES,
  DEFAULT_QUEUE_MAX_ITEMS,
  DEFAULT_SHARED_DATA_MAX_BYTES,
  DEFAULT_SHARED_DATA_MAX_KEYS,
  DEFAULT_SHARED_DATA_MAX_VALUE_BYTES,
  SHARED_ENTRY_OVERHEAD,
} from '../limits.js';

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
  /** Items per queue. */
  maxQueueItems: number;
  /** Shared-data bytes per vm_id (keys + values + SHARED_ENTRY_OVERHEAD per entry). */
  maxBytesPerVm?: number;
  /** Bytes held by the queues one vm_id registered. */
  maxQueueBytesPerVm?: number;
}

/** Per-vm_id overrides (a plugin's limits.maxSharedDataMb / maxQueueMb). */
export interface VmStoreLimits {
  maxBytes?: number;
  maxQueueBytes?: number;
}

/** What one vm_id holds in the store, for /adapters and /metrics. */
export interface SharedUsage {
  sharedDataKeys: number;
  sharedDataBytes: number;
  sharedDataLimitBytes: number;
  queueItems: number;
  queueBytes: number;
  queueLimitBytes: number;
  /** Writes refused at a bound, queue items dropped to make room (since start). */
  refusedWrites: number;
  droppedQueueItems: number;
}

interface VmAccount {
  dataBytes: number;
  queueItems: number;
  queueBytes: number;
  maxBytes: number;
  maxQueueBytes: number;
  refusedWrites: number;
  droppedQueueItems: number;
}

const DEFAULT_LIMITS: SharedStoreLimits = {
  maxKeysPerVm: DEFAULT_SHARED_DATA_MAX_KEYS,
  maxValueBytes: DEFAULT_SHARED_DATA_MAX_VALUE_BYTES,
  maxQueueItems: DEFAULT_QUEUE_MAX_ITEMS,
};

const entryCost = (key: string, value: Uint8Array) => key.length + value.length + SHARED_ENTRY_OVERHEAD;

export class SharedStore {
  private readonly data = new Map<string, Map<string, SharedEntry>>();
  private readonly queues = new Map<number, Queue>();
  private readonly queueIds = new Map<string, number>();
  private readonly accounts = new Map<string, VmAccount>();
  private nextCas = 1;
  private nextQueueId = 1;
  readonly limits: Required<SharedStoreLimits>;

  constructor(limits: SharedStoreLimits = DEFAULT_LIMITS) {
    this.limits = { maxBytesPerVm: DEFAULT_SHARED_DATA_MAX_BYTES, maxQueueBytesPerVm: DEFAULT_QUEUE_MAX_BYTES, ...limits };
  }

  /** The view one VM gets: its own key space and queues. `limits` (the plugin's) apply to the whole vm_id. */
  forVm(vmId: string, limits: VmStoreLimits = {}): SharedDataView {
    let map = this.data.get(vmId);
    if (map === undefined) {
      map = new Map();
      this.data.set(vmId, map);
    }
    const a = this.account(vmId);
    if (limits.maxBytes !== undefined) a.maxBytes = limits.maxBytes;
    if (limits.maxQueueBytes !== undefined) a.maxQueueBytes = limits.maxQueueBytes;
    return new SharedDataView(this, vmId, map);
  }

  private account(vmId: string): VmAccount {
    let a = this.accounts.get(vmId);
    if (a === undefined) {
      a = { dataBytes: 0, queueItems: 0, queueBytes: 0, maxBytes: this.limits.maxBytesPerVm, maxQueueBytes: this.limits.maxQueueBytesPerVm, refusedWrites: 0, droppedQueueItems: 0 };
      this.accounts.set(vmId, a);
    }
    return a;
  }

  /** @internal */ setEntry(vmId: string, map: Map<string, SharedEntry>, key: string, value: Uint8Array, cas: number): boolean {
    const cur = map.get(key);
    if (cas !== 0 && cur !== undefined && cur.cas !== cas) return false;
    const a = this.account(vmId);
    const delta = entryCost(key, value) - (cur === undefined ? 0 : entryCost(key, cur.value));
    if (value.length > this.limits.maxValueBytes || (cur === undefined && map.size >= this.limits.maxKeysPerVm) || (delta > 0 && a.dataBytes + delta > a.maxBytes)) {
      a.refusedWrites++;
      return false;
    }
    const next = this.nextCas;
    this.nextCas = next >= 0xffffffff ? 1 : next + 1;
    map.set(key, { value, cas: next });
    a.dataBytes += delta;
    return true;
  }

  /**
   * setEntry() for a value `fill` writes into a buffer of `size` bytes: the current value's own
   * buffer when it has that size (a counter or token bucket rewritten on every request keeps
   * its bytes instead of allocating a buffer per write), else a new one. Values are only ever
   * copied out (proxy_get_shared_data), so no reader holds the old bytes. Checks come first:
   * a refused write changes nothing.
   */
  /** @internal */ setEntryFrom(vmId: string, map: Map<string, SharedEntry>, key: string, size: number, cas: number, fill: (dst: Uint8Array) => void): boolean {
    const cur = map.get(key);
    if (cas !== 0 && cur !== undefined && cur.cas !== cas) return false;
    if (cur === undefined || cur.value.length !== size) {
      const value = new Uint8Array(size);
      fill(value);
      return this.setEntry(vmId, map, key, value, cas);
    }
    if (size > this.limits.maxValueBytes) {
      this.account(vmId).refusedWrites++;
      return false;
    }
    fill(cur.value);
    const next = this.nextCas;
    this.nextCas = next >= 0xffffffff ? 1 : next + 1;
    map.set(key, { value: cur.value, cas: next });
    return true;
  }

  /** Whether a value of `size` bytes under `key` would fit the bounds (checked before the host copies it out of the guest). */
  admits(vmId: string, map: Map<string, SharedEntry>, key: string, size: number): boolean {
    const a = this.account(vmId);
    const cur = map.get(key);
    const delta = key.length + size + SHARED_ENTRY_OVERHEAD - (cur === undefined ? 0 : entryCost(key, cur.value));
    if (size > this.limits.maxValueBytes || (cur === undefined && map.size >= this.limits.maxKeysPerVm) || (delta > 0 && a.dataBytes + delta > a.maxBytes)) {
      a.refusedWrites++;
      return false;
    }
    return true;
  }

  /** Host memory one vm_id holds here. */
  usage(vmId: string): SharedUsage {
    const a = this.account(vmId);
    return {
      sharedDataKeys: this.data.get(vmId)?.size ?? 0,
      sharedDataBytes: a.dataBytes,
      sharedDataLimitBytes: a.maxBytes,
      queueItems: a.queueItems,
      queueBytes: a.queueBytes,
      queueLimitBytes: a.maxQueueBytes,
      refusedWrites: a.refusedWrites,
      droppedQueueItems: a.droppedQueueItems,
    };
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
    // The queue's owner (the vm_id that registered it) pays for what waits in it.
    const a = this.account(q.vmId);
    const cost = value.length + SHARED_ENTRY_OVERHEAD;
    if (value.length > this.limits.maxValueBytes || cost > a.maxQueueBytes) {
      a.refusedWrites++;
      return false;
    }
    while (q.items.length > 0 && (q.items.length >= this.limits.maxQueueItems || a.queueBytes + cost > a.maxQueueBytes)) {
      const dropped = q.items.shift()!;
      a.queueBytes -= dropped.length + SHARED_ENTRY_OVERHEAD;
      a.queueItems--;
      a.droppedQueueItems++;
    }
    if (a.queueBytes + cost > a.maxQueueBytes) {
      // Other queues of this vm_id hold the bytes: refuse rather than drop from them.
      a.refusedWrites++;
      return false;
    }
    q.items.push(value);
    a.queueBytes += cost;
    a.queueItems++;
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
    const v = q.items.shift();
    if (v === undefined) return null;
    const a = this.account(q.vmId);
    a.queueBytes -= v.length + SHARED_ENTRY_OVERHEAD;
    a.queueItems--;
    return v;
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
    return this.store.setEntry(this.vmId, this.map, key, value, cas);
  }

  /** set() of `size` bytes that `fill` writes, into the current value's buffer when it has that size. */
  setFrom(key: string, size: number, cas: number, fill: (dst: Uint8Array) => void): boolean {
    return this.store.setEntryFrom(this.vmId, this.map, key, size, cas, fill);
  }

  /** False when set(key, <size bytes>) would be refused at a bound (counted as a refused write). */
  admits(key: string, size: number): boolean {
    return this.store.admits(this.vmId, this.map, key, size);
  }

  /** The largest value (shared data or queue item) the store takes. */
  get maxValueBytes(): number {
    return this.store.limits.maxValueBytes;
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
