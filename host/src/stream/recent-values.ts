// Filter-state values repeat from request to request (an adapter's principal, its verdict),
// and requests of a few kinds alternate (an API-key and a JWT caller). Both ways of setting
// them (proxy_set_property, abi/env-maps.ts; wasm_mixer.set_properties,
// telemetry/property-plan.ts) keep the last few values stored under each key, and store an
// identical value as those same bytes (no one writes into filter-state values) instead of a
// fresh copy per request.

/** Keys whose values are kept (the first ones set). */
const KEYS = 64;
/** Distinct recent values kept per key, newest first. */
const PER_KEY = 4;
/** Larger values are copied every time, never kept: what one table keeps stays under 64 × 4 × 1 KiB. */
const MAX_BYTES = 1024;
/** Up to this length a JS loop compares and copies faster than the native calls. */
const LOOP_MAX = 64;

const copyOf = Uint8Array.prototype.slice as (this: Uint8Array, start: number, end: number) => Uint8Array;
const compare = Buffer.prototype.compare as (this: Uint8Array, target: Uint8Array, targetStart: number, targetEnd: number) => number;

export class RecentValues {
  private readonly byKey = new Map<string, Uint8Array[]>();

  /**
   * src[off, off+len) as a value of its own: one kept under `key` when the bytes are the same,
   * else a copy (a copy even when src is a Buffer, whose slice() is a view), kept if small.
   * `src` may be borrowed guest memory: nothing keeps it.
   */
  keep(key: string, src: Uint8Array, off: number, len: number): Uint8Array {
    const recent = this.byKey.get(key);
    if (recent !== undefined) {
      for (let i = 0; i < recent.length; i++) if (same(recent[i]!, src, off, len)) return recent[i]!;
    }
    let v: Uint8Array;
    if (len > LOOP_MAX) v = copyOf.call(src, off, off + len);
    else {
      v = new Uint8Array(len); // small typed arrays live on V8's heap: cheaper than slice's ArrayBuffer
      for (let j = 0; j < len; j++) v[j] = src[off + j]!;
    }
    if (len > MAX_BYTES) return v;
    if (recent !== undefined) {
      if (recent.length >= PER_KEY) recent.pop();
      recent.unshift(v);
    } else if (this.byKey.size < KEYS) this.byKey.set(key, [v]);
    return v;
  }
}

/** Whether all of a equals b[off, off+len). */
function same(a: Uint8Array, b: Uint8Array, off: number, len: number): boolean {
  if (a.length !== len) return false;
  if (len > LOOP_MAX) return compare.call(a, b, off, off + len) === 0;
  let j = 0;
  while (j < len && a[j] === b[off + j]) j++;
  return j === len;
}
