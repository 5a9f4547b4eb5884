// One registered property list (wasm_mixer.property_set) compiled for get_property_set:
// each path is resolved once, at registration, to how it is read (a getter of the property
// table, one request or response header, or filter state), so a request's read is a loop
// over resolved readers, without a lookup by path. Each value is encoded as it is read, in
// one pass, into a buffer the plan keeps (so the answer's size is known without a pass that
// only measures), and the plan itself is the writer that copies the answer into the guest's
// allocation: a get_property_set call allocates nothing of its own. The buffer keeps the
// last answer, so a value equal to the one read at the same place last time (most are: the
// method, the authority, the route, the principal, a cached token) is left where it is
// instead of being encoded again, as long as every value before it kept its length.
//
// Resolution must give exactly what plugin/properties.ts getProperty gives for the same path
// (test/telemetry/property-plan.test.ts compares the two over the whole table).

import type { ForeignWriter } from '../plugin/foreign-functions.js';
import { PROPERTIES, dottedPath, fixedPropertySize, writeFixedProperty, type PluginFacts, type PropertyValue } from '../plugin/properties.js';
import type { HttpStream } from '../stream/http-stream.js';
import { RecentValues } from '../stream/recent-values.js';

type Getter = (s: HttpStream | null, p: PluginFacts) => PropertyValue | null;

/** The table's getters by path, in both forms getProperty accepts (segments joined by NUL, or by dots). */
const GETTERS = new Map<string, Getter>();
for (const [name, [, getter]] of Object.entries(PROPERTIES)) {
  GETTERS.set(name.replace(/\./g, '\0'), getter);
  GETTERS.set(name, getter);
}

const REQ_HEADER = 'request\0headers\0';
const RESP_HEADER = 'response\0headers\0';

const enum How {
  Getter,
  RequestHeader,
  ResponseHeader,
  /** Filter state under the path, else under its dotted form. */
  FilterState,
}

const encoder = new TextEncoder();
/** Buffer's latin1 copy works on any Uint8Array. */
const latin1Write = Buffer.prototype.latin1Write as (this: Uint8Array, s: string, offset: number, length: number) => number;
/** lastValues' mark for a value not compared (bytes): never equal to a value read. */
const NOT_KEPT = Symbol('not kept');
/** Longer strings are measured and copied natively (one call beats the loop past this). */
const LOOP_MAX = 64;
/** The answer buffer is kept between requests up to this size (a huge header value should not pin its copy). */
const KEEP_BYTES = 64 * 1024;

export class PropertyPlan implements ForeignWriter {
  private readonly how: How[] = [];
  private readonly getters: Array<Getter | null> = [];
  /** Header name (lower case), or the filter-state key. */
  private readonly keys: string[] = [];
  /** The dotted filter-state key, when it differs from the path. */
  private readonly dotted: Array<string | undefined> = [];
  /** For wasm_mixer.set_properties: each path's filter-state key, and the values recently set under them. */
  private stateKeys: string[] | null = null;
  private readonly recentValues = new RecentValues();
  /**
   * The last read's answer, encoded as it is read (one pass per value: no length pass,
   * then a copy pass), then handed over in one copy by write(). Reused between reads.
   */
  private buf = new Uint8Array(1024);
  private dv = new DataView(this.buf.buffer);
  private answer = this.buf.subarray(0, 0);
  /** `answer` is a view of the current `buf` (reading a typed array's .buffer calls into the runtime). */
  private answerOfBuf = true;
  private at = 0;
  size = 0;
  /**
   * Each value of the last answer (strings, numbers, bigints, booleans, null; NOT_KEPT for
   * bytes, which could change in place) and its encoded length, and whether the buffer still
   * holds that answer's layout up to the value being read (every value so far the same length).
   */
  private lastValues: Array<PropertyValue | null | typeof NOT_KEPT> = [];
  private lastLens: number[] = [];
  private layoutKept = false;

  constructor(readonly paths: readonly string[]) {
    for (const path of paths) {
      const getter = GETTERS.get(path);
      let how = How.FilterState;
      let key = path;
      if (getter !== undefined) how = How.Getter;
      else if (path.startsWith(REQ_HEADER) && !path.includes('\0', REQ_HEADER.length)) {
        how = How.RequestHeader;
        key = path.slice(REQ_HEADER.length).toLowerCase();
      } else if (path.startsWith(RESP_HEADER) && !path.includes('\0', RESP_HEADER.length)) {
        how = How.ResponseHeader;
        key = path.slice(RESP_HEADER.length).toLowerCase();
      }
      this.how.push(how);
      this.getters.push(getter ?? null);
      this.keys.push(key);
      const dotted = path.includes('\0') ? path.replace(/\0/g, '.') : path;
      this.dotted.push(dotted === path ? undefined : dotted);
    }
  }

  /** Reads every value for request `s` (null outside a request) and encodes the answer; then write() it. */
  read(s: HttpStream | null, facts: PluginFacts): this {
    const n = this.how.length;
    this.begin(n);
    for (let i = 0; i < n; i++) this.put(i, this.value(i, s, facts));
    return this.end();
  }

  /** read() with a path-by-path reader: for callers that give no request (tests, other hosts). */
  readEach(property: (path: string) => PropertyValue | null): this {
    const n = this.paths.length;
    this.begin(n);
    for (let i = 0; i < n; i++) this.put(i, property(this.paths[i]!));
    return this.end();
  }

  private value(i: number, s: HttpStream | null, facts: PluginFacts): PropertyValue | null {
    switch (this.how[i]) {
      case How.Getter:
        return this.getters[i]!(s, facts);
      case How.RequestHeader:
        return s === null ? null : (s.requestHeader(this.keys[i]!) ?? null);
      case How.ResponseHeader:
        return s === null ? null : (s.responseHeader(this.keys[i]!) ?? null);
      default: {
        if (s === null) return null;
        const fs = s.filterState.get(this.keys[i]!);
        if (fs !== undefined) return fs;
        const dotted = this.dotted[i];
        return dotted === undefined ? null : (s.filterState.get(dotted) ?? null);
      }
    }
  }

  // The answer: u32 count, then count × (i32 length, -1 when unknown; bytes).
  private begin(n: number): void {
    this.at = 0;
    this.layoutKept = this.lastLens.length === n;
    if (this.buf.length > KEEP_BYTES) this.grow(0, 1024);
    this.room(4 + 4 * n);
    this.dv.setUint32(0, n, true);
    this.at = 4;
  }

  /** Appends value i: its length, then its bytes (strings as UTF-8, int64 and booleans as plugin/properties.ts writeFixedProperty encodes them). */
  private put(i: number, v: PropertyValue | null): void {
    const at = this.at;
    if (this.layoutKept && v === this.lastValues[i]) {
      // the same value at the same place as in the last answer: its bytes are there already
      const last = this.lastLens[i]!;
      this.at = at + 4 + (last > 0 ? last : 0);
      return;
    }
    const len = this.encode(at, v);
    if (len !== this.lastLens[i]) this.layoutKept = false; // what follows moved
    this.lastLens[i] = len;
    this.lastValues[i] = v instanceof Uint8Array ? NOT_KEPT : v;
    this.at = at + 4 + (len > 0 ? len : 0);
  }

  /** Writes v's length (-1 for null) and bytes at `at`; returns the length. */
  private encode(at: number, v: PropertyValue | null): number {
    if (v === null) {
      this.room(at + 4);
      this.dv.setInt32(at, -1, true);
      return -1;
    }
    const start = at + 4;
    let len: number;
    if (typeof v === 'string') {
      const n = v.length;
      if (n > LOOP_MAX) {
        len = Buffer.byteLength(v, 'utf8');
        this.room(start + len);
        if (len === n) latin1Write.call(this.buf, v, start, len);
        else encoder.encodeInto(v, this.buf.subarray(start, start + len));
      } else {
        this.room(start + 3 * n); // a UTF-16 unit is at most 3 UTF-8 bytes
        const b = this.buf;
        let j = 0;
        for (; j < n; j++) {
          const c = v.charCodeAt(j);
          if (c >= 0x80) break;
          b[start + j] = c;
        }
        len = j === n ? n : encoder.encodeInto(v, b.subarray(start, start + 3 * n)).written;
      }
    } else if (typeof v === 'bigint') {
      // int64 as writeFixedProperty writes it (modulo 2^64), without its scratch copy
      len = 8;
      this.room(start + 8);
      this.dv.setBigInt64(start, v, true);
    } else if (v instanceof Uint8Array) {
      len = v.length;
      this.room(start + len);
      this.buf.set(v, start);
    } else {
      len = fixedPropertySize(v);
      this.room(start + len);
      writeFixedProperty(v, this.buf, start);
    }
    this.dv.setInt32(at, len, true);
    return len;
  }

  private end(): this {
    const size = this.at;
    this.size = size;
    if (this.answer.length !== size || !this.answerOfBuf) {
      this.answer = this.buf.subarray(0, size);
      this.answerOfBuf = true;
    }
    return this;
  }

  /** Makes the buffer at least `need` bytes, keeping what is written. */
  private room(need: number): void {
    if (need > this.buf.length) this.grow(this.at, Math.max(need, this.buf.length * 2));
  }

  private grow(keep: number, size: number): void {
    this.layoutKept = false; // only the first `keep` bytes come along
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, keep));
    this.buf = b;
    this.dv = new DataView(b.buffer);
    this.answerOfBuf = false;
  }

  /** The filter-state key proxy_set_property would store path i under. */
  stateKey(i: number): string {
    return (this.stateKeys ??= this.paths.map(dottedPath))[i]!;
  }

  /** Value i to store from args[off, off+len), borrowed guest memory: as proxy_set_property stores it (stream/recent-values.ts). */
  keptValue(i: number, args: Uint8Array, off: number, len: number): Uint8Array {
    return this.recentValues.keep(this.stateKey(i), args, off, len);
  }

  /** The last read's answer, copied into the guest's allocation (exactly `size` bytes). */
  write(dst: Uint8Array): void {
    dst.set(this.answer);
  }
}
