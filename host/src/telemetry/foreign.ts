// Foreign functions for telemetry adapters (proxy_call_foreign_function). Envoy does not
// know these names and answers NOT_FOUND; our adapters then fall back to what Envoy has
// (proxy_log for entries, integer units for histograms), so they load in both.
//
// wasm_mixer.access_log — hand one formatted access-log entry to the host's sinks.
//   args (little-endian):
//     0   u8   envelope version, 1
//     1   u8   severity, a Proxy-Wasm log level (0 trace … 5 critical)
//     2   u8   format: 0 text, 1 JSON
//     3   u8   flags: bit 0 set = answer only a drop (see result); other bits 0
//     4   i64  request start, ns since the epoch (0: unknown)
//     12  u16  length L of the log name
//     14  L    log name, UTF-8
//     14+L …   the entry, UTF-8, without a trailing newline
//   result: one byte, 0 = taken by at least one sink, 1 = dropped (every sink full, or none matched).
//   With flag bit 0, a taken entry gets status OK and no result bytes, and only a drop gets its
//   byte: a result costs the guest an allocation (a call into it) on every entry.
//   BAD_ARGUMENT for a malformed envelope (also unknown flag bits).
//
// wasm_mixer.describe_metric — describe a metric family before its first series.
//   args: JSON {"name": "...", "type": "counter"|"gauge"|"histogram", "help"?: "...",
//               "unit"?: "seconds", "buckets"?: [..], "scale"?: 1e-6, "max_series"?: 1000}
//   result: JSON {"ok": true} or {"ok": false, "error": "..."} (the adapter decides what to do).
//   Operator bucket overrides (metrics.histogramBuckets) win over described buckets.
//
// wasm_mixer.property_set — register a list of property paths once (at configure time).
//   args: u32 count, then count × (u32 length, path bytes: segments joined by NUL, as
//         proxy_get_property takes them; request.headers.NAME reads one header)
//   result: u32 id, for wasm_mixer.get_property_set. The same list gets the same id again
//         (a restarted VM re-registers), at most 64 lists per adapter.
//
// wasm_mixer.get_property_set — read every property of a registered list in one call.
//   args: u32 id
//   result: u32 count, then count × (i32 length, -1 when the property is unknown; bytes)
//   NOT_FOUND for an unknown id. One host call instead of one per attribute: the telemetry
//   adapters read 10-25 attributes per request, and each proxy_get_property costs a guest
//   allocation and a boundary crossing (bench/results/telemetry.json).
//
// wasm_mixer.set_properties — set several properties of a registered list in one call.
//   args: u32 id (from wasm_mixer.property_set), then entries, each
//         u32 index in the list, u32 length L, L bytes (the value)
//   result: none. Status OK when every value was set; EMPTY when none was (no request here,
//   where proxy_set_property answers NOT_FOUND); NOT_FOUND for an unknown id; BAD_ARGUMENT
//   for a malformed entry (nothing set then). No result bytes: a reply would cost the guest
//   an allocation per call. Each
//   value is stored as proxy_set_property stores it (the request's filter state, under the
//   dotted path), in the order given. The auth adapter sets 3-6 properties per request:
//   one call instead of one crossing and one path decoding each. (Not "set_property_set": the
//   host's name cache, vm/guest-memory.ts internSlot, put that in get_property_set's slot, and
//   the two evicted each other on every request.)

import { MetricType, Status, type LogLevel } from '../abi/constants.js';
import type { AccessLogEntry } from '../log/access-log.js';
import type { MetricsRegistry } from '../metrics/registry.js';
import type { ForeignFunction, ForeignWriter } from '../plugin/foreign-functions.js';
import { PropertyPlan } from './property-plan.js';

export const ACCESS_LOG_FUNCTION = 'wasm_mixer.access_log';
export const DESCRIBE_METRIC_FUNCTION = 'wasm_mixer.describe_metric';
export const PROPERTY_SET_FUNCTION = 'wasm_mixer.property_set';
export const GET_PROPERTY_SET_FUNCTION = 'wasm_mixer.get_property_set';
export const SET_PROPERTIES_FUNCTION = 'wasm_mixer.set_properties';
const MAX_SETS_PER_ADAPTER = 64;
const MAX_PATHS_PER_SET = 256;

const ACCEPTED = new Uint8Array([0]);
const DROPPED = new Uint8Array([1]);

const HEADER = 14;
/** Envelope flag: answer only a drop (a taken entry returns OK with no result). */
const ANSWER_DROPS_ONLY = 1;
const decoder = new TextDecoder();

/** The last log name decoded, kept with its bytes: an adapter sends the same one with every entry. */
let lastNameBytes = new Uint8Array(0);
let lastName = '';

function logName(args: Uint8Array, at: number, len: number): string {
  let same = len === lastNameBytes.length;
  for (let i = 0; same && i < len; i++) same = args[at + i] === lastNameBytes[i];
  if (!same) {
    lastNameBytes = args.slice(at, at + len);
    lastName = decoder.decode(lastNameBytes);
  }
  return lastName;
}

/**
 * An entry read from its envelope, borrowed: `line` is a view of the arguments, which are
 * guest memory valid only during the call (AccessLogRouter copies it for sinks that keep
 * entries). The request start, which only an OTLP sink reads, is kept as two u32 halves and
 * made a BigInt when asked for, so a line for a file or a stream costs no BigInt.
 */
class EnvelopeEntry implements AccessLogEntry {
  constructor(
    private readonly timeLo: number,
    private readonly timeHi: number,
    readonly adapter: string,
    readonly logName: string,
    readonly level: LogLevel,
    readonly format: 'json' | 'text',
    readonly line: Uint8Array,
  ) {}

  get timeNs(): bigint {
    return (BigInt(this.timeHi | 0) << 32n) | BigInt(this.timeLo);
  }
}

/** Decodes an access-log envelope, or null when malformed. The entry borrows `args` (see EnvelopeEntry). */
export function decodeAccessLogEnvelope(args: Uint8Array, adapter: string): AccessLogEntry | null {
  if (args.length < HEADER || args[0] !== 1) return null;
  const level = args[1]!;
  const format = args[2]!;
  if (level > 5 || format > 1 || (args[3]! & ~ANSWER_DROPS_ONLY) !== 0) return null;
  const nameLen = args[12]! | (args[13]! << 8);
  if (HEADER + nameLen > args.length) return null;
  const name = nameLen === 0 ? 'access' : logName(args, HEADER, nameLen);
  // A plain view: args may be a Buffer, whose subarray() costs several times more.
  const line = new Uint8Array(args.buffer, args.byteOffset + HEADER + nameLen, args.length - HEADER - nameLen);
  return new EnvelopeEntry(readU32(args, 4), readU32(args, 8), adapter, name, level, format === 1 ? 'json' : 'text', line);
}

export function accessLogFunction(write: (e: AccessLogEntry) => boolean): ForeignFunction {
  return (args, caller) => {
    const e = decodeAccessLogEnvelope(args, caller.adapter);
    if (e === null) return Status.BadArgument;
    if (write(e)) return (args[3]! & ANSWER_DROPS_ONLY) !== 0 ? Status.Ok : ACCEPTED;
    return DROPPED;
  };
}

const TYPES: Record<string, MetricType> = { counter: MetricType.Counter, gauge: MetricType.Gauge, histogram: MetricType.Histogram };
const encoder = new TextEncoder();

export function describeMetricFunction(metrics: MetricsRegistry, warn: (adapter: string, message: string) => void): ForeignFunction {
  const answer = (o: object) => encoder.encode(JSON.stringify(o));
  return (args, caller) => {
    let d: Record<string, unknown>;
    try {
      d = JSON.parse(decoder.decode(args)) as Record<string, unknown>;
    } catch {
      return Status.BadArgument;
    }
    if (typeof d !== 'object' || d === null) return Status.BadArgument;
    const type = TYPES[String(d.type)];
    if (typeof d.name !== 'string' || type === undefined) return answer({ ok: false, error: 'name (a string) and type (counter, gauge or histogram) are required' });
    const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
    const err = metrics.describe(type, d.name, {
      help: typeof d.help === 'string' ? d.help : undefined,
      unit: typeof d.unit === 'string' ? d.unit : undefined,
      buckets: Array.isArray(d.buckets) ? (d.buckets as number[]) : undefined,
      scale: num(d.scale),
      maxSeries: num(d.max_series),
    });
    if (err !== null) {
      warn(caller.adapter, `describe_metric ${d.name}: ${err}`);
      return answer({ ok: false, error: err });
    }
    return answer({ ok: true });
  };
}

/** Registered property lists, per adapter name, each compiled once (property-plan.ts). */
export class PropertySets {
  private readonly byAdapter = new Map<string, { keys: Map<string, number>; sets: PropertyPlan[] }>();

  register(adapter: string, paths: string[]): number | null {
    let a = this.byAdapter.get(adapter);
    if (a === undefined) {
      a = { keys: new Map(), sets: [] };
      this.byAdapter.set(adapter, a);
    }
    const key = paths.join('\u0001');
    const known = a.keys.get(key);
    if (known !== undefined) return known;
    if (a.sets.length >= MAX_SETS_PER_ADAPTER) return null;
    a.sets.push(new PropertyPlan(paths));
    a.keys.set(key, a.sets.length - 1);
    return a.sets.length - 1;
  }

  get(adapter: string, id: number): readonly string[] | undefined {
    return this.byAdapter.get(adapter)?.sets[id]?.paths;
  }

  plan(adapter: string, id: number): PropertyPlan | undefined {
    return this.byAdapter.get(adapter)?.sets[id];
  }
}

export function propertySetFunction(sets: PropertySets): ForeignFunction {
  return (args, caller) => {
    if (args.length < 4) return Status.BadArgument;
    const n = readU32(args, 0);
    if (n > MAX_PATHS_PER_SET) return Status.BadArgument;
    const paths: string[] = [];
    let off = 4;
    for (let i = 0; i < n; i++) {
      if (off + 4 > args.length) return Status.BadArgument;
      const len = readU32(args, off);
      off += 4;
      if (off + len > args.length) return Status.BadArgument;
      paths.push(decoder.decode(args.subarray(off, off + len)));
      off += len;
    }
    const id = sets.register(caller.adapter, paths);
    if (id === null) return Status.InternalFailure; // too many lists for this adapter
    const out = new Uint8Array(4);
    writeU32(out, 0, id);
    return out;
  };
}

/**
 * The answer is the set's plan itself, as a writer: every value read at once (at call time),
 * then written straight into the guest's allocation before the host call returns.
 */
export function getPropertySetFunction(sets: PropertySets): ForeignFunction {
  return (args, caller) => {
    const direct = caller.stream !== undefined && caller.facts !== undefined;
    if (args.length !== 4 || (!direct && caller.property === undefined)) return Status.BadArgument;
    const plan = sets.plan(caller.adapter, readU32(args, 0));
    if (plan === undefined) return Status.NotFound;
    return direct ? plan.read(caller.stream!(), caller.facts!) : plan.readEach(caller.property!);
  };
}

/**
 * Sets a registered list's properties from one call (see the header). Needs the caller's
 * request (ForeignCaller.stream); a caller without one gets NOT_FOUND, so the guest falls
 * back to proxy_set_property.
 */
export function setPropertySetFunction(sets: PropertySets): ForeignFunction {
  return (args, caller) => {
    if (args.length < 4 || caller.stream === undefined) return args.length < 4 ? Status.BadArgument : Status.NotFound;
    const plan = sets.plan(caller.adapter, readU32(args, 0));
    if (plan === undefined) return Status.NotFound;
    // checked whole before anything is set: a malformed call changes nothing
    const n = plan.paths.length;
    for (let off = 4; off < args.length; ) {
      if (off + 8 > args.length || readU32(args, off) >= n) return Status.BadArgument;
      off += 8 + readU32(args, off + 4);
      if (off > args.length) return Status.BadArgument;
    }
    const s = caller.stream();
    if (s === null) return Status.Empty;
    for (let off = 4; off < args.length; ) {
      const i = readU32(args, off);
      const len = readU32(args, off + 4);
      off += 8;
      s.filterState.set(plan.stateKey(i), plan.keptValue(i, args, off, len));
      off += len;
    }
    return Status.Ok;
  };
}

function readU32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

/** u32 little-endian. */
function writeU32(dst: Uint8Array, off: number, v: number): void {
  dst[off] = v & 0xff;
  dst[off + 1] = (v >>> 8) & 0xff;
  dst[off + 2] = (v >>> 16) & 0xff;
  dst[off + 3] = (v >>> 24) & 0xff;
}
