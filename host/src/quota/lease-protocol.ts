// The quota lease protocol's shapes and request parsing (the protocol itself is described in
// lease.ts, which answers it on Redis). Kept apart from lease.ts so that what only speaks the
// protocol (the multi-worker proxy's workers, host/src/workers/lease-client.ts) does not load
// ioredis: importing it cost each worker 180-210 ms of CPU at start-up (2-core machine, under load).

export const LEASE_PATH = '/quota/v1/lease';
/** GET: 200 once Redis answers and the scripts are loaded (the adapter's startup probe, which also warms the connection). */
export const READY_PATH = '/quota/v1/ready';

export type LeaseAlgorithm = 'fixed_window' | 'sliding_window' | 'token_bucket';

export interface LeaseRequest {
  algorithm: LeaseAlgorithm;
  key: string;
  limit: number;
  want: number;
  need: number;
  window_ms: number;
  window_start?: number;
  bucket?: number;
  buckets?: number;
  bucket_ms?: number;
  burst?: number;
  rate_per_ms?: number;
}

export interface LeaseResponse {
  granted: number;
  used: number;
  remaining: number;
  retry_ms: number;
  retry_buckets: number;
}

// ---- validation ------------------------------------------------------------------------------

const MAX_KEY_BYTES = 4096;

/** A lease body that does not parse or check: answered 400 with its message. */
export class BadLease extends Error {}

function num(o: Record<string, unknown>, k: string, min: number, max: number, integer = true): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new BadLease(`"${k}" must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return v;
}

/** Parses and checks a lease body; throws with a message naming the bad field. */
export function parseLease(body: Uint8Array): LeaseRequest {
  let o: unknown;
  try {
    o = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    throw new BadLease('body is not JSON');
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new BadLease('body must be a JSON object');
  const r = o as Record<string, unknown>;
  const algorithm = r.algorithm;
  if (algorithm !== 'fixed_window' && algorithm !== 'sliding_window' && algorithm !== 'token_bucket') {
    throw new BadLease('"algorithm" must be fixed_window, sliding_window or token_bucket');
  }
  if (typeof r.key !== 'string' || r.key.length === 0 || Buffer.byteLength(r.key) > MAX_KEY_BYTES) throw new BadLease(`"key" must be a string of 1 to ${MAX_KEY_BYTES} bytes`);
  const big = Number.MAX_SAFE_INTEGER;
  const lease: LeaseRequest = {
    algorithm,
    key: r.key,
    limit: num(r, 'limit', 0, big),
    want: num(r, 'want', 1, big),
    need: r.need === undefined ? 1 : num(r, 'need', 1, big),
    window_ms: num(r, 'window_ms', 1, big),
  };
  if (algorithm === 'fixed_window') lease.window_start = num(r, 'window_start', 0, big);
  if (algorithm === 'sliding_window') {
    lease.bucket = num(r, 'bucket', 0, big);
    lease.buckets = num(r, 'buckets', 1, 3600);
    lease.bucket_ms = num(r, 'bucket_ms', 1, big);
  }
  if (algorithm === 'token_bucket') {
    lease.burst = num(r, 'burst', 0, big);
    lease.rate_per_ms = num(r, 'rate_per_ms', 1e-12, 1e12, false);
  }
  return lease;
}
