// Moving a body through the chain's body callbacks when some adapter asks for it
// (a body nobody asks for is relayed untouched, relay.ts and upstream-response.ts).

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

/** What a body pump does with the chain's answers. */
export interface PumpSink {
  process(chunk: Uint8Array, eos: boolean): Maybe<Uint8Array | Decision>;
  trailers(t: HeaderPair[]): Maybe<Uint8Array | Decision>;
  emit(data: Uint8Array, eos: boolean): void;
  stop(d: Decision): void;
  fail(e: unknown): void;
}

/**
 * A body fed chunk by chunk (push) through the chain's body callbacks. While an adapter
 * is paused the pump asks its source to pause (data() returns false) and calls `resume`
 * when it may go on. At the end, trailers (if the message has any) go through the
 * trailer callbacks instead of a last empty body chunk, as the spec orders it.
 */
export class BodyPump {
  private stopped = false;

  constructor(
    private readonly sink: PumpSink,
    private readonly resume: () => void,
  ) {}

  /** False: pause the source until `resume` is called. */
  data(chunk: Uint8Array): boolean {
    if (this.stopped) return true;
    const r = this.sink.process(chunk, false);
    if (!isPromise(r)) {
      this.handle(r, false);
      return true;
    }
    r.then((v) => this.handle(v, false) && this.resume(), this.sink.fail);
    return false;
  }

  end(trailers: HeaderPair[]): void {
    if (this.stopped) return;
    then(trailers.length > 0 ? this.sink.trailers(trailers) : this.sink.process(EMPTY, true), (v) => void this.handle(v, true), this.sink.fail);
  }

  private handle(r: Uint8Array | Decision, eos: boolean): boolean {
    if (r instanceof Uint8Array) {
      this.sink.emit(r, eos);
      return true;
    }
    this.stopped = true;
    this.resume(); // the rest of the body is drained, not held
    this.sink.stop(r);
    return false;
  }
}

/** Feeds a readable (a request or an upstream response from node:http) through a BodyPump. */
export function pumpBody(src: IncomingMessage, sink: PumpSink): void {
  const pump = new BodyPump(sink, () => void src.resume());
  src.on('data', (chunk: Buffer) => void (pump.data(chunk) || src.pause()));
  src.on('end', () => pump.end(trailerPairs(src.rawTrailers)));
}
