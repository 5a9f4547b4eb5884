// A table from u32 ids (Proxy-Wasm context ids, call tokens: any u32, 0 included) to
// objects, for the dispatcher's per-request lookups. Open addressing with linear probing
// and backward-shift deletion: set, get and delete allocate nothing once the table has
// grown to the peak number of live entries (std Map appends an entry per set and rehashes
// into fresh buffers every few sets, so a request's create/delete left garbage behind).

/**
 * u32 id -> T (a reference type; null is "absent", so null cannot be stored). The methods
 * Map<u32, T> has behave as Map's do (get aborts on a missing id, delete answers whether it
 * removed one), so a Map<u32, T> field can become an IdTable<T> by changing its type.
 */
export class IdTable<T> {
  private ids: StaticArray<u32>;
  private vals: StaticArray<T | null>;
  private mask: u32;
  private shift: u32;
  private count: i32 = 0;
  // The last id found or set and its value: a request's callbacks come one after another,
  // so most lookups of the dispatcher's tables are for the id just seen. set and take keep
  // it right (lastVal null: no cached entry). lastVal is always also in `vals`, which keeps
  // it alive, so it is written with remember() (a plain store, no GC write barrier).
  private lastId: u32 = 0;
  private lastVal: T | null = null;

  @inline private remember(id: u32, v: T | null): void {
    this.lastId = id;
    store<usize>(changetype<usize>(this) + offsetof<IdTable<T>>("lastVal"), changetype<usize>(v));
  }

  constructor(capacityLog2: u32 = 4) {
    let cap = <i32>(1 << capacityLog2);
    this.ids = new StaticArray<u32>(cap);
    this.vals = new StaticArray<T | null>(cap);
    this.mask = <u32>cap - 1;
    this.shift = 32 - capacityLog2;
  }

  get size(): i32 {
    return this.count;
  }

  // Fibonacci hashing: the host's ids are mostly consecutive, this spreads them over the table.
  @inline private home(id: u32): u32 {
    return (id * 0x9e3779b1) >>> this.shift;
  }

  /** Slot of `id`, or -1. */
  private slot(id: u32): i32 {
    let keys = this.ids;
    let vals = this.vals;
    let mask = this.mask;
    let i = this.home(id);
    while (true) {
      if (changetype<usize>(unchecked(vals[i])) == 0) return -1;
      if (unchecked(keys[i]) == id) return <i32>i;
      i = (i + 1) & mask;
    }
    return -1; // unreachable: the table is never full
  }

  /** The value of `id`, or null. */
  find(id: u32): T | null {
    let last = this.lastVal;
    if (id == this.lastId && changetype<usize>(last) != 0) return last;
    let i = this.slot(id);
    if (i < 0) return null;
    let v = unchecked(this.vals[i]);
    this.remember(id, v);
    return v;
  }

  /** The value of `id`; aborts when there is none (as Map#get). */
  get(id: u32): T {
    let v = this.find(id);
    if (changetype<usize>(v) == 0) abort("IdTable.get: no entry " + id.toString());
    return changetype<T>(v);
  }

  has(id: u32): bool {
    return changetype<usize>(this.find(id)) != 0;
  }

  /** Sets or replaces the value of `id`. */
  set(id: u32, value: T): this {
    if (changetype<usize>(value) == 0) abort("IdTable.set: null value");
    // the entry just set is the likeliest next lookup (a stream's first callback follows its creation)
    this.remember(id, value);
    let keys = this.ids;
    let vals = this.vals;
    let mask = this.mask;
    let i = this.home(id);
    while (changetype<usize>(unchecked(vals[i])) != 0) {
      if (unchecked(keys[i]) == id) {
        unchecked((vals[i] = value));
        return this;
      }
      i = (i + 1) & mask;
    }
    unchecked((keys[i] = id));
    unchecked((vals[i] = value));
    // Keep the load at most 1/2, so probes stay short and an empty slot always exists.
    if (++this.count * 2 > <i32>(mask + 1)) {
      this.grow(); // re-sets every entry, so the cache names the last one moved
      this.remember(id, value);
    }
    return this;
  }

  /** Removes `id`; whether it was there (as Map#delete). */
  delete(id: u32): bool {
    return this.take(id) !== null;
  }

  /** Removes `id` and returns its value (null if absent). */
  take(id: u32): T | null {
    if (id == this.lastId) this.remember(0, null);
    let i = this.slot(id);
    if (i < 0) return null;
    let keys = this.ids;
    let vals = this.vals;
    let mask = this.mask;
    let out = unchecked(vals[i]);
    // Backward shift: move later entries of the probe run into the hole when their home
    // slot allows, so lookups never need tombstones.
    let hole = <u32>i;
    let j = hole;
    while (true) {
      j = (j + 1) & mask;
      let v = unchecked(vals[j]);
      if (changetype<usize>(v) == 0) break;
      let h = this.home(unchecked(keys[j]));
      // Entry j may move to the hole unless its home lies cyclically in (hole, j].
      if (((j - h) & mask) >= ((j - hole) & mask)) {
        unchecked((keys[hole] = keys[j]));
        unchecked((vals[hole] = v));
        hole = j;
      }
    }
    unchecked((vals[hole] = null));
    unchecked((keys[hole] = 0));
    this.count--;
    return out;
  }

  /** Every id in the table, in no particular order (allocates: for rare paths). */
  keys(): u32[] {
    let out = new Array<u32>();
    let vals = this.vals;
    for (let i = 0, n = vals.length; i < n; i++) {
      if (changetype<usize>(unchecked(vals[i])) != 0) out.push(unchecked(this.ids[i]));
    }
    return out;
  }

  private grow(): void {
    let oldKeys = this.ids;
    let oldVals = this.vals;
    let log2 = 33 - this.shift; // twice the capacity
    let cap = <i32>(1 << log2);
    this.ids = new StaticArray<u32>(cap);
    this.vals = new StaticArray<T | null>(cap);
    this.mask = <u32>cap - 1;
    this.shift = 32 - log2;
    this.count = 0;
    for (let i = 0, n = oldVals.length; i < n; i++) {
      let v = unchecked(oldVals[i]);
      if (changetype<usize>(v) != 0) this.set(unchecked(oldKeys[i]), changetype<T>(v));
    }
  }
}
