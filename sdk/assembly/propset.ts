// PropertySet: every attribute an adapter reads per request, fetched in one host call.
//
// At configure time the adapter lists the property paths it will read (add), and registers
// the list with the host's wasm_mixer.property_set (register). Per request, the first read
// fetches every value at once with wasm_mixer.get_property_set into one reused buffer;
// values are then read in place (ptr/len), without an allocation per attribute or per
// request. A host without those functions (Envoy) answers NOT_FOUND, and the set falls
// back to one proxy_get_property per attribute, all on the first read of a request, into
// the same buffer.

import { Status } from "./abi/constants";
import * as host from "./hostcalls";
import { ByteBuffer, bytesEqual } from "./bytes";
import { PathList } from "./pathlist";

const FETCH = "wasm_mixer.get_property_set";

export class PropertySet extends PathList {
  private id: i32 = -1;
  private idArg: ArrayBuffer = new ArrayBuffer(4);
  /** This request's values: the host's answer (batched) or the values one by one (fallback). */
  private result: ByteBuffer = new ByteBuffer(512);
  private scratch: ByteBuffer | null = null;
  private offs: StaticArray<i32> = new StaticArray<i32>(0);
  private lens: StaticArray<i32> = new StaticArray<i32>(0);
  private fetched: bool = false;

  /** Registers the list with the host; without the host function every value is its own call. */
  register(): void {
    let n = this.keys.length;
    this.offs = new StaticArray<i32>(n);
    this.lens = new StaticArray<i32>(n);
    this.fetched = false;
    this.id = this.registerList();
    if (this.id >= 0) store<u32>(changetype<usize>(this.idArg), <u32>this.id);
  }

  /** Whether the host fetches the set in one call (registered with wasm_mixer.property_set); false: one call per value. */
  get batched(): bool {
    return this.id >= 0;
  }

  /** Forgets the previous request's values (call at the start of each request). */
  reset(): void {
    this.fetched = false;
  }

  private fetch(): void {
    this.fetched = true;
    if (this.id >= 0) {
      let r = this.result;
      let s = host.callForeignFunctionInto(FETCH, changetype<usize>(this.idArg), 4, r);
      if (s == Status.Ok && r.len >= 4) {
        this.index();
        return;
      }
      this.id = -1; // e.g. the host forgot the list: read one by one from now on
    }
    this.fetchEach();
  }

  // Where each value is in the host's answer: u32 count, then count x (i32 length, -1 when unknown; bytes).
  private index(): void {
    let r = this.result;
    let p = r.ptr;
    let end = r.len;
    let n = <i32>load<u32>(p);
    let offs = this.offs;
    let lens = this.lens;
    let m = offs.length;
    let off = 4;
    for (let i = 0; i < m; i++) {
      let len = -1;
      if (i < n && off + 4 <= end) {
        len = load<i32>(p + <usize>off);
        off += 4;
        if (len > end - off) len = -1; // a short answer: treat the rest as unknown
      }
      unchecked((offs[i] = off));
      unchecked((lens[i] = len));
      if (len > 0) off += len;
    }
  }

  private fetchEach(): void {
    let r = this.result;
    r.reset();
    let one = this.scratch;
    if (one === null) this.scratch = one = new ByteBuffer(128);
    let offs = this.offs;
    let lens = this.lens;
    for (let i = 0, n = offs.length; i < n; i++) {
      let found = host.getPropertyInto(unchecked(this.encoded[i]), one);
      unchecked((offs[i] = r.len));
      unchecked((lens[i] = found ? one.len : -1));
      if (found) r.raw(one.ptr, one.len);
    }
  }

  /** Length of value i in bytes, or -1 when the request does not have it. */
  @inline len(i: i32): i32 {
    if (!this.fetched) this.fetch();
    return unchecked(this.lens[i]);
  }

  /** Address of value i (valid until the next reset; check len first). */
  @inline ptr(i: i32): usize {
    if (!this.fetched) this.fetch();
    return this.result.ptr + <usize>unchecked(this.offs[i]);
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

  /** Whether value i is present and its bytes equal `s` (no allocation for ASCII `s`). */
  equals(i: i32, s: string): bool {
    let n = this.len(i);
    return n >= 0 && bytesEqual(this.ptr(i), n, s);
  }
}
