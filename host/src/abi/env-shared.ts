// Host functions: shared data, shared queues and metrics.

import { MetricType, Status } from './constants.js';
import type { AbiContext } from './context.js';
import type { GuestIo, HostFn } from './guest-io.js';

export function sharedFunctions(vm: AbiContext, { mem, copyOut }: GuestIo): Record<string, HostFn> {
  // Metric ids are per VM, as in Envoy: a module may use only the ids it defined, so it
  // cannot raise or read another adapter's series (or the host's) by guessing small integers.
  const ownMetrics = new Set<number>();
  const mine = (id: number): boolean => ownMetrics.has(id) && vm.metrics.adapterMayUse(id);
  return {
    // --- shared data and queues -------------------------------------------------
    proxy_get_shared_data(keyPtr: number, keySize: number, retPtr: number, retSize: number, retCas: number): number {
      const key = mem().string(keyPtr, keySize);
      if (key === null) return Status.InvalidMemoryAccess;
      if (!mem().inBounds(retCas, 4)) return Status.InvalidMemoryAccess;
      const entry = vm.shared.get(key);
      if (entry === undefined) return Status.NotFound;
      const st = copyOut(entry.value, retPtr, retSize);
      if (st !== Status.Ok) return st;
      mem().setU32(retCas, entry.cas);
      return Status.Ok;
    },
    proxy_set_shared_data(keyPtr: number, keySize: number, valuePtr: number, valueSize: number, cas: number): number {
      const key = mem().string(keyPtr, keySize);
      if (key === null || !mem().inBounds(valuePtr, valueSize)) return Status.InvalidMemoryAccess;
      // Past a bound (docs/operating.md "Limits") the write is refused before the value is copied;
      // CAS_MISMATCH is the status SDKs read as "not stored".
      if (!vm.shared.admits(key, valueSize >>> 0)) return Status.CasMismatch;
      // In bounds (checked above); written into the current value's bytes when the size is the same.
      return vm.shared.setFrom(key, valueSize >>> 0, cas >>> 0, (dst) => void mem().copyInto(valuePtr, dst)) ? Status.Ok : Status.CasMismatch;
    },
    proxy_register_shared_queue(namePtr: number, nameSize: number, retId: number): number {
      const name = mem().string(namePtr, nameSize);
      if (name === null) return Status.InvalidMemoryAccess;
      if (!mem().inBounds(retId, 4)) return Status.InvalidMemoryAccess;
      mem().setU32(retId, vm.registerQueue(name));
      return Status.Ok;
    },
    proxy_resolve_shared_queue(vmIdPtr: number, vmIdSize: number, namePtr: number, nameSize: number, retId: number): number {
      const vmId = mem().string(vmIdPtr, vmIdSize);
      const name = mem().string(namePtr, nameSize);
      if (vmId === null || name === null) return Status.InvalidMemoryAccess;
      if (!mem().inBounds(retId, 4)) return Status.InvalidMemoryAccess;
      const id = vm.shared.resolveQueue(vmId === '' ? vm.vmId : vmId, name);
      if (id === undefined) return Status.NotFound;
      mem().setU32(retId, id);
      return Status.Ok;
    },
    proxy_enqueue_shared_queue(queueId: number, valuePtr: number, valueSize: number): number {
      if (valueSize >>> 0 > vm.shared.maxValueBytes) return Status.BadArgument; // before copying it
      const value = mem().copy(valuePtr, valueSize);
      if (value === null) return Status.InvalidMemoryAccess;
      return vm.shared.enqueue(queueId >>> 0, value) ? Status.Ok : Status.NotFound;
    },
    proxy_dequeue_shared_queue(queueId: number, retPtr: number, retSize: number): number {
      const r = vm.shared.dequeue(queueId >>> 0);
      if (r === undefined) return Status.NotFound;
      if (r === null) return Status.Empty;
      return copyOut(r, retPtr, retSize);
    },

    // --- metrics ------------------------------------------------------------------
    proxy_define_metric(metricType: number, namePtr: number, nameSize: number, retId: number): number {
      if (metricType < MetricType.Counter || metricType > MetricType.Histogram) return Status.BadArgument;
      const name = mem().string(namePtr, nameSize);
      if (name === null) return Status.InvalidMemoryAccess;
      if (!mem().inBounds(retId, 4)) return Status.InvalidMemoryAccess;
      const id = vm.metrics.define(metricType, name, vm.name);
      if (id === null) return Status.BadArgument;
      ownMetrics.add(id);
      mem().setU32(retId, id);
      return Status.Ok;
    },
    proxy_increment_metric(metricId: number, delta: bigint): number {
      if (!mine(metricId >>> 0)) return Status.NotFound;
      return vm.metrics.increment(metricId >>> 0, Number(delta));
    },
    proxy_record_metric(metricId: number, value: bigint): number {
      if (!mine(metricId >>> 0)) return Status.NotFound;
      // The value is a u64 the engine hands over as a signed BigInt: only a negative one needs
      // reinterpreting (asUintN makes a new BigInt, which histograms would pay on every record).
      return vm.metrics.record(metricId >>> 0, value >= 0n ? Number(value) : Number(BigInt.asUintN(64, value)));
    },
    proxy_get_metric(metricId: number, retValue: number): number {
      if (!mine(metricId >>> 0)) return Status.NotFound;
      if (!mem().inBounds(retValue, 8)) return Status.InvalidMemoryAccess;
      const v = vm.metrics.get(metricId >>> 0);
      if (v === null) return Status.NotFound;
      mem().setU64(retValue, BigInt(Math.max(0, Math.round(v))));
      return Status.Ok;
    },
  };
}
