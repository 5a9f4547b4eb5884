// Shared data (a key/value store shared by all VMs with the same vm_id, with
// compare-and-swap) and shared queues.

import * as host from "./hostcalls";
import { SharedValue } from "./hostcalls";

export { SharedValue };

function toBytes<T>(value: T): ArrayBuffer {
  if (isString<T>()) {
    return String.UTF8.encode(changetype<string>(value));
  } else if (isReference<T>()) {
    if (idof<T>() != idof<ArrayBuffer>()) ERROR("value must be a string or an ArrayBuffer");
    return changetype<ArrayBuffer>(value);
  } else {
    ERROR("value must be a string or an ArrayBuffer");
    return new ArrayBuffer(0);
  }
}

export class SharedData {
  /** The value and its CAS token, or null when the key was never set. */
  static get(key: string): SharedValue | null {
    return host.getSharedData(key);
  }

  /** The value decoded as UTF-8, or null. */
  static getString(key: string): string | null {
    let v = host.getSharedData(key);
    return v === null ? null : v.text();
  }

  /**
   * Stores `value` (string or ArrayBuffer). With cas = 0 the write is
   * unconditional; otherwise it succeeds only if the stored CAS token still
   * equals `cas`. Returns false on a CAS mismatch.
   */
  static set<T>(key: string, value: T, cas: u32 = 0): bool {
    return host.setSharedData(key, toBytes<T>(value), cas);
  }
}

export class SharedQueue {
  constructor(public readonly id: u32) {}

  /** Creates (or opens) a queue owned by this VM; its root gets onQueueReady(id). */
  static register(name: string): SharedQueue {
    return new SharedQueue(host.registerSharedQueue(name));
  }

  /** Finds a queue registered by VM `vmId` ("" = this VM's vm_id), or null. */
  static resolve(vmId: string, name: string): SharedQueue | null {
    let id = host.resolveSharedQueue(vmId, name);
    return id < 0 ? null : new SharedQueue(<u32>id);
  }

  /** Appends an item (string or ArrayBuffer). false when the queue no longer exists. */
  enqueue<T>(value: T): bool {
    return host.enqueueSharedQueue(this.id, toBytes<T>(value));
  }

  /** Next item, or null when empty. */
  dequeue(): ArrayBuffer | null {
    return host.dequeueSharedQueue(this.id);
  }

  /** Next item decoded as UTF-8, or null when empty. */
  dequeueString(): string | null {
    let b = host.dequeueSharedQueue(this.id);
    return b === null ? null : String.UTF8.decode(b);
  }
}
