// Redaction of sensitive query parameters in a path: /p?api_key=abc&x=1 -> /p?api_key=[REDACTED]&x=1.
// pathUnchanged() answers from the path's bytes whether redactQuery would leave it as it is,
// so the usual path (nothing to redact) is copied into the entry without making strings.

/** Replaces the values of sensitive query parameters (names in lower case). */
export function redactQuery(path: string, names: string[], replacement: string): string {
  let q = path.indexOf("?");
  if (q < 0 || names.length == 0) return path;
  let query = path.substring(q + 1);
  let hash = query.indexOf("#");
  let frag = "";
  if (hash >= 0) {
    frag = query.substring(hash);
    query = query.substring(0, hash);
  }
  let params = query.split("&");
  let changed = false;
  for (let i = 0; i < params.length; i++) {
    let p = params[i];
    let eq = p.indexOf("=");
    let k = (eq < 0 ? p : p.substring(0, eq)).toLowerCase();
    if (names.includes(k) || names.includes(decodeKey(k))) {
      params[i] = (eq < 0 ? p : p.substring(0, eq)) + "=" + replacement;
      changed = true;
    }
  }
  if (!changed) return path;
  return path.substring(0, q + 1) + params.join("&") + frag;
}

/** Percent-decodes the few characters parameter names use (a%5Fkey -> a_key). */
function decodeKey(k: string): string {
  if (k.indexOf("%") < 0) return k;
  let out: string[] = [];
  for (let i = 0; i < k.length; i++) {
    let c = k.charCodeAt(i);
    if (c == 0x25 && i + 2 < k.length) {
      let v = I32.parseInt(k.substring(i + 1, i + 3), 16);
      if (v > 0) {
        out.push(String.fromCharCode(v));
        i += 2;
        continue;
      }
    }
    out.push(k.charAt(i));
  }
  return out.join("").toLowerCase();
}

/**
 * True when the path at p..p+n is ASCII without "%" and none of its query parameter names
 * is in `names` (ASCII case-insensitively): redactQuery would return it unchanged, and its
 * bytes are exactly what the string would encode to. False means "use redactQuery".
 */
export function pathUnchanged(p: usize, n: i32, names: string[]): bool {
  let q = -1;
  for (let i = 0; i < n; i++) {
    let c = load<u8>(p + <usize>i);
    if (c >= 0x80 || c == 0x25) return false;
    if (c == 0x3f && q < 0) q = i;
  }
  if (q < 0 || names.length == 0) return true;
  let end = q + 1;
  while (end < n && load<u8>(p + <usize>end) != 0x23) end++; // the query ends at "#"
  let start = q + 1;
  while (start <= end) {
    let amp = start;
    while (amp < end && load<u8>(p + <usize>amp) != 0x26) amp++;
    let keyEnd = start;
    while (keyEnd < amp && load<u8>(p + <usize>keyEnd) != 0x3d) keyEnd++;
    if (nameListed(p + <usize>start, keyEnd - start, names)) return false;
    start = amp + 1;
  }
  return true;
}

/** The lengths of the names in `lengthsOf` (bit n set: some name has n chars; bit 63: one has 63 or more). */
let lengthsOf: string[] | null = null;
let lengthsCount: i32 = -1;
let lengths: u64 = 0;

function nameListed(p: usize, n: i32, names: string[]): bool {
  // most parameters (page=2, limit=10) have a length no listed name has: no comparison at all
  if (names !== lengthsOf || names.length != lengthsCount) {
    lengthsOf = names;
    lengthsCount = names.length;
    lengths = 0;
    for (let k = 0, m = names.length; k < m; k++) lengths |= <u64>1 << <u64>min(unchecked(names[k]).length, 63);
  }
  if ((lengths & (<u64>1 << <u64>min(n, 63))) == 0) return false;
  for (let k = 0, m = names.length; k < m; k++) {
    let name = unchecked(names[k]);
    if (name.length != n) continue;
    let i = 0;
    for (; i < n; i++) {
      let c = <i32>load<u8>(p + <usize>i);
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      if (c != <i32>name.charCodeAt(i)) break;
    }
    if (i == n) return true;
  }
  return false;
}
