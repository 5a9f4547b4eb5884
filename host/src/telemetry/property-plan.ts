// One registered property list (wasm_mixer.property_set) compiled for get_property_set:
// each path is resolved once, at registration, to how it is read (a getter of the property
// table, one request or response header, or filter state), so a request's read is a loop
// over resolved readers, without a lookup by path. The values and their encoded lengths go
// into arrays the plan keeps, and the plan itself is the writer that puts them straight
// into the guest's allocation: a get_property_set call allocates nothing of its own.
//
// Resolution must give exactly what plugin/properties.ts getProperty gives for the same path
// (test/telemetry/property-plan.test.ts compares the two over the whole table).

import type { ForeignWriter } from '../plugin/foreign-functions.js';
import { PROPERTIES, fixedPropertySize, writeFixedProperty, type PluginFacts, type PropertyValue } from '../plugin/properties.js';
import type { HttpStream } from '../stream/http-stream.js';

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
/** Buffer's latin1 copy works on any Uint8Array (guest memory views are not Buffers). */
const latin1Write = Buffer.prototype.latin1Write as (this: Uint8Array, s: string, offset: number, length: number) => number;

export class PropertyPlan implements ForeignWriter {
  private readonly how: How[] = [];
  private readonly getters: Array<Getter | null> = [];
  /** Header name (lower case), or the filter-state key. */
  private readonly keys: string[] = [];
  /** The dotted filter-state key, when it differs from the path. */
  private readonly dotted: Array<string | undefined> = [];
  private readonly values: Array<PropertyValue | null>;
  /** Encoded length of each value of the last read, -1 when unknown. */
  private readonly lens: Int32Array;
  size = 0;

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
    this.values = new Array<PropertyValue | null>(paths.length).fill(null);
    this.lens = new Int32Array(paths.length);
  }

  /** Reads every value for request `s` (null outside a request) and sizes the answer; then write() it. */
  read(s: HttpStream | null, facts: PluginFacts): this {
    const n = this.how.length;
    let size = 4 + 4 * n;
    for (let i = 0; i < n; i++) {
      const len = this.keep(i, this.value(i, s, facts));
      if (len > 0) size += len;
    }
    this.size = size;
    return this;
  }

  /** Holds value i and its encoded length (-1: absent) for write(); returns the length. */
  private keep(i: number, v: PropertyValue | null): number {
    this.values[i] = v;
    const len = v === null ? -1 : typeof v === 'string' ? utf8Length(v) : v instanceof Uint8Array ? v.length : fixedPropertySize(v);
    this.lens[i] = len;
    return len;
  }

  /** read() with a path-by-path reader: for callers that give no request (tests, other hosts). */
  readEach(property: (path: string) => PropertyValue | null): this {
    const n = this.paths.length;
    let size = 4 + 4 * n;
    for (let i = 0; i < n; i++) {
      const len = this.keep(i, property(this.paths[i]!));
      if (len > 0) size += len;
    }
    this.size = size;
    return this;
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

  /** The last read's answer: u32 count, then count × (i32 length, -1 when unknown; bytes). */
  write(dst: Uint8Array): void {
    const n = this.lens.length;
    writeU32(dst, 0, n);
    let off = 4;
    for (let i = 0; i < n; i++) {
      const len = this.lens[i]!;
      writeU32(dst, off, len);
      off += 4;
      if (len <= 0) continue;
      const v = this.values[i]!;
      this.values[i] = null; // values must not outlive the request they were read for
      if (typeof v === 'string') {
        if (len !== v.length) encoder.encodeInto(v, dst.subarray(off, off + len));
        else if (len > 24) latin1Write.call(dst, v, off, len); // ASCII: one native copy beats the loop past ~24 chars
        else for (let j = 0; j < len; j++) dst[off + j] = v.charCodeAt(j);
      } else if (v instanceof Uint8Array) dst.set(v, off);
      else writeFixedProperty(v, dst, off);
      off += len;
    }
  }
}

/** UTF-8 length of a string; equal to its length exactly when it is ASCII. */
function utf8Length(s: string): number {
  if (s.length > 16) return Buffer.byteLength(s, 'utf8'); // native, and faster than the loop past ~16 chars
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

/** u32 (or -1 as 0xffffffff) little-endian. */
function writeU32(dst: Uint8Array, off: number, v: number): void {
  dst[off] = v & 0xff;
  dst[off + 1] = (v >>> 8) & 0xff;
  dst[off + 2] = (v >>> 16) & 0xff;
  dst[off + 3] = (v >>> 24) & 0xff;
}
