// Host memory one adapter VM makes the proxy hold on its behalf, outside its
// own linear memory (which is capped separately by limits.maxMemoryMb): shared
// data and queues of its vm_id, HTTP call-outs in flight, partial stdio lines.
// Shown on /adapters (`hostMemory`) and /metrics (wasm_mixer_vm_host_memory_bytes).

import type { SharedUsage } from '../shared/shared-store.js';
import { MAX_CALLOUT_BYTES, MAX_FD_WRITE_BYTES } from '../limits.js';

export interface HostMemoryUsage extends SharedUsage {
  pendingCallouts: number;
  /** Call-outs in flight: request bodies plus response bytes received so far; and the most it has been. */
  calloutBytes: number;
  calloutBytesHighWater: number;
  /** Partial stdout/stderr lines waiting for their newline. */
  logBufferBytes: number;
  /** Everything above, in bytes, and the most it can be under the configured bounds. */
  totalBytes: number;
  limitBytes: number;
}

export function hostMemoryUsage(shared: SharedUsage, vm: { pendingCallouts: number; calloutBytes: number; calloutBytesHighWater: number; logBufferBytes: number }): HostMemoryUsage {
  return {
    ...shared,
    ...vm,
    totalBytes: shared.sharedDataBytes + shared.queueBytes + vm.calloutBytes + vm.logBufferBytes,
    limitBytes: shared.sharedDataLimitBytes + shared.queueLimitBytes + MAX_CALLOUT_BYTES + 2 * MAX_FD_WRITE_BYTES,
  };
}
