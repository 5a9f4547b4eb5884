// Envoy's own out-of-process APIs, served by the adapter server from the same
// adapters, so an existing Envoy (or Istio, Envoy Gateway, ...) can use them:
//
//   envoy.service.auth.v3.Authorization/Check (ext_authz)
//     AttributeContext -> a request (method, path, host, headers, peers, time);
//     the ext_authz plugins run on it; a local reply -> denied_response (status,
//     headers, body); otherwise ok_response with the request header changes
//     (headers / headers_to_remove), response_headers_to_add and the filter state
//     the adapters set as dynamic_metadata. The log phase runs right away (there
//     is no Report in this API), so put report-only adapters elsewhere.
//
//   envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit
//     the domain selects the plugins (remote.server.rateLimit.domains; unknownDomain);
//     each descriptor -> a request: entries become headers (key: value), except
//     remote_address (-> source.ip), path/:path, method/:method, authority/host/:authority;
//     filter state envoy.ratelimit.hits_addend = the descriptor's hits (its own hits_addend,
//     else the request's, 0 meaning 1), which the quota adapter charges as weighted hits,
//     ratelimit.domain, ratelimit.descriptor.<key>. The rate-limit plugins run
//     once per descriptor, in order; the first denial makes the request OVER_LIMIT
//     and the remaining descriptors are not charged (status UNKNOWN). Limits and
//     remaining counts are read back from RateLimit-* / X-RateLimit-* headers.
//
// An adapter that fails (fail-closed) makes the call fail with UNAVAILABLE, so
// Envoy's failure_mode_allow / failure_mode_deny decides.

import * as grpc from '@grpc/grpc-js';
import type { HeaderPair } from '../abi/pairs.js';
import type { MixerConfig } from '../config/schema.js';
import type { LoadedPlugin, WasmHost } from '../host.js';
import type { HostLogger } from '../log/logger.js';
import type { HostStream } from '../chain/chain.js';
import type { Bag } from './attributes.js';
import { FILTER_STATE_PREFIX, REQUEST_HEADERS } from './attributes.js';
import { pluginRemote, type ResolvedRemote } from '../config/remote.js';
import type { Executor, Execution } from './executor.js';
import { applyHeaderOps, type HeaderOperation } from './header-ops.js';
import { httpToGrpcCode, HeaderOp, nsToDuration, serviceError, type PbDuration, type PbStatus, type PbTimestamp } from './protos.js';
import { HITS_ADDEND, type Tracker } from './tracker.js';

// --- message shapes (proto field names) ---------------------------------------------------------

interface SocketAddress {
  address?: string;
  port_value?: number;
}
interface Peer {
  address?: { socket_address?: SocketAddress; pipe?: { path?: string } };
  principal?: string;
  service?: string;
}
interface HeaderValue {
  key?: string;
  value?: string;
  raw_value?: Uint8Array;
}
interface HttpRequest {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  header_map?: { headers?: HeaderValue[] };
  path?: string;
  host?: string;
  scheme?: string;
  size?: number;
  protocol?: string;
}
export interface AuthzCheckRequest {
  attributes?: {
    source?: Peer;
    destination?: Peer;
    request?: { time?: PbTimestamp; http?: HttpRequest };
    context_extensions?: Record<string, string>;
    tls_session?: { sni?: string };
  };
}
interface HeaderValueOption {
  header: HeaderValue;
  append?: { value: boolean };
  append_action?: number;
}
/** HeaderValueOption.HeaderAppendAction (envoy/config/core/v3/base.proto). */
const APPEND_IF_EXISTS_OR_ADD = 0;
const OVERWRITE_IF_EXISTS_OR_ADD = 2;
export interface AuthzCheckResponse {
  status: PbStatus;
  denied_response?: { status: { code: number }; headers: HeaderValueOption[]; body: string };
  ok_response?: { headers: HeaderValueOption[]; headers_to_remove: string[]; response_headers_to_add: HeaderValueOption[] };
  dynamic_metadata?: { fields: Record<string, { string_value: string }> };
}

export interface RateLimitRequest {
  domain?: string;
  descriptors?: Array<{ entries?: Array<{ key?: string; value?: string }>; hits_addend?: { value?: number } }>;
  hits_addend?: number;
}
const RL_OK = 1;
const RL_OVER_LIMIT = 2;
const RL_UNKNOWN = 0;
interface DescriptorStatus {
  code: number;
  current_limit?: { requests_per_unit: number; unit: number; name?: string };
  limit_remaining?: number;
  duration_until_reset?: PbDuration;
}
export interface RateLimitResponse {
  overall_code: number;
  statuses: DescriptorStatus[];
  response_headers_to_add: HeaderValue[];
  request_headers_to_add: HeaderValue[];
  raw_body?: Uint8Array;
}

// --- helpers ------------------------------------------------------------------------------------

const put = (bag: Bag, name: string, t: 'string' | 'int64' | 'bool' | 'timestamp' | 'bytes', v: string | number | boolean | bigint | Uint8Array) => bag.set(name, { t, v });

function peer(bag: Bag, p: Peer | undefined, prefix: 'source' | 'destination'): void {
  const sa = p?.address?.socket_address;
  if (sa?.address) put(bag, `${prefix}.ip`, 'string', sa.address);
  if (sa?.port_value) put(bag, `${prefix}.port`, 'int64', sa.port_value);
}

/** Both the deprecated `append` (older Envoys) and `append_action` (current ones), saying the same. */
function option(k: string, v: string, append: boolean): HeaderValueOption {
  return { header: { key: k, value: v }, append: { value: append }, append_action: append ? APPEND_IF_EXISTS_OR_ADD : OVERWRITE_IF_EXISTS_OR_ADD };
}

/** Header pairs as options: repeated names are appended after the first. */
function pairsToOptions(pairs: readonly HeaderPair[]): HeaderValueOption[] {
  const seen = new Set<string>();
  return pairs.map(([k, v]) => {
    const o = option(k, v, seen.has(k));
    seen.add(k);
    return o;
  });
}

function opsToOptions(ops: readonly HeaderOperation[]): { set: HeaderValueOption[]; remove: string[] } {
  const set: HeaderValueOption[] = [];
  const remove: string[] = [];
  for (const o of ops) {
    if (o.op === HeaderOp.Remove) remove.push(o.name);
    else set.push(option(o.name, o.value, o.op === HeaderOp.Append));
  }
  return { set, remove };
}

/** The headers a response would carry after `ops` (for RateLimit-* parsing and RLS headers). */
function headersAfter(ops: readonly HeaderOperation[]): HeaderPair[] {
  const list: HeaderPair[] = [];
  applyHeaderOps(list, ops);
  return list;
}

function header(h: readonly HeaderPair[], ...names: string[]): string | undefined {
  for (const n of names) for (const [k, v] of h) if (k === n) return v;
  return undefined;
}

const UNIT_BY_SECONDS: Record<number, number> = { 1: 1, 60: 2, 3600: 3, 86400: 4, 604800: 7 };

/** current_limit / limit_remaining / duration_until_reset from RateLimit-* or X-RateLimit-* headers. */
export function limitsFromHeaders(h: readonly HeaderPair[]): Omit<DescriptorStatus, 'code'> {
  const out: Omit<DescriptorStatus, 'code'> = {};
  const limit = header(h, 'ratelimit-limit', 'x-ratelimit-limit');
  const policy = header(h, 'ratelimit-policy', 'x-ratelimit-policy') ?? limit;
  const n = limit !== undefined ? /^\s*(\d+)/.exec(limit) : null;
  if (n) {
    const w = policy !== undefined ? /w=(\d+)/.exec(policy) : null;
    const name = policy !== undefined ? /name="([^"]*)"/.exec(policy) : null;
    out.current_limit = { requests_per_unit: Number(n[1]), unit: w ? (UNIT_BY_SECONDS[Number(w[1])] ?? 0) : 0, ...(name ? { name: name[1] } : {}) };
  }
  const rem = header(h, 'ratelimit-remaining', 'x-ratelimit-remaining');
  if (rem !== undefined && /^\s*\d+/.test(rem)) out.limit_remaining = Number(/\d+/.exec(rem)![0]);
  const reset = header(h, 'ratelimit-reset', 'x-ratelimit-reset', 'retry-after');
  if (reset !== undefined && /^\s*\d+\s*$/.test(reset)) out.duration_until_reset = nsToDuration(BigInt(reset.trim()) * 1_000_000_000n);
  return out;
}

/**
 * The hits a descriptor costs, as envoyproxy/ratelimit counts them: the descriptor's own
 * hits_addend when set (0 = check without charging), else the request's, where 0 (unset) means 1.
 */
function hitsOf(req: RateLimitRequest, d: NonNullable<RateLimitRequest['descriptors']>[number]): number {
  if (d.hits_addend !== undefined && d.hits_addend !== null) return Number(d.hits_addend.value ?? 0);
  return Math.max(1, Number(req.hits_addend ?? 0));
}

// --- the services ------------------------------------------------------------------------------------

export class EnvoyServices {
  constructor(
    private readonly config: MixerConfig,
    private readonly settings: ResolvedRemote,
    private readonly host: WasmHost,
    private readonly executor: Executor,
    private readonly tracker: Tracker,
    private readonly logger: HostLogger,
    private readonly finish: (hs: HostStream, details: string) => void,
  ) {
    void this.tracker;
    void this.logger;
  }

  private pick(names: readonly string[] | null, fallback: (p: LoadedPlugin) => boolean): LoadedPlugin[] {
    if (names !== null) return names.map((n) => this.host.plugins.find((p) => p.config.name === n)).filter((p): p is LoadedPlugin => p !== undefined);
    return this.host.plugins.filter(fallback);
  }

  /** ext_authz plugins: remote.server.extAuthz.plugins, else every plugin not in the STATS phase. */
  authzPlugins(): LoadedPlugin[] {
    return this.pick(this.settings.server.extAuthz, (p) => p.config.phase !== 'STATS');
  }

  /**
   * The plugins that serve a RateLimitRequest's domain: remote.server.rateLimit.domains[domain].plugins;
   * for a domain not listed there, what rateLimit.unknownDomain says: `default` (rateLimit.plugins, else
   * the quota adapters (remote.prefetch), else every non-STATS plugin), `ok` (null: no limits), or
   * `error` (the call fails with NOT_FOUND).
   */
  rateLimitPlugins(domain = ''): LoadedPlugin[] | null {
    const rl = this.settings.server;
    const mapped = rl.rateLimitDomains !== null && Object.hasOwn(rl.rateLimitDomains, domain) ? rl.rateLimitDomains[domain]! : undefined;
    if (mapped !== undefined) return this.pick(mapped, () => false);
    if (rl.rateLimitUnknownDomain === 'ok') return null;
    if (rl.rateLimitUnknownDomain === 'error') {
      throw serviceError(grpc.status.NOT_FOUND, `rate limit domain "${domain.slice(0, 100)}" is not configured (remote.server.rateLimit.domains)`);
    }
    const quota = this.host.plugins.filter((p) => pluginRemote(this.config, p.config).prefetch);
    return this.pick(rl.rateLimit, (p) => (quota.length > 0 ? quota.includes(p) : p.config.phase !== 'STATS'));
  }

  private failure(x: Execution, api: string): grpc.ServiceError | null {
    if (!x.adapterFailed) return null;
    const r = x.outcome.reply!;
    return serviceError(grpc.status.UNAVAILABLE, `${api}: adapter ${r.adapter} failed (${r.details}); Envoy's failure mode decides`);
  }

  async authorize(raw: object): Promise<AuthzCheckResponse> {
    const req = raw as AuthzCheckRequest;
    const a = req.attributes ?? {};
    const http = a.request?.http ?? {};
    const map = http.headers ?? {};
    const bag: Bag = new Map();
    const headers: HeaderPair[] = [
      [':method', http.method || map[':method'] || 'GET'],
      [':path', http.path || map[':path'] || '/'],
      [':authority', http.host || map[':authority'] || map.host || ''],
      [':scheme', http.scheme || map[':scheme'] || 'http'],
    ];
    if (http.header_map?.headers?.length) {
      for (const h of http.header_map.headers) {
        const k = (h.key ?? '').toLowerCase();
        if (k === '' || k.startsWith(':')) continue;
        headers.push([k, h.value ?? (h.raw_value ? Buffer.from(h.raw_value).toString('utf8') : '')]);
      }
    } else {
      for (const [k0, v] of Object.entries(map)) {
        const k = k0.toLowerCase();
        if (!k.startsWith(':')) headers.push([k, v]);
      }
    }
    if (http.id && !headers.some(([k]) => k === 'x-request-id')) headers.push(['x-request-id', http.id]);
    bag.set(REQUEST_HEADERS, { t: 'pairs', v: headers });
    peer(bag, a.source, 'source');
    peer(bag, a.destination, 'destination');
    if (a.request?.time) put(bag, 'request.time', 'timestamp', BigInt(a.request.time.seconds ?? 0) * 1_000_000_000n + BigInt(a.request.time.nanos ?? 0));
    if (http.protocol) put(bag, 'request.protocol', 'string', http.protocol);
    if (http.size !== undefined && http.size > 0) put(bag, 'request.size', 'int64', http.size);
    if (a.tls_session !== undefined) put(bag, 'connection.tls', 'bool', true);
    for (const [k, v] of Object.entries(a.context_extensions ?? {})) put(bag, `${FILTER_STATE_PREFIX}context_extensions.${k}`, 'bytes', Buffer.from(v));

    const x = await this.executor.execute(bag, this.authzPlugins(), { probeResponse: true });
    this.finish(x.hostStream, 'ext_authz');
    const err = this.failure(x, 'ext_authz');
    if (err !== null) throw err;
    const o = x.outcome;
    if (o.reply !== null || o.reset) {
      const r = o.reply ?? { status: 403, headers: [], body: new Uint8Array(0), adapter: '', details: 'reset', grpcStatus: -1 };
      const code = httpToGrpcCode(r.status) || 7;
      return {
        status: { code, message: `${r.adapter}: ${r.details || `denied with ${r.status}`}` },
        denied_response: { status: { code: r.status }, headers: pairsToOptions(r.headers), body: Buffer.from(r.body).toString('utf8') },
      };
    }
    const req_ = opsToOptions(o.requestOps);
    const res_ = opsToOptions(o.responseOps);
    const out: AuthzCheckResponse = {
      status: { code: 0, message: '' },
      ok_response: { headers: req_.set, headers_to_remove: req_.remove.filter((k) => !k.startsWith(':') && k !== 'host'), response_headers_to_add: res_.set },
    };
    if (o.dynamicState.length > 0) {
      out.dynamic_metadata = { fields: Object.fromEntries(o.dynamicState.map(([k, v]) => [k, { string_value: Buffer.from(v).toString('utf8') }])) };
    }
    return out;
  }

  async shouldRateLimit(raw: object): Promise<RateLimitResponse> {
    const req = raw as RateLimitRequest;
    const descriptors = req.descriptors ?? [];
    if (descriptors.length === 0) throw serviceError(grpc.status.INVALID_ARGUMENT, 'rate limit descriptor list must not be empty');
    const domain = req.domain ?? '';
    const plugins = this.rateLimitPlugins(domain);
    const res: RateLimitResponse = { overall_code: RL_OK, statuses: [], response_headers_to_add: [], request_headers_to_add: [] };
    if (plugins === null) {
      // A domain with no configured limits: OK for every descriptor, nothing counted (as envoyproxy/ratelimit).
      for (let i = 0; i < descriptors.length; i++) res.statuses.push({ code: RL_OK });
      return res;
    }
    for (const d of descriptors) {
      if (res.overall_code === RL_OVER_LIMIT) {
        res.statuses.push({ code: RL_UNKNOWN });
        continue;
      }
      const bag: Bag = new Map();
      const headers: HeaderPair[] = [
        [':method', 'GET'],
        [':path', '/'],
        [':authority', domain],
        [':scheme', 'http'],
      ];
      const state: Array<[string, string]> = [
        [HITS_ADDEND, String(hitsOf(req, d))],
        ['ratelimit.domain', domain],
      ];
      const setPseudo = (name: string, v: string) => {
        const i = headers.findIndex(([k]) => k === name);
        headers[i] = [name, v];
      };
      for (const e of d.entries ?? []) {
        const key = (e.key ?? '').toLowerCase();
        const value = e.value ?? '';
        state.push([`ratelimit.descriptor.${e.key ?? ''}`, value]);
        if (key === 'remote_address' || key === 'masked_remote_address') put(bag, 'source.ip', 'string', value);
        else if (key === 'path' || key === ':path') setPseudo(':path', value);
        else if (key === 'method' || key === ':method') setPseudo(':method', value);
        else if (key === 'authority' || key === 'host' || key === ':authority') setPseudo(':authority', value);
        else if (key === 'destination_cluster') put(bag, 'cluster_name', 'string', value);
        else if (key !== '') headers.push([key, value]);
      }
      bag.set(REQUEST_HEADERS, { t: 'pairs', v: headers });
      const x = await this.executor.execute(bag, plugins, { probeResponse: true, state });
      this.finish(x.hostStream, 'ratelimit');
      const err = this.failure(x, 'ShouldRateLimit');
      if (err !== null) throw err;
      const o = x.outcome;
      if (o.reply !== null || o.reset) {
        const h = o.reply?.headers ?? [];
        res.overall_code = RL_OVER_LIMIT;
        res.statuses.push({ code: RL_OVER_LIMIT, ...limitsFromHeaders(h) });
        res.response_headers_to_add = h.filter(([k]) => k !== 'content-length').map(([key, value]) => ({ key, value }));
        if (o.reply !== null && o.reply.body.length > 0) res.raw_body = o.reply.body;
      } else {
        const after = headersAfter(o.responseOps);
        res.statuses.push({ code: RL_OK, ...limitsFromHeaders(after) });
        res.response_headers_to_add.push(...after.map(([key, value]) => ({ key, value })));
        res.request_headers_to_add.push(...headersAfter(o.requestOps.filter((op) => op.op !== HeaderOp.Remove)).map(([key, value]) => ({ key, value })));
      }
    }
    if (res.overall_code === RL_OVER_LIMIT) {
      // Only the denying limit's headers describe the answer.
      res.request_headers_to_add = [];
    }
    return res;
  }
}
