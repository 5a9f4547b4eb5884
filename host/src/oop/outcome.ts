// The result of running a chain segment's request phase, in the form both ends
// use: the server builds it from what the host did, encodes it as a Mixer-style
// PreconditionResult; the proxy decodes it, applies it, and may cache it.

import type { HeaderPair } from '../abi/pairs.js';
import { applyHeaderOps, opsFromPb, opsToPb, type HeaderOperation } from './header-ops.js';
import {
  Condition,
  durationToMs,
  httpToGrpcCode,
  msToDuration,
  type PbEffect,
  type PbPreconditionResult,
  type PbReferencedAttributes,
} from './protos.js';
import { WordDecoder, WordEncoder } from './attributes.js';
import type { Ref } from './tracker.js';

export interface Reply {
  status: number;
  headers: HeaderPair[];
  body: Uint8Array;
  /** The adapter that replied. */
  adapter: string;
  details: string;
  grpcStatus: number;
}

export interface Outcome {
  /** A local reply (deny, or a direct response), or null to let the request through. */
  reply: Reply | null;
  /** An adapter closed the stream. */
  reset: boolean;
  requestOps: HeaderOperation[];
  responseOps: HeaderOperation[];
  dynamicState: Array<[string, Uint8Array]>;
  /** Replayable effects (metric updates, log lines) the check had. */
  effects: PbEffect[];
  validDurationMs: number;
  validUseCount: number;
  refs: Ref[];
  /** Why the server said not to cache it ('' when cacheable or not said). */
  uncacheable: string;
  /** google.rpc.Status of the result. */
  code: number;
  message: string;
}

export const EMPTY_OUTCOME: Outcome = Object.freeze({
  reply: null,
  reset: false,
  requestOps: [],
  responseOps: [],
  dynamicState: [],
  effects: [],
  validDurationMs: 0,
  validUseCount: 0,
  refs: [],
  uncacheable: '',
  code: 0,
  message: '',
}) as Outcome;

// --- referenced attributes ---------------------------------------------------------------------

/** `globalCount`: the global words the receiver knows (the request's global_word_count). */
export function encodeRefs(refs: readonly Ref[], globalCount?: number): PbReferencedAttributes {
  const enc = new WordEncoder(globalCount);
  const matches = refs.map((r) => ({
    name: enc.index(r.name),
    condition: r.present ? Condition.Exact : Condition.Absence,
    ...(r.key !== undefined ? { map_key: enc.index(r.key), has_map_key: true } : {}),
  }));
  return { words: enc.words, attribute_matches: matches };
}

export function decodeRefs(pb: PbReferencedAttributes | undefined, globalCount: number): Ref[] {
  if (pb === undefined) return [];
  const dec = new WordDecoder(pb.words ?? [], globalCount);
  const out: Ref[] = [];
  for (const m of pb.attribute_matches ?? []) {
    if (m.condition === Condition.Regex) throw new Error('REGEX attribute matches are not supported');
    out.push({
      name: dec.word(m.name ?? 0),
      key: m.has_map_key ? dec.word(m.map_key ?? 0) : undefined,
      present: m.condition !== Condition.Absence,
    });
  }
  return out;
}

// --- outcome <-> PreconditionResult ------------------------------------------------------------------

export function encodeOutcome(o: Outcome, globalCount?: number): PbPreconditionResult {
  const r = o.reply;
  const code = r === null ? (o.reset ? 10 : 0) : r.status >= 400 ? httpToGrpcCode(r.status) : 0;
  return {
    status: { code, message: o.message || (r !== null ? `${r.adapter}: ${r.details || `local reply ${r.status}`}` : o.reset ? 'stream reset by an adapter' : '') },
    valid_duration: msToDuration(o.validDurationMs),
    valid_use_count: o.validUseCount,
    referenced_attributes: encodeRefs(o.refs, globalCount),
    route_directive: {
      request_header_operations: opsToPb(o.requestOps),
      response_header_operations: opsToPb(o.responseOps),
      ...(r !== null
        ? {
            direct_response_code: r.status,
            direct_response_body: r.body,
            direct_response_headers: r.headers.map(([name, value]) => ({ name, value })),
            direct_response_grpc_status: r.grpcStatus,
          }
        : {}),
    },
    denied_by: r?.adapter ?? '',
    details: r?.details ?? '',
    reset: o.reset,
    dynamic_state: o.dynamicState.map(([key, value]) => ({ key, value })),
    effects: o.effects,
    uncacheable_reason: o.uncacheable,
  };
}

export function decodeOutcome(pb: PbPreconditionResult | undefined, globalCount: number): Outcome {
  if (pb === undefined) return EMPTY_OUTCOME;
  const rd = pb.route_directive ?? {};
  const status = rd.direct_response_code ?? 0;
  const code = pb.status?.code ?? 0;
  let reply: Reply | null = null;
  if (status !== 0) {
    reply = {
      status,
      headers: (rd.direct_response_headers ?? []).map((h) => [(h.name ?? '').toLowerCase(), h.value ?? ''] as HeaderPair),
      body: rd.direct_response_body ?? new Uint8Array(0),
      adapter: pb.denied_by ?? '',
      details: pb.details ?? '',
      grpcStatus: rd.direct_response_grpc_status ?? -1,
    };
  } else if (code !== 0 && !pb.reset) {
    // A denial without a direct response (a server that only sets a status): 403, as ext_authz does.
    reply = {
      status: 403,
      headers: [['content-type', 'text/plain']],
      body: Buffer.from(`${pb.status?.message ?? 'denied'}\n`),
      adapter: pb.denied_by ?? '',
      details: pb.details || 'remote_denied',
      grpcStatus: -1,
    };
  }
  return {
    reply,
    reset: pb.reset ?? false,
    requestOps: opsFromPb(rd.request_header_operations),
    responseOps: opsFromPb(rd.response_header_operations),
    dynamicState: (pb.dynamic_state ?? []).map((d) => [d.key ?? '', d.value ?? new Uint8Array(0)]),
    effects: pb.effects ?? [],
    validDurationMs: durationToMs(pb.valid_duration),
    validUseCount: pb.valid_use_count ?? 0,
    refs: decodeRefs(pb.referenced_attributes, globalCount),
    uncacheable: pb.uncacheable_reason ?? '',
    code,
    message: pb.status?.message ?? '',
  };
}

/** Applies an allowed outcome's request-side changes to a header list and filter state. */
export function applyRequestSide(o: Outcome, headers: HeaderPair[], filterState: Map<string, Uint8Array>): void {
  if (o.requestOps.length > 0) applyHeaderOps(headers, o.requestOps);
  for (const [k, v] of o.dynamicState) filterState.set(k, v);
}
