// Loads the .proto files in proto/ once (with @grpc/proto-loader, i.e. protobufjs
// reflection: no generated code to keep in sync) and exposes the service
// definitions plus TypeScript shapes of the messages this package builds and reads.
//
// Loader options: keepCase (proto field names, as in Envoy's JSON), longs as
// numbers (no int64 here exceeds 2^53), enums as numbers, no defaults (absent
// fields stay absent), oneofs as a virtual field naming the one that is set.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The repository's proto/ folder (found from this file, in host/src/oop or dist/host/src/oop). */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, 'wasm_mixer', 'v1', 'mixer.proto'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('cannot find the proto/ folder of wasm-mixer (looked upwards from host/src/oop)');
}

export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: Number, defaults: false, oneofs: true };

export const PROTO_FILES = [
  'wasm_mixer/v1/mixer.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/service/ratelimit/v3/rls.proto',
  'grpc/health/v1/health.proto',
];

export const SERVICE_NAMES = {
  mixer: 'wasm_mixer.v1.Mixer',
  authorization: 'envoy.service.auth.v3.Authorization',
  rateLimit: 'envoy.service.ratelimit.v3.RateLimitService',
  health: 'grpc.health.v1.Health',
} as const;

export interface Protos {
  readonly definition: protoLoader.PackageDefinition;
  readonly mixer: grpc.ServiceDefinition;
  readonly authorization: grpc.ServiceDefinition;
  readonly rateLimit: grpc.ServiceDefinition;
  readonly health: grpc.ServiceDefinition;
  readonly MixerClient: grpc.ServiceClientConstructor;
}

let cached: Protos | null = null;
let loggerSet = false;

/**
 * grpc-js writes its own errors to stderr ("E No address added ..."); send them to the
 * host's log at debug level instead: every failure they describe is also reported by
 * this package with a code (SERVER_START_FAILED, REMOTE_UNAVAILABLE, ...).
 */
export function routeGrpcLogs(log: (message: string) => void): void {
  if (loggerSet) return;
  loggerSet = true;
  const line = (...args: unknown[]) => log(args.map(String).join(' '));
  grpc.setLogger({ error: line, info: line, debug: line } as unknown as Partial<Console>);
}

export function loadProtos(): Protos {
  if (cached !== null) return cached;
  const definition = protoLoader.loadSync(PROTO_FILES, { ...LOADER_OPTIONS, includeDirs: [protoDir()] });
  const service = (name: string) => definition[name] as grpc.ServiceDefinition;
  const MixerClient = grpc.makeClientConstructor(service(SERVICE_NAMES.mixer), SERVICE_NAMES.mixer) as unknown as grpc.ServiceClientConstructor;
  cached = {
    definition,
    mixer: service(SERVICE_NAMES.mixer),
    authorization: service(SERVICE_NAMES.authorization),
    rateLimit: service(SERVICE_NAMES.rateLimit),
    health: service(SERVICE_NAMES.health),
    MixerClient,
  };
  return cached;
}

// --- message shapes (proto field names; optional because proto3 + defaults:false) ------

export interface PbDuration {
  seconds?: number;
  nanos?: number;
}
export interface PbTimestamp {
  seconds?: number;
  nanos?: number;
}
export interface PbStatus {
  code?: number;
  message?: string;
}

export interface PbStringPairs {
  keys?: number[];
  values?: number[];
}
export interface PbCompressedAttributes {
  words?: string[];
  strings?: Record<string, number>;
  int64s?: Record<string, number>;
  doubles?: Record<string, number>;
  bools?: Record<string, boolean>;
  timestamps?: Record<string, PbTimestamp>;
  durations?: Record<string, PbDuration>;
  bytes?: Record<string, Uint8Array>;
  string_maps?: Record<string, { entries?: Record<string, number> }>;
  string_pairs?: Record<string, PbStringPairs>;
}

export const enum Condition {
  Unspecified = 0,
  Absence = 1,
  Exact = 2,
  Regex = 3,
}
export interface PbAttributeMatch {
  name?: number;
  condition?: number;
  regex?: string;
  map_key?: number;
  has_map_key?: boolean;
}
export interface PbReferencedAttributes {
  words?: string[];
  attribute_matches?: PbAttributeMatch[];
}

export const enum HeaderOp {
  Replace = 0,
  Remove = 1,
  Append = 2,
}
export interface PbHeaderOperation {
  name?: string;
  value?: string;
  operation?: number;
}
export interface PbRouteDirective {
  request_header_operations?: PbHeaderOperation[];
  response_header_operations?: PbHeaderOperation[];
  direct_response_code?: number;
  direct_response_body?: Uint8Array;
  direct_response_headers?: Array<{ name?: string; value?: string }>;
  direct_response_grpc_status?: number;
}

export interface PbMetricUpdate {
  adapter?: string;
  name?: string;
  type?: number;
  op?: number;
  value?: number;
}
export interface PbLogLine {
  adapter?: string;
  level?: number;
  message?: string;
}
export interface PbEffect {
  metric?: PbMetricUpdate;
  log?: PbLogLine;
  effect?: 'metric' | 'log';
}

export interface PbPreconditionResult {
  status?: PbStatus;
  valid_duration?: PbDuration;
  valid_use_count?: number;
  referenced_attributes?: PbReferencedAttributes;
  route_directive?: PbRouteDirective;
  denied_by?: string;
  details?: string;
  reset?: boolean;
  dynamic_state?: Array<{ key?: string; value?: Uint8Array }>;
  effects?: PbEffect[];
  uncacheable_reason?: string;
}
export interface PbQuotaResult {
  valid_duration?: PbDuration;
  granted_amount?: number;
  referenced_attributes?: PbReferencedAttributes;
  precondition?: PbPreconditionResult;
  denial?: PbPreconditionResult;
}

export interface PbCheckRequest {
  attributes?: PbCompressedAttributes;
  global_word_count?: number;
  deduplication_id?: string;
  quotas?: Record<string, { amount?: number; best_effort?: boolean }>;
  adapters?: string[];
  keep_session?: boolean;
}
export interface PbCheckResponse {
  precondition?: PbPreconditionResult;
  quotas?: Record<string, PbQuotaResult>;
  session_id?: string;
}

export const INDEPENDENT_ENCODING = 1;
export interface PbReportEntry {
  adapters?: number[];
  session_id?: string;
  replay?: PbEffect[];
}
export interface PbReportRequest {
  attributes?: PbCompressedAttributes[];
  default_words?: string[];
  global_word_count?: number;
  repeated_attributes_semantics?: number;
  entries?: PbReportEntry[];
}

export interface PbAdapterInfo {
  name?: string;
  module_sha256?: string;
  config_sha256?: string;
  healthy?: boolean;
  failure?: string;
}
export interface PbDescribeResponse {
  server_id?: string;
  version?: string;
  global_word_count?: number;
  adapters?: PbAdapterInfo[];
}

// --- durations -----------------------------------------------------------------------------

export function msToDuration(ms: number): PbDuration {
  const s = Math.floor(ms / 1000);
  return { seconds: s, nanos: Math.round((ms - s * 1000) * 1e6) };
}

export function durationToMs(d: PbDuration | undefined): number {
  if (d === undefined) return 0;
  return (d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6;
}

export function nsToDuration(ns: bigint): PbDuration {
  const s = ns / 1_000_000_000n;
  return { seconds: Number(s), nanos: Number(ns - s * 1_000_000_000n) };
}

export function durationToNs(d: PbDuration | PbTimestamp | undefined): bigint {
  if (d === undefined) return 0n;
  return BigInt(d.seconds ?? 0) * 1_000_000_000n + BigInt(d.nanos ?? 0);
}

/** google.rpc.Code names, for metric labels and messages. */
export const GRPC_CODE_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export function grpcCodeName(code: number): string {
  return GRPC_CODE_NAMES[code] ?? `CODE_${code}`;
}

/** The google.rpc.Code that best describes an HTTP status of a local reply. */
export function httpToGrpcCode(status: number): number {
  if (status < 400) return 0;
  switch (status) {
    case 400: return 3; // INVALID_ARGUMENT
    case 401: return 16; // UNAUTHENTICATED
    case 403: return 7; // PERMISSION_DENIED
    case 404: return 5; // NOT_FOUND
    case 409: return 10; // ABORTED
    case 429: return 8; // RESOURCE_EXHAUSTED
    case 499: return 1; // CANCELLED
    case 501: return 12; // UNIMPLEMENTED
    case 503: return 14; // UNAVAILABLE
    case 504: return 4; // DEADLINE_EXCEEDED
    default: return status < 500 ? 9 /* FAILED_PRECONDITION */ : 13; /* INTERNAL */
  }
}

/** A gRPC error with a stable message (and metadata). */
export function serviceError(code: grpc.status, message: string, metadata?: Record<string, string>): grpc.ServiceError {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata ?? {})) md.set(k, v);
  return Object.assign(new Error(message), { code, details: message, metadata: md }) as grpc.ServiceError;
}
