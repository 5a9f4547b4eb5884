// The proxy runs the log phase (proxy_on_done, proxy_on_log, proxy_on_delete) of the requests
// that ended during one turn of the event loop together, at the end of that turn
// (setImmediate), adapter by adapter (HostStream.finishAll). A request's response is complete
// before its log phase either way; what changes is that an adapter's log phase for k requests
// runs back to back with its code and memory in the CPU caches, instead of each request's
// four log phases running between the HTTP work of other requests, which evicts them.
//
// Bounded by the requests that end in one turn (no timer beyond one setImmediate); the proxy
// flushes what is pending before it closes its VMs (flushLogPhases), so no entry is lost.

import { HostStream } from '../chain/chain.js';

const pending: HostStream[] = [];
let scheduled = false;

/** Queues `s`'s log phase for the end of this event-loop turn. */
export function finishSoon(s: HostStream): void {
  pending.push(s);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushLogPhases);
  }
}

/** Runs every queued log phase now. */
export function flushLogPhases(): void {
  scheduled = false;
  if (pending.length === 0) return;
  HostStream.finishAll(pending.splice(0));
}
