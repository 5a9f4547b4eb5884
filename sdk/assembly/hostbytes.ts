// Hot-path host access in bytes: header and property reads as views of the
// buffer the host wrote (no UTF-16 string made), writes from UTF-8 encoded once
// at configure time. Statuses are treated as the SDK treats them (NOT_FOUND is
// a value, anything else unexpected aborts). Used by the auth and quota adapters
// (import "wasm-mixer/sdk/assembly/hostbytes"); it calls the standard Proxy-Wasm
// ABI directly, so it also runs in Envoy.
//
// A view stays valid until the callback returns: reads are written into the SDK's
// read arena, which is emptied when the callback ends, or (a value too big for what
// is left of it) into a buffer the allocator keeps pinned until then (runtime.ts).

@external("env", "proxy_get_header_map_value")
declare function abi_get_header(map: u32, key: usize, keySize: usize, retPtr: usize, retSize: usize): u32;
@external("env", "proxy_replace_header_map_value")
declare function abi_replace_header(map: u32, key: usize, keySize: usize, value: usize, valueSize: usize): u32;
@external("env", "proxy_remove_header_map_value")
declare function abi_remove_header(map: u32, key: usize, keySize: usize): u32;
@external("env", "proxy_get_property")
declare function abi_get_property(path: usize, pathSize: usize, retPtr: usize, retSize: usize): u32;
@external("env", "proxy_get_shared_data")
declare function abi_get_shared_data(key: usize, keySize: usize, retPtr: usize, retSize: usize, retCas: usize): u32;
@external("env", "proxy_set_shared_data")
declare function abi_set_shared_data(key: usize, keySize: usize, value: usize, valueSize: usize, cas: u32): u32;
@external("env", "proxy_set_property")
declare function abi_set_property(path: usize, pathSize: usize, value: usize, valueSize: usize): u32;

import { keepArena, lendArena } from "./runtime";

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;

const RET_PTR: usize = memory.data(8, 8);
const RET_SIZE: usize = memory.data(8, 8);
const RET_CAS: usize = memory.data(8, 8);
const CAS_MISMATCH: u32 = 8;

/** A string encoded as UTF-8 once (header names, property paths and constant values). */
export class Bytes {
  readonly buf: ArrayBuffer;
  constructor(public readonly text: string) {
    this.buf = String.UTF8.encode(text);
  }
  /** A property path: segments joined by NUL, as proxy_get_property wants it. */
  static path(a: string, b: string): Bytes {
    return new Bytes(a + "\0" + b);
  }
  // @ts-ignore: decorator
  @inline get ptr(): usize { return changetype<usize>(this.buf); }
  // @ts-ignore: decorator
  @inline get len(): usize { return <usize>this.buf.byteLength; }
}

/** The view the last successful read left: [viewPtr, viewPtr + viewLen). */
export let viewPtr: usize = 0;
export let viewLen: usize = 0;

function unexpected(call: string, status: u32): void {
  abort(call + " returned unexpected status " + status.toString());
}

/** Reads a request header into the view; false when absent. */
export function readHeader(name: Bytes): bool {
  store<u64>(RET_PTR, 0);
  store<u64>(RET_SIZE, 0);
  lendArena();
  let s = abi_get_header(REQUEST_HEADERS, name.ptr, name.len, RET_PTR, RET_SIZE);
  keepArena(load<usize>(RET_PTR), load<usize>(RET_SIZE));
  if (s == NOT_FOUND) return false;
  if (s != OK) unexpected("proxy_get_header_map_value", s);
  viewPtr = load<usize>(RET_PTR);
  viewLen = load<usize>(RET_SIZE);
  return true;
}

/** Reads a property into the view; false when the host does not know it. */
export function readProperty(path: Bytes): bool {
  store<u64>(RET_PTR, 0);
  store<u64>(RET_SIZE, 0);
  lendArena();
  let s = abi_get_property(path.ptr, path.len, RET_PTR, RET_SIZE);
  keepArena(load<usize>(RET_PTR), load<usize>(RET_SIZE));
  if (s == NOT_FOUND) return false;
  if (s != OK) unexpected("proxy_get_property", s);
  viewPtr = load<usize>(RET_PTR);
  viewLen = load<usize>(RET_SIZE);
  return true;
}

export function setHeader(name: Bytes, value: Bytes): void {
  let s = abi_replace_header(REQUEST_HEADERS, name.ptr, name.len, value.ptr, value.len);
  if (s != OK) unexpected("proxy_replace_header_map_value", s);
}

/** Sets a response header (replacing existing values) from [p, p+n). */
export function setResponseHeader(name: Bytes, p: usize, n: usize): void {
  let s = abi_replace_header(RESPONSE_HEADERS, name.ptr, name.len, p, n);
  if (s != OK) unexpected("proxy_replace_header_map_value", s);
}

export function removeHeader(name: Bytes): void {
  let s = abi_remove_header(REQUEST_HEADERS, name.ptr, name.len);
  if (s != OK && s != NOT_FOUND) unexpected("proxy_remove_header_map_value", s);
}

/** Sets a property; false when the host refuses the path (as the SDK's setProperty). */
export function setProperty(path: Bytes, value: Bytes): bool {
  let s = abi_set_property(path.ptr, path.len, value.ptr, value.len);
  if (s == NOT_FOUND) return false;
  if (s != OK) unexpected("proxy_set_property", s);
  return true;
}

/** setProperty for a value held as raw bytes. */
export function setPropertyRaw(path: Bytes, value: ArrayBuffer): bool {
  let s = abi_set_property(path.ptr, path.len, changetype<usize>(value), <usize>value.byteLength);
  if (s == NOT_FOUND) return false;
  if (s != OK) unexpected("proxy_set_property", s);
  return true;
}

/** The CAS token of the last successful readShared. */
export let sharedCas: u32 = 0;

/** Reads a shared-data value into the view (and its CAS into sharedCas); false when the key was never set. */
export function readShared(key: Bytes): bool {
  store<u64>(RET_PTR, 0);
  store<u64>(RET_SIZE, 0);
  store<u64>(RET_CAS, 0);
  lendArena();
  let s = abi_get_shared_data(key.ptr, key.len, RET_PTR, RET_SIZE, RET_CAS);
  keepArena(load<usize>(RET_PTR), load<usize>(RET_SIZE));
  if (s == NOT_FOUND) return false;
  if (s != OK) unexpected("proxy_get_shared_data", s);
  viewPtr = load<usize>(RET_PTR);
  viewLen = load<usize>(RET_SIZE);
  sharedCas = load<u32>(RET_CAS);
  return true;
}

/** Stores a shared-data value (cas 0: unconditionally); false on a CAS mismatch. */
export function writeShared(key: Bytes, value: ArrayBuffer, cas: u32): bool {
  let s = abi_set_shared_data(key.ptr, key.len, changetype<usize>(value), <usize>value.byteLength, cas);
  if (s == CAS_MISMATCH) return false;
  if (s != OK) unexpected("proxy_set_shared_data", s);
  return true;
}

/** Whether [p, p+n) holds exactly the bytes of b. */
export function sameBytes(p: usize, n: usize, b: ArrayBuffer): bool {
  if (n != <usize>b.byteLength) return false;
  return memory.compare(p, changetype<usize>(b), n) == 0;
}
