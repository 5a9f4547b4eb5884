// How the proxy frames a request body that adapters see (proxy_on_request_body).
// Envoy keeps the client's Content-Length unless the body changes; so does this
// host. The upstream request's headers are only written with its first body
// bytes, so the decision waits until then:
//   * the whole body is known (end of stream): Content-Length is the length of
//     what is forwarded (the client's value when no adapter changed the body);
//   * part of it is known and adapters kept its length so far: Content-Length
//     stays; if they change the length after that, the request cannot be framed
//     any more and is abandoned (BODY_LENGTH_CHANGED; an adapter that rewrites a
//     streamed body removes content-length in on_request_headers, as in Envoy);
//   * part of it is known and its length already changed: chunked.

import type { ClientRequest } from 'node:http';
import type { HeaderPair } from '../abi/pairs.js';

export class RequestFraming {
  private inBytes = 0;
  private outBytes = 0;
  private committed = false;

  private constructor(
    private readonly up: ClientRequest,
    private declared: number | null,
  ) {}

  /** Framing for a request whose body adapters see, or null when there is no Content-Length to keep. */
  static forRequest(up: ClientRequest, headers: readonly HeaderPair[]): RequestFraming | null {
    const cl = headers.find(([k]) => k === 'content-length')?.[1];
    if (cl === undefined || !/^\d{1,15}$/.test(cl)) return null;
    return new RequestFraming(up, Number(cl));
  }

  /** Counts bytes received from the client (before adapters see them). */
  input(n: number): void {
    this.inBytes += n;
  }

  /** Call before forwarding `n` bytes (eos: the last). False: the body no longer matches the Content-Length already sent. */
  output(n: number, eos: boolean): boolean {
    if (!this.committed && (n > 0 || eos)) {
      this.committed = true;
      const total = this.outBytes + n;
      if (eos) {
        if (total !== this.declared) this.up.setHeader('content-length', String(total));
        this.declared = total;
      } else if (total !== this.inBytes) {
        this.up.removeHeader('content-length');
        this.up.setHeader('transfer-encoding', 'chunked');
        this.declared = null;
      }
    }
    this.outBytes += n;
    const d = this.declared;
    return d === null || (this.outBytes <= d && (!eos || this.outBytes === d));
  }
}
