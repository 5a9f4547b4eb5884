// A VM's request contexts live in plugin/context-table.ts, an open-addressed table that
// replaced a Map: it must answer exactly as a Map would under any mix of adds and removes
// (backward-shift deletion is easy to get wrong where probe runs wrap around the end),
// give memory back after a burst, and refuse an id it cannot hold.
import t, { type Test } from 'tap';
import { ContextTable } from '../../host/src/plugin/context-table.js';

/** Deterministic PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

function check(t: Test, table: ContextTable<string>, model: Map<number, string>, probes: number[]): void {
  t.equal(table.size, model.size, 'size');
  for (const id of probes) t.equal(table.get(id), model.get(id), `get ${id}`);
  t.same(table.values().sort(), [...model.values()].sort(), 'values');
}

t.test('answers as a Map does over random adds and removes', async (t) => {
  for (const [name, idOf] of [
    // The chain's pattern: a shared sequential counter, every 4th id per VM.
    ['every 4th sequential id', (i: number) => 1 + 4 * i],
    // newContextId() wraps from 0xfffffff0 back to 1.
    ['sequential ids across the wrap', (i: number) => (i < 0xef0 ? 0xfffff100 + i : i - 0xef0 + 1)],
    ['random u32 ids', (() => {
      const r = rng(7);
      return () => 1 + Math.floor(r() * 0xfffffffe);
    })()],
  ] as const) {
    const r = rng(42);
    const table = new ContextTable<string>();
    const model = new Map<number, string>();
    const live: number[] = [];
    let next = 0;
    let bad = 0;
    for (let op = 0; op < 20_000; op++) {
      // Grow to a few hundred in flight, then drain, twice: exercises growth and shrinking.
      const phase = Math.floor(op / 5000) % 2;
      if (live.length === 0 || r() < (phase === 0 ? 0.6 : 0.4)) {
        const id = idOf(next++);
        if (model.has(id)) continue;
        table.set(id, `v${id}`);
        model.set(id, `v${id}`);
        live.push(id);
      } else {
        const k = Math.floor(r() * live.length);
        const id = live[k]!;
        live[k] = live[live.length - 1]!;
        live.pop();
        if (table.delete(id) !== model.delete(id)) bad++;
        if (table.delete(id) !== false) bad++;
      }
      if (op % 97 === 0) {
        for (const id of live) if (table.get(id) !== model.get(id)) bad++;
        if (table.size !== model.size) bad++;
      }
    }
    t.equal(bad, 0, `${name}: no lookup, size or delete differed from a Map`);
    check(t, table, model, [...live.slice(0, 50), idOf(next + 1), 12345]);
  }
});

t.test('replacing an id keeps one entry; missing ids are undefined', async (t) => {
  const table = new ContextTable<string>();
  table.set(5, 'a');
  table.set(5, 'b');
  t.equal(table.size, 1);
  t.equal(table.get(5), 'b');
  t.equal(table.get(6), undefined);
  t.equal(table.delete(6), false);
  t.equal(table.delete(5), true);
  t.equal(table.size, 0);
  t.equal(table.get(5), undefined);
});

t.test('gives memory back after a burst, and clear() empties it', async (t) => {
  const table = new ContextTable<number>();
  for (let id = 1; id <= 10_000; id++) table.set(id, id);
  const peak = table.capacity;
  t.ok(peak >= 20_000, 'grew to at least twice the entries');
  for (let id = 1; id <= 9_990; id++) table.delete(id);
  const after = table.capacity;
  t.ok(after <= 1024, `shrank to ${after} slots for 10 entries`);
  for (let id = 9_991; id <= 10_000; id++) t.equal(table.get(id), id);
  table.clear();
  t.equal(table.size, 0);
  t.equal(table.get(10_000), undefined);
});

t.test('requests in flight swinging between none and a few hundred never reallocate it', async (t) => {
  const table = new ContextTable<number>();
  let id = 1;
  const fill = (n: number) => Array.from({ length: n }, () => (table.set(id, id), id++));
  for (const x of fill(300)) table.delete(x);
  const capacity = table.capacity;
  let moved = 0;
  for (let swing = 0; swing < 50; swing++) {
    const live = fill(1 + ((swing * 37) % 300));
    if (table.capacity !== capacity) moved++;
    for (const x of live) table.delete(x);
    if (table.capacity !== capacity) moved++;
  }
  t.equal(moved, 0, `stays at ${capacity} slots`);
  t.equal(table.size, 0);
});

t.test('refuses ids that are not non-zero u32 values', async (t) => {
  const table = new ContextTable<string>();
  t.throws(() => table.set(0, 'x'), RangeError);
  t.throws(() => table.set(2 ** 32, 'x'), RangeError);
  t.throws(() => table.set(1.5, 'x'), RangeError);
  t.equal(table.size, 0);
});
