// Label definitions and a request's label values. Values are written as UTF-8 bytes into
// the label set's key buffer, straight from the PropertySet, so the usual request (a label
// set already seen) finds its metric handles with one hash over bytes and makes no string.
// Strings are made only for a new label set, to render its series names.

import { Attr, AttrType, ByteBuffer, PropertySet, attrString, bytesStartWith, escapeLabelValue, hashBytes, parseAttr } from "wasm-mixer/sdk";

export enum Src {
  Const = 0,
  Attr = 1,
  ResponseCode = 2,
  ResponseFlags = 3,
  RequestProtocol = 4,
  GrpcStatus = 5,
  Principal = 6,
  Cluster = 7,
  SecurityPolicy = 8,
}

export class LabelDef {
  /** Where an Attr label's value is in the adapter's PropertySet (-1: read on its own). */
  idx: i32 = -1;
  constructor(public name: string, public src: Src, public value: string = "", public attr: Attr | null = null) {}

  get dynamic(): bool {
    return this.src != Src.Const;
  }

  signature(): string {
    return this.name + "=" + (<i32>this.src).toString() + ":" + (this.attr !== null ? this.attr!.text : this.value);
  }
}

const GRPC_STATUS_TRAILER = parseAttr("response.trailers['grpc-status']")!;

/** Indexes of the attributes every request reads, in the adapter's PropertySet. */
export class Plan {
  code: i32 = 0;
  flags: i32 = 0;
  contentType: i32 = 0;
  grpcStatus: i32 = 0;
  principal: i32 = 0;
  cluster: i32 = 0;
  mtls: i32 = 0;
  duration: i32 = 0;
  requestSize: i32 = 0;
  responseSize: i32 = 0;
  path: i32 = 0;
}

// The few values written on every request, encoded once: ByteBuffer.str measures and
// encodes a string on each call, and ByteBuffer.raw calls out of wasm for memory.copy.
const UNKNOWN = String.UTF8.encode("unknown");
const DASH = String.UTF8.encode("-");
const HTTP = String.UTF8.encode("http");
const GRPC = String.UTF8.encode("grpc");
const MUTUAL_TLS = String.UTF8.encode("mutual_tls");
const NONE = String.UTF8.encode("none");

/** Bytes src..src+n into `out`, eight at a time (label values are short). */
function put(out: ByteBuffer, src: usize, n: i32): void {
  if (n <= 0) return;
  out.reserve(n);
  let dst = out.ptr + <usize>out.len;
  let i = 0;
  for (; i + 8 <= n; i += 8) store<u64>(dst + <usize>i, load<u64>(src + <usize>i));
  for (; i < n; i++) store<u8>(dst + <usize>i, load<u8>(src + <usize>i));
  out.len += n;
}

// @ts-ignore: decorator
@inline function putBytes(out: ByteBuffer, b: ArrayBuffer): void {
  put(out, changetype<usize>(b), b.byteLength);
}

/** Writes one request's label values (from the PropertySet) as bytes. */
export class Values {
  constructor(public ps: PropertySet, public plan: Plan) {}

  private isGrpc(): bool {
    let ps = this.ps;
    let i = this.plan.contentType;
    let n = ps.len(i);
    return n > 0 && bytesStartWith(ps.ptr(i), n, "application/grpc");
  }

  /** Value i of the set, or `dflt` when missing or empty. */
  private orElse(out: ByteBuffer, i: i32, dflt: ArrayBuffer): void {
    let n = this.ps.len(i);
    if (n > 0) put(out, this.ps.ptr(i), n);
    else putBytes(out, dflt);
  }

  private orUnknown(out: ByteBuffer, v: string | null): void {
    if (v === null || v.length == 0) out.str("unknown");
    else out.str(v);
  }

  write(d: LabelDef, out: ByteBuffer): void {
    let ps = this.ps;
    let plan = this.plan;
    switch (d.src) {
      case Src.Const:
        out.str(d.value);
        return;
      case Src.Attr: {
        let i = d.idx;
        if (i < 0) {
          this.orUnknown(out, attrString(d.attr!));
          return;
        }
        let t = d.attr!.type;
        if (t == AttrType.Int || t == AttrType.Duration) {
          if (ps.len(i) == 8) out.int(ps.int(i, 0));
          else out.str("unknown");
        } else if (t == AttrType.Bool) {
          if (ps.len(i) >= 1) out.str(load<u8>(ps.ptr(i)) != 0 ? "true" : "false");
          else out.str("unknown");
        } else if (t == AttrType.Timestamp) {
          this.orUnknown(out, attrString(d.attr!));
        } else {
          this.orElse(out, i, UNKNOWN);
        }
        return;
      }
      case Src.ResponseCode:
        out.int(ps.int(plan.code, 0));
        return;
      case Src.ResponseFlags:
        this.orElse(out, plan.flags, DASH);
        return;
      case Src.RequestProtocol:
        putBytes(out, this.isGrpc() ? GRPC : HTTP);
        return;
      case Src.GrpcStatus: {
        if (!this.isGrpc()) return;
        let n = ps.len(plan.grpcStatus);
        if (n >= 0) put(out, ps.ptr(plan.grpcStatus), n);
        else {
          let s = attrString(GRPC_STATUS_TRAILER);
          if (s !== null) out.str(s);
        }
        return;
      }
      case Src.Principal:
        this.orElse(out, plan.principal, UNKNOWN);
        return;
      case Src.Cluster:
        this.orElse(out, plan.cluster, UNKNOWN);
        return;
      case Src.SecurityPolicy:
        putBytes(out, ps.len(plan.mtls) >= 1 && load<u8>(ps.ptr(plan.mtls)) != 0 ? MUTUAL_TLS : NONE);
        return;
      default:
        out.str("unknown");
    }
  }
}

/** The labels of one or more metrics; metrics with the same definitions share one (one key per request). */
export class LabelSet {
  labels: LabelDef[] = [];
  dynamic: LabelDef[] = [];
  /** This request's dynamic values, back to back (value i at offs[i], lens[i]), and their hash. */
  key: ByteBuffer = new ByteBuffer(256);
  hash: u32 = 0;
  /**
   * Bumped when a request's key differs from the previous request's (the usual request
   * repeats it): a metric's series for the same generation is the one it found last time,
   * so the label set's metrics make one comparison per request instead of a lookup each.
   */
  generation: i32 = 0;
  private prev: ByteBuffer = new ByteBuffer(256);
  private prevHash: u32 = 0;
  private offs: StaticArray<i32> = new StaticArray<i32>(0);
  private lens: StaticArray<i32> = new StaticArray<i32>(0);
  private stamp: i32 = -1;

  signature(): string {
    let parts: string[] = [];
    for (let i = 0; i < this.labels.length; i++) parts.push(this.labels[i].signature());
    return parts.join("\u0001");
  }

  finish(): void {
    this.dynamic = [];
    for (let i = 0; i < this.labels.length; i++) if (this.labels[i].dynamic) this.dynamic.push(this.labels[i]);
    this.offs = new StaticArray<i32>(this.dynamic.length);
    this.lens = new StaticArray<i32>(this.dynamic.length);
  }

  /** This request's values into `key` (once per request: `stamp` tells requests apart). */
  compute(v: Values, stamp: i32): void {
    if (this.stamp == stamp) return;
    this.stamp = stamp;
    let k = this.key;
    k.reset();
    let dyn = this.dynamic;
    for (let i = 0, n = dyn.length; i < n; i++) {
      // each value behind its length, so no value can run into the next
      k.reserve(4);
      let at = k.len;
      k.len += 4;
      v.write(unchecked(dyn[i]), k);
      let len = k.len - at - 4;
      store<i32>(k.ptr + <usize>at, len);
      unchecked((this.offs[i] = at + 4));
      unchecked((this.lens[i] = len));
    }
    let h = hashBytes(k.ptr, k.len);
    this.hash = h;
    let prev = this.prev;
    if (h != this.prevHash || k.len != prev.len || !sameBytes(k.ptr, prev.ptr, k.len)) {
      this.generation++;
      this.prevHash = h;
      prev.reset();
      prev.raw(k.ptr, k.len);
    }
  }

  /** The values of the last compute() as strings (for a new series' name). */
  values(): string[] {
    let n = this.dynamic.length;
    let out = new Array<string>(n);
    let p = this.key.ptr;
    for (let i = 0; i < n; i++) out[i] = String.UTF8.decodeUnsafe(p + <usize>unchecked(this.offs[i]), <usize>unchecked(this.lens[i]));
    return out;
  }

  /** `family{a="b",...}` with the given dynamic values. */
  render(family: string, values: string[]): string {
    if (this.labels.length == 0) return family;
    let parts: string[] = [family, "{"];
    let d = 0;
    for (let i = 0; i < this.labels.length; i++) {
      let l = unchecked(this.labels[i]);
      if (i > 0) parts.push(",");
      parts.push(l.name);
      parts.push("=\"");
      parts.push(escapeLabelValue(l.dynamic ? unchecked(values[d++]) : l.value));
      parts.push("\"");
    }
    parts.push("}");
    return parts.join("");
  }
}

/** Whether n bytes at a and b are equal (eight at a time: a key is ~100 bytes). */
function sameBytes(a: usize, b: usize, n: i32): bool {
  let i = 0;
  for (; i + 8 <= n; i += 8) if (load<u64>(a + <usize>i) != load<u64>(b + <usize>i)) return false;
  for (; i < n; i++) if (load<u8>(a + <usize>i) != load<u8>(b + <usize>i)) return false;
  return true;
}
