// A worker's local quota limits lease from the primary over IPC
// (workers/lease-client.ts): the built-in wasm-mixer-primary: cluster.

import { registerCalloutScheme } from '../transport/http-call.js';

registerCalloutScheme('wasm-mixer-primary:', (req) => import('./lease-client.js').then((m) => m.primaryLeaseCall(req)));
