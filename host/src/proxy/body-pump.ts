// Moving a body through the chain's body callbacks when some adapter asks for it
// (a body nobody asks for is piped untouched, in upstream.ts).

import type { IncomingMessage } from 'node:http';
import type { HeaderPair } from '../abi/pairs.js';
import { isPromise, type Decision, type Maybe } from '../chain/chain.js';
import { EMPTY } from '../stream/http-stream.js';
import { trailerPairs } from './headers.js';

/** Runs `k` on a value now, or when its promise settles. */
export function then<T>(v: Maybe<T>, k: (t: T) => void, onError: (e: unknown) => void): void {
  if (isPromise(v)) v.then(k, onError);
  else {
    try {
      k(v);
    } catch (e) {
      onError(e);
    }
  }
}

/**
 * Feeds a readable through the chain's body callbacks, honouring backpressure while an
 * adapter is paused. At the end, trailers (if the message has any) go through the
 * trailer callbacks instead of a last empty body chunk, as the spec orders it.
 */
export function pumpBody(
  src: IncomingMessage,
  process: (chunk: Uint8Array, eos: boolean) => Maybe<Uint8Array | Decision>,
  trailers: (t: HeaderPair[]) => Maybe<Uint8Array | Decision>,
  emit: (data: Uint8Array, eos: boolean) => void,
  stop: (d: Decision) => void,
  fail: (e: unknown) => void,
): void {
  let stopped = false;
  const handle = (r: Uint8Array | Decision, eos: boolean): boolean => {
    if (r instanceof Uint8Array) {
      emit(r, eos);
      return true;
    }
    stopped = true;
    src.resume();
    stop(r);
    return false;
  };
  src.on('data', (chunk: Buffer) => {
    if (stopped) return;
    const r = process(chunk, false);
    if (isPromise(r)) {
      src.pause();
      r.then((v) => handle(v, false) && src.resume(), fail);
    } else handle(r, false);
  });
  src.on('end', () => {
    if (stopped) return;
    const t = trailerPairs(src.rawTrailers);
    then(t.length > 0 ? trailers(t) : process(EMPTY, true), (v) => void handle(v, true), fail);
  });
}
