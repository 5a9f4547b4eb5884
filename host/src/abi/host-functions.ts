// The Proxy-Wasm ABI v0.2.1 host functions, one thin function per import.
// Each validates its arguments, returns exactly the statuses the spec lists for it,
// and never throws into the guest (a throw would become a trap in the adapter).
// The state they act on lives in the PluginVm (host/src/plugin/plugin-vm.ts).

import { randomFillSync } from 'node:crypto';
import type { PluginVm } from '../plugin/plugin-vm.js';
import { BufferType, Errno, LogLevel, MapType, MetricType, Status, StreamType } from './constants.js';
import { deserializePairs, headerBytes, serializePairs } from './pairs.js';
import type { GrpcRequest } from '../plugin/grpc-call.js';
import { fixedPropertySize, writeFixedProperty } from '../plugin/properties.js';
import type { ForeignWriter } from '../plugin/foreign-functions.js';
import { MAX_CALLOUT_TIMEOUT_MS, MAX_FD_WRITE_BYTES, MAX_FD_WRITE_IOVECS, MAX_LOG_MESSAGE_BYTES, RANDOM_GET_MAX } from '../limits.js';

export const WASI_MODULES: ReadonlySet<string> = new Set(['wasi_snapshot_preview1', 'wasi_unstable']);

/** Thrown by WASI proc_exit: unwinds the guest call, which the VM treats as a crash. */
export class ProcExit extends Error {
  constructor(readonly exitCode: number) {
    super(`adapter called proc_exit(${exitCode})`);
    this.name = 'ProcExit';
  }
}


type Fn = (...args: never[]) => number | bigint | void;

/** WASI functions Envoy registers that make no sense for a filter: they return ENOSYS. */
const UNIMPLEMENTED_WASI = [
  'fd_read', 'fd_close', 'fd_seek', 'fd_fdstat_get', 'fd_fdstat_set_flags', 'fd_prestat_get', 'fd_prestat_dir_name',
  'fd_filestat_get', 'fd_tell', 'fd_sync', 'fd_readdir', 'path_open', 'path_filestat_get', 'path_create_directory',
  'path_remove_directory', 'path_unlink_file', 'path_rename', 'poll_oneoff', 'sock_accept', 'sock_recv', 'sock_send',
  'sock_shutdown', 'clock_res_get',
];

export function createImports(vm: PluginVm): WebAssembly.Imports {
  const mem = () => vm.memory;
  const v010 = vm.compiled.abiVersion === '0.1.0';

  /** Copies `data` into a fresh guest allocation and writes its pointer and size. */
  const copyOut = (data: Uint8Array, retPtr: number, retSize: number): Status => {
    const m = mem();
    if (!m.inBounds(retPtr, 4) || !m.inBounds(retSize, 4)) return Status.InvalidMemoryAccess;
    if (data.length === 0) {
      m.setU32(retPtr, 0);
      m.setU32(retSize, 0);
      return Status.Ok;
    }
    const p = vm.allocate(data.length);
    if (p === 0 || !m.write(p, data)) return Status.InvalidMemoryAccess;
    m.setU32(retPtr, p);
    m.setU32(retSize, data.length);
    return Status.Ok;
  };

  /**
   * copyOut for host strings (header values, properties), which are byte strings as
   * Node's HTTP layer holds them: short ASCII ones are written straight into guest memory.
   */
  const copyOutString = (s: string, retPtr: number, retSize: number): Status => {
    if (s.length > 256 || !isAscii(s)) return copyOut(headerBytes(s), retPtr, retSize);
    const m = mem();
    if (!m.inBounds(retPtr, 4) || !m.inBounds(retSize, 4)) return Status.InvalidMemoryAccess;
    if (s.length === 0) {
      m.setU32(retPtr, 0);
      m.setU32(retSize, 0);
      return Status.Ok;
    }
    const p = vm.allocate(s.length);
    if (p === 0 || !m.writeStringAscii(p, s)) return Status.InvalidMemoryAccess;
    m.setU32(retPtr, p);
    m.setU32(retSize, s.length);
    return Status.Ok;
  };

  /** Writes a sized result (an int64 or boolean property, a foreign function's writer) straight into a guest allocation. */
  const copyOutSized = (w: ForeignWriter, retPtr: number, retSize: number): Status => {
    const size = w.size;
    const m = mem();
    if (!m.inBounds(retPtr, 4) || !m.inBounds(retSize, 4)) return Status.InvalidMemoryAccess;
    if (size === 0) {
      m.setU32(retPtr, 0);
      m.setU32(retSize, 0);
      return Status.Ok;
    }
    const p = vm.allocate(size);
    const dst = p === 0 ? null : m.writable(p, size);
    if (dst === null) return Status.InvalidMemoryAccess;
    w.write(dst);
    m.setU32(retPtr, p);
    m.setU32(retSize, size);
    return Status.Ok;
  };
  // One writer for every int64/boolean property: it is used up before the host function returns.
  const fixed = {
    value: 0 as number | bigint | boolean,
    size: 0,
    write(dst: Uint8Array): void {
      writeFixedProperty(this.value, dst, 0);
    },
  };
  const copyOutFixed = (v: number | bigint | boolean, retPtr: number, retSize: number): Status => {
    fixed.value = v;
    fixed.size = fixedPropertySize(v);
    return copyOutSized(fixed, retPtr, retSize);
  };

  const env: Record<string, Fn> = {
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

    // --- header maps ----------------------------------------------------------
    proxy_get_header_map_size(mapType: number, retSize: number): number {
      const map = vm.headerMap(mapType, false);
      if (map === undefined) return Status.BadArgument;
      const size = map === null ? 0 : serializedPairsSize(map);
      return mem().setU32(retSize, size) ? Status.Ok : Status.InvalidMemoryAccess;
    },
    proxy_get_header_map_pairs(mapType: number, retPtr: number, retSize: number): number {
      const map = vm.headerMap(mapType, false);
      if (map === undefined) return Status.BadArgument;
      return copyOut(serializePairs(map ?? []), retPtr, retSize);
    },
    proxy_set_header_map_pairs(mapType: number, ptr: number, size: number): number {
      const raw = mem().view(ptr, size);
      if (raw === null) return Status.InvalidMemoryAccess;
      const map = vm.headerMap(mapType, true);
      if (map === undefined || map === null) return Status.BadArgument;
      const pairs = deserializePairs(raw);
      if (pairs === null || !pairs.every(([k, v]) => validHeader(k, v))) return Status.BadArgument;
      map.length = 0;
      for (const [k, v] of pairs) map.push([k.toLowerCase(), v]);
      vm.headersChanged(mapType);
      return Status.Ok;
    },
    proxy_get_header_map_value(mapType: number, keyPtr: number, keySize: number, retPtr: number, retSize: number): number {
      const key = mem().latin1(keyPtr, keySize);
      if (key === null) return Status.InvalidMemoryAccess;
      const map = vm.headerMap(mapType, false);
      if (map === undefined) return Status.BadArgument;
      if (map === null) return Status.NotFound;
      const k = key.toLowerCase();
      // Like Envoy, the first value of a repeated header.
      for (let i = 0; i < map.length; i++) {
        if (map[i]![0] === k) return copyOutString(map[i]![1], retPtr, retSize);
      }
      // ABI 0.1.0 answered a missing key with OK and an empty value.
      return v010 ? copyOut(EMPTY_BYTES, retPtr, retSize) : Status.NotFound;
    },
    proxy_add_header_map_value(mapType: number, keyPtr: number, keySize: number, valuePtr: number, valueSize: number): number {
      const key = mem().latin1(keyPtr, keySize);
      const value = mem().latin1(valuePtr, valueSize);
      if (key === null || value === null) return Status.InvalidMemoryAccess;
      const map = vm.headerMap(mapType, true);
      if (map === undefined || map === null || !validHeader(key, value)) return Status.BadArgument;
      map.push([key.toLowerCase(), value]);
      vm.headersChanged(mapType);
      return Status.Ok;
    },
    proxy_replace_header_map_value(mapType: number, keyPtr: number, keySize: number, valuePtr: number, valueSize: number): number {
      const key = mem().latin1(keyPtr, keySize);
      const value = mem().latin1(valuePtr, valueSize);
      if (key === null || value === null) return Status.InvalidMemoryAccess;
      const map = vm.headerMap(mapType, true);
      if (map === undefined || map === null || !validHeader(key, value)) return Status.BadArgument;
      const k = key.toLowerCase();
      removeKey(map, k);
      map.push([k, value]);
      vm.headersChanged(mapType);
      return Status.Ok;
    },
    proxy_remove_header_map_value(mapType: number, keyPtr: number, keySize: number): number {
      const key = mem().latin1(keyPtr, keySize);
      if (key === null) return Status.InvalidMemoryAccess;
      const map = vm.headerMap(mapType, true);
      if (map === undefined || map === null) return Status.BadArgument;
      removeKey(map, key.toLowerCase());
      vm.headersChanged(mapType);
      return Status.Ok;
    },

    // --- buffers --------------------------------------------------------------
    proxy_get_buffer_bytes(bufferType: number, start: number, maxSize: number, retPtr: number, retSize: number): number {
      if (bufferType < BufferType.HttpRequestBody || bufferType > BufferType.CallData) return Status.BadArgument;
      // start + maxSize cannot overflow here: like cpp-host (64-bit Word), a range past
      // 32 bits (e.g. start 2, max_size usize::MAX from the Rust SDK) is clamped, not refused.
      start >>>= 0;
      maxSize >>>= 0;
      const buf = vm.buffer(bufferType);
      if (buf === null) return Status.NotFound;
      const from = Math.min(start, buf.bytes.length);
      const to = Math.min(start + maxSize, buf.bytes.length);
      return copyOut(buf.bytes.subarray(from, to), retPtr, retSize);
    },
    proxy_get_buffer_status(bufferType: number, retSize: number, retFlags: number): number {
      if (bufferType < BufferType.HttpRequestBody || bufferType > BufferType.CallData) return Status.BadArgument;
      const buf = vm.buffer(bufferType);
      if (buf === null) return Status.NotFound;
      const m = mem();
      if (!m.inBounds(retSize, 4) || !m.inBounds(retFlags, 4)) return Status.InvalidMemoryAccess;
      m.setU32(retSize, buf.bytes.length);
      m.setU32(retFlags, buf.endOfStream ? 1 : 0);
      return Status.Ok;
    },
    proxy_set_buffer_bytes(bufferType: number, start: number, size: number, valuePtr: number, valueSize: number): number {
      if (bufferType < BufferType.HttpRequestBody || bufferType > BufferType.CallData) return Status.BadArgument;
      const value = mem().copy(valuePtr, valueSize);
      if (value === null) return Status.InvalidMemoryAccess;
      const buf = vm.buffer(bufferType);
      if (buf === null) return Status.NotFound;
      if (!buf.writable) return Status.BadArgument;
      start >>>= 0;
      size >>>= 0;
      const cur = buf.bytes;
      const from = Math.min(start, cur.length);
      const to = Math.min(from + size, cur.length);
      const next = new Uint8Array(from + value.length + (cur.length - to));
      next.set(cur.subarray(0, from), 0);
      next.set(value, from);
      next.set(cur.subarray(to), from + value.length);
      vm.replaceBuffer(bufferType, next);
      return Status.Ok;
    },

    // --- properties -------------------------------------------------------------
    proxy_get_property(pathPtr: number, pathSize: number, retPtr: number, retSize: number): number {
      const path = mem().string(pathPtr, pathSize);
      if (path === null) return Status.InvalidMemoryAccess;
      const value = vm.getProperty(path);
      if (value === null) return Status.NotFound;
      if (typeof value === 'string') return copyOutString(value, retPtr, retSize);
      return value instanceof Uint8Array ? copyOut(value, retPtr, retSize) : copyOutFixed(value, retPtr, retSize);
    },
    proxy_set_property(pathPtr: number, pathSize: number, valuePtr: number, valueSize: number): number {
      const path = mem().string(pathPtr, pathSize);
      const value = mem().copyShortLived(valuePtr, valueSize); // filter state lives as long as the request
      if (path === null || value === null) return Status.InvalidMemoryAccess;
      return vm.setProperty(path, value) ? Status.Ok : Status.NotFound;
    },

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
      const value = mem().copy(valuePtr, valueSize)!;
      return vm.shared.set(key, value, cas >>> 0) ? Status.Ok : Status.CasMismatch;
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
      mem().setU32(retId, id);
      return Status.Ok;
    },
    proxy_increment_metric(metricId: number, delta: bigint): number {
      return vm.metrics.increment(metricId >>> 0, Number(delta));
    },
    proxy_record_metric(metricId: number, value: bigint): number {
      return vm.metrics.record(metricId >>> 0, Number(BigInt.asUintN(64, value)));
    },
    proxy_get_metric(metricId: number, retValue: number): number {
      if (!mem().inBounds(retValue, 8)) return Status.InvalidMemoryAccess;
      const v = vm.metrics.get(metricId >>> 0);
      if (v === null) return Status.NotFound;
      mem().setU64(retValue, BigInt(Math.max(0, Math.round(v))));
      return Status.Ok;
    },

    // --- HTTP call-outs -------------------------------------------------------------
    proxy_http_call(
      upstreamPtr: number, upstreamSize: number, headersPtr: number, headersSize: number, bodyPtr: number, bodySize: number,
      trailersPtr: number, trailersSize: number, timeoutMs: number, retToken: number,
    ): number {
      const m = mem();
      const upstream = m.string(upstreamPtr, upstreamSize);
      const rawHeaders = m.view(headersPtr, headersSize);
      const body = m.copy(bodyPtr, bodySize);
      const rawTrailers = m.view(trailersPtr, trailersSize);
      if (upstream === null || rawHeaders === null || body === null || rawTrailers === null) return Status.InvalidMemoryAccess;
      if (!m.inBounds(retToken, 4)) return Status.InvalidMemoryAccess;
      const headers = deserializePairs(rawHeaders);
      if (headers === null || deserializePairs(rawTrailers) === null) return Status.BadArgument;
      const has = (k: string) => headers.some(([n]) => n === k);
      if (!has(':method') || !has(':path') || !has(':authority')) return Status.BadArgument;
      const timeout = Math.min(timeoutMs >>> 0 || MAX_CALLOUT_TIMEOUT_MS, MAX_CALLOUT_TIMEOUT_MS);
      const token = vm.httpCall(upstream, headers, body, timeout);
      if (token === null) return Status.BadArgument;
      m.setU32(retToken, token);
      return Status.Ok;
    },

    // --- gRPC call-outs (plugin/grpc-call.ts) -------------------------------------------
    proxy_grpc_call(
      upstreamPtr: number, upstreamSize: number, servicePtr: number, serviceSize: number, methodPtr: number, methodSize: number,
      metadataPtr: number, metadataSize: number, messagePtr: number, messageSize: number, timeoutMs: number, retToken: number,
    ): number {
      const req = grpcRequest(upstreamPtr, upstreamSize, servicePtr, serviceSize, methodPtr, methodSize, metadataPtr, metadataSize, 'proxy_grpc_call');
      const message = mem().copy(messagePtr, messageSize);
      if (typeof req === 'number') return req;
      if (message === null || !mem().inBounds(retToken, 4)) return Status.InvalidMemoryAccess;
      if (req === null) return Status.ParseFailure;
      const token = vm.grpcCall(req, message, Math.min(timeoutMs >>> 0 || MAX_CALLOUT_TIMEOUT_MS, MAX_CALLOUT_TIMEOUT_MS));
      if (token === null) return Status.InternalFailure;
      mem().setU32(retToken, token);
      return Status.Ok;
    },
    proxy_grpc_stream(
      upstreamPtr: number, upstreamSize: number, servicePtr: number, serviceSize: number, methodPtr: number, methodSize: number,
      metadataPtr: number, metadataSize: number, retToken: number,
    ): number {
      const req = grpcRequest(upstreamPtr, upstreamSize, servicePtr, serviceSize, methodPtr, methodSize, metadataPtr, metadataSize, 'proxy_grpc_stream');
      if (typeof req === 'number') return req;
      if (!mem().inBounds(retToken, 4)) return Status.InvalidMemoryAccess;
      if (req === null) return Status.ParseFailure;
      const token = vm.grpcStream(req);
      if (token === null) return Status.InternalFailure;
      mem().setU32(retToken, token);
      return Status.Ok;
    },
    proxy_grpc_send(token: number, messagePtr: number, messageSize: number, endStream: number): number {
      const message = mem().copy(messagePtr, messageSize);
      if (message === null) return Status.InvalidMemoryAccess;
      return vm.grpcCallouts().send(token >>> 0, message, endStream !== 0) ? Status.Ok : Status.NotFound;
    },
    proxy_grpc_cancel(token: number): number {
      return vm.grpcCallouts().cancel(token >>> 0) ? Status.Ok : Status.NotFound;
    },
    proxy_grpc_close(token: number): number {
      return vm.grpcCallouts().close(token >>> 0) ? Status.Ok : Status.NotFound;
    },
    proxy_get_status(retCode: number, retMsgPtr: number, retMsgSize: number): number {
      const m = mem();
      if (!m.inBounds(retCode, 4)) return Status.InvalidMemoryAccess;
      const st = vm.lastCallStatus;
      m.setU32(retCode, st.code);
      return copyOut(textEncoder.encode(st.message), retMsgPtr, retMsgSize);
    },
    proxy_call_foreign_function(namePtr: number, nameSize: number, argsPtr: number, argsSize: number, retPtr: number, retSize: number): number {
      const name = mem().string(namePtr, nameSize);
      const args = mem().copyShortLived(argsPtr, argsSize); // foreign functions keep their arguments briefly at most (an access-log line until its write)
      if (name === null || args === null) return Status.InvalidMemoryAccess;
      const result = vm.callForeign(name, args);
      if (typeof result === 'number') return result;
      if (result instanceof Uint8Array) return copyOut(result, retPtr, retSize);
      return copyOutSized(result, retPtr, retSize);
    },

    // --- what proxy-wasm-cpp-host gives every module (Emscripten builds import these) ---
    emscripten_notify_memory_growth(_memoryIndex: number): void {
      // Memory views are re-read on every access (vm/guest-memory.ts): nothing to refresh.
    },
    pthread_equal(left: number, right: number): number {
      return left === right ? 1 : 0;
    },
  };

  /** The arguments proxy_grpc_call and proxy_grpc_stream share; a status, or null for an upstream the plugin may not call. */
  function grpcRequest(
    upstreamPtr: number, upstreamSize: number, servicePtr: number, serviceSize: number, methodPtr: number, methodSize: number,
    metadataPtr: number, metadataSize: number, fn: string,
  ): GrpcRequest | null | Status {
    const m = mem();
    const upstream = m.string(upstreamPtr, upstreamSize);
    const service = m.string(servicePtr, serviceSize);
    const method = m.string(methodPtr, methodSize);
    const rawMetadata = m.view(metadataPtr, metadataSize);
    if (upstream === null || service === null || method === null || rawMetadata === null) return Status.InvalidMemoryAccess;
    const metadata = deserializePairs(rawMetadata);
    if (metadata === null || !metadata.every(([k, v]) => validHeader(k, v))) return Status.BadArgument;
    const target = vm.grpcTarget(upstream, fn);
    return target === null ? null : { target, service, method, metadata };
  }

  const wasi: Record<string, Fn> = {
    fd_write(fd: number, iovs: number, iovsLen: number, retWritten: number): number {
      if (fd !== 1 && fd !== 2) return Errno.Badf;
      const n = iovsLen >>> 0;
      if (n > MAX_FD_WRITE_IOVECS) return Errno.Inval; // as writev past IOV_MAX
      const m = mem();
      const table = m.copy(iovs, n * 8);
      if (table === null) return Errno.Fault;
      const iov = new DataView(table.buffer);
      // At most MAX_FD_WRITE_BYTES are taken from one call; the rest is reported
      // written (so libc does not retry it) and dropped, never copied.
      let total = 0;
      let taken = 0;
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        const p = iov.getUint32(i * 8, true);
        const l = iov.getUint32(i * 8 + 4, true);
        if (!m.inBounds(p, l)) return Errno.Fault;
        total += l;
        const want = Math.min(l, MAX_FD_WRITE_BYTES - taken);
        if (want > 0) {
          chunks.push(m.copy(p, want)!);
          taken += want;
        }
      }
      if (total > 0xffffffff || !m.setU32(retWritten, total)) return Errno.Fault;
      vm.stdioWrite(fd, chunks, total - taken);
      return Errno.Success;
    },
    proc_exit(code: number): void {
      throw new ProcExit(code);
    },
    clock_time_get(clockId: number, _precision: bigint, retTime: number): number {
      let t: bigint;
      if (clockId === 0) t = wallClockNs();
      else if (clockId === 1) t = process.hrtime.bigint();
      else return Errno.Notsup;
      return mem().setU64(retTime, t) ? Errno.Success : Errno.Fault;
    },
    random_get(ptr: number, len: number): number {
      len >>>= 0;
      if (len > RANDOM_GET_MAX) return Errno.Inval;
      const v = mem().view(ptr, len);
      if (v === null) return Errno.Fault;
      randomFillSync(v);
      return Errno.Success;
    },
    environ_sizes_get(retCount: number, retBufSize: number): number {
      const env = vm.environ;
      const size = env.reduce((n, e) => n + e.length + 1, 0);
      return mem().setU32(retCount, env.length) && mem().setU32(retBufSize, size) ? Errno.Success : Errno.Fault;
    },
    environ_get(ptrs: number, buf: number): number {
      const m = mem();
      let p = buf >>> 0;
      const env = vm.environ;
      for (let i = 0; i < env.length; i++) {
        const e = env[i]!;
        if (!m.setU32(ptrs + i * 4, p) || !m.write(p, e) || !m.write(p + e.length, NUL)) return Errno.Fault;
        p += e.length + 1;
      }
      return Errno.Success;
    },
    args_sizes_get(retCount: number, retBufSize: number): number {
      return mem().setU32(retCount, 0) && mem().setU32(retBufSize, 0) ? Errno.Success : Errno.Fault;
    },
    args_get(): number {
      return Errno.Success;
    },
    sched_yield(): number {
      return Errno.Success;
    },
  };
  for (const name of UNIMPLEMENTED_WASI) wasi[name] = () => Errno.Nosys;

  return { env, wasi_snapshot_preview1: wasi, wasi_unstable: wasi } as WebAssembly.Imports;
}

const textEncoder = new TextEncoder();
const EMPTY_BYTES = new Uint8Array(0);
const NUL = new Uint8Array([0]);

// RFC 9110 field names are tokens (pseudo-headers start with ':'); values must not
// contain CR, LF or NUL, which would let an adapter split the message (Node refuses them).
const HEADER_NAME = /^:?[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;
function validHeader(name: string, value: string): boolean {
  return HEADER_NAME.test(name) && !BAD_VALUE.test(value);
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

function removeKey(map: Array<[string, string]>, key: string): void {
  let w = 0;
  for (let r = 0; r < map.length; r++) if (map[r]![0] !== key) map[w++] = map[r]!;
  map.length = w;
}

function serializedPairsSize(map: ReadonlyArray<readonly [string, string]>): number {
  let n = 4 + map.length * 8;
  for (const [k, v] of map) n += Buffer.byteLength(k) + Buffer.byteLength(v) + 2;
  return n;
}

const timeOriginNs = BigInt(Math.round(performance.timeOrigin * 1e6));
const hrOrigin = process.hrtime.bigint() - BigInt(Math.round(performance.now() * 1e6));
export function wallClockNs(): bigint {
  return timeOriginNs + (process.hrtime.bigint() - hrOrigin);
}

/** ABI 0.1.0's functions, replaced in 0.2.0 (cpp-host links them for 0.1.0 modules only). */
export const ABI_0_1_0_ONLY: ReadonlySet<string> = new Set(['proxy_get_configuration', 'proxy_continue_request', 'proxy_continue_response', 'proxy_clear_route_cache']);
/** ABI 0.2.x's stream functions (cpp-host links them for 0.2.x modules only). */
export const ABI_0_2_ONLY: ReadonlySet<string> = new Set(['proxy_continue_stream', 'proxy_close_stream']);

const ENV_FUNCTIONS = [
  ...ABI_0_1_0_ONLY,
  'proxy_log', 'proxy_get_log_level', 'proxy_get_current_time_nanoseconds', 'proxy_set_tick_period_milliseconds',
  'proxy_set_effective_context', 'proxy_done', 'proxy_continue_stream', 'proxy_close_stream', 'proxy_send_local_response',
  'proxy_get_header_map_size', 'proxy_get_header_map_pairs', 'proxy_set_header_map_pairs', 'proxy_get_header_map_value',
  'proxy_add_header_map_value', 'proxy_replace_header_map_value', 'proxy_remove_header_map_value', 'proxy_get_buffer_bytes',
  'proxy_get_buffer_status', 'proxy_set_buffer_bytes', 'proxy_get_property', 'proxy_set_property', 'proxy_get_shared_data',
  'proxy_set_shared_data', 'proxy_register_shared_queue', 'proxy_resolve_shared_queue', 'proxy_enqueue_shared_queue',
  'proxy_dequeue_shared_queue', 'proxy_define_metric', 'proxy_increment_metric', 'proxy_record_metric', 'proxy_get_metric',
  'proxy_http_call', 'proxy_get_status', 'proxy_call_foreign_function',
  'proxy_grpc_call', 'proxy_grpc_stream', 'proxy_grpc_send', 'proxy_grpc_cancel', 'proxy_grpc_close',
  'emscripten_notify_memory_growth', 'pthread_equal',
];
const WASI_FUNCTIONS = [
  'fd_write', 'proc_exit', 'clock_time_get', 'random_get', 'environ_sizes_get', 'environ_get', 'args_sizes_get', 'args_get', 'sched_yield',
];

/** Import names the host implements: `proxy_*` for env, `wasi.<name>` for either WASI module. */
export const IMPLEMENTED_IMPORTS: ReadonlySet<string> = new Set([...ENV_FUNCTIONS, ...WASI_FUNCTIONS.map((n) => `wasi.${n}`)]);
/** Import names that link to stubs returning ENOSYS (every proxy_* function is implemented); loading logs a warning naming them. */
export const KNOWN_UNIMPLEMENTED_IMPORTS: ReadonlySet<string> = new Set(UNIMPLEMENTED_WASI.map((n) => `wasi.${n}`));
