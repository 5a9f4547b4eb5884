// Header changes as operations (Mixer's HeaderOperation: REPLACE, REMOVE, APPEND).
//
// The server runs the adapters on a copy of the request's header list and diffs
// before/after into operations; the proxy applies them to its own list. Applying
// the operations reproduces the adapters' result exactly (order and repeated
// headers included) because they follow the host's own semantics: replace and
// add move a header to the end of the list, remove deletes every value.
// Operations are relative, so a cached result can be applied to another request
// whose referenced attributes have the same values.

import type { HeaderPair } from '../abi/pairs.js';
import { HeaderOp, type PbHeaderOperation } from './protos.js';

export interface HeaderOperation {
  readonly op: HeaderOp;
  readonly name: string;
  readonly value: string;
}

function valuesOf(list: readonly HeaderPair[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const [k, v] of list) {
    const a = m.get(k);
    if (a === undefined) m.set(k, [v]);
    else a.push(v);
  }
  return m;
}

function sameValues(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isPrefix(a: readonly string[], b: readonly string[]): boolean {
  if (a.length >= b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function equalLists(x: readonly HeaderPair[], y: readonly HeaderPair[]): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i]![0] !== y[i]![0] || x[i]![1] !== y[i]![1]) return false;
  return true;
}

function reproduces(before: readonly HeaderPair[], after: readonly HeaderPair[], ops: readonly HeaderOperation[]): boolean {
  const copy = before.map(([k, v]) => [k, v] as HeaderPair);
  applyHeaderOps(copy, ops);
  return equalLists(copy, after);
}

/** Operations that turn `before` into `after` (both lists of lower-case names). */
export function diffHeaders(before: readonly HeaderPair[], after: readonly HeaderPair[]): HeaderOperation[] {
  if (equalLists(before, after)) return [];
  const b = valuesOf(before);
  const a = valuesOf(after);

  // 1. Per-name changes: removals, appended values, replacements (what adapters usually do).
  const simple: HeaderOperation[] = [];
  for (const name of b.keys()) if (!a.has(name)) simple.push({ op: HeaderOp.Remove, name, value: '' });
  const seen = new Set<string>();
  for (const [name] of after) {
    if (seen.has(name)) continue;
    seen.add(name);
    const now = a.get(name)!;
    const old = b.get(name);
    if (sameValues(old, now)) continue;
    if (old === undefined || isPrefix(old, now)) {
      // A new header, or values added after the existing ones.
      for (let i = old?.length ?? 0; i < now.length; i++) simple.push({ op: HeaderOp.Append, name, value: now[i]! });
    } else {
      simple.push({ op: HeaderOp.Replace, name, value: now[0]! });
      for (let i = 1; i < now.length; i++) simple.push({ op: HeaderOp.Append, name, value: now[i]! });
    }
  }
  if (reproduces(before, after, simple)) return simple;

  // 2. Rebuild the tail: every name from the first changed position on is
  //    removed and the tail of `after` appended in order.
  const changed = new Set<string>();
  for (const name of new Set([...b.keys(), ...a.keys()])) if (!sameValues(b.get(name), a.get(name))) changed.add(name);
  if (changed.size === 0) {
    let p = 0;
    while (p < after.length && before[p]![0] === after[p]![0] && before[p]![1] === after[p]![1]) p++;
    changed.add(after[p]![0]);
  }
  let tail = 0;
  for (;;) {
    tail = after.findIndex(([k]) => changed.has(k));
    if (tail < 0) tail = after.length;
    const size = changed.size;
    for (let i = tail; i < after.length; i++) changed.add(after[i]![0]);
    if (changed.size === size) break;
  }
  const ops: HeaderOperation[] = [];
  const inTail = new Set(after.slice(tail).map(([k]) => k));
  for (const name of b.keys()) if (changed.has(name) && !inTail.has(name)) ops.push({ op: HeaderOp.Remove, name, value: '' });
  const started = new Set<string>();
  for (let i = tail; i < after.length; i++) {
    const [k, v] = after[i]!;
    // The first value of a name that existed before replaces it (remove + append).
    ops.push({ op: !started.has(k) && b.has(k) ? HeaderOp.Replace : HeaderOp.Append, name: k, value: v });
    started.add(k);
  }
  if (reproduces(before, after, ops)) return ops;

  // 3. Anything else (set_header_map_pairs reordering everything): start over.
  const all: HeaderOperation[] = [];
  for (const name of b.keys()) all.push({ op: HeaderOp.Remove, name, value: '' });
  for (const [k, v] of after) all.push({ op: HeaderOp.Append, name: k, value: v });
  return all;
}

/** Applies operations to a header list in place, with the host's semantics. */
export function applyHeaderOps(list: HeaderPair[], ops: readonly HeaderOperation[]): void {
  for (const o of ops) {
    switch (o.op) {
      case HeaderOp.Append:
        list.push([o.name, o.value]);
        break;
      case HeaderOp.Remove:
        removeKey(list, o.name);
        break;
      default:
        removeKey(list, o.name);
        list.push([o.name, o.value]);
    }
  }
}

function removeKey(list: HeaderPair[], key: string): void {
  let w = 0;
  for (let r = 0; r < list.length; r++) if (list[r]![0] !== key) list[w++] = list[r]!;
  list.length = w;
}

export function opsToPb(ops: readonly HeaderOperation[]): PbHeaderOperation[] {
  return ops.map((o) => ({ name: o.name, value: o.value, operation: o.op }));
}

export function opsFromPb(pb: readonly PbHeaderOperation[] | undefined): HeaderOperation[] {
  if (pb === undefined) return [];
  return pb.map((o) => ({ op: (o.operation ?? 0) as HeaderOp, name: (o.name ?? '').toLowerCase(), value: o.value ?? '' }));
}
