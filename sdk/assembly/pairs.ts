// Header maps and the Proxy-Wasm "pairs" serialization:
//   u32 count, then count x (u32 key_len, u32 value_len), then for each pair
//   key bytes, 0x00, value bytes, 0x00. All integers little-endian, lengths
//   exclude the NUL. An empty map may be 0 bytes or a single 0x00 byte.

/** An ordered list of header (name, value) pairs; names may repeat. */
export class Headers {
  names: string[] = [];
  values: string[] = [];

  /** Builds a map from [name1, value1, name2, value2, ...]. */
  static of(flat: string[]): Headers {
    if (flat.length & 1) abort("Headers.of needs an even number of strings");
    let h = new Headers();
    for (let i = 0; i < flat.length; i += 2) h.add(flat[i], flat[i + 1]);
    return h;
  }

  get length(): i32 {
    return this.names.length;
  }

  /** Appends a pair (keeps existing values of the same name). Returns this for chaining. */
  add(name: string, value: string): Headers {
    this.names.push(name);
    this.values.push(value);
    return this;
  }

  /** Replaces every value of `name` with one value. Returns this for chaining. */
  set(name: string, value: string): Headers {
    this.remove(name);
    return this.add(name, value);
  }

  /** First value of `name` (exact, case-sensitive match), or null. */
  get(name: string): string | null {
    let names = this.names;
    for (let i = 0, n = names.length; i < n; i++) {
      if (unchecked(names[i]) == name) return unchecked(this.values[i]);
    }
    return null;
  }

  /** Every value of `name`, in order. */
  getAll(name: string): string[] {
    let out: string[] = [];
    let names = this.names;
    for (let i = 0, n = names.length; i < n; i++) {
      if (unchecked(names[i]) == name) out.push(unchecked(this.values[i]));
    }
    return out;
  }

  has(name: string): bool {
    return this.names.includes(name);
  }

  /** Removes every pair named `name`. */
  remove(name: string): Headers {
    let names = this.names;
    let values = this.values;
    let j = 0;
    for (let i = 0, n = names.length; i < n; i++) {
      let k = unchecked(names[i]);
      if (k != name) {
        if (i != j) {
          unchecked((names[j] = k));
          unchecked((values[j] = values[i]));
        }
        j++;
      }
    }
    names.length = j;
    values.length = j;
    return this;
  }

  name(i: i32): string {
    return this.names[i];
  }

  value(i: i32): string {
    return this.values[i];
  }
}

/** Serializes headers into the pairs format. */
export function encodePairs(h: Headers): ArrayBuffer {
  let n = h.names.length;
  let size: usize = 4 + <usize>n * 8;
  for (let i = 0; i < n; i++) {
    size += <usize>String.UTF8.byteLength(unchecked(h.names[i])) + 1;
    size += <usize>String.UTF8.byteLength(unchecked(h.values[i])) + 1;
  }
  let buf = new ArrayBuffer(<i32>size);
  let base = changetype<usize>(buf);
  store<u32>(base, <u32>n);
  let lens = base + 4;
  let data = base + 4 + <usize>n * 8;
  for (let i = 0; i < n; i++) {
    let k = unchecked(h.names[i]);
    let v = unchecked(h.values[i]);
    let kl = String.UTF8.encodeUnsafe(changetype<usize>(k), k.length, data);
    store<u8>(data + kl, 0);
    data += kl + 1;
    let vl = String.UTF8.encodeUnsafe(changetype<usize>(v), v.length, data);
    store<u8>(data + vl, 0);
    data += vl + 1;
    store<u32>(lens, <u32>kl);
    store<u32>(lens + 4, <u32>vl);
    lens += 8;
  }
  return buf;
}

/**
 * Parses the pairs format at [ptr, ptr+size). A malformed map (counts or
 * lengths that run past the end, missing NULs, trailing bytes) aborts: the
 * host produced it, so it is a host bug.
 */
export function decodePairs(ptr: usize, size: usize): Headers {
  let h = new Headers();
  if (size <= 1) return h; // empty: 0 bytes or a single 0x00
  if (size < 4) abort("malformed header pairs: " + size.toString() + " bytes");
  let n = <usize>load<u32>(ptr);
  if (n > (size - 4) / 8) abort("malformed header pairs: count " + n.toString() + " too large for " + size.toString() + " bytes");
  let lens = ptr + 4;
  let data = lens + n * 8;
  let end = ptr + size;
  for (let i: usize = 0; i < n; i++) {
    let kl = <usize>load<u32>(lens);
    let vl = <usize>load<u32>(lens + 4);
    lens += 8;
    if (<u64>kl + <u64>vl + 2 > <u64>(end - data)) abort("malformed header pairs: pair " + i.toString() + " runs past the end");
    if (load<u8>(data + kl) != 0 || load<u8>(data + kl + 1 + vl) != 0) {
      abort("malformed header pairs: missing NUL in pair " + i.toString());
    }
    h.names.push(String.UTF8.decodeUnsafe(data, kl));
    h.values.push(String.UTF8.decodeUnsafe(data + kl + 1, vl));
    data += kl + vl + 2;
  }
  if (data != end) abort("malformed header pairs: " + (end - data).toString() + " trailing bytes");
  return h;
}

/** Copies a pairs buffer (for maps held as ArrayBuffer, e.g. map-valued properties). */
export function decodePairsBuffer(buf: ArrayBuffer): Headers {
  return decodePairs(changetype<usize>(buf), <usize>buf.byteLength);
}
