// redis(s)://, redis+cluster:// and redis+sentinel:// clusters serve the quota
// lease protocol (quota/lease.ts), loaded on the first call-out so a proxy without
// such a cluster never loads ioredis.

import { registerCalloutScheme } from '../transport/http-call.js';

let lease: Promise<typeof import('./lease.js')> | null = null;

registerCalloutScheme('redis', (req) => (lease ??= import('./lease.js')).then((m) => m.redisLeaseCall(req)));

/** Closes the Redis clients lease call-outs opened (at shutdown); loads nothing when none ran. */
export async function closeLeaseClients(): Promise<void> {
  if (lease !== null) await (await lease).closeRedisClients();
}
