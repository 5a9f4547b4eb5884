// Host functions: header maps, buffers and properties of the current context.

import { BufferType, Status } from './constants.js';
import { deserializePairs, serializePairs } from './pairs.js';
import { EMPTY_BYTES, validHeader, validHeaderName, validHeaderValue } from './guest-io.js';
import type { AbiContext } from './context.js';
import type { GuestIo, HostFn } from './guest-io.js';
import { RecentValues } from '../stream/recent-values.js';

export function mapFunctions(vm: AbiContext, { mem, copyOut, copyOutString, copyOutFixed }: GuestIo): Record<string, HostFn> {
  const v010 = vm.compiled.abiVersion === '0.1.0';
  const recentValues = new RecentValues();
  const names = new KnownNames();
  return {
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
      for (const [k, v] of pairs) map.push([lowerCase(k), v]);
      vm.headersChanged(mapType);
      return Status.Ok;
    },
    proxy_get_header_map_value(mapType: number, keyPtr: number, keySize: number, retPtr: number, retSize: number): number {
      const key = mem().latin1(keyPtr, keySize);
      if (key === null) return Status.InvalidMemoryAccess;
      const map = vm.headerMap(mapType, false);
      if (map === undefined) return Status.BadArgument;
      if (map === null) return Status.NotFound;
      const k = lowerCase(key);
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
      const k = map === undefined || map === null ? null : names.stored(key);
      if (k === null || !validHeaderValue(value)) return Status.BadArgument;
      map!.push([k, value]);
      vm.headersChanged(mapType);
      return Status.Ok;
    },
    proxy_replace_header_map_value(mapType: number, keyPtr: number, keySize: number, valuePtr: number, valueSize: number): number {
      const key = mem().latin1(keyPtr, keySize);
      const value = mem().latin1(valuePtr, valueSize);
      if (key === null || value === null) return Status.InvalidMemoryAccess;
      const map = vm.headerMap(mapType, true);
      const k = map === undefined || map === null ? null : names.stored(key);
      if (k === null || !validHeaderValue(value)) return Status.BadArgument;
      removeKey(map!, k);
      map!.push([k, value]);
      vm.headersChanged(mapType);
      return Status.Ok;
    },
    proxy_remove_header_map_value(mapType: number, keyPtr: number, keySize: number): number {
      const key = mem().latin1(keyPtr, keySize);
      if (key === null) return Status.InvalidMemoryAccess;
      const map = vm.headerMap(mapType, true);
      if (map === undefined || map === null) return Status.BadArgument;
      removeKey(map, names.has(key) ? key : lowerCase(key));
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
      const bytes = mem().view(valuePtr, valueSize);
      if (path === null || bytes === null) return Status.InvalidMemoryAccess;
      // may be kept across requests: bytes of its own, not the borrowed view
      const value = recentValues.keep(path, bytes, 0, bytes.length);
      return vm.setProperty(path, value) ? Status.Ok : Status.NotFound;
    },
  };
}

/**
 * Header names arrive lower-case almost always (SDKs lower-case them, as HTTP/2 requires):
 * a scan for an upper-case (or non-ASCII) char is several times cheaper than toLowerCase(),
 * which makes a new string even when nothing changes.
 */
function lowerCase(name: string): string {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a) || c >= 0x80) return name.toLowerCase();
  }
  return name;
}

/**
 * The last few header names an adapter wrote, each a valid name in lower case: an adapter
 * writes the same few on every request, and the host's short strings come back as the same
 * objects (vm/guest-memory.ts interns them), so a known name is one comparison instead of a
 * token check and a case scan.
 */
class KnownNames {
  private readonly names: string[] = [];
  private next = 0;

  has(name: string): boolean {
    const a = this.names;
    for (let i = 0; i < a.length; i++) if (a[i] === name) return true;
    return false;
  }

  /** The name as stored (lower case), or null when it is not a valid header name. */
  stored(name: string): string | null {
    if (this.has(name)) return name;
    if (!validHeaderName(name)) return null;
    const k = lowerCase(name);
    if (k === name) {
      this.names[this.next] = name;
      this.next = (this.next + 1) % KNOWN_NAMES;
    }
    return k;
  }
}
const KNOWN_NAMES = 8;

function removeKey(map: Array<[string, string]>, key: string): void {
  // Usually absent: a scan that only reads, then the compaction from the first match on.
  const n = map.length;
  let w = 0;
  while (w < n && map[w]![0] !== key) w++;
  if (w === n) return;
  for (let r = w + 1; r < n; r++) if (map[r]![0] !== key) map[w++] = map[r]!;
  map.length = w;
}

function serializedPairsSize(map: ReadonlyArray<readonly [string, string]>): number {
  let n = 4 + map.length * 8;
  for (const [k, v] of map) n += Buffer.byteLength(k) + Buffer.byteLength(v) + 2;
  return n;
}
