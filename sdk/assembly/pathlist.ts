// PathList: property paths an adapter lists once at configure time and registers with the
// host as one list (wasm_mixer.property_set), so per-request calls name them by index.
// PropertySet (batched reads) and PropertyWrites (batched writes) are built on it.

import { Status } from "./abi/constants";
import * as host from "./hostcalls";
import { ByteBuffer } from "./bytes";
import { encodePath } from "./properties";

const REGISTER = "wasm_mixer.property_set";

export class PathList {
  protected keys: string[] = [];
  protected encoded: ArrayBuffer[] = [];

  /** Index of a path (segments, e.g. ["mixer", "principal"]); the same path gets the same index. */
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

  /** Registers the list with the host: its id, or -1 when the list is empty or the host has no such function (Envoy). */
  protected registerList(): i32 {
    let n = this.keys.length;
    if (n == 0) return -1;
    let args = new ByteBuffer(64);
    args.reserve(4);
    store<u32>(args.ptr, <u32>n);
    args.len = 4;
    for (let i = 0; i < n; i++) {
      let e = this.encoded[i];
      args.reserve(4);
      store<u32>(args.ptr + <usize>args.len, <u32>e.byteLength);
      args.len += 4;
      args.bytes(e);
    }
    let out = new ByteBuffer(8);
    if (host.callForeignFunctionInto(REGISTER, args.ptr, <usize>args.len, out) == Status.Ok && out.len == 4) return <i32>load<u32>(out.ptr);
    return -1;
  }
}
