// wasm-mixer AssemblyScript SDK: the single import path for adapter authors.
//
//   import { Adapter, Request, Report, Decision, Config, Counter, log, register } from "wasm-mixer/sdk";
//   export * from "wasm-mixer/sdk/exports";
//
// See sdk/README.md.

export { Adapter, Request, Report, Decision, DecisionKind, HttpCallResponse, HttpCallback, AdapterHttpCallback, hostPart } from "./context";
export { register, registerFactory, AdapterFactory } from "./dispatcher";
export { Config } from "./config";
export { JSONValue, JSONKind, JSONResult, parseJSON, quoteJSON } from "./json";
export { Headers, encodePairs, decodePairs, decodePairsBuffer } from "./pairs";
export { getProperty, getStringProperty, getIntProperty, getBoolProperty, getMapProperty, setProperty, encodePath } from "./properties";
export { Counter, Gauge, Histogram, Metric, metricName, escapeLabelValue } from "./metrics";
export { log } from "./log";
export { SharedData, SharedQueue, SharedValue } from "./shared";
export { LogLevel, MapType, BufferType, StreamType, MetricType, Status, statusName } from "./abi/constants";
export { HostStatus, BufferStatus, ForeignCallResult } from "./hostcalls";
export { ByteBuffer, bytesEqual, bytesStartWith } from "./bytes";
export { PropertySet } from "./propset";
export { PropertyWrites } from "./propwrite";
export { BytesMap, hashBytes } from "./bytesmap";
export { IdTable } from "./idtable";
export { PathFilter } from "./paths";
export { Attr, AttrSource, AttrType, parseAttr, attrError, attrString, attrInt, isoTime, strftime } from "./attributes";

import * as host from "./hostcalls";
import { MapType as M, BufferType as B, StreamType as S } from "./abi/constants";
import { Headers } from "./pairs";
import { ByteBuffer } from "./bytes";
import { pendingBuffers } from "./runtime";
import { liveContexts, pooledContexts } from "./dispatcher";

/** Diagnostics: host-written buffers not yet taken by the SDK (0 between callbacks). */
export function pendingHostBuffers(): i32 {
  return pendingBuffers();
}

/** Diagnostics: root plus stream contexts the SDK currently tracks. */
export function liveContextCount(): i32 {
  return liveContexts();
}

/** Diagnostics: objects of ended requests kept for reuse by the next ones. */
export function pooledContextCount(): i32 {
  return pooledContexts();
}

/** Current time, nanoseconds since the epoch (proxy_get_current_time_nanoseconds). */
export function now(): i64 {
  return host.currentTimeNanos();
}

/** Starts (ms > 0) or stops (0) the periodic Adapter.onTick of the current root. */
export function setTickPeriod(ms: u32): void {
  host.setTickPeriod(ms);
}

/** Calls a host-provided foreign function; null when the host has no such function. */
export function callForeignFunction(name: string, args: ArrayBuffer | null = null): ArrayBuffer | null {
  return host.callForeignFunction(name, args);
}

/**
 * Calls a foreign function and returns the host's status with the result,
 * never aborting: for functions that answer BAD_ARGUMENT to input the adapter
 * cannot fully vet (e.g. Envoy's verify_signature with a key it cannot import).
 */
export function callForeignFunctionStatus(name: string, args: ArrayBuffer | null = null): host.ForeignCallResult {
  return host.callForeignFunctionStatus(name, args);
}

/**
 * Calls a foreign function with the arguments at argsPtr..argsPtr+argsLen (e.g. a
 * ByteBuffer's ptr and len: no copy) and reads its result into `out` (reused). Returns the
 * host's status (OK, NOT_FOUND when the host has no such function, ...); never aborts.
 */
export function callForeignFunctionInto(name: string, argsPtr: usize, argsLen: i32, out: ByteBuffer): u32 {
  return host.callForeignFunctionInto(name, argsPtr, <usize>argsLen, out);
}

/** The status code and message of the last gRPC/foreign operation (proxy_get_status). */
export function getStatus(): host.HostStatus {
  return host.getStatus();
}

/**
 * Low-level access for what the high layer does not cover (bodies, trailers,
 * raw header maps, stream control). Inside a callback only, as the ABI allows.
 */
export namespace raw {
  export function getHeader(map: M, name: string): string | null { return host.getHeaderMapValue(map, name); }
  export function getHeaders(map: M): Headers { return host.getHeaderMapPairs(map); }
  export function setHeaders(map: M, h: Headers): void { host.setHeaderMapPairs(map, h); }
  export function headerCount(map: M): u32 { return host.getHeaderMapSize(map); }
  export function getBuffer(type: B, start: u32, maxSize: u32): ArrayBuffer | null { return host.getBufferBytes(type, start, maxSize); }
  export function setBuffer(type: B, start: u32, size: u32, value: ArrayBuffer): bool { return host.setBufferBytes(type, start, size, value); }
  export function bufferStatus(type: B): host.BufferStatus | null { return host.getBufferStatus(type); }
  export function continueStream(type: S): void { host.continueStream(type); }
  export function closeStream(type: S): void { host.closeStream(type); }
  export function done(): bool { return host.done(); }
  export function setEffectiveContext(id: u32): bool { return host.setEffectiveContext(id); }
  /** A property's raw bytes by a path encodePath() already encoded (encode once, reuse per request); null when unknown. */
  export function getProperty(encodedPath: ArrayBuffer): ArrayBuffer | null { return host.getPropertyBytes(encodedPath); }
  /** The same into `out` (reused, no allocation); false when unknown. */
  export function getPropertyInto(encodedPath: ArrayBuffer, out: ByteBuffer): bool { return host.getPropertyInto(encodedPath, out); }
  /** A header's first value into `out` (reused, no allocation); false when absent. */
  export function getHeaderInto(map: M, name: string, out: ByteBuffer): bool { return host.getHeaderMapValueInto(map, name, out); }
}
