// Properties (proxy_get_property / proxy_set_property). A path is a list of
// segments, sent joined by single NUL bytes: ["request", "path"] -> "request\0path".
// Values: strings raw, integers 8-byte little-endian int64 (timestamps and
// durations in nanoseconds), bools one byte, maps in the pairs format.

import * as host from "./hostcalls";
import { Headers, decodePairsBuffer } from "./pairs";

/** Encodes a property path: UTF-8 segments joined by NUL. */
export function encodePath(path: string[]): ArrayBuffer {
  let n = path.length;
  let size = n > 0 ? n - 1 : 0;
  for (let i = 0; i < n; i++) size += String.UTF8.byteLength(unchecked(path[i]));
  let buf = new ArrayBuffer(size);
  let p = changetype<usize>(buf);
  for (let i = 0; i < n; i++) {
    if (i > 0) store<u8>(p++, 0);
    let s = unchecked(path[i]);
    p += String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, p);
  }
  return buf;
}

/** Raw value of a property, or null when the host does not know the path. */
export function getProperty(path: string[]): ArrayBuffer | null {
  return host.getPropertyBytes(encodePath(path));
}

/** A property decoded as UTF-8, or null when unknown. */
export function getStringProperty(path: string[]): string | null {
  return host.getPropertyString(encodePath(path));
}

/**
 * An integer property (8-byte little-endian int64), or `missing` when the
 * host does not know the path or the value is not 8 bytes long.
 */
export function getIntProperty(path: string[], missing: i64 = 0): i64 {
  let b = host.getPropertyBytes(encodePath(path));
  if (b === null || b.byteLength != 8) return missing;
  return load<i64>(changetype<usize>(b));
}

/** A bool property (one byte, non-zero is true), or `missing`. */
export function getBoolProperty(path: string[], missing: bool = false): bool {
  let b = host.getPropertyBytes(encodePath(path));
  if (b === null || b.byteLength < 1) return missing;
  return load<u8>(changetype<usize>(b)) != 0;
}

/** A map-valued property (pairs format), or null when unknown. */
export function getMapProperty(path: string[]): Headers | null {
  let b = host.getPropertyBytes(encodePath(path));
  if (b === null) return null;
  return decodePairsBuffer(b);
}

/**
 * Sets a property for the current request (filter state), readable by later
 * adapters in the same request with getProperty. `value` may be a string
 * (stored as UTF-8), an ArrayBuffer (raw), a bool (one byte) or an integer
 * (8-byte little-endian int64). Returns false if the host refuses the path.
 */
export function setProperty<T>(path: string[], value: T): bool {
  let bytes: ArrayBuffer;
  if (isString<T>()) {
    bytes = String.UTF8.encode(changetype<string>(value));
  } else if (isBoolean<T>()) {
    bytes = new ArrayBuffer(1);
    store<u8>(changetype<usize>(bytes), value ? 1 : 0);
  } else if (isInteger<T>()) {
    bytes = new ArrayBuffer(8);
    store<i64>(changetype<usize>(bytes), <i64>value);
  } else if (isReference<T>()) {
    if (idof<T>() != idof<ArrayBuffer>()) ERROR("setProperty: value must be a string, ArrayBuffer, bool or integer");
    bytes = changetype<ArrayBuffer>(value);
  } else {
    ERROR("setProperty: value must be a string, ArrayBuffer, bool or integer");
    bytes = new ArrayBuffer(0);
  }
  return host.setPropertyBytes(encodePath(path), bytes);
}
