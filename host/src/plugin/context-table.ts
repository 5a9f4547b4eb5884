// A VM's request contexts by id. Every request adds one entry and removes it again, so
// a Map here is churned four times per request in the benchmark's chain: V8's hash map
// compacts its deleted entries and shrinks below a quarter full by allocating a new table,
// which at one request in flight happens on every request, and under load keeps
// reallocating tables that live long enough to be promoted. This table is open-addressed
// on the (unique, non-zero u32) context ids: once grown to the peak of requests in flight
// it allocates nothing, and it shrinks only after a burst far above the usual load.

/** Smallest capacity (slots); a power of two. */
const MIN_CAPACITY = 16;
/**
 * The table shrinks only above this many slots (12 KiB): requests in flight swing between
 * none and the connection count all the time, and a table that followed them down would
 * be reallocated on every swing.
 */
const SHRINK_ABOVE = 1024;

export class ContextTable<T> {
  /** Context id per slot; 0 is an empty slot (ids are never 0). */
  private ids = new Uint32Array(MIN_CAPACITY);
  private vals: Array<T | undefined> = new Array<T | undefined>(MIN_CAPACITY).fill(undefined);
  private mask = MIN_CAPACITY - 1;
  /** 32 - log2(capacity): the hash's top bits pick the slot. */
  private shift = 32 - Math.log2(MIN_CAPACITY);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Slots held: at most twice the peak in flight; after a burst, back down to SHRINK_ABOVE. */
  get capacity(): number {
    return this.ids.length;
  }

  get(id: number): T | undefined {
    const ids = this.ids;
    const mask = this.mask;
    for (let i = slotOf(id, this.shift); ; i = (i + 1) & mask) {
      const k = ids[i]!;
      if (k === id) return this.vals[i];
      if (k === 0) return undefined;
    }
  }

  set(id: number, value: T): void {
    if (id === 0 || id !== id >>> 0) throw new RangeError(`context id ${id} is not a non-zero u32`);
    if ((this.count + 1) * 2 > this.ids.length) this.resize(this.ids.length * 2);
    const ids = this.ids;
    const mask = this.mask;
    let i = slotOf(id, this.shift);
    for (; ids[i] !== 0; i = (i + 1) & mask) {
      if (ids[i] === id) {
        this.vals[i] = value;
        return;
      }
    }
    ids[i] = id;
    this.vals[i] = value;
    this.count++;
  }

  /** Removes the id's entry; false when there was none. */
  delete(id: number): boolean {
    const ids = this.ids;
    const vals = this.vals;
    const mask = this.mask;
    let i = slotOf(id, this.shift);
    for (; ; i = (i + 1) & mask) {
      const k = ids[i]!;
      if (k === 0) return false;
      if (k === id) break;
    }
    // Backward-shift deletion: entries after the hole that probed past it move into it,
    // so lookups never need tombstones.
    let hole = i;
    for (let j = (i + 1) & mask; ids[j] !== 0; j = (j + 1) & mask) {
      const home = slotOf(ids[j]!, this.shift);
      // j's entry may fill the hole only if its home slot is not in (hole, j] (cyclically).
      if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
        ids[hole] = ids[j]!;
        vals[hole] = vals[j];
        hole = j;
      }
    }
    ids[hole] = 0;
    vals[hole] = undefined;
    this.count--;
    // Far emptier than its peak (say after a burst): give the memory back.
    if (this.ids.length > SHRINK_ABOVE && this.count * 8 < this.ids.length) this.resize(this.ids.length / 2);
    return true;
  }

  values(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.ids.length; i++) if (this.ids[i] !== 0) out.push(this.vals[i]!);
    return out;
  }

  clear(): void {
    this.ids = new Uint32Array(MIN_CAPACITY);
    this.vals = new Array<T | undefined>(MIN_CAPACITY).fill(undefined);
    this.mask = MIN_CAPACITY - 1;
    this.shift = 32 - Math.log2(MIN_CAPACITY);
    this.count = 0;
  }

  private resize(capacity: number): void {
    const ids = this.ids;
    const vals = this.vals;
    this.ids = new Uint32Array(capacity);
    this.vals = new Array<T | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
    this.shift = 32 - Math.log2(capacity);
    this.count = 0;
    for (let i = 0; i < ids.length; i++) if (ids[i] !== 0) this.set(ids[i]!, vals[i]!);
  }
}

/**
 * Fibonacci hashing (the product's top bits): ids are sequential and shared by every VM,
 * so each VM sees every n-th one, which the low bits alone would crowd into a few slots.
 */
function slotOf(id: number, shift: number): number {
  return Math.imul(id, 0x9e3779b1) >>> shift;
}
