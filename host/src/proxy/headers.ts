// Header handling at the proxy's two edges: what is connection-specific and
// stays on its hop (RFC 9110 §7.6.1), and the Node header objects written out.

import type { HeaderPair } from '../abi/pairs.js';

// RFC 9110 §7.6.1 connection-specific fields (Trailer is end-to-end and is forwarded).
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'transfer-encoding', 'upgrade', 'proxy-connection']);

/** A Node header object: one value, or several for a repeated field. */
export type OutHeaders = Record<string, string | string[]>;

/**
 * The field names listed in a Connection header (RFC 9110 §7.6.1): connection-specific,
 * so a proxy removes them along with the fixed hop-by-hop set. Null when there are none.
 */
export function connectionTokens(v: string | undefined): Set<string> | null {
  if (v === undefined || v === '') return null;
  const out = new Set<string>();
  for (const t of v.split(',')) {
    const name = t.trim().toLowerCase();
    if (name !== '' && name !== 'close' && name !== 'keep-alive') out.add(name);
  }
  return out.size > 0 ? out : null;
}

/** Raw header pairs (Node's rawHeaders) with the hop-by-hop fields and those the Connection header names left out. */
export function endToEndHeaders(raw: string[], connection: string | undefined): HeaderPair[] {
  const headers: HeaderPair[] = [];
  const named = connectionTokens(connection);
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(k) || named?.has(k)) continue;
    headers.push([k, raw[i + 1]!]);
  }
  return headers;
}

export function trailerPairs(raw: string[]): HeaderPair[] {
  const out: HeaderPair[] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}

/** Approximate bytes of a response head: status line, header lines, blank line. */
export function headBytes(h: OutHeaders): number {
  let n = 17 + 2;
  for (const k in h) {
    const v = h[k]!;
    if (Array.isArray(v)) for (const x of v) n += k.length + x.length + 4;
    else n += k.length + v.length + 4;
  }
  return n;
}

export function addHeader(h: OutHeaders, k: string, v: string): void {
  const cur = h[k];
  if (cur === undefined) h[k] = v;
  else if (Array.isArray(cur)) cur.push(v);
  else h[k] = [cur, v];
}
