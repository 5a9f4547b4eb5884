// The call-out transport a worker uses for its local quota limits: the quota adapter
// sends the same HTTP-shaped lease it sends to Redis in global mode (POST
// /quota/v1/lease, JSON) to the built-in cluster PRIMARY_QUOTA_CLUSTER, and this
// forwards it over IPC to the primary's LeaseStore (lease-store.ts).

import type { HeaderPair } from '../abi/pairs.js';
import type { HttpCallRequest, HttpCallResult } from '../transport/types.js';
import { LEASE_PATH, parseLease, READY_PATH, type LeaseResponse } from '../quota/lease-protocol.js';
import type { Rpc } from './rpc.js';

/** The cluster name the quota adapter finds in the `wasm_mixer.worker_quota_cluster` property, and its url. */
export const PRIMARY_QUOTA_CLUSTER = 'wasm_mixer_primary_quota';
export const PRIMARY_QUOTA_URL = 'wasm-mixer-primary://quota';

let channel: Rpc | null = null;

/** Set once in a worker process, when it connects to its primary. */
export function setPrimaryChannel(rpc: Rpc | null): void {
  channel = rpc;
}

const JSON_HEADERS: HeaderPair[] = [['content-type', 'application/json']];

function reply(status: number, body: unknown): HttpCallResult {
  return { headers: [[':status', String(status)], ...JSON_HEADERS], body: Buffer.from(JSON.stringify(body)), trailers: [] };
}

export async function primaryLeaseCall(req: HttpCallRequest): Promise<HttpCallResult> {
  const pseudo = (k: string) => req.headers.find(([n]) => n === k)?.[1] ?? '';
  // The adapter's startup probe: the primary is there as long as the IPC channel is.
  if (pseudo(':path').split('?')[0] === READY_PATH) return channel !== null ? reply(200, { ready: true }) : reply(503, { error: 'no primary' });
  if (pseudo(':path').split('?')[0] !== LEASE_PATH) return reply(404, { error: `the primary answers POST ${LEASE_PATH} only` });
  if (pseudo(':method') !== 'POST') return reply(405, { error: 'lease requests are POST' });
  let lease;
  try {
    lease = parseLease(req.body);
  } catch (err) {
    return reply(400, { error: (err as Error).message });
  }
  // The budget is keyed per VM id (the cluster url's path), as shared data is per vm_id.
  lease.key = `${decodeURIComponent(new URL(req.baseUrl).pathname.slice(1))}\u0000${lease.key}`;
  const rpc = channel;
  if (rpc === null) throw new Error('no primary: this process is not a wasm-mixer worker');
  if (req.signal.aborted) throw new Error('quota lease aborted');
  const aborted = new Promise<never>((_, reject) => req.signal.addEventListener('abort', () => reject(new Error('quota lease aborted')), { once: true }));
  aborted.catch(() => {}); // settles after the race when the caller gives up later
  const r = await Promise.race([rpc.call<LeaseResponse>('lease', lease, Math.max(1, req.timeoutMs)), aborted]);
  return reply(200, r);
}
