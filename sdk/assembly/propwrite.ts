// PropertyWrites: the properties an adapter sets per request, handed to the host in one call.
//
// At configure time the adapter lists the paths it may set (add) and registers the list
// with the host's wasm_mixer.property_set (register). Per request it queues values (set,
// setRaw: copied into one reused buffer, in order) and hands them over with one
// wasm_mixer.set_properties call (commit). A host without that function (Envoy) answers
// NOT_FOUND, and the queued values go out as one proxy_set_property each, in the same
// order, from the same buffer: what a host stores is the same either way.

import { Status } from "./abi/constants";
import * as host from "./hostcalls";
import { ByteBuffer } from "./bytes";
import { PathList } from "./pathlist";

@external("env", "proxy_set_property")
declare function abi_set_property(path: usize, pathSize: usize, value: usize, valueSize: usize): u32;

const SET = "wasm_mixer.set_properties";

export class PropertyWrites extends PathList {
  /** The registered list's id, or -1: no host function (every value is its own proxy_set_property). */
  private id: i32 = -1;
  /** u32 id, then per value: u32 index, u32 length, bytes. */
  private out: ByteBuffer = new ByteBuffer(256);
  private answer: ByteBuffer = new ByteBuffer(8);

  /** Registers the list with the host (at configure time); without the host function, writes go one by one. */
  register(): void {
    this.id = this.registerList();
    if (this.keys.length > 0) this.begin();
  }

  /** Starts a request's batch (commit() starts the next one too). */
  begin(): void {
    let o = this.out;
    o.len = 0;
    o.reserve(4);
    store<u32>(o.ptr, <u32>this.id);
    o.len = 4;
  }

  /** Queues property i = bytes [p, p+n). */
  set(i: i32, p: usize, n: i32): void {
    let o = this.out;
    o.reserve(8);
    let at = o.ptr + <usize>o.len;
    store<u32>(at, <u32>i);
    store<u32>(at, <u32>n, 4);
    o.len += 8;
    o.raw(p, n);
  }

  /** Queues property i = the bytes of `b`. */
  setRaw(i: i32, b: ArrayBuffer): void {
    this.set(i, changetype<usize>(b), b.byteLength);
  }

  /** Whether anything is queued. */
  get pending(): bool {
    return this.out.len > 4;
  }

  /**
   * Sets every queued value (in order), then starts the next batch. False when the host
   * refused them (no request in this context: proxy_set_property's NOT_FOUND).
   */
  commit(): bool {
    if (!this.pending) return true;
    let ok = true;
    let o = this.out;
    if (this.id >= 0) {
      let s = host.callForeignFunctionInto(SET, o.ptr, <usize>o.len, this.answer);
      if (s == Status.Ok || s == Status.Empty) {
        // EMPTY: no request here (proxy_set_property would answer NOT_FOUND for each)
        this.begin();
        return s == Status.Ok;
      }
      this.id = -1; // not this host's function (or it forgot the list): one call per value from now on
    }
    let p = o.ptr;
    let end = p + <usize>o.len;
    let at = p + 4;
    while (at < end) {
      let i = load<u32>(at);
      let n = load<u32>(at, 4);
      let path = unchecked(this.encoded[<i32>i]);
      let s = abi_set_property(changetype<usize>(path), <usize>path.byteLength, at + 8, <usize>n);
      if (s == Status.NotFound) ok = false;
      else if (s != Status.Ok) abort("proxy_set_property returned unexpected status " + s.toString());
      at += 8 + <usize>n;
    }
    this.begin();
    return ok;
  }
}
