// PathFilter: a list of request paths such as the adapters' `exclude_paths` ("/healthz"
// exact, "/internal/*" a prefix), matched against the path without its query string.
// Matching reads the path's UTF-8 bytes (e.g. straight from a PropertySet) and makes no
// string.

import { Config } from "./config";
import { bytesEqual, bytesStartWith } from "./bytes";

export class PathFilter {
  exact: string[] = [];
  prefixes: string[] = [];

  /**
   * Reads a list of paths from configuration key `key` (default "exclude_paths"); an entry
   * that does not start with "/" is a configuration error (`key[i]: must start with /`).
   */
  static fromConfig(c: Config, key: string = "exclude_paths"): PathFilter {
    let f = new PathFilter();
    let list = c.getStrings(key);
    for (let i = 0; i < list.length; i++) {
      let p = list[i];
      if (!p.startsWith("/")) c.fail(key + "[" + i.toString() + "]", "must start with /");
      f.add(p);
    }
    return f;
  }

  /** Adds "/exact" or "/prefix*". */
  add(pattern: string): void {
    if (pattern.endsWith("*")) this.prefixes.push(pattern.substring(0, pattern.length - 1));
    else this.exact.push(pattern);
  }

  get isEmpty(): bool {
    return this.exact.length == 0 && this.prefixes.length == 0;
  }

  /** Whether a path (query string allowed, ignored) matches. */
  matches(path: string): bool {
    let q = path.indexOf("?");
    let p = q < 0 ? path : path.substring(0, q);
    if (this.exact.includes(p)) return true;
    for (let i = 0; i < this.prefixes.length; i++) if (p.startsWith(this.prefixes[i])) return true;
    return false;
  }

  /** matches() for a path given as UTF-8 bytes at ptr..ptr+len. */
  matchesBytes(ptr: usize, len: i32): bool {
    let n = 0;
    while (n < len && load<u8>(ptr + <usize>n) != 0x3f) n++; // up to "?"
    let exact = this.exact;
    for (let i = 0, m = exact.length; i < m; i++) if (bytesEqual(ptr, n, unchecked(exact[i]))) return true;
    let prefixes = this.prefixes;
    for (let i = 0, m = prefixes.length; i < m; i++) if (bytesStartWith(ptr, n, unchecked(prefixes[i]))) return true;
    return false;
  }
}
