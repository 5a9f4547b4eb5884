// About 800 lines, one file: the rewriter is one pass over the code section (decoder,
// fuel insertion, call-site charges, bulk-op and table caps) that must agree on one
// instruction model; splitting it would spread that model over several files.
//
// Load-time rewriting of adapter modules so that no guest call can run away
// or grow without bound:
//
//   * Work budget ("fuel"). A synchronous wasm call on the Node event loop
//     cannot be pre-empted, so the module itself is made to count its work.
//     Every function entry and every loop header is prefixed with
//
//         global.get $fuel  i32.const <cost>  i32.sub  global.set $fuel
//         global.get $fuel  i32.const 0  i32.lt_s  if  unreachable  end
//
//     where <cost> is the number of instructions in that function body or loop
//     body (nested loops are charged separately). Straight-line code is bounded
//     by its size, so every instruction the guest executes is paid for at the
//     function entry or loop iteration that leads to it: fuel spent is an
//     upper bound on instructions executed. The host sets $fuel (exported as
//     FUEL_EXPORT) to the adapter's budget before each outermost callback; when
//     it goes negative the guest traps, and the host, seeing $fuel < 0, reports
//     VM_BUDGET_EXCEEDED instead of a plain trap.
//
//     Straight-line functions are charged at their call sites instead (the
//     charge on every entry costs more than such a function's own work): a
//     function with no loop, that the host cannot call (not exported, not the
//     start function) and that no table or reference can reach (not in an
//     element segment, never named by ref.func), runs only through direct
//     calls, and each run executes at most its own instructions once plus what
//     its callees pay. Its "site cost" (its instructions plus the site costs of
//     the site-charged functions it calls) is added to the charge of the block
//     (function entry or loop iteration) holding each call to it, so fuel spent
//     stays an upper bound on instructions executed. A call cycle among such
//     functions is broken by charging one of them at entry; a site cost above
//     MAX_SITE_COST is charged at entry too.
//
//     With `hostCallFuel`, each call of an imported (host) function adds that
//     fixed host-call charge to its block the same way, so the host need not
//     wrap every import in a JS function that charges it (plugin/host-meter.ts
//     keeps charging the bytes host functions move). This needs every import
//     to be reachable only through direct calls: when one is in an element
//     segment or exported, the result says hostCallsCharged: false and the host
//     charges its calls itself.
//
//     Bulk memory and table operations (memory.fill/copy/init,
//     table.fill/copy/init) do work proportional to their length operand,
//     so each is also preceded by a charge of its length times BULK_FUEL_PER_BYTE
//     (memory) or TABLE_FUEL_PER_ELEMENT (tables)
//     (the length is parked in a scratch global while it is charged).
//
//   * Table cap. Each table's maximum is lowered to the adapter's limit, so
//     table.grow past it returns -1 instead of growing the host process.
//
//   * Memory cap. The memory section's maximum is lowered to the adapter's
//     limit, so memory.grow past it returns -1 inside the guest (which then
//     typically aborts = traps) instead of growing the host process. Every
//     memory.grow is followed by a check that counts refused grows in the
//     exported global GROW_REFUSED_EXPORT, so the host can tell a crash at the
//     cap (VM_MEMORY_LIMIT) from any other trap.
//
// Only the code, table, memory, global and export sections change; every other
// section (names included, so trap stack traces keep function names) is
// copied byte for byte. No function is added, so no index shifts. The new
// global is appended after all existing ones, so no global index shifts either.
//
// The rewriter decodes every instruction of the core spec plus the
// bulk-memory, reference-types, SIMD, threads, tail-call, exception-handling
// and typed-function-reference proposals. An opcode it does not know (e.g. the
// GC proposal) makes it refuse the module with WASM_METERING_UNSUPPORTED rather
// than guess; such a module can still be loaded with limits.metering: false.

import { HostError } from '../errors.js';
import { BULK_FUEL_PER_BYTE, TABLE_FUEL_PER_ELEMENT } from '../limits.js';

/** The exported mutable i32 global that holds the remaining budget. */
export const FUEL_EXPORT = '__wasm_mixer_fuel';
/** The exported mutable i32 global that counts memory.grow calls refused by the cap. */
export const GROW_REFUSED_EXPORT = '__wasm_mixer_grow_refused';

export interface RewriteOptions {
  /** Insert the fuel counter (default true). */
  fuel: boolean;
  /**
   * The fuel counter's initial value: the budget of the wasm start function, which
   * runs inside `new WebAssembly.Instance`, before the host can set the counter.
   */
  initialFuel?: number;
  /** Cap the memory at this many 64 KiB pages (undefined: leave as declared). */
  maxMemoryPages?: number;
  /** Cap every table at this many elements (undefined: leave as declared). */
  maxTableElements?: number;
  /** Charge straight-line functions at their call sites (default true; false: every function at entry). */
  callSiteCharges?: boolean;
  /** Charge this much fuel per call of an imported function, at its call site (with fuel; see hostCallsCharged). */
  hostCallFuel?: number;
  /** For error messages. */
  source: string;
}

export interface RewriteResult {
  bytes: Uint8Array;
  /** Functions charged at entry, functions charged at their call sites, loops instrumented (0 when fuel is off). */
  functions: number;
  siteCharged: number;
  /** True when every call of an imported function is charged opts.hostCallFuel in the module itself. */
  hostCallsCharged: boolean;
  loops: number;
  /** The memory limits after the rewrite, in pages (max null = none declared and no cap). */
  memory: { initial: number; maximum: number | null } | null;
}

const SECTION_ORDER: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

class Reader {
  pos: number;
  constructor(readonly b: Uint8Array, pos = 0, readonly end = b.length) {
    this.pos = pos;
  }
  fail(what: string): never {
    throw new RangeError(`${what} at byte offset ${this.pos}`);
  }
  byte(): number {
    if (this.pos >= this.end) this.fail('unexpected end of input');
    return this.b[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
    this.fail('u32 LEB128 too long');
  }
  /** Skips a signed or unsigned LEB128 of up to `maxBytes` bytes. */
  skipLeb(maxBytes = 10): void {
    for (let i = 0; i < maxBytes; i++) if ((this.byte() & 0x80) === 0) return;
    this.fail('LEB128 too long');
  }
  skip(n: number): void {
    if (this.pos + n > this.end) this.fail('unexpected end of input');
    this.pos += n;
  }
}

function u32leb(n: number): number[] {
  const out: number[] = [];
  n >>>= 0;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function s32leb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function concat(parts: ArrayLike<number>[] | Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p as ArrayLike<number>, o);
    o += p.length;
  }
  return out;
}

function section(id: number, content: Uint8Array): Uint8Array {
  return concat([[id], u32leb(content.length), content]);
}

/** A value type; reference types of the function-references/GC proposals carry a heap type. */
function skipValType(r: Reader): void {
  const t = r.byte();
  if (t === 0x63 || t === 0x64) r.skipLeb(5); // (ref null? ht), ht is s33
}

function skipBlockType(r: Reader): void {
  const t = r.b[r.pos];
  if (t === undefined) r.fail('unexpected end of input');
  if (t === 0x40) return void r.pos++;
  if (t === 0x63 || t === 0x64) return skipValType(r);
  if (t >= 0x40 && t <= 0x7f) return void r.pos++; // a one-byte value type (negative s33)
  r.skipLeb(5); // a type index, s33 >= 0
}

function skipMemarg(r: Reader): void {
  const align = r.u32();
  if (align & 0x40) r.u32(); // multi-memory: memory index follows
  r.skipLeb(10); // offset (u64 under memory64)
}

/**
 * Decodes one instruction's immediates after its opcode. Returns false for an
 * opcode this decoder does not know.
 */
function skipImmediates(op: number, r: Reader): boolean {
  if (op >= 0x45 && op <= 0xc4) return true; // numeric, no immediates
  if (op >= 0x28 && op <= 0x3e) return skipMemarg(r), true; // loads and stores
  switch (op) {
    case 0x00: case 0x01: case 0x05: case 0x0a: case 0x0b: case 0x0f: case 0x19: case 0x1a: case 0x1b:
    case 0xd1: case 0xd3: case 0xd5:
      return true;
    case 0x02: case 0x03: case 0x04: case 0x06:
      return skipBlockType(r), true;
    case 0x07: case 0x08: case 0x09: case 0x0c: case 0x0d: case 0x10: case 0x12: case 0x14: case 0x15: case 0x18:
    case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26: case 0xd2: case 0xd4: case 0xd6:
      return r.u32(), true;
    case 0x0e: {
      const n = r.u32();
      for (let i = 0; i <= n; i++) r.u32();
      return true;
    }
    case 0x11: case 0x13:
      return r.u32(), r.u32(), true;
    case 0x1c: {
      const n = r.u32();
      for (let i = 0; i < n; i++) skipValType(r);
      return true;
    }
    case 0x1f: { // try_table
      skipBlockType(r);
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const kind = r.byte();
        if (kind === 0x00 || kind === 0x01) r.u32();
        else if (kind !== 0x02 && kind !== 0x03) return false;
        r.u32();
      }
      return true;
    }
    case 0x3f: case 0x40:
      return r.u32(), true;
    case 0x41: return r.skipLeb(5), true;
    case 0x42: return r.skipLeb(10), true;
    case 0x43: return r.skip(4), true;
    case 0x44: return r.skip(8), true;
    case 0xd0: return r.skipLeb(5), true; // ref.null heaptype (s33)
    case 0xfc: return skipFc(r.u32(), r);
    case 0xfd: return skipSimd(r.u32(), r);
    case 0xfe: return skipAtomic(r.u32(), r);
    default:
      return false;
  }
}

function skipFc(sub: number, r: Reader): boolean {
  if (sub <= 7) return true; // saturating truncations
  switch (sub) {
    case 8: r.u32(); r.u32(); return true; // memory.init data mem
    case 9: r.u32(); return true; // data.drop
    case 10: r.u32(); r.u32(); return true; // memory.copy
    case 11: r.u32(); return true; // memory.fill
    case 12: r.u32(); r.u32(); return true; // table.init
    case 13: r.u32(); return true; // elem.drop
    case 14: r.u32(); r.u32(); return true; // table.copy
    case 15: case 16: case 17: r.u32(); return true; // table.grow/size/fill
    default: return false;
  }
}

function skipSimd(sub: number, r: Reader): boolean {
  if (sub <= 11) return skipMemarg(r), true; // v128 loads/stores
  if (sub === 12 || sub === 13) return r.skip(16), true; // v128.const, i8x16.shuffle
  if (sub >= 21 && sub <= 34) return r.skip(1), true; // extract/replace lane
  if (sub >= 84 && sub <= 91) return skipMemarg(r), r.skip(1), true; // load/store lane
  if (sub === 92 || sub === 93) return skipMemarg(r), true; // load32_zero/load64_zero
  if (sub <= 0xff) return true; // every other SIMD op has no immediates
  if (sub >= 0x100 && sub <= 0x113) return true; // relaxed SIMD
  return false;
}

function skipAtomic(sub: number, r: Reader): boolean {
  if (sub === 0x03) return r.skip(1), true; // atomic.fence
  if (sub <= 0x02 || (sub >= 0x10 && sub <= 0x4e)) return skipMemarg(r), true;
  return false;
}

interface Charge {
  /** Where the charge goes in the original body (inserted before this byte). */
  at: number;
  cost: number;
  /** Fixed bytes to insert instead of a fuel charge. */
  bytes?: number[];
}

interface Globals {
  fuel: number | null;
  /** [scratch, refused counter] when memory.grow is watched. */
  grow: [number, number] | null;
  /** Scratch for the length operand of bulk memory/table operations (with fuel). */
  bulk: number | null;
}

/** memory.init, memory.copy, memory.fill: the 0xfc sub-opcodes whose top operand is a byte count. */
const MEMORY_BULK_OPS: ReadonlySet<number> = new Set([8, 10, 11]);
/**
 * table.init, table.copy, table.fill: the same with an element count (each element costs
 * far more than a byte). table.grow is bounded by the table cap instead: a refused grow
 * does no work.
 */
const TABLE_BULK_OPS: ReadonlySet<number> = new Set([12, 14, 17]);

/**
 * (stack: ..., len) -> (stack: ..., len), charging perUnit x len fuel first, computed in
 * i64 so that no length can wrap the charge around:
 *   scratch = len
 *   if (i64(fuel) - i64(scratch) * perUnit < 0) { fuel = -1; unreachable }
 *   fuel -= scratch * perUnit; push scratch
 */
function bulkCharge(fuel: number, scratch: number, perUnit: number): number[] {
  const f = u32leb(fuel);
  const s = u32leb(scratch);
  return [
    0x24, ...s,
    0x23, ...f, 0xac, 0x23, ...s, 0xad, 0x42, ...s32leb(perUnit), 0x7e, 0x7d, 0x42, 0x00, 0x53,
    0x04, 0x40, 0x41, 0x7f, 0x24, ...f, 0x00, 0x0b,
    0x23, ...f, 0x23, ...s, 0x41, ...s32leb(perUnit), 0x6c, 0x6b, 0x24, ...f,
    0x23, ...s,
  ];
}

/** A site cost above this is charged at the function's entry instead (bounds the sums, no i32 overflow). */
const MAX_SITE_COST = 100_000;
/** A block's charge is clamped here (far above any budget, below i32 overflow). */
const MAX_CHARGE = 0x3fffffff;

/** What the call-site charging needs to know of one function body. */
interface BodyScan {
  /** Instructions in the body (the whole cost when it has no loop). */
  instructions: number;
  hasLoop: boolean;
  /** Function indices of its direct calls (call, return_call), once per call site. */
  callees: number[];
  /** Decoding failed: left to meterBody, which reports it. */
  failed: boolean;
}

function peekU32(b: Uint8Array, pos: number): number {
  return new Reader(b, pos).u32();
}

/** Scans a body for call-site charging; functions it names with ref.func are added to `referenced`. */
function scanBody(body: Uint8Array, referenced: Set<number>): BodyScan {
  const scan: BodyScan = { instructions: 0, hasLoop: false, callees: [], failed: false };
  try {
    const r = new Reader(body);
    const nLocalGroups = r.u32();
    for (let i = 0; i < nLocalGroups; i++) {
      r.u32();
      skipValType(r);
    }
    while (r.pos < r.end) {
      const op = r.byte();
      scan.instructions++;
      if (op === 0x10 || op === 0x12) scan.callees.push(peekU32(body, r.pos));
      else if (op === 0xd2) referenced.add(peekU32(body, r.pos));
      else if (op === 0x03) scan.hasLoop = true;
      if (!skipImmediates(op, r)) {
        scan.failed = true;
        break;
      }
    }
  } catch {
    scan.failed = true;
  }
  return scan;
}

/** Adds to `out` every function a constant expression names with ref.func; returns the position after its end. */
function scanConstExpr(r: Reader, out: Set<number>): void {
  for (;;) {
    const op = r.byte();
    if (op === 0x0b) return;
    if (op === 0xd2) out.add(peekU32(r.b, r.pos));
    if (!skipImmediates(op, r)) r.fail(`unknown opcode 0x${op.toString(16)} in a constant expression`);
  }
}

/**
 * Functions the host or a table can reach without a direct call: exported, the start
 * function, in an element segment, or named by ref.func in a global's initialiser
 * (ref.func in code is found by scanBody). Null when a section does not parse: then
 * every function is charged at entry.
 */
function pinnedFunctions(sections: ReadonlyArray<{ id: number; content: Uint8Array }>): Set<number> | null {
  const pinned = new Set<number>();
  try {
    for (const s of sections) {
      const r = new Reader(s.content);
      if (s.id === 7) {
        const n = r.u32();
        for (let i = 0; i < n; i++) {
          r.skip(r.u32());
          const kind = r.byte();
          const idx = r.u32();
          if (kind === 0x00) pinned.add(idx);
        }
      } else if (s.id === 8) {
        pinned.add(r.u32());
      } else if (s.id === 6) {
        const n = r.u32();
        for (let i = 0; i < n; i++) {
          skipValType(r);
          r.byte();
          scanConstExpr(r, pinned);
        }
      } else if (s.id === 9) {
        const n = r.u32();
        for (let i = 0; i < n; i++) {
          const flags = r.u32();
          if (flags > 7) return null;
          if (flags === 2 || flags === 6) r.u32(); // table index
          if ((flags & 1) === 0) scanConstExpr(r, new Set()); // active: offset expression
          if ((flags & 4) === 0) {
            if ((flags & 3) !== 0) r.byte(); // elemkind
            const m = r.u32();
            for (let j = 0; j < m; j++) pinned.add(r.u32());
          } else {
            if ((flags & 3) !== 0) skipValType(r); // reftype
            const m = r.u32();
            for (let j = 0; j < m; j++) scanConstExpr(r, pinned);
          }
        }
      }
    }
  } catch {
    return null;
  }
  return pinned;
}

/**
 * The site cost of each function (indexed by function index), or -1 for those charged at
 * entry. Imported functions (below `imported`) cost `hostCallFuel`, or nothing (-1) when
 * the host charges its own calls (plugin/host-meter.ts).
 */
function siteCosts(scans: BodyScan[], imported: number, pinned: Set<number> | null, hostCallFuel: number, callSites: boolean): Int32Array {
  const total = imported + scans.length;
  const cost = new Int32Array(total).fill(-1);
  // An import's "site cost" is the host-call charge (0: the host charges it).
  cost.fill(hostCallFuel > 0 ? hostCallFuel : -1, 0, imported);
  if (pinned === null || !callSites) return cost;
  const UNVISITED = 0;
  const ACTIVE = 1;
  const DONE = 2;
  const state = new Uint8Array(total);
  // Depth-first over direct calls; an ACTIVE callee closes a cycle, and the caller that
  // finds it is charged at entry, which breaks the cycle.
  const visit = (f: number, depth: number): number => {
    if (f < imported) return cost[f]!;
    if (f >= total) return -1;
    if (state[f] === DONE) return cost[f]!;
    if (state[f] === ACTIVE) return -2;
    const scan = scans[f - imported]!;
    if (pinned.has(f) || scan.hasLoop || scan.failed || depth > 500) {
      state[f] = DONE;
      return -1;
    }
    state[f] = ACTIVE;
    let sum = scan.instructions;
    for (const g of scan.callees) {
      const c = visit(g, depth + 1);
      if (c === -2) {
        sum = -1;
        break;
      }
      if (c > 0) sum += c;
      if (sum > MAX_SITE_COST) {
        sum = -1;
        break;
      }
    }
    state[f] = DONE;
    cost[f] = sum;
    return sum;
  };
  for (let f = imported; f < total; f++) visit(f, 0);
  return cost;
}

/** Rewrites one function body (without its size prefix). */
function meterBody(body: Uint8Array, globals: Globals, source: string, funcIndex: number, site: Int32Array | null = null, funcIdx = -1): { bytes: Uint8Array; loops: number } {
  const r = new Reader(body);
  const nLocalGroups = r.u32();
  for (let i = 0; i < nLocalGroups; i++) {
    r.u32();
    skipValType(r);
  }
  const charges: Charge[] = [{ at: r.pos, cost: 0 }];
  // The stack of open blocks; for each, the charge (function or loop) its instructions count towards.
  const stack: Charge[] = [charges[0]!];
  const blockKinds: boolean[] = []; // true when the open block is a loop
  let loops = 0;
  while (r.pos < r.end) {
    const at = r.pos;
    const op = r.byte();
    const owner = stack[stack.length - 1]!;
    owner.cost++;
    if (site !== null && (op === 0x10 || op === 0x12)) {
      const callee = peekU32(body, r.pos);
      const c = callee < site.length ? site[callee]! : -1;
      if (c > 0) owner.cost = Math.min(owner.cost + c, MAX_CHARGE);
    }
    let ok: boolean;
    try {
      ok = skipImmediates(op, r);
    } catch (err) {
      throw new HostError('WASM_MALFORMED', `${source}: function ${funcIndex}: ${(err as Error).message}`, { file: source });
    }
    if (!ok) {
      const prefix = op === 0xfc || op === 0xfd || op === 0xfe ? ` (prefix 0x${op.toString(16)})` : '';
      throw new HostError(
        'WASM_METERING_UNSUPPORTED',
        `${source}: function ${funcIndex} uses opcode 0x${op.toString(16).padStart(2, '0')}${prefix} at code offset ${at}, which the work-budget rewriter does not know; ` +
          'rebuild the adapter without that proposal (e.g. GC), or set limits.metering: false for this plugin to load it without a work budget',
        { file: source, opcode: op, offset: at },
      );
    }
    if (op === 0xfc && globals.fuel !== null && globals.bulk !== null) {
      const sub = new Reader(body, at + 1).u32();
      const perUnit = MEMORY_BULK_OPS.has(sub) ? BULK_FUEL_PER_BYTE : TABLE_BULK_OPS.has(sub) ? TABLE_FUEL_PER_ELEMENT : 0;
      if (perUnit > 0) charges.push({ at, cost: 0, bytes: bulkCharge(globals.fuel, globals.bulk, perUnit) });
    }
    if (op === 0x40 && globals.grow !== null) {
      const [tmp, refused] = globals.grow.map(u32leb) as [number[], number[]];
      // (stack: result) tmp = result; if (tmp == -1) refused++; push tmp
      charges.push({ at: r.pos, cost: 0, bytes: [0x24, ...tmp, 0x23, ...tmp, 0x41, 0x7f, 0x46, 0x04, 0x40, 0x23, ...refused, 0x41, 0x01, 0x6a, 0x24, ...refused, 0x0b, 0x23, ...tmp] });
    }
    if (op === 0x02 || op === 0x04 || op === 0x06 || op === 0x1f) {
      stack.push(owner);
      blockKinds.push(false);
    } else if (op === 0x03) {
      const c: Charge = { at: r.pos, cost: 0 };
      charges.push(c);
      stack.push(c);
      blockKinds.push(true);
      loops++;
    } else if (op === 0x0b) {
      if (blockKinds.length === 0) {
        if (r.pos !== r.end) throw new HostError('WASM_MALFORMED', `${source}: function ${funcIndex}: code after the final end`, { file: source });
        break;
      }
      stack.pop();
      blockKinds.pop();
    }
  }
  const parts: Array<Uint8Array | number[]> = [];
  let from = 0;
  const g = globals.fuel === null ? [] : u32leb(globals.fuel);
  // A site-charged function was paid for by its callers: no charge at its entry.
  const entry = site !== null && funcIdx >= 0 && site[funcIdx]! >= 0 ? charges[0] : undefined;
  for (const c of charges) {
    if (c.bytes === undefined && globals.fuel === null) continue;
    if (c === entry) continue;
    parts.push(body.subarray(from, c.at));
    parts.push(c.bytes ?? [0x23, ...g, 0x41, ...s32leb(Math.max(1, c.cost)), 0x6b, 0x24, ...g, 0x23, ...g, 0x41, 0x00, 0x48, 0x04, 0x40, 0x00, 0x0b]);
    from = c.at;
  }
  parts.push(body.subarray(from));
  return { bytes: concat(parts), loops };
}

/**
 * Returns a rewritten copy of a (valid) module. Throws WASM_METERING_UNSUPPORTED
 * for an instruction it cannot decode, VM_MEMORY_LIMIT when the module's initial
 * memory is already above the cap.
 */
export function rewriteModule(bytes: Uint8Array, opts: RewriteOptions): RewriteResult {
  const r = new Reader(bytes, 8);
  const sections: Array<{ id: number; content: Uint8Array }> = [];
  while (r.pos < r.end) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    sections.push({ id, content: bytes.subarray(start, start + size) });
  }
  let importedGlobals = 0;
  let importedFunctions = 0;
  let definedGlobals = 0;
  let memory: RewriteResult['memory'] = null;
  let functions = 0;
  let siteCharged = 0;
  let hostCallsCharged = false;
  let loops = 0;

  for (const s of sections) {
    if (s.id === 2) {
      const sr = new Reader(s.content);
      const n = sr.u32();
      for (let i = 0; i < n; i++) {
        sr.skip(sr.u32());
        sr.skip(sr.u32());
        const kind = sr.byte();
        if (kind === 0x00) {
          sr.u32();
          importedFunctions++;
        }
        else if (kind === 0x01) {
          skipValType(sr);
          const f = sr.byte();
          sr.u32();
          if (f & 1) sr.u32();
        } else if (kind === 0x02) {
          const f = sr.byte();
          sr.skipLeb();
          if (f & 1) sr.skipLeb();
        } else if (kind === 0x03) {
          skipValType(sr);
          sr.byte();
          importedGlobals++;
        } else if (kind === 0x04) {
          sr.byte();
          sr.u32();
        } else sr.fail(`unknown import kind ${kind}`);
      }
    } else if (s.id === 6) {
      definedGlobals = new Reader(s.content).u32();
    }
  }
  // New globals go after all existing ones: fuel, then the grow scratch and counter.
  const watchGrow = opts.maxMemoryPages !== undefined;
  const added: Uint8Array[] = [];
  const exportsAdded: Uint8Array[] = [];
  let next = importedGlobals + definedGlobals;
  const globals: Globals = { fuel: null, grow: null, bulk: null };
  if (opts.fuel) {
    globals.fuel = next++;
    added.push(mutI32Global(opts.initialFuel ?? 0));
    exportsAdded.push(globalExport(FUEL_EXPORT, globals.fuel));
  }
  if (watchGrow) {
    globals.grow = [next, next + 1];
    next += 2;
    added.push(MUT_I32_GLOBAL, MUT_I32_GLOBAL);
    exportsAdded.push(globalExport(GROW_REFUSED_EXPORT, globals.grow[1]));
  }
  if (opts.fuel) {
    globals.bulk = next++;
    added.push(MUT_I32_GLOBAL);
  }
  const rewriteCode = opts.fuel || watchGrow;

  const out: Array<{ id: number; content: Uint8Array }> = [];
  for (const s of sections) {
    if (s.id === 4 && opts.maxTableElements !== undefined) {
      out.push({ id: 4, content: capTables(s.content, opts.maxTableElements, opts.source) });
    } else if (s.id === 5 && opts.maxMemoryPages !== undefined) {
      const sr = new Reader(s.content);
      const n = sr.u32();
      const mems: number[][] = [];
      for (let i = 0; i < n; i++) {
        const flags = sr.byte();
        if (flags & 0x04) {
          throw new HostError('WASM_METERING_UNSUPPORTED', `${opts.source}: 64-bit memories are not supported`, { file: opts.source });
        }
        const initial = sr.u32();
        const declaredMax = flags & 1 ? sr.u32() : null;
        if (initial > opts.maxMemoryPages) {
          throw new HostError(
            'VM_MEMORY_LIMIT',
            `${opts.source}: the module's initial memory is ${initial} pages (${initial * 64} KiB), above the adapter's limit of ${opts.maxMemoryPages} pages (${opts.maxMemoryPages * 64} KiB); raise limits.maxMemoryMb for this plugin`,
            { file: opts.source, initialPages: initial, maxPages: opts.maxMemoryPages },
          );
        }
        const max = declaredMax === null ? opts.maxMemoryPages : Math.min(declaredMax, opts.maxMemoryPages);
        if (i === 0) memory = { initial, maximum: max };
        mems.push([(flags | 1) & 0xff, ...u32leb(initial), ...u32leb(max)]);
      }
      out.push({ id: 5, content: concat([u32leb(n), ...mems]) });
    } else if (s.id === 5) {
      const sr = new Reader(s.content);
      if (sr.u32() > 0) {
        const flags = sr.byte();
        const initial = sr.u32();
        memory = { initial, maximum: flags & 1 ? sr.u32() : null };
      }
      out.push(s);
    } else if (s.id === 6 && added.length > 0) {
      const sr = new Reader(s.content);
      const n = sr.u32();
      out.push({ id: 6, content: concat([u32leb(n + added.length), s.content.subarray(sr.pos), ...added]) });
    } else if (s.id === 7 && exportsAdded.length > 0) {
      const sr = new Reader(s.content);
      const n = sr.u32();
      out.push({ id: 7, content: concat([u32leb(n + exportsAdded.length), s.content.subarray(sr.pos), ...exportsAdded]) });
    } else if (s.id === 10 && rewriteCode) {
      const sr = new Reader(s.content);
      const n = sr.u32();
      const raw: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        const size = sr.u32();
        raw.push(s.content.subarray(sr.pos, sr.pos + size));
        sr.skip(size);
      }
      let site: Int32Array | null = null;
      if (opts.fuel) {
        const pinned = pinnedFunctions(sections);
        const scans = pinned === null ? [] : raw.map((b) => scanBody(b, pinned));
        let importsReachable = pinned === null;
        for (let f = 0; f < importedFunctions && !importsReachable; f++) importsReachable = pinned!.has(f);
        hostCallsCharged = (opts.hostCallFuel ?? 0) > 0 && !importsReachable;
        const callSites = opts.callSiteCharges !== false && pinned !== null;
        if (callSites || hostCallsCharged) site = siteCosts(scans, importedFunctions, pinned, hostCallsCharged ? opts.hostCallFuel! : 0, callSites);
      }
      const bodies: Uint8Array[] = [new Uint8Array(u32leb(n))];
      for (let i = 0; i < n; i++) {
        const m = meterBody(raw[i]!, globals, opts.source, i, site, importedFunctions + i);
        loops += m.loops;
        if (opts.fuel) {
          if (site !== null && site[importedFunctions + i]! >= 0) siteCharged++;
          else functions++;
        }
        bodies.push(new Uint8Array(u32leb(m.bytes.length)), m.bytes);
      }
      out.push({ id: 10, content: concat(bodies) });
    } else {
      out.push(s);
    }
  }
  if (added.length > 0 && !out.some((s) => s.id === 6)) insertSection(out, { id: 6, content: concat([[added.length], ...added]) });
  if (exportsAdded.length > 0 && !out.some((s) => s.id === 7)) insertSection(out, { id: 7, content: concat([[exportsAdded.length], ...exportsAdded]) });
  const result = concat([bytes.subarray(0, 8), ...out.map((s) => section(s.id, s.content))]);
  return { bytes: result, functions, siteCharged, hostCallsCharged, loops, memory };
}

/**
 * The table section with every table's maximum lowered to `cap` elements.
 * A table whose initial size is above the cap refuses the module (VM_TABLE_LIMIT).
 */
function capTables(content: Uint8Array, cap: number, source: string): Uint8Array {
  const sr = new Reader(content);
  const n = sr.u32();
  const parts: Array<Uint8Array | number[]> = [u32leb(n)];
  for (let i = 0; i < n; i++) {
    let from = sr.pos;
    const withInit = sr.b[sr.pos] === 0x40; // function-references: 0x40 0x00 tabletype expr
    if (withInit) sr.skip(2);
    skipValType(sr);
    parts.push(content.subarray(from, sr.pos));
    const flags = sr.byte();
    if (flags & 0x04) throw new HostError('WASM_METERING_UNSUPPORTED', `${source}: 64-bit tables are not supported`, { file: source });
    const initial = sr.u32();
    const declaredMax = flags & 1 ? sr.u32() : null;
    if (initial > cap) {
      throw new HostError(
        'VM_TABLE_LIMIT',
        `${source}: table ${i} starts with ${initial} elements, above the adapter's limit of ${cap}; raise limits.maxTableElements for this plugin`,
        { file: source, initial, maxElements: cap },
      );
    }
    const max = declaredMax === null ? cap : Math.min(declaredMax, cap);
    parts.push([(flags | 1) & 0xff, ...u32leb(initial), ...u32leb(max)]);
    if (withInit) {
      from = sr.pos;
      for (;;) {
        const op = sr.byte();
        if (op === 0x0b) break;
        if (!skipImmediates(op, sr)) sr.fail(`unknown opcode 0x${op.toString(16)} in a table initializer`);
      }
      parts.push(content.subarray(from, sr.pos));
    }
  }
  return concat(parts);
}

/** (global (mut i32) (i32.const 0)) */
const MUT_I32_GLOBAL = new Uint8Array([0x7f, 0x01, 0x41, 0x00, 0x0b]);

/** (global (mut i32) (i32.const value)) */
function mutI32Global(value: number): Uint8Array {
  return new Uint8Array([0x7f, 0x01, 0x41, ...s32leb(value), 0x0b]);
}

function globalExport(exportName: string, idx: number): Uint8Array {
  const name = new TextEncoder().encode(exportName);
  return concat([u32leb(name.length), name, [0x03], u32leb(idx)]);
}

function insertSection(list: Array<{ id: number; content: Uint8Array }>, s: { id: number; content: Uint8Array }): void {
  const rank = SECTION_ORDER[s.id]!;
  let i = list.findIndex((x) => x.id !== 0 && (SECTION_ORDER[x.id] ?? 0) > rank);
  if (i < 0) i = list.length;
  list.splice(i, 0, s);
}
