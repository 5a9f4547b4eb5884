// What a decision reads from the host (request.path, request.method, source.address and the
// credential headers), fetched together in one wasm_mixer.get_property_set call (the SDK's
// PropertySet) instead of one host call each. The bytes must be exactly what the standard
// calls give (proxy_get_header_map_value, proxy_get_property): the set encodes values as
// UTF-8 and those calls hand a header's bytes over as they came, which agree for ASCII only,
// so a value with a byte >= 0x80 is read again with the standard call. A host without the
// set (Envoy) gets the standard calls, one per value, as before.

import { PropertySet } from "wasm-mixer/sdk";
import { Bytes, readHeader, readProperty, viewLen, viewPtr } from "wasm-mixer/sdk/assembly/hostbytes";

/** The last successful read: [readPtr, readPtr + readLen), valid until the callback returns. */
export let readPtr: usize = 0;
export let readLen: usize = 0;

export const A_PATH: i32 = 0;
export const A_METHOD: i32 = 1;
export const A_SOURCE: i32 = 2;
const ATTR_PATHS: Bytes[] = [Bytes.path("request", "path"), Bytes.path("request", "method"), Bytes.path("source", "address")];

/** The batched set, or null: this host answers one standard call per value. */
let set: PropertySet | null = null;
/** Index in the set of each header name registered (by headerSlot). */
let headerNames: string[] = [];

/** Registers the attributes and the credential headers `names` (lower case); at configure time. */
export function configureReads(names: string[]): void {
  let s = new PropertySet();
  s.add(["request", "path"]);
  s.add(["request", "method"]);
  s.add(["source", "address"]);
  headerNames = [];
  for (let i = 0; i < names.length; i++) {
    if (headerNames.includes(names[i])) continue;
    headerNames.push(names[i]);
    s.add(["request", "headers", names[i]]);
  }
  s.register();
  set = s.batched ? s : null;
}

/** Forgets the previous decision's values (at the start of every decision). */
export function resetReads(): void {
  let s = set;
  if (s !== null) s.reset();
}

/** Whether [p, p+n) is all ASCII (32 bytes a round: a JWT is several hundred). */
function ascii(p: usize, n: usize): bool {
  let i: usize = 0;
  let acc: u64 = 0;
  for (; i + 32 <= n; i += 32) acc |= load<u64>(p + i) | load<u64>(p + i, 8) | load<u64>(p + i, 16) | load<u64>(p + i, 24);
  for (; i + 8 <= n; i += 8) acc |= load<u64>(p + i);
  for (; i < n; i++) acc |= <u64>load<u8>(p + i);
  return (acc & 0x8080808080808080) == 0;
}

/** Value i of the set into readPtr/readLen: 1 read, 0 absent, -1 not batched or not ASCII (use the standard call). */
function fromSet(i: i32): i32 {
  let s = set;
  if (s === null) return -1;
  let n = s.len(i);
  if (n < 0) return 0;
  let p = s.ptr(i);
  if (!ascii(p, <usize>n)) return -1;
  readPtr = p;
  readLen = <usize>n;
  return 1;
}

/** Reads attribute A_PATH, A_METHOD or A_SOURCE; false when the host does not know it. */
export function readAttr(a: i32): bool {
  let r = fromSet(a);
  if (r >= 0) return r == 1;
  if (!readProperty(unchecked(ATTR_PATHS[a]))) return false;
  readPtr = viewPtr;
  readLen = viewLen;
  return true;
}

/** Reads request header `name` (lower case; its UTF-8 in `nameBytes`); false when absent. */
export function readRequestHeader(name: string, nameBytes: Bytes): bool {
  let k = set !== null ? headerNames.indexOf(name) : -1;
  if (k >= 0) {
    let r = fromSet(3 + k);
    if (r >= 0) return r == 1;
  }
  if (!readHeader(nameBytes)) return false;
  readPtr = viewPtr;
  readLen = viewLen;
  return true;
}
