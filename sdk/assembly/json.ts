// A compact JSON (RFC 8259) parser and serializer for configuration and
// call-out bodies. Errors are values, never traps: parseJSON returns a
// JSONResult whose `error` says what went wrong and where
// ("line 3, column 14: expected ',' or '}' after an object member").

import { ByteBuffer } from "./bytes";

export enum JSONKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
}

const MAX_DEPTH = 128;
const INDEX_THRESHOLD = 8; // objects with more keys get a hash index

export class JSONValue {
  kind: JSONKind = JSONKind.Null;
  boolValue: bool = false;
  numValue: f64 = 0;
  /** Exact value of an integer literal (no fraction or exponent) that fits in i64. */
  intValue: i64 = 0;
  /** True when the number was written as an integer that fits in i64. */
  isInteger: bool = false;
  strValue: string = "";
  items: JSONValue[] | null = null;
  keys: string[] | null = null;
  values: JSONValue[] | null = null;
  private index: Map<string, i32> | null = null;

  static newNull(): JSONValue {
    return new JSONValue();
  }

  static newBool(b: bool): JSONValue {
    let v = new JSONValue();
    v.kind = JSONKind.Bool;
    v.boolValue = b;
    return v;
  }

  static newNumber(n: f64): JSONValue {
    let v = new JSONValue();
    v.kind = JSONKind.Number;
    v.numValue = n;
    if (isFinite(n) && n == Math.trunc(n) && Math.abs(n) < 9.2e18) {
      v.isInteger = true;
      v.intValue = <i64>n;
    }
    return v;
  }

  static newInteger(n: i64): JSONValue {
    let v = new JSONValue();
    v.kind = JSONKind.Number;
    v.numValue = <f64>n;
    v.intValue = n;
    v.isInteger = true;
    return v;
  }

  static newString(s: string): JSONValue {
    let v = new JSONValue();
    v.kind = JSONKind.String;
    v.strValue = s;
    return v;
  }

  static newArray(): JSONValue {
    let v = new JSONValue();
    v.kind = JSONKind.Array;
    v.items = [];
    return v;
  }

  static newObject(): JSONValue {
    let v = new JSONValue();
    v.kind = JSONKind.Object;
    v.keys = [];
    v.values = [];
    return v;
  }

  get isNull(): bool { return this.kind == JSONKind.Null; }
  get isBool(): bool { return this.kind == JSONKind.Bool; }
  get isNumber(): bool { return this.kind == JSONKind.Number; }
  get isString(): bool { return this.kind == JSONKind.String; }
  get isArray(): bool { return this.kind == JSONKind.Array; }
  get isObject(): bool { return this.kind == JSONKind.Object; }

  /** "null", "boolean", "number", "string", "array" or "object". */
  get kindName(): string {
    switch (this.kind) {
      case JSONKind.Bool: return "boolean";
      case JSONKind.Number: return "number";
      case JSONKind.String: return "string";
      case JSONKind.Array: return "array";
      case JSONKind.Object: return "object";
    }
    return "null";
  }

  /** Number of array items or object members (0 for scalars). */
  get length(): i32 {
    if (this.kind == JSONKind.Array) return this.items!.length;
    if (this.kind == JSONKind.Object) return this.keys!.length;
    return 0;
  }

  /** Array item `i`, or null when out of range or not an array. */
  at(i: i32): JSONValue | null {
    if (this.kind != JSONKind.Array) return null;
    let items = this.items!;
    if (i < 0 || i >= items.length) return null;
    return unchecked(items[i]);
  }

  /** Object member `key` (the last one if repeated), or null. */
  get(key: string): JSONValue | null {
    if (this.kind != JSONKind.Object) return null;
    let keys = this.keys!;
    let index = this.index;
    if (index !== null) {
      if (!index.has(key)) return null;
      return unchecked(this.values![index.get(key)]);
    }
    for (let i = keys.length - 1; i >= 0; i--) {
      if (unchecked(keys[i]) == key) return unchecked(this.values![i]);
    }
    return null;
  }

  has(key: string): bool {
    return this.get(key) !== null;
  }

  /** Adds (or, for an existing key, replaces) an object member. Returns this. */
  set(key: string, value: JSONValue): JSONValue {
    if (this.kind != JSONKind.Object) abort("JSONValue.set on a " + this.kindName);
    let keys = this.keys!;
    let values = this.values!;
    let index = this.index;
    if (index !== null) {
      if (index.has(key)) {
        unchecked((values[index.get(key)] = value));
        return this;
      }
    } else {
      for (let i = keys.length - 1; i >= 0; i--) {
        if (unchecked(keys[i]) == key) {
          unchecked((values[i] = value));
          return this;
        }
      }
    }
    keys.push(key);
    values.push(value);
    if (index !== null) {
      index.set(key, keys.length - 1);
    } else if (keys.length > INDEX_THRESHOLD) {
      index = new Map<string, i32>();
      for (let i = 0; i < keys.length; i++) index.set(unchecked(keys[i]), i);
      this.index = index;
    }
    return this;
  }

  /** Appends an array item. Returns this. */
  push(value: JSONValue): JSONValue {
    if (this.kind != JSONKind.Array) abort("JSONValue.push on a " + this.kindName);
    this.items!.push(value);
    return this;
  }

  /** Compact JSON text of this value. */
  toString(): string {
    let parts: string[] = [];
    this.write(parts);
    return parts.join("");
  }

  private write(out: string[]): void {
    switch (this.kind) {
      case JSONKind.Null: out.push("null"); break;
      case JSONKind.Bool: out.push(this.boolValue ? "true" : "false"); break;
      case JSONKind.Number: {
        if (this.isInteger) out.push(this.intValue.toString());
        else if (isFinite(this.numValue)) out.push(this.numValue.toString());
        else out.push("null");
        break;
      }
      case JSONKind.String: out.push(quoteJSON(this.strValue)); break;
      case JSONKind.Array: {
        out.push("[");
        let items = this.items!;
        for (let i = 0; i < items.length; i++) {
          if (i > 0) out.push(",");
          unchecked(items[i]).write(out);
        }
        out.push("]");
        break;
      }
      case JSONKind.Object: {
        out.push("{");
        let keys = this.keys!;
        let values = this.values!;
        for (let i = 0; i < keys.length; i++) {
          if (i > 0) out.push(",");
          out.push(quoteJSON(unchecked(keys[i])));
          out.push(":");
          unchecked(values[i]).write(out);
        }
        out.push("}");
        break;
      }
    }
  }
}

/** `s` as a JSON string literal, quotes included (escaped as ByteBuffer.jsonStr does). */
export function quoteJSON(s: string): string {
  let n = s.length;
  let clean = true;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x20 || c == 0x22 || c == 0x5c) {
      clean = false;
      break;
    }
  }
  if (clean) return "\"" + s + "\"";
  let b = new ByteBuffer(n + 16);
  b.byte(0x22);
  b.jsonStr(s);
  b.byte(0x22);
  return b.toString();
}

export class JSONResult {
  constructor(
    public value: JSONValue | null,
    /** Null on success, else "line L, column C: what went wrong". */
    public error: string | null,
    /** Character offset of the error (0-based), -1 on success. */
    public offset: i32 = -1,
  ) {}

  get ok(): bool {
    return this.error === null;
  }
}

/** Parses JSON text. Never traps: malformed input yields a JSONResult with `error` set. */
export function parseJSON(text: string): JSONResult {
  let p = new Parser(text);
  p.skipWs();
  let v = p.parseValue(0);
  if (v !== null) {
    p.skipWs();
    if (p.i < p.n) p.fail("unexpected " + describe(text, p.i) + " after the JSON value", p.i);
  }
  let err = p.err;
  if (err !== null) {
    let line = 1;
    let col = 1;
    let pos = p.errPos;
    for (let i = 0; i < pos && i < p.n; i++) {
      if (text.charCodeAt(i) == 0x0a) {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
    return new JSONResult(null, "line " + line.toString() + ", column " + col.toString() + ": " + err, pos);
  }
  return new JSONResult(v, null, -1);
}

function describe(s: string, i: i32): string {
  if (i >= s.length) return "end of input";
  let c = s.charCodeAt(i);
  if (c >= 0x20 && c < 0x7f) return "'" + String.fromCharCode(c) + "'";
  let h = c.toString(16).toUpperCase();
  while (h.length < 4) h = "0" + h;
  return "character U+" + h;
}

class Parser {
  i: i32 = 0;
  n: i32;
  err: string | null = null;
  errPos: i32 = 0;

  constructor(public s: string) {
    this.n = s.length;
  }

  fail(msg: string, pos: i32): JSONValue | null {
    if (this.err === null) {
      this.err = msg;
      this.errPos = pos;
    }
    return null;
  }

  skipWs(): void {
    let s = this.s;
    let i = this.i;
    let n = this.n;
    while (i < n) {
      let c = s.charCodeAt(i);
      if (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) i++;
      else break;
    }
    this.i = i;
  }

  parseValue(depth: i32): JSONValue | null {
    if (this.i >= this.n) return this.fail("unexpected end of input, expected a value", this.i);
    let c = this.s.charCodeAt(this.i);
    switch (c) {
      case 0x7b: return this.parseObject(depth); // {
      case 0x5b: return this.parseArray(depth); // [
      case 0x22: { // "
        let str = this.parseString();
        return str === null ? null : JSONValue.newString(str);
      }
      case 0x74: return this.literal("true", JSONValue.newBool(true));
      case 0x66: return this.literal("false", JSONValue.newBool(false));
      case 0x6e: return this.literal("null", JSONValue.newNull());
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
    return this.fail("unexpected " + describe(this.s, this.i) + ", expected a value", this.i);
  }

  literal(word: string, v: JSONValue): JSONValue | null {
    let len = word.length;
    if (this.i + len <= this.n && this.s.substring(this.i, this.i + len) == word) {
      this.i += len;
      return v;
    }
    return this.fail("invalid literal, expected '" + word + "'", this.i);
  }

  parseObject(depth: i32): JSONValue | null {
    let start = this.i;
    if (depth >= MAX_DEPTH) return this.fail("nesting deeper than " + MAX_DEPTH.toString() + " levels", start);
    this.i++; // {
    let obj = JSONValue.newObject();
    this.skipWs();
    if (this.i < this.n && this.s.charCodeAt(this.i) == 0x7d) {
      this.i++;
      return obj;
    }
    while (true) {
      this.skipWs();
      if (this.i >= this.n) return this.fail("unexpected end of input in object started at offset " + start.toString(), this.i);
      let c = this.s.charCodeAt(this.i);
      if (c != 0x22) {
        if (c == 0x7d) return this.fail("trailing comma before '}'", this.i);
        return this.fail("unexpected " + describe(this.s, this.i) + ", expected a string key", this.i);
      }
      let key = this.parseString();
      if (key === null) return null;
      this.skipWs();
      if (this.i >= this.n || this.s.charCodeAt(this.i) != 0x3a) {
        return this.fail("unexpected " + describe(this.s, this.i) + ", expected ':' after an object key", this.i);
      }
      this.i++;
      this.skipWs();
      let v = this.parseValue(depth + 1);
      if (v === null) return null;
      obj.set(key, v);
      this.skipWs();
      if (this.i >= this.n) return this.fail("unexpected end of input in object started at offset " + start.toString(), this.i);
      c = this.s.charCodeAt(this.i);
      if (c == 0x2c) {
        this.i++;
        continue;
      }
      if (c == 0x7d) {
        this.i++;
        return obj;
      }
      return this.fail("unexpected " + describe(this.s, this.i) + ", expected ',' or '}' after an object member", this.i);
    }
    return null;
  }

  parseArray(depth: i32): JSONValue | null {
    let start = this.i;
    if (depth >= MAX_DEPTH) return this.fail("nesting deeper than " + MAX_DEPTH.toString() + " levels", start);
    this.i++; // [
    let arr = JSONValue.newArray();
    this.skipWs();
    if (this.i < this.n && this.s.charCodeAt(this.i) == 0x5d) {
      this.i++;
      return arr;
    }
    while (true) {
      this.skipWs();
      if (this.i < this.n && this.s.charCodeAt(this.i) == 0x5d) return this.fail("trailing comma before ']'", this.i);
      let v = this.parseValue(depth + 1);
      if (v === null) return null;
      arr.items!.push(v);
      this.skipWs();
      if (this.i >= this.n) return this.fail("unexpected end of input in array started at offset " + start.toString(), this.i);
      let c = this.s.charCodeAt(this.i);
      if (c == 0x2c) {
        this.i++;
        continue;
      }
      if (c == 0x5d) {
        this.i++;
        return arr;
      }
      return this.fail("unexpected " + describe(this.s, this.i) + ", expected ',' or ']' after an array item", this.i);
    }
    return null;
  }

  /** Parses a string literal at this.i (which is at the opening quote); null on error. */
  parseString(): string | null {
    let s = this.s;
    let n = this.n;
    let start = this.i;
    let i = start + 1;
    let run = i;
    let parts: string[] | null = null;
    while (true) {
      if (i >= n) {
        this.fail("unterminated string", start);
        return null;
      }
      let c = s.charCodeAt(i);
      if (c == 0x22) {
        this.i = i + 1;
        if (parts === null) return s.substring(run, i);
        if (i > run) parts.push(s.substring(run, i));
        return parts.join("");
      }
      if (c < 0x20) {
        this.fail("control character " + describe(s, i).substring(10) + " must be escaped in a string", i);
        return null;
      }
      if (c != 0x5c) {
        i++;
        continue;
      }
      // escape
      if (parts === null) parts = [];
      if (i > run) parts.push(s.substring(run, i));
      if (i + 1 >= n) {
        this.fail("unterminated string", start);
        return null;
      }
      let e = s.charCodeAt(i + 1);
      let out: i32 = -1;
      switch (e) {
        case 0x22: out = 0x22; break; // "
        case 0x5c: out = 0x5c; break; // \
        case 0x2f: out = 0x2f; break; // /
        case 0x62: out = 0x08; break; // b
        case 0x66: out = 0x0c; break; // f
        case 0x6e: out = 0x0a; break; // n
        case 0x72: out = 0x0d; break; // r
        case 0x74: out = 0x09; break; // t
        case 0x75: { // u
          let code = 0;
          for (let k = 0; k < 4; k++) {
            let h = i + 2 + k < n ? s.charCodeAt(i + 2 + k) : -1;
            let d = hexDigit(h);
            if (d < 0) {
              this.fail("invalid \\u escape, expected 4 hex digits", i);
              return null;
            }
            code = (code << 4) | d;
          }
          parts.push(String.fromCharCode(code));
          i += 6;
          run = i;
          continue;
        }
      }
      if (out < 0) {
        this.fail("invalid escape '\\" + (e >= 0x20 && e < 0x7f ? String.fromCharCode(e) : "?") + "' in string", i);
        return null;
      }
      parts.push(String.fromCharCode(out));
      i += 2;
      run = i;
    }
    return null;
  }

  parseNumber(): JSONValue | null {
    let s = this.s;
    let n = this.n;
    let start = this.i;
    let i = start;
    let neg = false;
    if (s.charCodeAt(i) == 0x2d) {
      neg = true;
      i++;
    }
    if (i >= n || !isDigit(s.charCodeAt(i))) return this.fail("invalid number: expected a digit", i);
    if (s.charCodeAt(i) == 0x30) {
      i++;
      if (i < n && isDigit(s.charCodeAt(i))) return this.fail("invalid number: leading zero", start);
    } else {
      while (i < n && isDigit(s.charCodeAt(i))) i++;
    }
    let intEnd = i;
    let integral = true;
    if (i < n && s.charCodeAt(i) == 0x2e) {
      i++;
      if (i >= n || !isDigit(s.charCodeAt(i))) return this.fail("invalid number: expected a digit after '.'", i);
      while (i < n && isDigit(s.charCodeAt(i))) i++;
      integral = false;
    }
    if (i < n && (s.charCodeAt(i) | 0x20) == 0x65) {
      i++;
      if (i < n && (s.charCodeAt(i) == 0x2b || s.charCodeAt(i) == 0x2d)) i++;
      if (i >= n || !isDigit(s.charCodeAt(i))) return this.fail("invalid number: expected a digit in the exponent", i);
      while (i < n && isDigit(s.charCodeAt(i))) i++;
      integral = false;
    }
    this.i = i;
    let v = new JSONValue();
    v.kind = JSONKind.Number;
    v.numValue = parseFloat(s.substring(start, i));
    if (integral) {
      // exact i64 when it fits: accumulate as a negative number (|i64.MIN| > i64.MAX)
      let acc: i64 = 0;
      let fits = true;
      for (let k = neg ? start + 1 : start; k < intEnd; k++) {
        let d = <i64>(s.charCodeAt(k) - 0x30);
        if (acc < (i64.MIN_VALUE + d) / 10) {
          fits = false;
          break;
        }
        acc = acc * 10 - d;
      }
      if (fits && !neg && acc == i64.MIN_VALUE) fits = false;
      if (fits) {
        v.isInteger = true;
        v.intValue = neg ? acc : -acc;
      }
    }
    return v;
  }
}

@inline function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

function hexDigit(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  let l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}
