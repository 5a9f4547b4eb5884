// Typed access to an adapter's JSON configuration with error collection.
//
//   configure(c: Config): string | null {
//     this.header = c.requireString("header");
//     this.status = <u32>c.getInt("status", 403);
//     return c.error;            // null, or every problem found
//   }
//
// Each getter records a message naming the key path when the key has the
// wrong type (or, for require*, is missing), and returns the default.

import { JSONValue } from "./json";

class ErrorSink {
  errors: string[] = [];
}

export class Config {
  /** The configuration text as the host delivered it. */
  raw: string;
  /** The JSON value this Config looks at (an empty object for an empty configuration). */
  value: JSONValue;
  /** Key path of this value, e.g. "limits.per_user" ("" at the top). */
  path: string;
  private sink: ErrorSink;

  constructor(value: JSONValue, raw: string = "", path: string = "", sink: ErrorSink | null = null) {
    this.value = value;
    this.raw = raw;
    this.path = path;
    this.sink = sink !== null ? sink : new ErrorSink();
  }

  /** Every problem recorded by the getters of this Config and its children, joined by "; ", or null. */
  get error(): string | null {
    let e = this.sink.errors;
    return e.length > 0 ? e.join("; ") : null;
  }

  /** Every problem recorded, in order. */
  get errors(): string[] {
    return this.sink.errors;
  }

  /** Records a custom validation problem about `key` (or this value when key is ""). */
  fail(key: string, message: string): void {
    let where = this.where(key);
    this.sink.errors.push(where.length > 0 ? "config \"" + where + "\": " + message : "config: " + message);
  }

  private where(key: string): string {
    if (key.length == 0) return this.path;
    return this.path.length > 0 ? this.path + "." + key : key;
  }

  private member(key: string): JSONValue | null {
    if (!this.value.isObject) {
      this.fail("", "must be an object, got " + this.value.kindName);
      return null;
    }
    let v = this.value.get(key);
    return v !== null && v.isNull ? null : v;
  }

  private wrong(key: string, want: string, got: JSONValue): void {
    this.fail(key, "must be " + want + ", got " + got.kindName);
  }

  /** Whether `key` is present and not null. */
  has(key: string): bool {
    if (!this.value.isObject) return false;
    let v = this.value.get(key);
    return v !== null && !v.isNull;
  }

  /** Keys of this object, in document order. */
  keys(): string[] {
    if (!this.value.isObject) return [];
    return this.value.keys!.slice(0);
  }

  getString(key: string, dflt: string = ""): string {
    let v = this.member(key);
    if (v === null) return dflt;
    if (!v.isString) {
      this.wrong(key, "a string", v);
      return dflt;
    }
    return v.strValue;
  }

  requireString(key: string): string {
    if (!this.has(key)) {
      if (this.value.isObject) this.fail(key, "is required (a string)");
      else this.member(key);
      return "";
    }
    return this.getString(key);
  }

  getInt(key: string, dflt: i64 = 0): i64 {
    let v = this.member(key);
    if (v === null) return dflt;
    if (!v.isNumber || !v.isInteger) {
      this.wrong(key, "an integer", v);
      return dflt;
    }
    return v.intValue;
  }

  requireInt(key: string): i64 {
    if (!this.has(key)) {
      if (this.value.isObject) this.fail(key, "is required (an integer)");
      else this.member(key);
      return 0;
    }
    return this.getInt(key);
  }

  getNumber(key: string, dflt: f64 = 0): f64 {
    let v = this.member(key);
    if (v === null) return dflt;
    if (!v.isNumber) {
      this.wrong(key, "a number", v);
      return dflt;
    }
    return v.numValue;
  }

  getBool(key: string, dflt: bool = false): bool {
    let v = this.member(key);
    if (v === null) return dflt;
    if (!v.isBool) {
      this.wrong(key, "true or false", v);
      return dflt;
    }
    return v.boolValue;
  }

  /** An array of strings (missing: empty array). */
  getStrings(key: string): string[] {
    let out: string[] = [];
    let v = this.member(key);
    if (v === null) return out;
    if (!v.isArray) {
      this.wrong(key, "an array of strings", v);
      return out;
    }
    let items = v.items!;
    for (let i = 0; i < items.length; i++) {
      let it = unchecked(items[i]);
      if (!it.isString) {
        this.fail(key + "[" + i.toString() + "]", "must be a string, got " + it.kindName);
        continue;
      }
      out.push(it.strValue);
    }
    return out;
  }

  /** A nested object as a Config (missing: an empty object). */
  getObject(key: string): Config {
    let v = this.member(key);
    let path = this.where(key);
    if (v === null) return new Config(JSONValue.newObject(), "", path, this.sink);
    if (!v.isObject) {
      this.wrong(key, "an object", v);
      return new Config(JSONValue.newObject(), "", path, this.sink);
    }
    return new Config(v, "", path, this.sink);
  }

  /** Items of an array, each as a Config (for arrays of objects; missing: empty). */
  getArray(key: string): Config[] {
    let out: Config[] = [];
    let v = this.member(key);
    if (v === null) return out;
    if (!v.isArray) {
      this.wrong(key, "an array", v);
      return out;
    }
    let items = v.items!;
    let base = this.where(key);
    for (let i = 0; i < items.length; i++) {
      out.push(new Config(unchecked(items[i]), "", base + "[" + i.toString() + "]", this.sink));
    }
    return out;
  }
}

