// About 1200 lines, one file: the rewriter is one pass over the code section (decoder,
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
//     A loop that only br/br_if repeat (no parameters, no br_table, exception handler or
//     br_on_* that can reach it) is charged on its back edges instead of its header: its cost
//     is added to the enclosing charge (the first iteration, paid before it runs) and each
//     `br $loop` is preceded by the charge, each `br_if $loop` becomes
//     `if (cond) { charge; br $loop }`. Every iteration after the first runs only through one
//     of those branches, so fuel spent stays an upper bound, and a loop that runs once costs
//     no charge of its own (test/host/metering-back-edges.test.ts).
//
//     A counted loop, `loop (if (i < n) (... i = i + 1; br loop))` (lt or gt, signed or not,
//     i and n locals) whose body writes neither i nor n elsewhere, has no else, no other way
//     back and no other block, runs at most n - i further iterations from its entry: they are
//     charged once, before the loop (trip x cost), and its back edge pays nothing. A loop that
//     leaves early has overpaid; one that could run past any budget traps at its entry
//     (test/host/metering-counted-loops.test.ts).
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
//     In a function with a loop whose loops make at most MAX_LOOP_CALLS calls that may read
//     or charge the counter (calls other than to straight-line callees that reach neither a
//     charge nor the host), the counter lives in a local of its own from the entry charge on
//     (`localFuel`, default): loop iterations charge a register instead of the exported global. The local is written back to the global before every way the
//     global may be read or the function left (calls, except to functions that neither
//     charge nor reach the host; return, return_call*, a branch to the function's own
//     label, the final end, bulk-op charges, and a charge that traps) and reloaded after
//     each such call, so the host sees the same counter at every host call, return and
//     trap as with the global alone (test/host/metering-local-fuel.test.ts). Bodies with
//     exception handling, call_ref or br_on_* keep the global.
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
//     (the length is parked in a scratch global while it is charged). When the length is
//     an i32.const right before the operation (AssemblyScript zeroing a stack frame) and
//     costs at most MAX_STATIC_BULK, it is added to its block's charge instead. A function
//     with a run-time bulk charge is never "pure" (see localFuel): the charge is on the global.
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
import { ByteWriter, IntList, Reader } from './wasm-bytes.js';

/** The exported mutable i32 global that holds the remaining budget. */
export const FUEL_EXPORT = '__wasm_mixer_fuel';
/** The exported mutable i32 global that counts memory.grow calls refused by the cap. */
export const GROW_REFUSED_EXPORT = '__wasm_mixer_grow_refused';
/**
 * Bumped whenever the rewriter's output for the same input and options changes: part of
 * the instrumented-module cache key (vm/instrumented-cache.ts).
 */
export const REWRITER_VERSION = 6;

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
  /** Charge loops on their back edges, the first iteration with the enclosing block (default true; false: at every loop header). */
  backEdgeCharges?: boolean;
  /** Keep the counter in a local inside functions with loops (default true; false: the global everywhere). */
  localFuel?: boolean;
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
  /** Loops charged for all their iterations on entry (counted loops; not kept by the instrumented cache). */
  counted?: number;
  /** The memory limits after the rewrite, in pages (max null = none declared and no cap). */
  memory: { initial: number; maximum: number | null } | null;
}

const SECTION_ORDER: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

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

/** A value type; reference types of the function-references/GC proposals carry a heap type. */
function skipValType(r: Reader): void {
  const t = r.byte();
  if (t === 0x63 || t === 0x64) r.skipLeb(5); // (ref null? ht), ht is s33
}

function skipBlockType(r: Reader): void {
  if (r.pos >= r.end) r.fail('unexpected end of input');
  const t = r.b[r.pos]!;
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

// How each one-byte opcode's immediates are laid out (the decoder's one table).
const NONE = 0;
/** One LEB128 (u32, s33 or s64; decoders skip it alike). */
const LEB = 1;
const U32_U32 = 2;
const BLOCK = 3;
const MEMARG = 4;
const BYTES4 = 7;
const BYTES8 = 8;
const BR_TABLE = 9;
const SELECT_T = 10;
const TRY_TABLE = 11;
const PREFIX_FC = 12;
const PREFIX_FD = 13;
const PREFIX_FE = 14;
const UNKNOWN = 255;

const IMMEDIATES: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(UNKNOWN);
  for (let op = 0x45; op <= 0xc4; op++) t[op] = NONE; // numeric
  for (let op = 0x28; op <= 0x3e; op++) t[op] = MEMARG; // loads and stores
  for (const op of [0x00, 0x01, 0x05, 0x0a, 0x0b, 0x0f, 0x19, 0x1a, 0x1b, 0xd1, 0xd3, 0xd5]) t[op] = NONE;
  for (const op of [0x02, 0x03, 0x04, 0x06]) t[op] = BLOCK;
  for (const op of [0x07, 0x08, 0x09, 0x0c, 0x0d, 0x10, 0x12, 0x14, 0x15, 0x18, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x3f, 0x40, 0xd2, 0xd4, 0xd6]) t[op] = LEB;
  t[0x0e] = BR_TABLE;
  t[0x11] = U32_U32; // call_indirect
  t[0x13] = U32_U32; // return_call_indirect
  t[0x1c] = SELECT_T;
  t[0x1f] = TRY_TABLE;
  t[0x41] = LEB; // i32.const
  t[0x42] = LEB; // i64.const
  t[0x43] = BYTES4;
  t[0x44] = BYTES8;
  t[0xd0] = LEB; // ref.null heaptype (s33)
  t[0xfc] = PREFIX_FC;
  t[0xfd] = PREFIX_FD;
  t[0xfe] = PREFIX_FE;
  return t;
})();

/**
 * Decodes one instruction's immediates after its opcode. Returns false for an
 * opcode this decoder does not know.
 */
function skipImmediates(op: number, r: Reader): boolean {
  switch (IMMEDIATES[op]!) {
    case NONE: return true;
    case LEB: return r.skipLeb(10), true;
    case U32_U32: return r.u32(), r.u32(), true;
    case BLOCK: return skipBlockType(r), true;
    case MEMARG: return skipMemarg(r), true;
    case BYTES4: return r.skip(4), true;
    case BYTES8: return r.skip(8), true;
    case BR_TABLE: {
      const n = r.u32();
      for (let i = 0; i <= n; i++) r.u32();
      return true;
    }
    case SELECT_T: {
      const n = r.u32();
      for (let i = 0; i < n; i++) skipValType(r);
      return true;
    }
    case TRY_TABLE: {
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
    case PREFIX_FC: return skipFc(r.u32(), r);
    case PREFIX_FD: return skipSimd(r.u32(), r);
    case PREFIX_FE: return skipAtomic(r.u32(), r);
    default: return false;
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

interface Globals {
  fuel: number | null;
  /** [scratch, refused counter] when memory.grow is watched. */
  grow: [number, number] | null;
  /** Scratch for the length operand of bulk memory/table operations (with fuel). */
  bulk: number | null;
}

/** The fuel charge per unit of a 0xfc sub-opcode's length operand (0: not a bulk operation). */
function bulkPerUnit(sub: number): number {
  // memory.init, memory.copy, memory.fill: the top operand is a byte count.
  if (sub === 8 || sub === 10 || sub === 11) return BULK_FUEL_PER_BYTE;
  // table.init, table.copy, table.fill: the same with an element count (each element costs
  // far more than a byte). table.grow is bounded by the table cap instead: a refused grow
  // does no work.
  if (sub === 12 || sub === 14 || sub === 17) return TABLE_FUEL_PER_ELEMENT;
  return 0;
}

/**
 * (stack: ..., len) -> (stack: ..., len), charging perUnit x len fuel first, computed in
 * i64 so that no length can wrap the charge around:
 *   scratch = len
 *   if (i64(fuel) - i64(scratch) * perUnit < 0) { fuel = -1; unreachable }
 *   fuel -= scratch * perUnit; push scratch
 */
function bulkCharge(fuel: number, scratch: number, perUnit: number): Uint8Array {
  const f = u32leb(fuel);
  const s = u32leb(scratch);
  return new Uint8Array([
    0x24, ...s,
    0x23, ...f, 0xac, 0x23, ...s, 0xad, 0x42, ...s32leb(perUnit), 0x7e, 0x7d, 0x42, 0x00, 0x53,
    0x04, 0x40, 0x41, 0x7f, 0x24, ...f, 0x00, 0x0b,
    0x23, ...f, 0x23, ...s, 0x41, ...s32leb(perUnit), 0x6c, 0x6b, 0x24, ...f,
    0x23, ...s,
  ]);
}

/** (stack: result) tmp = result; if (tmp == -1) refused++; push tmp */
function growCheck(tmp: number, refused: number): Uint8Array {
  const t = u32leb(tmp);
  const c = u32leb(refused);
  return new Uint8Array([0x24, ...t, 0x23, ...t, 0x41, 0x7f, 0x46, 0x04, 0x40, 0x23, ...c, 0x41, 0x01, 0x6a, 0x24, ...c, 0x0b, 0x23, ...t]);
}

/** A site cost above this is charged at the function's entry instead (bounds the sums, no i32 overflow). */
const MAX_SITE_COST = 100_000;
/** A block's charge is clamped here (far above any budget, below i32 overflow). */
const MAX_CHARGE = 0x3fffffff;

// Where the rewrite inserts code into a body (CodeScan.events), in body order.
/** A fuel charge; its argument is the charge's index in CodeScan.cost. */
const EV_CHARGE = 0;
/** A bulk-operation charge before the 0xfc opcode; argument: fuel per unit. */
const EV_BULK = 1;
/** The refused-grow check after memory.grow. */
const EV_GROW = 2;
/** Write the local counter back to the global (a call, return or branch out of the function); argument: the callee, or -1. */
const EV_OUT = 3;
/** Reload the local counter from the global after a call; argument: the callee, or -1. */
const EV_IN = 4;
/** A br or br_if back to a loop's header; argument: the loop's charge (index in CodeScan.cost). */
const EV_BACK = 5;
/** Before a counted loop (AT_COUNTED): its iterations' charge; argument: the loop's charge. */
const EV_COUNTED = 6;

// How a charge (CodeScan.chargeMode) is paid.
/** At the function's entry, or at a loop's header on every iteration. */
const AT_BLOCK = 0;
/**
 * A loop charged on its back edges: the first iteration is paid by the enclosing charge
 * (the loop's cost is added to its parent's), each br/br_if back to the header pays the next.
 */
const AT_BACK_EDGE = 1;
/**
 * A counted loop (see countedLoop): the first iteration is paid by the enclosing charge, as
 * with AT_BACK_EDGE, and every further one before the loop is entered, by its trip count.
 */
const AT_COUNTED = 2;

/**
 * One decoding pass over the code section: where each body starts and ends, its
 * instruction count, loops and direct calls (for call-site charging), the cost of each
 * charge (function entry or loop iteration) before callees' site costs, and every point
 * where the rewrite inserts code. Flat typed arrays: no object per instruction.
 */
interface CodeScan {
  n: number;
  /** Offsets in the module's bytes: after the size prefix, and the end. */
  start: Int32Array;
  end: Int32Array;
  instructions: Int32Array;
  hasLoop: Uint8Array;
  /** Direct calls (call, return_call) of body i: callee/callOwner[callFrom[i] .. callFrom[i+1]). */
  callFrom: Int32Array;
  callee: IntList;
  /** The charge each call's cost goes to. */
  callOwner: IntList;
  /** Instructions paid by each charge (site costs not yet added). */
  cost: IntList;
  /** Each charge's AT_BLOCK or AT_BACK_EDGE, and the charge enclosing it (-1 for a function's entry). */
  chargeMode: IntList;
  chargeParent: IntList;
  /** Triples (kind, offset in the module, argument); body i's are evFrom[i] .. evFrom[i+1] (in triples). */
  events: IntList;
  evFrom: Int32Array;
  /** Functions named by ref.func in code. */
  referenced: Set<number>;
  /** The EV_IN events (by index, in triples) of calls inside a loop. */
  loopCalls: Set<number>;
  loops: number;
  /** Where the locals vector ends (the first instruction), its groups, its local count. */
  localsEnd: Int32Array;
  localGroups: Int32Array;
  locals: Float64Array;
  /** 1: the body uses control flow the local counter does not follow (exceptions, call_ref, br_on_*). */
  noLocal: Uint8Array;
  /** 1: the body calls through a table or reference (call_indirect, call_ref and their tail forms). */
  indirect: Uint8Array;
  /** 1: the body charges a bulk operation by its length at run time (on the global). */
  bulk: Uint8Array;
  /** Counted loops (by charge index): [induction local, bound local, 1 if compared signed]. */
  counted: Map<number, [number, number, number]>;
}

function scanCode(r: Reader, n: number, globals: Globals, source: string, localFuel: boolean, backEdges: boolean): CodeScan {
  const s: CodeScan = {
    n,
    start: new Int32Array(n),
    end: new Int32Array(n),
    instructions: new Int32Array(n),
    hasLoop: new Uint8Array(n),
    callFrom: new Int32Array(n + 1),
    callee: new IntList(n * 4),
    callOwner: new IntList(n * 4),
    cost: new IntList(n * 2),
    chargeMode: new IntList(n * 2),
    chargeParent: new IntList(n * 2),
    events: new IntList(n * 8),
    evFrom: new Int32Array(n + 1),
    referenced: new Set(),
    loopCalls: new Set(),
    loops: 0,
    localsEnd: new Int32Array(n),
    localGroups: new Int32Array(n),
    locals: new Float64Array(n),
    noLocal: new Uint8Array(n),
    indirect: new Uint8Array(n),
    bulk: new Uint8Array(n),
    counted: new Map(),
  };
  const flags = (globals.fuel !== null && globals.bulk !== null ? WATCH_BULK : 0) | (globals.grow !== null ? WATCH_GROW : 0) | (globals.fuel !== null && localFuel ? WATCH_EXITS : 0) | (globals.fuel !== null && backEdges ? WATCH_BACK_EDGES : 0);
  const body = new Reader(r.b, 0, r.end);
  for (let i = 0; i < n; i++) {
    const size = r.u32();
    const start = r.pos;
    const end = start + size;
    if (end > r.end) r.fail('unexpected end of input');
    s.start[i] = start;
    s.end[i] = end;
    s.callFrom[i] = s.callee.n;
    s.evFrom[i] = s.events.n / 3;
    body.pos = start;
    scanBody(s, body, i, end, flags, source);
    r.pos = end;
  }
  s.callFrom[n] = s.callee.n;
  s.evFrom[n] = s.events.n / 3;
  return s;
}

const WATCH_BULK = 1;
const WATCH_GROW = 2;
/** Record calls, returns and branches out of the function (for the local counter). */
const WATCH_EXITS = 4;
/** Charge loops on their back edges (br/br_if to the loop) where they allow it. */
const WATCH_BACK_EDGES = 8;

/**
 * Opcodes whose control flow the local counter does not follow, so a body with one keeps the
 * counter in the global: exception handling (try, catch, throw, rethrow, throw_ref, delegate,
 * catch_all, try_table: a callee's throw lands in a handler with a stale local), call_ref and
 * return_call_ref (no callee to judge), br_on_null/br_on_non_null (a label leaving the function).
 */
const NO_LOCAL: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (const op of [0x06, 0x07, 0x08, 0x09, 0x0a, 0x18, 0x19, 0x1f, 0x14, 0x15, 0xd5, 0xd6]) t[op] = 1;
  return t;
})();

/**
 * Scans body `i` (from body.pos to `end`) into `s`. One function per body, not one loop
 * over the whole section: the JIT then optimises a small function, not a huge OSR'd one
 * (which cost more compile time than the whole scan at start-up).
 */
function scanBody(s: CodeScan, body: Reader, i: number, end: number, flags: number, source: string): void {
  const b = body.b;
  const ev = s.events;
  const cost = s.cost;
  const imm = IMMEDIATES;
  const bodyStart = body.pos;
  let p = bodyStart;
  let count = 0;
  let at = 0;
  let prev = 0;
  let prev2 = 0;
  let prev3 = 0;
  let op = 0;
  let unknown = false;
  // Loops that may be counted loops, innermost last (most bodies have none).
  const open = CANDIDATES;
  open.length = 0;
  try {
    const nLocalGroups = body.u32();
    let locals = 0;
    for (let g = 0; g < nLocalGroups; g++) {
      locals += body.u32();
      skipValType(body);
    }
    p = body.pos;
    s.localsEnd[i] = p;
    s.localGroups[i] = nLocalGroups;
    s.locals[i] = locals;
    const exits = (flags & WATCH_EXITS) !== 0;
    const backEdges = (flags & WATCH_BACK_EDGES) !== 0;
    let owner = cost.n;
    const entryOwner = owner;
    cost.push(0);
    s.chargeMode.push(AT_BLOCK), s.chargeParent.push(-1);
    ev.push(EV_CHARGE), ev.push(p), ev.push(owner);
    // Instructions counted for `owner` so far (written back when the owner changes).
    let paid = 0;
    let depth = 0;
    // The charge each open block's instructions count towards (loops open a new one).
    let owners = OWNERS;
    owners[0] = owner;
    // Runs mostly before the JIT has optimised it (start-up): state in locals, the common
    // immediates decoded inline, a call out only for the rare ones (`body` carries the position).
    while (p < end) {
      prev3 = prev2;
      prev2 = prev;
      prev = at;
      at = p;
      op = b[p++]!;
      count++;
      paid++;
      const kind = imm[op]!;
      if (kind === NONE) {
        if (op === 0x0b) {
          if (depth === 0) {
            if (p !== end) throw new HostError('WASM_MALFORMED', `${source}: function ${i}: code after the final end`, { file: source });
            if (exits) ev.push(EV_OUT), ev.push(at), ev.push(-1);
            break;
          }
          if (open.length > 0) {
            const c = open[open.length - 1]!;
            if (depth === c.loopDepth + 1) {
              // `i < n && x`: the first if's else is `i32.const 0` and the second if follows it.
              if (c.and === 1 && c.blocks === 1) c.ok &&= c.elseAt === at - 3 && b[at - 2] === 0x41 && b[at - 1] === 0x00 && b[at + 1] === 0x04 && b[at + 2] === 0x40;
              c.ifEnd = at;
            }
            else if (depth === c.loopDepth) closeCandidate(s, b, open.pop()!, at);
          }
          const inner = owners[depth--]!;
          const outer = owners[depth]!;
          if (inner !== outer) {
            cost.a[inner] = paid;
            paid = cost.a[outer]!;
            owner = outer;
          }
        } else if (exits && op === 0x0f) ev.push(EV_OUT), ev.push(at), ev.push(-1);
        else if (op === 0x05 && open.length > 0 && depth === open[open.length - 1]!.loopDepth + 1) {
          const c = open[open.length - 1]!;
          if (c.and === 1 && c.blocks === 1) c.elseAt = at;
          else c.ok = false;
        }
        else if (NO_LOCAL[op] === 1) s.noLocal[i] = 1;
        continue;
      }
      if (kind === LEB) {
        if (op === 0x10 || op === 0x12 || op === 0xd2 || ((exits || backEdges) && (op === 0x0c || op === 0x0d))) {
          let v = 0;
          let shift = 0;
          let x = 0;
          do {
            x = b[p++]!;
            v |= (x & 0x7f) << shift;
            shift += 7;
          } while ((x & 0x80) !== 0 && shift < 35);
          if (op === 0xd2) s.referenced.add(v >>> 0);
          else if (op === 0x0c || op === 0x0d) {
            if (v === depth) {
              if (exits) ev.push(EV_OUT), ev.push(at), ev.push(-1); // a branch to the function's own label returns
            } else if (backEdges && v < depth && owners[depth - v] !== owners[depth - v - 1]) {
              ev.push(EV_BACK), ev.push(at), ev.push(owners[depth - v]!); // only loops open a new charge
              for (let k = 0; k < open.length; k++) if (open[k]!.owner === owners[depth - v]) open[k]!.backs++, (open[k]!.backAt = at);
            }
          } else {
            s.callee.push(v >>> 0);
            s.callOwner.push(owner);
            if (exits) {
              // A tail call leaves the function: the counter goes back whatever the callee.
              ev.push(EV_OUT), ev.push(at), ev.push(op === 0x10 ? v >>> 0 : -1);
              if (op === 0x10) {
                if (owner !== entryOwner) s.loopCalls.add(ev.n / 3);
                ev.push(EV_IN), ev.push(p), ev.push(v >>> 0);
              }
            }
          }
        } else if ((op === 0x21 || op === 0x22) && open.length > 0) {
          let x = 0;
          let shift = 0;
          let y = 0;
          do {
            y = b[p++]!;
            x |= (y & 0x7f) << shift;
            shift += 7;
          } while ((y & 0x80) !== 0 && shift < 35);
          x >>>= 0;
          for (let k = 0; k < open.length; k++) {
            const c = open[k]!;
            if (x === c.bound) c.ok = false;
            else if (x === c.iv) {
              // The one write of the induction variable: `i = i + 1` just before the back edge.
              if (op === 0x21 && c.writeAt < 0 && increments(b, prev3, prev2, prev, at, x)) (c.writeAt = at), (c.writeEnd = p);
              else c.ok = false;
            }
          }
        } else {
          while ((b[p++]! & 0x80) !== 0);
          if (NO_LOCAL[op] === 1) s.noLocal[i] = 1;
          if (op === 0x14 || op === 0x15) s.indirect[i] = 1;
          if (op === 0x40 && (flags & WATCH_GROW) !== 0) ev.push(EV_GROW), ev.push(p), ev.push(0);
        }
        continue;
      }
      if (kind === MEMARG && b[p]! < 0x40) {
        p++; // alignment (one byte, no memory index)
        while ((b[p++]! & 0x80) !== 0); // offset
        continue;
      }
      body.pos = p;
      if (op === 0x11 || op === 0x13) s.indirect[i] = 1;
      if (exits && (op === 0x11 || op === 0x13)) ev.push(EV_OUT), ev.push(at), ev.push(-1);
      if (op === 0x0e && (exits || backEdges)) {
        // br_table: back to the global if any target is the function's own label; a loop it
        // targets is charged at its header (the table's branches are not rewritten).
        const n = body.u32();
        let out = false;
        for (let k = 0; k <= n; k++) {
          const v = body.u32();
          if (v === depth) out = true;
          else if (v < depth && owners[depth - v] !== owners[depth - v - 1]) s.chargeMode.a[owners[depth - v]!] = AT_BLOCK;
        }
        body.pos = p;
        if (out && exits) ev.push(EV_OUT), ev.push(at), ev.push(-1);
      }
      if (NO_LOCAL[op] === 1) s.noLocal[i] = 1;
      if (op === 0xfc && (flags & WATCH_BULK) !== 0) {
        const perUnit = bulkPerUnit(body.u32());
        if (perUnit > 0) {
          const len = b[prev] === 0x41 ? constLength(b, prev + 1, at) : -1;
          if (len >= 0 && len * perUnit <= MAX_STATIC_BULK && paid + len * perUnit <= MAX_STATIC_BLOCK) {
            // The length is the i32.const just before: a fixed cost, paid with the block's.
            paid += len * perUnit;
            count = Math.min(count + len * perUnit, MAX_CHARGE);
          } else {
            ev.push(EV_BULK), ev.push(at), ev.push(perUnit);
            s.bulk[i] = 1;
          }
        }
        body.pos = p;
      }
      if (!skipImmediates(op, body)) {
        unknown = true;
        break;
      }
      p = body.pos;
      if (op === 0x11 && exits) {
        if (owner !== entryOwner) s.loopCalls.add(ev.n / 3);
        ev.push(EV_IN), ev.push(p), ev.push(-1);
      }
      if (kind === BLOCK || kind === TRY_TABLE) {
        if (++depth === owners.length) {
          const next = new Int32Array(owners.length * 2);
          next.set(owners);
          owners = OWNERS = next;
        }
        if (op === 0x03) {
          cost.a[owner] = paid;
          paid = 0;
          // A loop with parameters (a type-index block type) keeps its header charge: the
          // back-edge rewrite of br_if assumes its branch carries no values.
          const simple = (b[at + 1]! & 0xc0) === 0x40; // empty or one value type: no parameters
          s.chargeMode.push(backEdges && simple ? AT_BACK_EDGE : AT_BLOCK), s.chargeParent.push(owner);
          owner = cost.n;
          cost.push(0);
          const c = backEdges && b[at + 1] === 0x40 ? countedHead(b, p, end, owner, depth) : null;
          if (c !== null) open.push(c), ev.push(EV_COUNTED), ev.push(at), ev.push(owner);
          ev.push(EV_CHARGE), ev.push(p), ev.push(owner);
          s.hasLoop[i] = 1;
          s.loops++;
        }
        owners[depth] = owner;
        if (open.length > 0 && depth === open[open.length - 1]!.loopDepth + 1) open[open.length - 1]!.blocks++;
      }
    }
    cost.a[owner] = paid;
    // Exception handlers, try_table catches and br_on_* can branch to a loop too: such a
    // body keeps every loop's charge at its header.
    if (s.noLocal[i] === 1) for (let k = entryOwner + 1; k < cost.n; k++) s.chargeMode.a[k] = AT_BLOCK;
  } catch (err) {
    if (err instanceof HostError) throw err;
    throw new HostError('WASM_MALFORMED', `${source}: function ${i}: ${(err as Error).message}`, { file: source });
  }
  if (unknown) {
    const prefix = op === 0xfc || op === 0xfd || op === 0xfe ? ` (prefix 0x${op.toString(16)})` : '';
    throw new HostError(
      'WASM_METERING_UNSUPPORTED',
      `${source}: function ${i} uses opcode 0x${op.toString(16).padStart(2, '0')}${prefix} at code offset ${at - bodyStart}, which the work-budget rewriter does not know; ` +
        'rebuild the adapter without that proposal (e.g. GC), or set limits.metering: false for this plugin to load it without a work budget',
      { file: source, opcode: op, offset: at - bodyStart },
    );
  }
  if (p > end) throw new HostError('WASM_MALFORMED', `${source}: function ${i}: unexpected end of input`, { file: source });
  s.instructions[i] = count;
}

/**
 * A bulk operation whose length is an i32.const right before it costs at most this much
 * fuel to be charged with its block (statically) instead of by its length at run time.
 */
const MAX_STATIC_BULK = 65536;
/**
 * A block takes constant bulk costs only up to this total (many such operations in one
 * block could otherwise sum past MAX_CHARGE and the largest budget); past it they are
 * charged at run time.
 */
const MAX_STATIC_BLOCK = 1 << 24;

/** The u32 value of the i32.const immediate at b[from..end), or -1 unless it ends exactly at end. */
function constLength(b: Uint8Array, from: number, end: number): number {
  const r = new Reader(b, from, end);
  const v = r.s32();
  return r.pos === end ? v >>> 0 : -1;
}

/** scanBody's stack of open blocks, reused (grown when a body nests deeper). */
let OWNERS = new Int32Array(64);

/**
 * A loop being scanned that may be a counted loop: its header is
 *
 *     loop  local.get i  local.get n  i32.lt_s|lt_u  if            (or n i gt_s|gt_u)
 *
 * and it counts as one only if its body then turns out to be
 *
 *     ...  local.get i  i32.const 1  i32.add  local.set i  br 1  end  end
 *
 * where `...` writes neither i nor n, branches back to the loop nowhere else, has no else
 * and the if is the loop's only block; or, for `while (i < n && x)`, the header's if is
 * `if (result i32) x else i32.const 0 end` and a second if holding the body follows it. Each branch back then follows one i += 1 and is taken
 * only while i < n, so the loop iterates at most n - i times (unsigned, from the values i
 * and n hold at its entry): that many iterations are charged once, before the loop.
 */
interface Candidate {
  owner: number;
  loopDepth: number;
  iv: number;
  bound: number;
  signed: number;
  blocks: number;
  /** 1: the header's if yields `i < n && x` (if (result i32) x else i32.const 0), a second if holds the body. */
  and: number;
  elseAt: number;
  ifEnd: number;
  writeAt: number;
  writeEnd: number;
  backAt: number;
  backs: number;
  ok: boolean;
}

const CANDIDATES: Candidate[] = [];

/** The candidate for a loop whose header (after its empty block type, at p) reads as a counted loop's, or null. */
function countedHead(b: Uint8Array, p: number, end: number, owner: number, loopDepth: number): Candidate | null {
  if (b[p] !== 0x20) return null;
  const r = new Reader(b, p + 1, end);
  const x = r.u32();
  if (b[r.pos] !== 0x20) return null;
  r.pos++;
  const y = r.u32();
  const cmp = b[r.pos]!;
  if (x === y || cmp < 0x48 || cmp > 0x4b || b[r.pos + 1] !== 0x04 || (b[r.pos + 2] !== 0x40 && b[r.pos + 2] !== 0x7f)) return null;
  // lt: i < n; gt: n > i.
  const lt = cmp === 0x48 || cmp === 0x49;
  const signed = cmp === 0x48 || cmp === 0x4a ? 1 : 0;
  return { owner, loopDepth, iv: lt ? x : y, bound: lt ? y : x, signed, blocks: 0, and: b[r.pos + 2] === 0x7f ? 1 : 0, elseAt: -1, ifEnd: -1, writeAt: -1, writeEnd: -1, backAt: -1, backs: 0, ok: true };
}

/** Whether the three instructions before the one at `at` (starting at p3, p2, p1) are local.get x, i32.const 1, i32.add. */
function increments(b: Uint8Array, p3: number, p2: number, p1: number, at: number, x: number): boolean {
  if (b[p1] !== 0x6a || p1 + 1 !== at || b[p2] !== 0x41 || b[p2 + 1] !== 0x01 || p2 + 2 !== p1 || b[p3] !== 0x20) return false;
  const r = new Reader(b, p3 + 1, p2);
  return r.u32() === x && r.pos === p2;
}

/** At the loop's end (at): makes the candidate a counted loop if its body had the counted shape. */
function closeCandidate(s: CodeScan, b: Uint8Array, c: Candidate, at: number): void {
  // ... local.set i (ends at backAt)  br 1 (backAt)  end (ifEnd = at - 1)  end (at)
  if (!c.ok || c.blocks !== 1 + c.and || c.backs !== 1 || c.ifEnd !== at - 1 || c.backAt !== at - 3 || b[c.backAt] !== 0x0c || b[c.backAt + 1] !== 0x01) return;
  if (c.writeAt < 0 || c.writeEnd !== c.backAt || s.chargeMode.a[c.owner] !== AT_BACK_EDGE) return;
  s.chargeMode.a[c.owner] = AT_COUNTED;
  s.counted.set(c.owner, [c.iv, c.bound, c.signed]);
}

/** Adds to `out` every function a constant expression names with ref.func; returns the position after its end. */
function scanConstExpr(r: Reader, out: Set<number>): void {
  for (;;) {
    const op = r.byte();
    if (op === 0x0b) return;
    if (op === 0xd2) out.add(new Reader(r.b, r.pos, r.end).u32());
    if (!skipImmediates(op, r)) r.fail(`unknown opcode 0x${op.toString(16)} in a constant expression`);
  }
}

/**
 * Functions the host or a table can reach without a direct call: exported, the start
 * function, in an element segment, or named by ref.func in a global's initialiser
 * (ref.func in code is found by scanCode). Null when a section does not parse: then
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
function siteCosts(scan: CodeScan, imported: number, pinned: Set<number> | null, hostCallFuel: number, callSites: boolean): Int32Array {
  const total = imported + scan.n;
  const cost = new Int32Array(total).fill(-1);
  // An import's "site cost" is the host-call charge (0: the host charges it).
  cost.fill(hostCallFuel > 0 ? hostCallFuel : -1, 0, imported);
  if (pinned === null || !callSites) return cost;
  const UNVISITED = 0;
  const ACTIVE = 1;
  const DONE = 2;
  const state = new Uint8Array(total).fill(UNVISITED);
  const callee = scan.callee.a;
  // Depth-first over direct calls; an ACTIVE callee closes a cycle, and the caller that
  // finds it is charged at entry, which breaks the cycle.
  const visit = (f: number, depth: number): number => {
    if (f < imported) return cost[f]!;
    if (f >= total) return -1;
    if (state[f] === DONE) return cost[f]!;
    if (state[f] === ACTIVE) return -2;
    const i = f - imported;
    if (pinned.has(f) || scan.hasLoop[i] || depth > 500) {
      state[f] = DONE;
      return -1;
    }
    state[f] = ACTIVE;
    let sum = scan.instructions[i]!;
    for (let k = scan.callFrom[i]!; k < scan.callFrom[i + 1]!; k++) {
      const c = visit(callee[k]!, depth + 1);
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

/** V8's limit on a function's locals (params included). */
const MAX_LOCALS = 50_000;

/** What the local counter needs: each defined function's parameter count, and which callees never touch the counter. */
interface LocalFuel {
  params: Int32Array;
  /** 1 for a function (by index) that neither charges nor calls one that does nor calls the host: no write-back around a call to it. */
  pure: Uint8Array;
}

/**
 * Writes one charge of c: on the global (fuel -= c; if (fuel < 0) unreachable), or on the
 * local l (l = (entry ? fuel : l) - c; if (l < 0) { fuel = l; unreachable }).
 */
function charge(w: ByteWriter, g: Uint8Array, l: Uint8Array | null, c: number, entry: boolean): void {
  if (l === null) {
    w.byte(0x23), w.copy(g), w.byte(0x41), w.s32(c), w.byte(0x6b), w.byte(0x24), w.copy(g);
    w.byte(0x23), w.copy(g), w.byte(0x41), w.byte(0x00), w.byte(0x48), w.byte(0x04), w.byte(0x40), w.byte(0x00), w.byte(0x0b);
  } else {
    if (entry) w.byte(0x23), w.copy(g);
    else w.byte(0x20), w.copy(l);
    w.byte(0x41), w.s32(c), w.byte(0x6b), w.byte(0x22), w.copy(l), w.byte(0x41), w.byte(0x00), w.byte(0x48);
    w.byte(0x04), w.byte(0x40), w.byte(0x20), w.copy(l), w.byte(0x24), w.copy(g), w.byte(0x00), w.byte(0x0b);
  }
}

/**
 * Writes the charge of a counted loop's iterations after the first (c each), before the loop:
 *   trip = i < n ? n - i : 0                    (in the scratch global t)
 *   if (trip > MAX_I32 / c) { fuel = -1; unreachable }   (more than any budget)
 *   counter -= trip * c; if (counter < 0) trap  (as charge() does)
 * The counter is never below -1 here, so neither the product nor the difference wraps.
 */
function countedCharge(w: ByteWriter, g: Uint8Array, l: Uint8Array | null, t: Uint8Array, iv: number, bound: number, signed: number, c: number): void {
  w.byte(0x20), w.u32(bound), w.byte(0x20), w.u32(iv), w.byte(0x6b), w.byte(0x41), w.byte(0x00);
  w.byte(0x20), w.u32(iv), w.byte(0x20), w.u32(bound), w.byte(signed === 1 ? 0x48 : 0x49), w.byte(0x1b), w.byte(0x24), w.copy(t);
  w.byte(0x23), w.copy(t), w.byte(0x41), w.s32(Math.floor(0x7fffffff / c)), w.byte(0x4b);
  w.byte(0x04), w.byte(0x40), w.byte(0x41), w.byte(0x7f), w.byte(0x24), w.copy(g), w.byte(0x00), w.byte(0x0b);
  if (l === null) {
    w.byte(0x23), w.copy(g), w.byte(0x23), w.copy(t), w.byte(0x41), w.s32(c), w.byte(0x6c), w.byte(0x6b), w.byte(0x24), w.copy(g);
    w.byte(0x23), w.copy(g), w.byte(0x41), w.byte(0x00), w.byte(0x48), w.byte(0x04), w.byte(0x40), w.byte(0x00), w.byte(0x0b);
  } else {
    w.byte(0x20), w.copy(l), w.byte(0x23), w.copy(t), w.byte(0x41), w.s32(c), w.byte(0x6c), w.byte(0x6b), w.byte(0x22), w.copy(l);
    w.byte(0x41), w.byte(0x00), w.byte(0x48), w.byte(0x04), w.byte(0x40), w.byte(0x20), w.copy(l), w.byte(0x24), w.copy(g), w.byte(0x00), w.byte(0x0b);
  }
}

/** Writes the rewritten code section's content (the body count and every body). */
function writeCode(w: ByteWriter, b: Uint8Array, scan: CodeScan, globals: Globals, site: Int32Array | null, imported: number, local: LocalFuel | null): void {
  w.u32(scan.n);
  const ev = scan.events.a;
  const cost = scan.cost.a;
  const mode = scan.chargeMode.a;
  const g = globals.fuel === null ? null : new Uint8Array(u32leb(globals.fuel));
  const bulk = new Map<number, Uint8Array>();
  const grow = globals.grow === null ? null : growCheck(globals.grow[0], globals.grow[1]);
  for (let i = 0; i < scan.n; i++) {
    const sized = w.beginSized();
    let from = scan.start[i]!;
    // A site-charged function was paid for by its callers: no charge at its entry.
    const entryPaid = site !== null && site[imported + i]! >= 0;
    // In a function with loops, the counter lives in a new local between the entry and every
    // way out (calls that may read or charge it, returns, branches out, traps on it): each loop
    // iteration then charges a register, not the exported global.
    let l: Uint8Array | null = null;
    if (g !== null && local !== null && scan.hasLoop[i] === 1 && scan.noLocal[i] === 0 && !entryPaid && local.params[i]! + scan.locals[i]! + 1 <= MAX_LOCALS && !callsImpure(scan, i, local.pure)) {
      l = new Uint8Array(u32leb(local.params[i]! + scan.locals[i]!));
      const groups = new Reader(b, from, scan.end[i]);
      groups.u32();
      w.u32(scan.localGroups[i]! + 1);
      w.copy(b, groups.pos, scan.localsEnd[i]!);
      w.byte(0x01), w.byte(0x7f); // one more i32
      from = scan.localsEnd[i]!;
    }
    const pure = local?.pure;
    for (let e = scan.evFrom[i]!; e < scan.evFrom[i + 1]!; e++) {
      const kind = ev[3 * e]!;
      const at = ev[3 * e + 1]!;
      const arg = ev[3 * e + 2]!;
      if (kind === EV_CHARGE && (g === null || (entryPaid && e === scan.evFrom[i]!) || mode[arg] === AT_BACK_EDGE || mode[arg] === AT_COUNTED)) continue;
      if (kind === EV_BACK && mode[arg] !== AT_BACK_EDGE) continue;
      if (kind === EV_COUNTED && mode[arg] !== AT_COUNTED) continue;
      if ((kind === EV_OUT || kind === EV_IN) && (l === null || (arg >= 0 && pure![arg] === 1))) continue;
      w.copy(b, from, at);
      from = at;
      if (kind === EV_CHARGE) {
        charge(w, g!, l, Math.max(1, Math.min(cost[arg]!, MAX_CHARGE)), e === scan.evFrom[i]!);
      } else if (kind === EV_BACK) {
        const c = Math.max(1, Math.min(cost[arg]!, MAX_CHARGE));
        if (b[at] === 0x0c) {
          charge(w, g!, l, c, false); // br $loop: charge, then the br itself
        } else {
          // br_if $loop -> if (cond) { charge; br $loop } (one block deeper: label + 1)
          const r = new Reader(b, at + 1, scan.end[i]!);
          const label = r.u32();
          w.byte(0x04), w.byte(0x40);
          charge(w, g!, l, c, false);
          w.byte(0x0c), w.u32(label + 1), w.byte(0x0b);
          from = r.pos;
        }
      } else if (kind === EV_COUNTED) {
        const [iv, bound, signed] = scan.counted.get(arg)!;
        countedCharge(w, g!, l, new Uint8Array(u32leb(globals.bulk!)), iv, bound, signed, Math.max(1, Math.min(cost[arg]!, MAX_CHARGE)));
      } else if (kind === EV_OUT) {
        w.byte(0x20), w.copy(l!), w.byte(0x24), w.copy(g!); // fuel = l
      } else if (kind === EV_IN) {
        w.byte(0x23), w.copy(g!), w.byte(0x21), w.copy(l!); // l = fuel
      } else if (kind === EV_BULK) {
        let bytes = bulk.get(arg);
        if (bytes === undefined) bulk.set(arg, (bytes = bulkCharge(globals.fuel!, globals.bulk!, arg)));
        if (l !== null) w.byte(0x20), w.copy(l), w.byte(0x24), w.copy(g!);
        w.copy(bytes);
        if (l !== null) w.byte(0x23), w.copy(g!), w.byte(0x21), w.copy(l);
      } else {
        w.copy(grow!);
      }
    }
    w.copy(b, from, scan.end[i]!);
    w.endSized(sized);
  }
}

/**
 * A function with loops keeps the global when more than this many of the calls inside its
 * loops may read or charge the counter: the local is written back and reloaded around each
 * such call, which costs about what a loop iteration's charge saves, so a loop making such
 * calls on every iteration gains nothing. Calls outside loops run once per call of the
 * function, against every iteration of its loops, and are not counted. (Measured on the
 * benchmark's chain of four: 3 keeps nearly all of what the local can save.)
 */
const MAX_LOOP_CALLS = 3;

/**
 * Whether body i's loops make more than MAX_LOOP_CALLS calls (other than tail calls) to
 * functions that may read or charge the counter: then it keeps the global.
 */
function callsImpure(scan: CodeScan, i: number, pure: Uint8Array): boolean {
  const ev = scan.events.a;
  let inLoops = 0;
  for (let e = scan.evFrom[i]!; e < scan.evFrom[i + 1]!; e++) {
    if (ev[3 * e] !== EV_IN) continue;
    const callee = ev[3 * e + 2]!;
    if ((callee < 0 || pure[callee] !== 1) && scan.loopCalls.has(e) && ++inLoops > MAX_LOOP_CALLS) return true;
  }
  return false;
}

/** Each defined function's parameter count, or null when the type or function section is not plain function types. */
function paramCounts(sections: ReadonlyArray<{ id: number; content: Uint8Array }>, n: number): Int32Array | null {
  try {
    const typeSection = sections.find((x) => x.id === 1);
    const funcSection = sections.find((x) => x.id === 3);
    if (typeSection === undefined || funcSection === undefined) return null;
    const tr = new Reader(typeSection.content);
    const types: number[] = [];
    const nTypes = tr.u32();
    for (let t = 0; t < nTypes; t++) {
      if (tr.byte() !== 0x60) return null; // GC proposal types: not followed
      const np = tr.u32();
      for (let k = 0; k < np; k++) skipValType(tr);
      types.push(np);
      const nr = tr.u32();
      for (let k = 0; k < nr; k++) skipValType(tr);
    }
    const fr = new Reader(funcSection.content);
    if (fr.u32() !== n) return null;
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const t = fr.u32();
      if (t >= types.length) return null;
      out[i] = types[t]!;
    }
    return out;
  } catch {
    return null;
  }
}

/** Functions that neither charge fuel, call the host nor call one that does (see LocalFuel.pure). */
function pureFunctions(scan: CodeScan, site: Int32Array | null, imported: number): Uint8Array {
  const total = imported + scan.n;
  const pure = new Uint8Array(total);
  if (site === null) return pure;
  const state = new Uint8Array(total); // 0 unvisited, 1 visiting, 2 done
  const callee = scan.callee.a;
  const visit = (f: number, depth: number): boolean => {
    if (f < imported || f >= total || site[f]! < 0 || depth > 500) return false;
    if (state[f] === 2) return pure[f] === 1;
    if (state[f] === 1) return false;
    state[f] = 1;
    const i = f - imported;
    // A run-time bulk charge works on the global: a caller holding the counter in a local must write it back first.
    let ok = scan.hasLoop[i] === 0 && scan.bulk[i] === 0;
    for (let k = scan.callFrom[i]!; ok && k < scan.callFrom[i + 1]!; k++) ok = visit(callee[k]!, depth + 1);
    // call_indirect and the like reach anything: a body with one is not pure either.
    if (scan.indirect[i] === 1) ok = false;
    state[f] = 2;
    pure[f] = ok ? 1 : 0;
    return ok;
  };
  for (let f = imported; f < total; f++) visit(f, 0);
  return pure;
}
/**
 * Returns a rewritten copy of a (valid) module. Throws WASM_METERING_UNSUPPORTED
 * for an instruction it cannot decode, VM_MEMORY_LIMIT when the module's initial
 * memory is already above the cap.
 */
export function rewriteModule(input: Uint8Array, opts: RewriteOptions): RewriteResult {
  // A plain view: a Buffer's subarray allocates a Buffer through JS, slow before the JIT warms up.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const r = new Reader(bytes, 8);
  const sections: Array<{ id: number; content: Uint8Array; offset: number }> = [];
  while (r.pos < r.end) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    sections.push({ id, content: bytes.subarray(start, start + size), offset: start });
  }
  let importedGlobals = 0;
  let importedFunctions = 0;
  let definedGlobals = 0;
  let memory: RewriteResult['memory'] = null;
  let functions = 0;
  let siteCharged = 0;
  let hostCallsCharged = false;
  let loops = 0;
  let counted = 0;

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

  // The output is at most a few percent larger than the input (a charge per function and loop).
  const w = new ByteWriter(bytes.length + (bytes.length >> 3) + 1024);
  w.copy(bytes, 0, 8);
  const emit = (id: number, content: Uint8Array): void => {
    w.byte(id);
    w.u32(content.length);
    w.copy(content);
  };
  // The global and export sections, when the module has none, go where the section order puts them.
  const missing: Array<{ id: number; content: Uint8Array }> = [];
  if (added.length > 0 && !sections.some((s) => s.id === 6)) missing.push({ id: 6, content: concat([[added.length], ...added]) });
  if (exportsAdded.length > 0 && !sections.some((s) => s.id === 7)) missing.push({ id: 7, content: concat([[exportsAdded.length], ...exportsAdded]) });
  for (const s of sections) {
    while (missing.length > 0 && s.id !== 0 && (SECTION_ORDER[s.id] ?? 0) > SECTION_ORDER[missing[0]!.id]!) {
      const m = missing.shift()!;
      emit(m.id, m.content);
    }
    if (s.id === 4 && opts.maxTableElements !== undefined) {
      emit(4, capTables(s.content, opts.maxTableElements, opts.source));
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
      emit(5, concat([u32leb(n), ...mems]));
    } else if (s.id === 5) {
      const sr = new Reader(s.content);
      if (sr.u32() > 0) {
        const flags = sr.byte();
        const initial = sr.u32();
        memory = { initial, maximum: flags & 1 ? sr.u32() : null };
      }
      emit(5, s.content);
    } else if (s.id === 6 && added.length > 0) {
      const sr = new Reader(s.content);
      const n = sr.u32();
      emit(6, concat([u32leb(n + added.length), s.content.subarray(sr.pos), ...added]));
    } else if (s.id === 7 && exportsAdded.length > 0) {
      const sr = new Reader(s.content);
      const n = sr.u32();
      emit(7, concat([u32leb(n + exportsAdded.length), s.content.subarray(sr.pos), ...exportsAdded]));
    } else if (s.id === 10 && rewriteCode) {
      const cr = new Reader(bytes, s.offset, s.offset + s.content.length);
      const n = cr.u32();
      const localFuel = opts.fuel && opts.localFuel !== false;
      const scan = scanCode(cr, n, globals, opts.source, localFuel, opts.fuel && opts.backEdgeCharges !== false);
      loops = scan.loops;
      let site: Int32Array | null = null;
      if (opts.fuel) {
        const pinned = pinnedFunctions(sections);
        if (pinned !== null) for (const f of scan.referenced) pinned.add(f);
        let importsReachable = pinned === null;
        for (let f = 0; f < importedFunctions && !importsReachable; f++) importsReachable = pinned!.has(f);
        hostCallsCharged = (opts.hostCallFuel ?? 0) > 0 && !importsReachable;
        const callSites = opts.callSiteCharges !== false && pinned !== null;
        if (callSites || hostCallsCharged) site = siteCosts(scan, importedFunctions, pinned, hostCallsCharged ? opts.hostCallFuel! : 0, callSites);
        if (site !== null) {
          // Each direct call adds its callee's site cost to the charge that holds it.
          const callee = scan.callee.a;
          const owner = scan.callOwner.a;
          const cost = scan.cost.a;
          for (let k = 0; k < scan.callee.n; k++) {
            const f = callee[k]!;
            const c = f < site.length ? site[f]! : -1;
            if (c > 0) cost[owner[k]!] = Math.min(cost[owner[k]!]! + c, MAX_CHARGE);
          }
          for (let i = 0; i < n; i++) site[importedFunctions + i]! >= 0 ? siteCharged++ : functions++;
        } else functions = n;
        // A loop charged on its back edges has its first iteration paid by the enclosing
        // charge; innermost first (charges are numbered outer before inner), so an outer
        // loop's cost includes its inner loops' first iterations before it is passed on.
        const cost = scan.cost.a;
        const mode = scan.chargeMode.a;
        const parent = scan.chargeParent.a;
        for (let k = scan.cost.n - 1; k >= 0; k--) {
          if (mode[k] === AT_BACK_EDGE || mode[k] === AT_COUNTED) cost[parent[k]!] = Math.min(cost[parent[k]!]! + cost[k]!, MAX_CHARGE);
          if (mode[k] === AT_COUNTED) counted++;
        }
      }
      const params = localFuel ? paramCounts(sections, n) : null;
      const local = params === null ? null : { params, pure: pureFunctions(scan, site, importedFunctions) };
      w.byte(10);
      const sized = w.beginSized();
      writeCode(w, bytes, scan, globals, site, importedFunctions, local);
      w.endSized(sized);
    } else {
      emit(s.id, s.content);
    }
  }
  for (const m of missing) emit(m.id, m.content);
  return { bytes: w.bytes(), functions, siteCharged, hostCallsCharged, loops, counted, memory };
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
