// The upstream's answer on its way back: response headers through the chain, then the
// body relayed (or pumped through body callbacks) downstream, then trailers. Fed by
// either upstream client (upstream-dispatch.ts for undici, upstream.ts for node:http),
// push-style: a method that returns false asks the client to pause until `resume`.

import type { HeaderPair } from '../abi/pairs.js';
import { LogLevel } from '../abi/constants.js';
import { describeError } from '../errors.js';
import { EARLY_RESPONSE_BODY_BYTES } from '../limits.js';
import type { Decision } from '../chain/chain.js';
import { respondSoon } from './batched-phases.js';
import { BodyPump, then } from './body-pump.js';
import { addHeader, endToEndHeaders, headBytes, type OutHeaders } from './headers.js';
import type { Exchange } from './exchange.js';

const enum Mode {
  /** Waiting for the chain's response-header decision. */
  Headers,
  /** Bytes go to the client untouched. */
  Relay,
  /** Bytes go through the chain's body callbacks. */
  Pump,
  /** Answered locally or reset: the rest of the upstream body is read and dropped. */
  Discard,
}

export class ResponseRelay {
  /** Set by the client driving this relay: lets a paused upstream body flow again. */
  resume: () => void = () => {};
  private mode = Mode.Headers;
  private pump: BodyPump | null = null;
  private waitingDrain = false;
  /** True while headers() runs: a decision made there needs no resume (the client was never paused). */
  private inHeaders = false;
  /** Body chunks, their bytes and the end (trailers) that came before a deferred header decision (relayEarly). */
  private early: Buffer[] | null = null;
  private earlyBytes = 0;
  private earlyEnd: HeaderPair[] | null = null;
  /** data() asked the client to pause (early bytes past EARLY_RESPONSE_BODY_BYTES). */
  private earlyPaused = false;
  private readonly onDrain = () => {
    this.waitingDrain = false;
    this.resume();
  };

  constructor(
    private readonly ex: Exchange,
    private readonly method: string,
  ) {}

  /** The status line and raw header pairs (name, value, name, value…). False: pause until resume(). */
  headers(status: number, raw: string[]): boolean {
    const { stream, fail } = this.ex;
    const info = stream.stream.info;
    info.upstreamFirstByteMono = process.hrtime.bigint();
    if (info.responseCodeDetails === '') info.responseCodeDetails = 'via_upstream'; // as Envoy reports it
    let connection: string | undefined;
    let cl: string | undefined;
    let te = false;
    for (let i = 0; i < raw.length; i += 2) {
      const k = raw[i]!;
      if (k.length === 10 && k.toLowerCase() === 'connection') connection = connection === undefined ? raw[i + 1] : `${connection}, ${raw[i + 1]}`;
      else if (k.length === 14 && k.toLowerCase() === 'content-length') cl = raw[i + 1];
      else if (k.length === 17 && k.toLowerCase() === 'transfer-encoding') te = true;
    }
    const headers: HeaderPair[] = endToEndHeaders(raw, connection);
    const resEos = this.method === 'HEAD' || status === 204 || status === 304 || (cl === '0' && !te);
    const failed = (e: unknown) => {
      this.discard();
      fail(e);
    };
    if (stream.hasHeaders.response && !stream.needsBody.response && !stream.needsTrailers.response) {
      // The header phase runs at the end of this turn with the other responses' (batched-phases.ts);
      // the body keeps coming meanwhile and data() holds it (EARLY_RESPONSE_BODY_BYTES).
      respondSoon(stream, status, headers, resEos, (decision) => then(decision, (d) => this.decided(d, status, true), failed));
      return true;
    }
    let decided = false;
    this.inHeaders = true;
    then(stream.responseHeaders(status, headers, resEos), (d) => {
      decided = true;
      this.decided(d, status, false);
    }, failed);
    this.inHeaders = false;
    return decided;
  }

  /** The chain's response-header decision; `early`: body bytes that came meanwhile wait in this.early. */
  private decided(d: Decision, status: number, early: boolean): void {
    const { stream, res, reply, reset } = this.ex;
    const s = stream.stream;
    if (d.action === 'respond') {
      this.discard();
      return reply(d.reply);
    }
    if (d.action === 'reset') {
      this.discard();
      return reset();
    }
    const out: OutHeaders = {};
    let code = status;
    for (const [k, v] of s.responseHeaders ?? []) {
      if (k === ':status') code = Number(v) || code;
      else if (k[0] !== ':') addHeader(out, k, v);
    }
    if (stream.needsBody.response) delete out['content-length'];
    s.responseHeadersSent = true;
    s.info.responseHeaderBytes = headBytes(out);
    res.writeHead(code, out);
    if (!stream.needsBody.response && !stream.needsTrailers.response) this.mode = Mode.Relay;
    else {
      this.mode = Mode.Pump;
      this.pump = new BodyPump(
        {
          process: (chunk, eos) => stream.responseBody(chunk, eos),
          trailers: (t) => stream.responseTrailers(t),
          emit: (data, eos) => {
            if (data.length > 0) res.write(data);
            if (eos) this.endResponse();
          },
          stop: () => res.destroy(),
          fail: (e) => {
            this.ex.host.logger.log(LogLevel.Error, 'proxy', `response body processing failed: ${describeError(e)}`, { code: 'INTERNAL' });
            res.destroy();
          },
        },
        () => this.resume(),
      );
    }
    if (early) this.relayEarly();
    else this.wake();
  }

  /**
   * Relays what of the body (and its end) came before the deferred header decision. Written
   * whole, past the client's backpressure: at most EARLY_RESPONSE_BODY_BYTES, and the next
   * chunk from upstream meets the backpressure as usual.
   */
  private relayEarly(): void {
    const { early, earlyEnd, earlyPaused } = this;
    this.early = null;
    this.earlyEnd = null;
    this.earlyPaused = false;
    if (early !== null) {
      const info = this.ex.stream.stream.info;
      for (const chunk of early) {
        info.responseBytes += chunk.length;
        this.ex.res.write(chunk);
      }
    }
    if (earlyEnd !== null) this.end(earlyEnd);
    else if (earlyPaused) this.resume();
  }

  /** A chunk of the upstream body. False: pause until resume(). */
  data(chunk: Buffer): boolean {
    switch (this.mode) {
      case Mode.Relay: {
        this.ex.stream.stream.info.responseBytes += chunk.length;
        if (this.ex.res.write(chunk)) return true;
        if (!this.waitingDrain) {
          this.waitingDrain = true;
          this.ex.res.once('drain', this.onDrain);
        }
        return false;
      }
      case Mode.Pump:
        this.ex.stream.stream.info.responseBytes += chunk.length;
        return this.pump!.data(chunk);
      case Mode.Discard:
        return true;
      default: {
        // Headers: only while the header decision waits for the end of the turn (headers() returned true)
        (this.early ??= []).push(chunk);
        this.earlyBytes += chunk.length;
        if (this.earlyBytes <= EARLY_RESPONSE_BODY_BYTES) return true;
        this.earlyPaused = true;
        return false;
      }
    }
  }

  /** The end of the upstream body, with its trailers (possibly none). */
  end(trailers: HeaderPair[]): void {
    if (this.mode === Mode.Headers) this.earlyEnd = trailers;
    else if (this.mode === Mode.Relay) {
      this.ex.stream.stream.responseTrailers = trailers;
      this.endResponse();
    } else if (this.mode === Mode.Pump) this.pump!.end(trailers);
  }

  private discard(): void {
    this.mode = Mode.Discard;
    this.early = null;
    this.earlyEnd = null;
    this.wake();
  }

  private wake(): void {
    if (!this.inHeaders) this.resume();
  }

  private endResponse(): void {
    const { res, stream } = this.ex;
    const t = stream.stream.responseTrailers;
    if (t !== null && t.length > 0) res.addTrailers(t);
    res.end();
  }
}
