// Typed wrappers over the raw imports. Expected statuses become values
// (NOT_FOUND -> null, CAS_MISMATCH -> false, EMPTY -> null, ...); any other
// non-OK status aborts with the call name and the status number, which traps
// the VM after a CRITICAL log line (see runtime.ts).

import * as abi from "./abi/imports";
import { Status, statusName, BufferType, MapType, StreamType, MetricType } from "./abi/constants";
import { takeBuffer, takeString, releaseBuffer, lend, unlend } from "./runtime";
import { Headers, encodePairs, decodePairs } from "./pairs";
import { ByteBuffer } from "./bytes";

// Result slots the host writes into. Static: hostcalls never nest.
const RET_PTR: usize = memory.data(8, 8);
const RET_SIZE: usize = memory.data(8, 8);
const RET_EXTRA: usize = memory.data(8, 8);

@inline function retPtr(): usize { return load<usize>(RET_PTR); }
@inline function retSize(): usize { return load<usize>(RET_SIZE); }

function clearRet(): void {
  store<u64>(RET_PTR, 0);
  store<u64>(RET_SIZE, 0);
  store<u64>(RET_EXTRA, 0);
}

/** Aborts with a message naming the hostcall and the status. */
export function unexpected(call: string, status: u32): void {
  abort(call + " returned unexpected status " + status.toString() + " (" + statusName(status) + ")");
}

@inline function check(call: string, status: u32): void {
  if (status != Status.Ok) unexpected(call, status);
}

/** UTF-8 bytes of a string, to hand to the host. */
@inline export function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

// Encodings of recently used names (header names, foreign-function names), by string
// identity: adapters pass the same string objects (literals, configured names) on every
// request. The cache holds the strings, so an address cannot be reused by another string.
const NAME_SLOTS = 32;
const nameKeys = new StaticArray<string | null>(NAME_SLOTS);
const nameBytes = new StaticArray<ArrayBuffer | null>(NAME_SLOTS);
let nameNext = 0;

/** utf8(s), cached for the strings used as names. */
export function nameUtf8(s: string): ArrayBuffer {
  let p = changetype<usize>(s);
  for (let i = 0; i < NAME_SLOTS; i++) {
    if (changetype<usize>(unchecked(nameKeys[i])) == p) return changetype<ArrayBuffer>(unchecked(nameBytes[i]));
  }
  let b = String.UTF8.encode(s);
  let slot = nameNext;
  unchecked((nameKeys[slot] = s));
  unchecked((nameBytes[slot] = b));
  nameNext = (slot + 1) % NAME_SLOTS;
  return b;
}

/**
 * utf8(s) for a header value: literals (strings in the module's data segment, which live
 * forever) go through the name cache; values built at run time are encoded each time, so
 * per-request values neither evict names nor stay alive in the cache.
 */
export function valueUtf8(s: string): ArrayBuffer {
  return changetype<usize>(s) < __heap_base ? nameUtf8(s) : String.UTF8.encode(s);
}

/**
 * After a hostcall that returned bytes through RET_PTR/RET_SIZE with `out` lent: the bytes
 * are in `out` (in place, or in the host's fresh buffer, which `out` then keeps).
 */
function takeInto(out: ByteBuffer): void {
  let p = retPtr();
  let n = retSize();
  if (p == 0) out.len = 0;
  else if (p == out.ptr) out.len = <i32>n;
  else out.adopt(takeBuffer(p, n));
}

@inline function ptr(buf: ArrayBuffer | null): usize {
  return buf === null ? 0 : changetype<usize>(buf);
}

@inline function len(buf: ArrayBuffer | null): usize {
  return buf === null ? 0 : <usize>buf.byteLength;
}

// ---- logging, time, context --------------------------------------------------------------------

export function log(level: i32, message: string): void {
  let m = utf8(message);
  check("proxy_log", abi.proxy_log(<u32>level, ptr(m), len(m)));
}

export function getLogLevel(): i32 {
  store<u32>(RET_EXTRA, 0);
  check("proxy_get_log_level", abi.proxy_get_log_level(RET_EXTRA));
  return <i32>load<u32>(RET_EXTRA);
}

export function currentTimeNanos(): i64 {
  store<u64>(RET_EXTRA, 0);
  check("proxy_get_current_time_nanoseconds", abi.proxy_get_current_time_nanoseconds(RET_EXTRA));
  return load<i64>(RET_EXTRA);
}

export function setTickPeriod(ms: u32): void {
  check("proxy_set_tick_period_milliseconds", abi.proxy_set_tick_period_milliseconds(ms));
}

/** false when the host does not know the context (BAD_ARGUMENT / NOT_FOUND), e.g. the stream ended. */
export function setEffectiveContext(id: u32): bool {
  let s = abi.proxy_set_effective_context(id);
  if (s == Status.Ok) return true;
  if (s == Status.BadArgument || s == Status.NotFound) return false;
  unexpected("proxy_set_effective_context", s);
  return false;
}

/** false when the context was not waiting for proxy_done (NOT_FOUND). */
export function done(): bool {
  let s = abi.proxy_done();
  if (s == Status.Ok) return true;
  if (s == Status.NotFound) return false;
  unexpected("proxy_done", s);
  return false;
}

export class HostStatus {
  constructor(public code: u32, public message: string) {}
}

export function getStatus(): HostStatus {
  clearRet();
  check("proxy_get_status", abi.proxy_get_status(RET_EXTRA, RET_PTR, RET_SIZE));
  return new HostStatus(load<u32>(RET_EXTRA), takeString(retPtr(), retSize()));
}

// ---- buffers -----------------------------------------------------------------------------------

/** Bytes [start, start+maxSize) of a buffer, clamped by the host; null if the buffer is not available. */
export function getBufferBytes(type: BufferType, start: u32, maxSize: u32): ArrayBuffer | null {
  clearRet();
  let s = abi.proxy_get_buffer_bytes(<u32>type, start, maxSize, RET_PTR, RET_SIZE);
  if (s == Status.NotFound) return null;
  check("proxy_get_buffer_bytes", s);
  return takeBuffer(retPtr(), retSize());
}

/** Replaces `size` bytes at `start` (prepend: 0,0; append: start >= length). false if not available. */
export function setBufferBytes(type: BufferType, start: u32, size: u32, value: ArrayBuffer): bool {
  let s = abi.proxy_set_buffer_bytes(<u32>type, start, size, ptr(value), len(value));
  if (s == Status.NotFound) return false;
  check("proxy_set_buffer_bytes", s);
  return true;
}

export class BufferStatus {
  constructor(public size: u32, public endOfStream: bool) {}
}

export function getBufferStatus(type: BufferType): BufferStatus | null {
  clearRet();
  let s = abi.proxy_get_buffer_status(<u32>type, RET_SIZE, RET_EXTRA);
  if (s == Status.NotFound) return null;
  check("proxy_get_buffer_status", s);
  return new BufferStatus(load<u32>(RET_SIZE), (load<u32>(RET_EXTRA) & 1) != 0);
}

// ---- header maps -------------------------------------------------------------------------------

export function getHeaderMapSize(map: MapType): u32 {
  store<u64>(RET_SIZE, 0);
  check("proxy_get_header_map_size", abi.proxy_get_header_map_size(<u32>map, RET_SIZE));
  return load<u32>(RET_SIZE);
}

export function getHeaderMapPairs(map: MapType): Headers {
  clearRet();
  check("proxy_get_header_map_pairs", abi.proxy_get_header_map_pairs(<u32>map, RET_PTR, RET_SIZE));
  let p = retPtr();
  let n = retSize();
  let h = decodePairs(p, n);
  releaseBuffer(p);
  return h;
}

export function setHeaderMapPairs(map: MapType, headers: Headers): void {
  let b = encodePairs(headers);
  check("proxy_set_header_map_pairs", abi.proxy_set_header_map_pairs(<u32>map, ptr(b), len(b)));
}

/** First value of a header, or null when absent. */
export function getHeaderMapValue(map: MapType, key: string): string | null {
  clearRet();
  let k = nameUtf8(key);
  let s = abi.proxy_get_header_map_value(<u32>map, ptr(k), len(k), RET_PTR, RET_SIZE);
  if (s == Status.NotFound) return null;
  check("proxy_get_header_map_value", s);
  return takeString(retPtr(), retSize());
}

/** First value of a header into `out` (reused); false (out emptied) when absent. */
export function getHeaderMapValueInto(map: MapType, key: string, out: ByteBuffer): bool {
  clearRet();
  let k = nameUtf8(key);
  lend(out.buf);
  let s = abi.proxy_get_header_map_value(<u32>map, ptr(k), len(k), RET_PTR, RET_SIZE);
  unlend();
  out.len = 0;
  if (s == Status.NotFound) return false;
  check("proxy_get_header_map_value", s);
  takeInto(out);
  return true;
}

const probe = new ByteBuffer(256);

/** Whether a header is present (its value is read into a scratch buffer and dropped). */
export function hasHeaderMapValue(map: MapType, key: string): bool {
  return getHeaderMapValueInto(map, key, probe);
}

export function addHeaderMapValue(map: MapType, key: string, value: string): void {
  let k = nameUtf8(key);
  let v = valueUtf8(value);
  check("proxy_add_header_map_value", abi.proxy_add_header_map_value(<u32>map, ptr(k), len(k), ptr(v), len(v)));
}

export function replaceHeaderMapValue(map: MapType, key: string, value: string): void {
  let k = nameUtf8(key);
  let v = valueUtf8(value);
  check(
    "proxy_replace_header_map_value",
    abi.proxy_replace_header_map_value(<u32>map, ptr(k), len(k), ptr(v), len(v)),
  );
}

export function removeHeaderMapValue(map: MapType, key: string): void {
  let k = nameUtf8(key);
  let s = abi.proxy_remove_header_map_value(<u32>map, ptr(k), len(k));
  if (s == Status.NotFound) return; // absent is fine
  check("proxy_remove_header_map_value", s);
}

// ---- stream control ----------------------------------------------------------------------------

export function continueStream(type: StreamType): void {
  check("proxy_continue_stream", abi.proxy_continue_stream(<u32>type));
}

export function closeStream(type: StreamType): void {
  check("proxy_close_stream", abi.proxy_close_stream(<u32>type));
}

/** grpcStatus -1 means a plain HTTP response. */
export function sendLocalResponse(
  status: u32, details: string, body: ArrayBuffer | null, headers: Headers | null, grpcStatus: i32,
): void {
  let d = utf8(details);
  let h: ArrayBuffer | null = headers === null ? null : encodePairs(headers);
  check(
    "proxy_send_local_response",
    abi.proxy_send_local_response(status, ptr(d), len(d), ptr(body), len(body), ptr(h), len(h), grpcStatus),
  );
}

// ---- HTTP call-outs ----------------------------------------------------------------------------

/**
 * Starts an HTTP call; returns its token, or -1 when the host refused it
 * (BAD_ARGUMENT: unknown upstream or missing :method/:path/:authority; INTERNAL_FAILURE).
 */
export function httpCall(
  upstream: string, headers: Headers, body: ArrayBuffer | null, trailers: Headers | null, timeoutMs: u32,
): i64 {
  let u = utf8(upstream);
  let h = encodePairs(headers);
  let t: ArrayBuffer | null = trailers === null ? null : encodePairs(trailers);
  store<u32>(RET_EXTRA, 0);
  let s = abi.proxy_http_call(ptr(u), len(u), ptr(h), len(h), ptr(body), len(body), ptr(t), len(t), timeoutMs, RET_EXTRA);
  if (s == Status.BadArgument || s == Status.InternalFailure) {
    lastCallStatus = s;
    return -1;
  }
  check("proxy_http_call", s);
  return <i64>load<u32>(RET_EXTRA);
}

/** Status of the last refused call-out (for error messages). */
export let lastCallStatus: u32 = 0;

// ---- shared data -------------------------------------------------------------------------------

export class SharedValue {
  constructor(public value: ArrayBuffer, public cas: u32) {}
  /** The value decoded as UTF-8. */
  text(): string {
    return String.UTF8.decode(this.value);
  }
}

export function getSharedData(key: string): SharedValue | null {
  clearRet();
  let k = utf8(key);
  let s = abi.proxy_get_shared_data(ptr(k), len(k), RET_PTR, RET_SIZE, RET_EXTRA);
  if (s == Status.NotFound) return null;
  check("proxy_get_shared_data", s);
  let cas = load<u32>(RET_EXTRA);
  return new SharedValue(takeBuffer(retPtr(), retSize()), cas);
}

/** false on CAS_MISMATCH. */
export function setSharedData(key: string, value: ArrayBuffer, cas: u32): bool {
  let k = utf8(key);
  let s = abi.proxy_set_shared_data(ptr(k), len(k), ptr(value), len(value), cas);
  if (s == Status.CasMismatch) return false;
  check("proxy_set_shared_data", s);
  return true;
}

export function registerSharedQueue(name: string): u32 {
  let n = utf8(name);
  store<u32>(RET_EXTRA, 0);
  check("proxy_register_shared_queue", abi.proxy_register_shared_queue(ptr(n), len(n), RET_EXTRA));
  return load<u32>(RET_EXTRA);
}

/** Queue id, or -1 when no such queue (NOT_FOUND). */
export function resolveSharedQueue(vmId: string, name: string): i64 {
  let v = utf8(vmId);
  let n = utf8(name);
  store<u32>(RET_EXTRA, 0);
  let s = abi.proxy_resolve_shared_queue(ptr(v), len(v), ptr(n), len(n), RET_EXTRA);
  if (s == Status.NotFound) return -1;
  check("proxy_resolve_shared_queue", s);
  return <i64>load<u32>(RET_EXTRA);
}

/** false when the queue does not exist (NOT_FOUND). */
export function enqueueSharedQueue(id: u32, value: ArrayBuffer): bool {
  let s = abi.proxy_enqueue_shared_queue(id, ptr(value), len(value));
  if (s == Status.NotFound) return false;
  check("proxy_enqueue_shared_queue", s);
  return true;
}

/** Next item, or null when the queue is empty (EMPTY) or gone (NOT_FOUND). */
export function dequeueSharedQueue(id: u32): ArrayBuffer | null {
  clearRet();
  let s = abi.proxy_dequeue_shared_queue(id, RET_PTR, RET_SIZE);
  if (s == Status.Empty || s == Status.NotFound) return null;
  check("proxy_dequeue_shared_queue", s);
  return takeBuffer(retPtr(), retSize());
}

// ---- metrics -----------------------------------------------------------------------------------

export function defineMetric(type: MetricType, name: string): u32 {
  let n = utf8(name);
  store<u32>(RET_EXTRA, 0);
  let s = abi.proxy_define_metric(<u32>type, ptr(n), len(n), RET_EXTRA);
  if (s != Status.Ok) abort("proxy_define_metric(" + name + ") returned status " + s.toString() + " (" + statusName(s) + ")");
  return load<u32>(RET_EXTRA);
}

export function incrementMetric(id: u32, delta: i64): void {
  check("proxy_increment_metric", abi.proxy_increment_metric(id, delta));
}

export function recordMetric(id: u32, value: i64): void {
  check("proxy_record_metric", abi.proxy_record_metric(id, value));
}

export function getMetric(id: u32): u64 {
  store<u64>(RET_EXTRA, 0);
  check("proxy_get_metric", abi.proxy_get_metric(id, RET_EXTRA));
  return load<u64>(RET_EXTRA);
}

// ---- properties and foreign functions ----------------------------------------------------------

/** Raw property value, or null when the path is unknown (NOT_FOUND). */
export function getPropertyBytes(path: ArrayBuffer): ArrayBuffer | null {
  clearRet();
  let s = abi.proxy_get_property(ptr(path), len(path), RET_PTR, RET_SIZE);
  if (s == Status.NotFound) return null;
  check("proxy_get_property", s);
  return takeBuffer(retPtr(), retSize());
}

/** A property's value into `out` (reused); false (out emptied) when unknown. */
export function getPropertyInto(path: ArrayBuffer, out: ByteBuffer): bool {
  clearRet();
  lend(out.buf);
  let s = abi.proxy_get_property(ptr(path), len(path), RET_PTR, RET_SIZE);
  unlend();
  out.len = 0;
  if (s == Status.NotFound) return false;
  check("proxy_get_property", s);
  takeInto(out);
  return true;
}

/** Property value decoded as UTF-8, or null when unknown. */
export function getPropertyString(path: ArrayBuffer): string | null {
  clearRet();
  let s = abi.proxy_get_property(ptr(path), len(path), RET_PTR, RET_SIZE);
  if (s == Status.NotFound) return null;
  check("proxy_get_property", s);
  return takeString(retPtr(), retSize());
}

/** false when the host refuses the path (NOT_FOUND). */
export function setPropertyBytes(path: ArrayBuffer, value: ArrayBuffer): bool {
  let s = abi.proxy_set_property(ptr(path), len(path), ptr(value), len(value));
  if (s == Status.NotFound) return false;
  check("proxy_set_property", s);
  return true;
}

export class ForeignCallResult {
  constructor(
    /** The host's status: OK, NOT_FOUND (no such function, or not granted), BAD_ARGUMENT, ... */
    public status: u32,
    /** The function's result (empty unless status is OK). */
    public value: ArrayBuffer,
  ) {}
  get ok(): bool { return this.status == Status.Ok; }
}

/** Like callForeignFunction, but every status is a value: nothing aborts (for arguments the host may refuse). */
export function callForeignFunctionStatus(name: string, args: ArrayBuffer | null): ForeignCallResult {
  clearRet();
  let n = nameUtf8(name);
  let s = abi.proxy_call_foreign_function(ptr(n), len(n), ptr(args), len(args), RET_PTR, RET_SIZE);
  if (s != Status.Ok) return new ForeignCallResult(s, new ArrayBuffer(0));
  return new ForeignCallResult(s, takeBuffer(retPtr(), retSize()));
}

/** Result of a foreign function, or null when the host has no such function (NOT_FOUND). */
export function callForeignFunction(name: string, args: ArrayBuffer | null): ArrayBuffer | null {
  clearRet();
  let n = nameUtf8(name);
  let s = abi.proxy_call_foreign_function(ptr(n), len(n), ptr(args), len(args), RET_PTR, RET_SIZE);
  if (s == Status.NotFound) return null;
  check("proxy_call_foreign_function", s);
  return takeBuffer(retPtr(), retSize());
}

/**
 * Calls a foreign function with the arguments at argsPtr..argsPtr+argsLen and its result
 * into `out` (reused; emptied unless the status is OK). Returns the host's status; never aborts.
 */
export function callForeignFunctionInto(name: string, argsPtr: usize, argsLen: usize, out: ByteBuffer): u32 {
  clearRet();
  let n = nameUtf8(name);
  lend(out.buf);
  let s = abi.proxy_call_foreign_function(ptr(n), len(n), argsPtr, argsLen, RET_PTR, RET_SIZE);
  unlend();
  out.len = 0;
  if (s == Status.Ok) takeInto(out);
  return s;
}
