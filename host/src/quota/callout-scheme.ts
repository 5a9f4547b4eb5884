// redis(s)://, redis+cluster:// and redis+sentinel:// clusters serve the quota
// lease protocol (quota/lease.ts), loaded on the first call-out so a proxy without
// such a cluster never loads ioredis.

import { registerCalloutScheme } from '../transport/http-call.js';

registerCalloutScheme('redis', (req) => import('./lease.js').then((m) => m.redisLeaseCall(req)));
