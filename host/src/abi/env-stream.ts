// Host functions: logging, time, ticks, contexts and stream control (ABI 0.2.1 and 0.1.0's
// per-direction continue). Each validates its arguments, returns exactly the statuses the
// spec lists for it, and never throws into the guest (a throw would become a trap).

import { LogLevel, Status, StreamType } from './constants.js';
import { deserializePairs } from './pairs.js';
import { MAX_LOG_MESSAGE_BYTES } from '../limits.js';
import { validHeader, wallClockNs } from './guest-io.js';
import type { AbiContext } from './context.js';
import type { GuestIo, HostFn } from './guest-io.js';

export function streamFunctions(vm: AbiContext, { mem, copyOut }: GuestIo): Record<string, HostFn> {
  return {
    // --- logging and time -------------------------------------------------
    proxy_log(level: number, ptr: number, size: number): number {
      if (level < LogLevel.Trace || level > LogLevel.Critical) return Status.BadArgument;
      size >>>= 0;
      if (!mem().inBounds(ptr, size)) return Status.InvalidMemoryAccess;
      // Below the log level or past the callback's log budget: not even decoded.
      if (!vm.admitLog(level, size)) return Status.Ok;
      const cut = Math.min(size, MAX_LOG_MESSAGE_BYTES);
      const msg = mem().string(ptr, cut)!;
      vm.guestLog(level, cut < size ? `${msg} ...[truncated, ${size} bytes]` : msg);
      return Status.Ok;
    },
    proxy_get_log_level(retLevel: number): number {
      return mem().setU32(retLevel, vm.logLevel) ? Status.Ok : Status.InvalidMemoryAccess;
    },
    proxy_get_current_time_nanoseconds(retTime: number): number {
      return mem().setU64(retTime, wallClockNs()) ? Status.Ok : Status.InvalidMemoryAccess;
    },
    proxy_set_tick_period_milliseconds(periodMs: number): number {
      vm.setTickPeriod(periodMs >>> 0);
      return Status.Ok;
    },

    // --- contexts -----------------------------------------------------------
    proxy_set_effective_context(contextId: number): number {
      return vm.setEffectiveContext(contextId >>> 0) ? Status.Ok : Status.BadArgument;
    },
    proxy_done(): number {
      return vm.markDone() ? Status.Ok : Status.NotFound;
    },
    proxy_continue_stream(streamType: number): number {
      if (streamType === StreamType.Downstream || streamType === StreamType.Upstream) return Status.Unimplemented;
      if (streamType !== StreamType.HttpRequest && streamType !== StreamType.HttpResponse) return Status.BadArgument;
      return vm.continueStream(streamType) ? Status.Ok : Status.BadArgument;
    },
    // ABI 0.1.0 (abi-versions/v0.1.0): configuration through one call, per-direction continue.
    proxy_get_configuration(retPtr: number, retSize: number): number {
      return copyOut(vm.configuration(), retPtr, retSize);
    },
    proxy_continue_request(): number {
      return vm.continueStream(StreamType.HttpRequest) ? Status.Ok : Status.NotFound;
    },
    proxy_continue_response(): number {
      return vm.continueStream(StreamType.HttpResponse) ? Status.Ok : Status.NotFound;
    },
    proxy_clear_route_cache(): number {
      // Routes are matched once per request, before the chain runs: nothing is cached to clear.
      return Status.Ok;
    },
    proxy_close_stream(streamType: number): number {
      if (streamType < StreamType.HttpRequest || streamType > StreamType.Upstream) return Status.BadArgument;
      return vm.closeStream() ? Status.Ok : Status.BadArgument;
    },
    proxy_send_local_response(
      statusCode: number, detailsPtr: number, detailsSize: number, bodyPtr: number, bodySize: number,
      headersPtr: number, headersSize: number, grpcStatus: number,
    ): number {
      const m = mem();
      const details = m.string(detailsPtr, detailsSize);
      const body = m.copy(bodyPtr, bodySize);
      const rawHeaders = m.view(headersPtr, headersSize);
      if (details === null || body === null || rawHeaders === null) return Status.InvalidMemoryAccess;
      const headers = deserializePairs(rawHeaders);
      if (headers === null || !headers.every(([k, v]) => validHeader(k, v))) return Status.BadArgument;
      if (statusCode < 100 || statusCode > 599) return Status.BadArgument;
      return vm.sendLocalResponse(statusCode, details, body, headers, grpcStatus | 0) ? Status.Ok : Status.BadArgument;
    },
  };
}
