// Properties served through proxy_get_property, named and encoded as Envoy does
// (source/extensions/filters/common/expr/context.h, common/wasm/context.cc):
// strings raw, integers 8-byte little-endian, timestamps and durations int64 ns,
// booleans one byte, maps in the pairs format. Paths are segments joined by NUL;
// the dotted form (`request.path`) is accepted as well for convenience.
// The table below is the documented list (README "Properties").

import { serializePairs } from '../abi/pairs.js';
import type { HttpStream } from '../stream/http-stream.js';
import { PropertyMemo } from '../stream/property-memo.js';

export interface PluginFacts {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  /** Set in a worker of a multi-worker proxy (host/src/workers). */
  readonly workerQuotaCluster?: string;
}

/**
 * A property's value as its getter produces it. Strings and bytes are written as they are
 * (the ABI layer copies strings to guest memory without an intermediate Buffer); integers
 * (number or bigint) are int64 and booleans one byte, encoded only where they are written
 * (writeFixedProperty), so reading a property allocates no Uint8Array.
 */
export type PropertyValue = Uint8Array | string | number | bigint | boolean;
type Getter = (s: HttpStream | null, p: PluginFacts) => PropertyValue | null;

const str = (v: string | undefined | null): string | null => (v === undefined || v === null ? null : v);
const TWO32 = 2 ** 32;
const scratch = new DataView(new ArrayBuffer(8));
const scratchU8 = new Uint8Array(scratch.buffer);

/** The encoded size of an int64 or boolean value. */
export function fixedPropertySize(v: number | bigint | boolean): number {
  return typeof v === 'boolean' ? 1 : 8;
}

/** Encodes an int64 (8 bytes little-endian) or boolean (one byte) value at dst[off]. */
export function writeFixedProperty(v: number | bigint | boolean, dst: Uint8Array, off: number): void {
  if (typeof v === 'boolean') {
    dst[off] = v ? 1 : 0;
  } else if (typeof v === 'number' && v >= 0 && v < Number.MAX_SAFE_INTEGER) {
    // Sizes, codes and ports: two u32 halves, no BigInt.
    const n = Math.trunc(v);
    const lo = n >>> 0;
    const hi = Math.floor(n / TWO32) >>> 0;
    dst[off] = lo & 0xff;
    dst[off + 1] = (lo >>> 8) & 0xff;
    dst[off + 2] = (lo >>> 16) & 0xff;
    dst[off + 3] = lo >>> 24;
    dst[off + 4] = hi & 0xff;
    dst[off + 5] = (hi >>> 8) & 0xff;
    dst[off + 6] = (hi >>> 16) & 0xff;
    dst[off + 7] = hi >>> 24;
  } else {
    // setBigInt64 wraps modulo 2^64, as BigInt.asIntN(64, ...) did.
    scratch.setBigInt64(0, typeof v === 'bigint' ? v : BigInt(Math.trunc(v)), true);
    dst.set(scratchU8, off);
  }
}

/** A value as the bytes proxy_get_property hands over (strings as UTF-8), for callers that need a copy. */
export function propertyBytes(v: PropertyValue): Uint8Array {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return v;
  const out = new Uint8Array(fixedPropertySize(v));
  writeFixedProperty(v, out, 0);
  return out;
}

/** int64 values: plain numbers (sizes, codes, ports) stay numbers; the writer encodes them. */
const i64 = (v: number | bigint): number | bigint => v;
const bool = (v: boolean): boolean => v;

function memo(s: HttpStream): PropertyMemo {
  return (s.propertyMemo ??= new PropertyMemo());
}

function durationNs(s: HttpStream): bigint {
  const end = s.info.endMono !== 0n ? s.info.endMono : process.hrtime.bigint();
  return end - s.info.startMono;
}

/** name → [type (for docs), getter]. Stream properties return null outside a stream. */
export const PROPERTIES: Record<string, [string, Getter]> = {
  'request.path': ['string', (s) => str(s?.requestHeader(':path'))],
  'request.url_path': ['string', (s) => (s ? memo(s).urlPathOf(s.requestHeader(':path') ?? '') : null)],
  'request.query': ['string', (s) => (s ? memo(s).queryOf(s.requestHeader(':path') ?? '') : null)],
  'request.host': ['string', (s) => str(s?.requestHeader(':authority'))],
  'request.scheme': ['string', (s) => str(s?.requestHeader(':scheme'))],
  'request.method': ['string', (s) => str(s?.requestHeader(':method'))],
  'request.headers': ['map', (s) => (s ? serializePairs(s.requestHeaders) : null)],
  'request.referer': ['string', (s) => str(s?.requestHeader('referer'))],
  'request.useragent': ['string', (s) => str(s?.requestHeader('user-agent'))],
  'request.id': ['string', (s) => str(s?.requestHeader('x-request-id'))],
  'request.protocol': ['string', (s) => str(s?.info.protocol)],
  'request.time': ['timestamp', (s) => (s ? i64(s.info.startTimeNs) : null)],
  'request.duration': ['duration', (s) => (s ? i64(durationNs(s)) : null)],
  'request.size': ['int', (s) => (s ? i64(s.info.requestBytes) : null)],
  'request.total_size': ['int', (s) => (s ? i64(s.info.requestBytes + s.info.requestHeaderBytes) : null)],
  'response.code': ['int', (s) => (s && s.info.responseCode !== 0 ? i64(s.info.responseCode) : null)],
  'response.code_details': ['string', (s) => (s && s.info.responseCodeDetails !== '' ? str(s.info.responseCodeDetails) : null)],
  'response.flags': ['string', (s) => (s ? str(s.info.responseFlags) : null)],
  'response.headers': ['map', (s) => (s?.responseHeaders ? serializePairs(s.responseHeaders) : null)],
  'response.trailers': ['map', (s) => (s?.responseTrailers ? serializePairs(s.responseTrailers) : null)],
  'response.size': ['int', (s) => (s ? i64(s.info.responseBytes) : null)],
  'response.total_size': ['int', (s) => (s ? i64(s.info.responseBytes + s.info.responseHeaderBytes) : null)],
  'response.backend_latency': ['duration', (s) => (s && s.info.upstreamFirstByteMono !== 0n ? i64(s.info.upstreamFirstByteMono - s.info.startMono) : null)],
  'source.address': ['string', (s) => (s ? memo(s).sourceOf(s.info.sourceAddress, s.info.sourcePort) : null)],
  'source.port': ['int', (s) => (s ? i64(s.info.sourcePort) : null)],
  'destination.address': ['string', (s) => (s ? memo(s).destinationOf(s.info.destinationAddress, s.info.destinationPort) : null)],
  'destination.port': ['int', (s) => (s ? i64(s.info.destinationPort) : null)],
  'connection.id': ['int', (s) => (s ? i64(s.info.connectionId) : null)],
  'connection.mtls': ['bool', (s) => (s ? bool(false) : null)],
  'connection.tls_version': ['string', (s) => (s && s.info.tls ? str('TLSv1.3') : null)],
  'upstream.address': ['string', (s) => (s && s.info.upstreamAddress !== '' ? str(s.info.upstreamAddress) : null)],
  'route_name': ['string', (s) => (s ? str(s.info.routeName) : null)],
  'cluster_name': ['string', (s) => (s ? str(s.info.clusterName) : null)],
  'plugin_name': ['string', (_s, p) => str(p.name)],
  'plugin_root_id': ['string', (_s, p) => str(p.rootId)],
  'plugin_vm_id': ['string', (_s, p) => str(p.vmId)],
  // wasm-mixer's own: in a worker of a multi-worker proxy, the cluster whose leases keep local quota limits exact across workers.
  'wasm_mixer.worker_quota_cluster': ['string', (_s, p) => str(p.workerQuotaCluster)],
};

const BY_NAME = new Map<string, Getter>();
for (const [name, [, getter]] of Object.entries(PROPERTIES)) {
  BY_NAME.set(name.replace(/\./g, '\0'), getter);
  BY_NAME.set(name, getter);
}

const REQ_HEADER = 'request\0headers\0';
const RESP_HEADER = 'response\0headers\0';

/** What a path names, worked out once per distinct path: a table property, one header, or filter state. */
interface ResolvedPath {
  /** The table property's getter, or null. */
  readonly getter: Getter | null;
  /** 1: request header, 2: response header, 0: neither. */
  readonly header: 0 | 1 | 2;
  /** The header name, lower-cased. */
  readonly name: string;
  /** The path with NUL separators as dots (filter state keys). */
  readonly dotted: string;
}

/**
 * Resolved paths: guests ask for the same few on every request, so each is looked up,
 * split, lower-cased and dotted once, and a read costs one map lookup. Bounded (guests
 * choose the paths): cleared when full.
 */
const RESOLVED_MAX = 4096;
const resolvedPaths = new Map<string, ResolvedPath>();

function resolve(path: string): ResolvedPath {
  let d = resolvedPaths.get(path);
  if (d === undefined) {
    let header: 0 | 1 | 2 = 0;
    let name = '';
    const getter = BY_NAME.get(path) ?? null;
    if (getter === null && path.startsWith(REQ_HEADER)) {
      name = path.slice(REQ_HEADER.length);
      if (!name.includes('\0')) header = 1;
    } else if (getter === null && path.startsWith(RESP_HEADER)) {
      name = path.slice(RESP_HEADER.length);
      if (!name.includes('\0')) header = 2;
    }
    d = { getter, header, name: header === 0 ? '' : name.toLowerCase(), dotted: path.includes('\0') ? path.replace(/\0/g, '.') : path };
    if (resolvedPaths.size >= RESOLVED_MAX) resolvedPaths.clear();
    resolvedPaths.set(path, d);
  }
  return d;
}

/** The filter-state key of a property path (segments joined by dots). */
export function dottedPath(path: string): string {
  return path.includes('\0') ? resolve(path).dotted : path;
}

/** Resolves a property path, or null when it names nothing (→ NOT_FOUND). */
export function getProperty(path: string, s: HttpStream | null, p: PluginFacts): PropertyValue | null {
  const d = resolvedPaths.get(path) ?? resolve(path);
  if (d.getter !== null) return d.getter(s, p);
  if (s === null) return null;
  // request.headers.<name> / response.headers.<name>: one header value.
  if (d.header === 1) return str(s.requestHeader(d.name));
  if (d.header === 2) return str(s.responseHeader(d.name));
  const fs = s.filterState.get(path) ?? (d.dotted === path ? undefined : s.filterState.get(d.dotted));
  return fs ?? null;
}
