// The attribute bag of one request, as the proxy sends it to the adapter server:
// what the host knows about the request (header map, connection and timing facts,
// filter state), typed after Mixer's attribute model, plus its compact encoding
// (global dictionary + per-message words, proto/wasm_mixer/v1/attributes.proto).
//
// The server rebuilds an HttpStream from the bag that is, for the adapters, the
// same as the one the proxy has: same header list (order and repeats included),
// same StreamInfo facts, same filter state. That is what makes in-process and
// remote runs of an adapter give the same answers.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { HeaderPair } from '../abi/pairs.js';
import { HttpStream, type StreamInfo } from '../stream/http-stream.js';
import { protoDir, type PbCompressedAttributes, type PbStringPairs } from './protos.js';

export type AttrType = 'string' | 'int64' | 'double' | 'bool' | 'timestamp' | 'duration' | 'bytes' | 'pairs';
export type AttrValue = string | number | boolean | bigint | Uint8Array | HeaderPair[];

export interface TypedValue {
  readonly t: AttrType;
  readonly v: AttrValue;
}

/** Attribute name -> typed value. Names are listed in docs/out-of-process.md "Attributes". */
export type Bag = Map<string, TypedValue>;

// --- vocabulary ----------------------------------------------------------------------------

export const REQUEST_HEADERS = 'request.headers';
export const REQUEST_TRAILERS = 'request.trailers';
export const RESPONSE_HEADERS = 'response.headers';
export const RESPONSE_TRAILERS = 'response.trailers';
export const REQUEST_DURATION = 'request.duration';
export const BACKEND_LATENCY = 'response.backend_latency';
export const FILTER_STATE_PREFIX = 'filter_state.';
export const INFO_PREFIX = 'info.';

type FactField = Exclude<keyof StreamInfo, 'startMono' | 'endMono' | 'upstreamFirstByteMono'>;

/** StreamInfo field -> [attribute name, type]. */
export const FACTS: ReadonlyArray<readonly [FactField, string, AttrType]> = [
  ['sourceAddress', 'source.ip', 'string'],
  ['sourcePort', 'source.port', 'int64'],
  ['destinationAddress', 'destination.ip', 'string'],
  ['destinationPort', 'destination.port', 'int64'],
  ['connectionId', 'connection.id', 'int64'],
  ['tls', 'connection.tls', 'bool'],
  ['protocol', 'request.protocol', 'string'],
  ['startTimeNs', 'request.time', 'timestamp'],
  ['routeName', 'route_name', 'string'],
  ['clusterName', 'cluster_name', 'string'],
  ['upstreamAddress', 'upstream.address', 'string'],
  ['requestBytes', 'request.size', 'int64'],
  ['requestHeaderBytes', 'request.headers_size', 'int64'],
  ['responseBytes', 'response.size', 'int64'],
  ['responseHeaderBytes', 'response.headers_size', 'int64'],
  ['responseCode', 'response.code', 'int64'],
  ['responseCodeDetails', 'response.code_details', 'string'],
  ['responseFlags', 'response.flags', 'string'],
];

const MONO_FIELDS = new Set(['startMono', 'endMono', 'upstreamFirstByteMono']);
const FACT_FIELDS = new Set<string>(FACTS.map(([f]) => f));
/** StreamInfo field -> attribute name (unknown fields: `info.<field>`). */
export function factAttribute(field: string): string {
  for (const [f, name] of FACTS) if (f === field) return name;
  return INFO_PREFIX + field;
}
export function isMonoField(field: string): boolean {
  return MONO_FIELDS.has(field);
}

// --- proxy side: bag from a stream ------------------------------------------------------------

/**
 * The bag for a Check (request facts) or a Report (everything, incl. the response).
 * Zero/empty facts are left out; the server's defaults for them are zero/empty too.
 */
export function bagFromStream(s: HttpStream, phase: 'check' | 'report'): Bag {
  const bag: Bag = new Map();
  bag.set(REQUEST_HEADERS, { t: 'pairs', v: s.requestHeaders });
  const info = s.info as unknown as Record<string, unknown>;
  for (const [field, name, t] of FACTS) {
    const v = info[field];
    if (v === undefined || v === 0 || v === '' || v === 0n || v === false) continue;
    bag.set(name, { t, v: v as AttrValue });
  }
  // Fields other helpers may add to StreamInfo later travel generically.
  for (const field in info) {
    if (FACT_FIELDS.has(field) || MONO_FIELDS.has(field)) continue;
    const v = info[field];
    if (typeof v === 'string') bag.set(INFO_PREFIX + field, { t: 'string', v });
    else if (typeof v === 'number') bag.set(INFO_PREFIX + field, { t: Number.isInteger(v) ? 'int64' : 'double', v });
    else if (typeof v === 'boolean') bag.set(INFO_PREFIX + field, { t: 'bool', v });
  }
  for (const [k, v] of s.filterState) bag.set(FILTER_STATE_PREFIX + k, { t: 'bytes', v });
  if (phase === 'report') {
    if (s.requestTrailers !== null) bag.set(REQUEST_TRAILERS, { t: 'pairs', v: s.requestTrailers });
    if (s.responseHeaders !== null) bag.set(RESPONSE_HEADERS, { t: 'pairs', v: s.responseHeaders });
    if (s.responseTrailers !== null) bag.set(RESPONSE_TRAILERS, { t: 'pairs', v: s.responseTrailers });
    const i = s.info;
    if (i.endMono !== 0n) bag.set(REQUEST_DURATION, { t: 'duration', v: i.endMono - i.startMono });
    if (i.upstreamFirstByteMono !== 0n) bag.set(BACKEND_LATENCY, { t: 'duration', v: i.upstreamFirstByteMono - i.startMono });
  }
  return bag;
}

// --- server side: stream from a bag ---------------------------------------------------------------

const wallOriginNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** StreamInfo overrides for a bag (facts absent from the bag are zero/empty). */
export function infoFromBag(bag: Bag): Partial<StreamInfo> {
  const info: Record<string, unknown> = {};
  for (const [field, name, t] of FACTS) {
    const e = bag.get(name);
    if (e !== undefined) info[field] = t === 'timestamp' ? BigInt(e.v as bigint) : e.v;
    else info[field] = t === 'string' ? '' : t === 'bool' ? false : t === 'timestamp' ? undefined : 0;
  }
  if (info.startTimeNs === undefined) delete info.startTimeNs;
  for (const [name, e] of bag) if (name.startsWith(INFO_PREFIX)) info[name.slice(INFO_PREFIX.length)] = e.v;
  // Monotonic start such that "now - start" is the time since the request began at the proxy.
  const nowMono = process.hrtime.bigint();
  const start = info.startTimeNs as bigint | undefined;
  if (start !== undefined) {
    const elapsed = nowMono + wallOriginNs - start;
    info.startMono = nowMono - (elapsed > 0n ? elapsed : 0n);
  }
  info.endMono = 0n;
  info.upstreamFirstByteMono = 0n;
  return info as Partial<StreamInfo>;
}

/** Puts a Report's facts on a stream (a held session's, or a fresh one). */
export function applyReportBag(s: HttpStream, bag: Bag): void {
  const headers = bag.get(REQUEST_HEADERS);
  if (headers !== undefined) {
    const list = s.requestHeaders;
    list.length = 0;
    for (const p of headers.v as HeaderPair[]) list.push(p);
  }
  const info = s.info as unknown as Record<string, unknown>;
  const over = infoFromBag(bag) as Record<string, unknown>;
  const startMono = info.startMono as bigint;
  for (const k of Object.keys(over)) if (!MONO_FIELDS.has(k)) info[k] = over[k];
  const d = bag.get(REQUEST_DURATION);
  info.endMono = d !== undefined ? startMono + (d.v as bigint) : 0n;
  const b = bag.get(BACKEND_LATENCY);
  info.upstreamFirstByteMono = b !== undefined ? startMono + (b.v as bigint) : 0n;
  s.requestTrailers = (bag.get(REQUEST_TRAILERS)?.v as HeaderPair[] | undefined) ?? null;
  s.responseHeaders = (bag.get(RESPONSE_HEADERS)?.v as HeaderPair[] | undefined) ?? null;
  s.responseTrailers = (bag.get(RESPONSE_TRAILERS)?.v as HeaderPair[] | undefined) ?? null;
  s.filterState.clear();
  for (const [name, e] of bag) if (name.startsWith(FILTER_STATE_PREFIX)) s.filterState.set(name.slice(FILTER_STATE_PREFIX.length), e.v as Uint8Array);
  s.requestHeadersSent = true;
  s.responseHeadersSent = s.responseHeaders !== null;
}

/** The request header list of a bag (a copy the server may mutate). */
export function headersFromBag(bag: Bag): HeaderPair[] {
  const h = bag.get(REQUEST_HEADERS);
  return h === undefined ? [] : (h.v as HeaderPair[]).map(([k, v]) => [k, v]);
}

export function newStreamFromBag(bag: Bag, make: (headers: HeaderPair[], info: Partial<StreamInfo>) => HttpStream = (h, i) => new HttpStream(h, i)): HttpStream {
  const s = make(headersFromBag(bag), infoFromBag(bag));
  for (const [name, e] of bag) if (name.startsWith(FILTER_STATE_PREFIX)) s.filterState.set(name.slice(FILTER_STATE_PREFIX.length), e.v as Uint8Array);
  return s;
}

// --- dictionary ----------------------------------------------------------------------------------------

let globalWords: readonly string[] | null = null;
let globalIndex: Map<string, number> | null = null;

/** The global dictionary (proto/wasm_mixer/v1/global_dictionary.yaml). */
export function globalDictionary(): readonly string[] {
  if (globalWords === null) {
    const list = parseYaml(readFileSync(join(protoDir(), 'wasm_mixer', 'v1', 'global_dictionary.yaml'), 'utf8')) as unknown;
    if (!Array.isArray(list) || !list.every((w) => typeof w === 'string')) throw new Error('global_dictionary.yaml must be a list of strings');
    globalWords = Object.freeze([...(list as string[])]);
  }
  return globalWords;
}

function globalIndexMap(): Map<string, number> {
  if (globalIndex === null) {
    globalIndex = new Map();
    globalDictionary().forEach((w, i) => {
      if (!globalIndex!.has(w)) globalIndex!.set(w, i);
    });
  }
  return globalIndex;
}

/** Assigns dictionary indices to strings for one message (or one Report batch). */
export class WordEncoder {
  readonly words: string[] = [];
  private readonly local = new Map<string, number>();
  private readonly global = globalIndexMap();
  readonly globalCount: number;
  constructor(globalCount?: number) {
    const n = globalDictionary().length;
    this.globalCount = Math.min(globalCount ?? n, n);
  }

  index(s: string): number {
    const g = this.global.get(s);
    if (g !== undefined && g < this.globalCount) return g;
    let l = this.local.get(s);
    if (l === undefined) {
      l = this.words.length;
      this.words.push(s);
      this.local.set(s, l);
    }
    return -l - 1;
  }
}

export class DecodeError extends Error {}

/** Resolves indices of one message. */
export class WordDecoder {
  private readonly global = globalDictionary();
  constructor(
    private readonly words: readonly string[],
    private readonly globalCount: number,
  ) {
    if (globalCount > this.global.length) throw new DecodeError(`the client uses a global dictionary of ${globalCount} words; this server knows ${this.global.length}`);
  }

  word(i: number): string {
    if (i >= 0) {
      if (i >= this.globalCount) throw new DecodeError(`word index ${i} is outside the global dictionary (${this.globalCount} words)`);
      return this.global[i]!;
    }
    const w = this.words[-i - 1];
    if (w === undefined) throw new DecodeError(`word index ${i} is outside the message dictionary (${this.words.length} words)`);
    return w;
  }
}

// --- encoding ------------------------------------------------------------------------------------------

/** Encodes a bag; the encoder collects the message words (put them in `words` or the Report's default_words). */
export function encodeBag(bag: Bag, enc: WordEncoder): PbCompressedAttributes {
  const out: PbCompressedAttributes = {};
  for (const [name, { t, v }] of bag) {
    const k = enc.index(name);
    switch (t) {
      case 'string':
        (out.strings ??= {})[k] = enc.index(v as string);
        break;
      case 'int64':
        (out.int64s ??= {})[k] = v as number;
        break;
      case 'double':
        (out.doubles ??= {})[k] = v as number;
        break;
      case 'bool':
        (out.bools ??= {})[k] = v as boolean;
        break;
      case 'timestamp':
      case 'duration': {
        const ns = BigInt(v as bigint);
        const s = ns / 1_000_000_000n;
        (t === 'timestamp' ? (out.timestamps ??= {}) : (out.durations ??= {}))[k] = { seconds: Number(s), nanos: Number(ns - s * 1_000_000_000n) };
        break;
      }
      case 'bytes':
        (out.bytes ??= {})[k] = v as Uint8Array;
        break;
      case 'pairs': {
        const pairs = v as HeaderPair[];
        const keys = new Array<number>(pairs.length);
        const values = new Array<number>(pairs.length);
        for (let i = 0; i < pairs.length; i++) {
          keys[i] = enc.index(pairs[i]![0]);
          values[i] = enc.index(pairs[i]![1]);
        }
        (out.string_pairs ??= {})[k] = { keys, values };
        break;
      }
    }
  }
  return out;
}

/** Decodes a bag; throws DecodeError on a bad index. */
export function decodeBag(pb: PbCompressedAttributes | undefined, dec: WordDecoder): Bag {
  const bag: Bag = new Map();
  if (pb === undefined) return bag;
  const each = <T>(m: Record<string, T> | undefined, f: (name: string, v: T) => void) => {
    if (m === undefined) return;
    for (const key in m) f(dec.word(Number(key)), m[key]!);
  };
  each(pb.strings, (n, v) => bag.set(n, { t: 'string', v: dec.word(v) }));
  each(pb.int64s, (n, v) => bag.set(n, { t: 'int64', v: Number(v) }));
  each(pb.doubles, (n, v) => bag.set(n, { t: 'double', v: Number(v) }));
  each(pb.bools, (n, v) => bag.set(n, { t: 'bool', v: Boolean(v) }));
  each(pb.timestamps, (n, v) => bag.set(n, { t: 'timestamp', v: BigInt(v.seconds ?? 0) * 1_000_000_000n + BigInt(v.nanos ?? 0) }));
  each(pb.durations, (n, v) => bag.set(n, { t: 'duration', v: BigInt(v.seconds ?? 0) * 1_000_000_000n + BigInt(v.nanos ?? 0) }));
  each(pb.bytes, (n, v) => bag.set(n, { t: 'bytes', v: new Uint8Array(v) }));
  each(pb.string_pairs, (n, v: PbStringPairs) => {
    const keys = v.keys ?? [];
    const values = v.values ?? [];
    if (keys.length !== values.length) throw new DecodeError(`attribute ${n}: ${keys.length} keys but ${values.length} values`);
    const pairs: HeaderPair[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) pairs[i] = [dec.word(keys[i]!), dec.word(values[i]!)];
    bag.set(n, { t: 'pairs', v: pairs });
  });
  each(pb.string_maps, (n, v) => {
    // Mixer-style STRING_MAP: accepted (as ordered pairs in key order) for clients that send it.
    const pairs: HeaderPair[] = [];
    for (const key in v.entries ?? {}) pairs.push([dec.word(Number(key)), dec.word(v.entries![key]!)]);
    bag.set(n, { t: 'pairs', v: pairs });
  });
  return bag;
}
