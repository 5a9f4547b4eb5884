// Properties served through proxy_get_property, named and encoded as Envoy does
// (source/extensions/filters/common/expr/context.h, common/wasm/context.cc):
// strings raw, integers 8-byte little-endian, timestamps and durations int64 ns,
// booleans one byte, maps in the pairs format. Paths are segments joined by NUL;
// the dotted form (`request.path`) is accepted as well for convenience.
// The table below is the documented list (README "Properties").

import { serializePairs } from '../abi/pairs.js';
import type { HttpStream } from '../stream/http-stream.js';

export interface PluginFacts {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  /** Set in a worker of a multi-worker proxy (host/src/workers). */
  readonly workerQuotaCluster?: string;
}

/** Strings are returned as strings (the ABI layer writes them to guest memory without an extra copy). */
export type PropertyValue = Uint8Array | string;
type Getter = (s: HttpStream | null, p: PluginFacts) => PropertyValue | null;

const str = (v: string | undefined | null): string | null => (v === undefined || v === null ? null : v);
const TWO32 = 2 ** 32;
/** int64 little-endian; plain numbers (sizes, codes, ports) are written without a BigInt. */
const i64 = (v: number | bigint): Uint8Array => {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  if (typeof v === 'bigint') {
    dv.setBigInt64(0, BigInt.asIntN(64, v), true);
  } else if (v >= 0 && v < Number.MAX_SAFE_INTEGER) {
    const n = Math.trunc(v);
    dv.setUint32(0, n >>> 0, true);
    dv.setUint32(4, Math.floor(n / TWO32), true);
  } else {
    dv.setBigInt64(0, BigInt.asIntN(64, BigInt(Math.trunc(v))), true);
  }
  return b;
};
const bool = (v: boolean): Uint8Array => new Uint8Array([v ? 1 : 0]);

function splitPath(path: string): { path: string; query: string } {
  const q = path.indexOf('?');
  return q < 0 ? { path, query: '' } : { path: path.slice(0, q), query: path.slice(q + 1) };
}

/** "ip:port", with IPv6 addresses in brackets ("[::1]:8080") as Envoy writes them. */
function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function durationNs(s: HttpStream): bigint {
  const end = s.info.endMono !== 0n ? s.info.endMono : process.hrtime.bigint();
  return end - s.info.startMono;
}

/** name → [type (for docs), getter]. Stream properties return null outside a stream. */
export const PROPERTIES: Record<string, [string, Getter]> = {
  'request.path': ['string', (s) => str(s?.requestHeader(':path'))],
  'request.url_path': ['string', (s) => (s ? str(splitPath(s.requestHeader(':path') ?? '').path) : null)],
  'request.query': ['string', (s) => (s ? str(splitPath(s.requestHeader(':path') ?? '').query) : null)],
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
  'source.address': ['string', (s) => (s ? str(hostPort(s.info.sourceAddress, s.info.sourcePort)) : null)],
  'source.port': ['int', (s) => (s ? i64(s.info.sourcePort) : null)],
  'destination.address': ['string', (s) => (s ? str(hostPort(s.info.destinationAddress, s.info.destinationPort)) : null)],
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

const BY_NUL_PATH = new Map<string, Getter>();
for (const [name, [, getter]] of Object.entries(PROPERTIES)) {
  BY_NUL_PATH.set(name.replace(/\./g, '\0'), getter);
  BY_NUL_PATH.set(name, getter);
}

const REQ_HEADER = 'request\0headers\0';
const RESP_HEADER = 'response\0headers\0';

/** Resolves a property path, or null when it names nothing (→ NOT_FOUND). */
export function getProperty(path: string, s: HttpStream | null, p: PluginFacts): PropertyValue | null {
  const getter = BY_NUL_PATH.get(path);
  if (getter !== undefined) return getter(s, p);
  if (s !== null) {
    // request.headers.<name> / response.headers.<name>: one header value.
    if (path.startsWith(REQ_HEADER)) {
      const name = path.slice(REQ_HEADER.length);
      if (!name.includes('\0')) return str(s.requestHeader(name.toLowerCase()));
    } else if (path.startsWith(RESP_HEADER)) {
      const name = path.slice(RESP_HEADER.length);
      if (!name.includes('\0')) return str(s.responseHeader(name.toLowerCase()));
    }
    const fs = s.filterState.get(path) ?? s.filterState.get(path.replace(/\0/g, '.'));
    if (fs !== undefined) return fs;
  }
  return null;
}
