// Every attribute an adapter needs per request, read in one host call.
//
// At configure time the adapter lists the property paths it will read (add), and registers
// the list with the host's wasm_mixer.property_set (register). Per request, the first
// read fetches every value at once with wasm_mixer.get_property_set; values are then read
// in place (ptr/len into the one result buffer), without an allocation per attribute.
// A host without those functions (Envoy) answers NOT_FOUND, and the set falls back to one
// proxy_get_property per attribute, on first use.

import { Status, callForeignFunctionStatus, encodePath, raw } from "wasm-mixer/sdk";

const REGISTER = "wasm_mixer.property_set";
const FETCH = "wasm_mixer.get_property_set";

export class PropertySet {
  private keys: string[] = [];
  private encoded: ArrayBuffer[] = [];
  private id: i32 = -1;
  private idArg: ArrayBuffer = new ArrayBuffer(4);
  /** Batched: the last result and where each value is in it. */
  private result: ArrayBuffer | null = null;
  private offs: i32[] = [];
  private lens: i32[] = [];
  private fetched: bool = false;
  /** Fallback: one value per attribute, read on first use. */
  private values: Array<ArrayBuffer | null> = [];
  private have: bool[] = [];

  /** Index of a path (segments, e.g. ["request", "headers", "user-agent"]); the same path gets the same index. */
  add(path: string[]): i32 {
    let key = path.join("\u0000");
    let i = this.keys.indexOf(key);
    if (i >= 0) return i;
    this.keys.push(key);
    this.encoded.push(encodePath(path));
    return this.keys.length - 1;
  }

  get size(): i32 {
    return this.keys.length;
  }

  /** Registers the list with the host; without the host function every read is its own call. */
  register(): void {
    let n = this.keys.length;
    this.offs = new Array<i32>(n);
    this.lens = new Array<i32>(n);
    this.values = new Array<ArrayBuffer | null>(n);
    this.have = new Array<bool>(n);
    this.id = -1;
    if (n == 0) return;
    let size = 4;
    for (let i = 0; i < n; i++) size += 4 + this.encoded[i].byteLength;
    let args = new ArrayBuffer(size);
    let p = changetype<usize>(args);
    store<u32>(p, <u32>n);
    let off: usize = 4;
    for (let i = 0; i < n; i++) {
      let e = this.encoded[i];
      store<u32>(p + off, <u32>e.byteLength);
      memory.copy(p + off + 4, changetype<usize>(e), <usize>e.byteLength);
      off += 4 + <usize>e.byteLength;
    }
    let r = callForeignFunctionStatus(REGISTER, args);
    if (r.status == Status.Ok && r.value.byteLength == 4) {
      this.id = <i32>load<u32>(changetype<usize>(r.value));
      store<u32>(changetype<usize>(this.idArg), <u32>this.id);
    }
  }

  /** Forgets the previous request's values (call at the start of each request). */
  reset(): void {
    this.fetched = false;
    this.result = null;
    if (this.id < 0) {
      let have = this.have;
      for (let i = 0, n = have.length; i < n; i++) unchecked((have[i] = false));
    }
  }

  private fetch(): void {
    this.fetched = true;
    if (this.id < 0) return;
    let r = callForeignFunctionStatus(FETCH, this.idArg);
    if (r.status != Status.Ok || r.value.byteLength < 4) {
      this.id = -1; // e.g. the host forgot the list: read one by one from now on
      this.reset();
      return;
    }
    let b = r.value;
    this.result = b;
    let p = changetype<usize>(b);
    let n = <i32>load<u32>(p);
    let off = 4;
    let offs = this.offs;
    let lens = this.lens;
    for (let i = 0; i < n && i < offs.length; i++) {
      let len = load<i32>(p + <usize>off);
      unchecked((offs[i] = off + 4));
      unchecked((lens[i] = len));
      off += 4 + (len > 0 ? len : 0);
    }
  }

  private one(i: i32): void {
    if (unchecked(this.have[i])) return;
    unchecked((this.values[i] = raw.getProperty(unchecked(this.encoded[i]))));
    unchecked((this.have[i] = true));
  }

  /** Length of value i in bytes, or -1 when the request does not have it. */
  len(i: i32): i32 {
    if (!this.fetched) this.fetch();
    if (this.id >= 0) return unchecked(this.lens[i]);
    this.one(i);
    let v = unchecked(this.values[i]);
    return v === null ? -1 : v.byteLength;
  }

  /** Address of value i (valid until the next reset; check len first). */
  ptr(i: i32): usize {
    if (!this.fetched) this.fetch();
    if (this.id >= 0) return changetype<usize>(this.result) + <usize>unchecked(this.offs[i]);
    this.one(i);
    return changetype<usize>(unchecked(this.values[i]));
  }

  /** Value i as an 8-byte integer (ints, durations, timestamps), or `missing`. */
  int(i: i32, missing: i64): i64 {
    if (this.len(i) != 8) return missing;
    return load<i64>(this.ptr(i));
  }

  /** Value i decoded as UTF-8, or null when missing. */
  str(i: i32): string | null {
    let n = this.len(i);
    if (n < 0) return null;
    return String.UTF8.decodeUnsafe(this.ptr(i), <usize>n);
  }

  /** Whether value i is missing or empty. */
  empty(i: i32): bool {
    return this.len(i) <= 0;
  }
}
