// The proxy runs three phases of the requests of one event-loop turn together, at the end of
// that turn (one setImmediate), adapter by adapter:
// - the request-headers phase of the requests that arrived (HostStream.requestHeadersAll);
// - the response-headers phase of the responses whose headers arrived (responseHeadersAll;
//   proxy/upstream-response.ts holds what of their bodies came with them);
// - the log phase (proxy_on_done, proxy_on_log, proxy_on_delete) of those that ended
//   (HostStream.finishAll).
// An adapter's callbacks for k requests then run back to back with its code and memory in the
// CPU caches, instead of each request's adapters running between the HTTP work of other
// requests, which evicts them (bench/micro/cold-cache.js: +4-6 µs per adapter and request when
// cold). At saturation a turn holds 19-24 requests (counted); with one request per turn, as at low
// load, each waits only for the rest of its own turn.
//
// Order: request, response, then log phases, so a request that arrives and ends in the same
// turn (its client left) still sees its adapters' callbacks in the order of its life.
// Bounded by the requests of one turn (no timer beyond one setImmediate); the proxy flushes
// what is pending before it closes its VMs (flushBatchedPhases), so no entry is lost.

import type { HeaderPair } from '../abi/pairs.js';
import { HostStream, type Decision, type Maybe } from '../chain/chain.js';

/** How a request goes on once its request-headers phase has run. */
export type Then = (d: Maybe<Decision>) => void;

const starting: HostStream[] = [];
const startingEnd: boolean[] = [];
const startingThen: Then[] = [];
const responding: HostStream[] = [];
const respondingStatus: number[] = [];
const respondingHeaders: HeaderPair[][] = [];
const respondingEnd: boolean[] = [];
const respondingThen: Then[] = [];
const ending: HostStream[] = [];
let scheduled = false;

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(flushBatchedPhases);
}

/** Queues `s`'s request-headers phase for the end of this event-loop turn; `then` gets its decision. */
export function startSoon(s: HostStream, endOfStream: boolean, then: Then): void {
  starting.push(s);
  startingEnd.push(endOfStream);
  startingThen.push(then);
  schedule();
}

/** Queues `s`'s response-headers phase for the end of this event-loop turn; `then` gets its decision. */
export function respondSoon(s: HostStream, status: number, headers: HeaderPair[], endOfStream: boolean, then: Then): void {
  responding.push(s);
  respondingStatus.push(status);
  respondingHeaders.push(headers);
  respondingEnd.push(endOfStream);
  respondingThen.push(then);
  schedule();
}

/** Queues `s`'s log phase for the end of this event-loop turn. */
export function finishSoon(s: HostStream): void {
  ending.push(s);
  schedule();
}

/** Runs every queued phase now: request phases first, then response phases, then log phases. */
export function flushBatchedPhases(): void {
  scheduled = false;
  if (starting.length > 0) {
    const streams = starting.splice(0);
    const thens = startingThen.splice(0);
    const decisions = HostStream.requestHeadersAll(streams, startingEnd.splice(0));
    for (let j = 0; j < thens.length; j++) thens[j]!(decisions[j]!);
  }
  if (responding.length > 0) {
    const streams = responding.splice(0);
    const thens = respondingThen.splice(0);
    const decisions = HostStream.responseHeadersAll(streams, respondingStatus.splice(0), respondingHeaders.splice(0), respondingEnd.splice(0));
    for (let j = 0; j < thens.length; j++) thens[j]!(decisions[j]!);
  }
  if (ending.length > 0) HostStream.finishAll(ending.splice(0));
}
