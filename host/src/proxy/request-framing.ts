// How the proxy frames a request body that adapters see (proxy_on_request_body).
// Envoy keeps the client's Content-Length unless the body changes; so does this
// host. The upstream request is only opened (its headers written) with its first
// body bytes, so the decision waits until then:
//   * the whole body is known (end of stream): Content-Length is the length of
//     what is forwarded (the client's value when no adapter changed the body);
//   * part of it is known and adapters kept its length so far: Content-Length
//     stays; if they change the length after that, the request cannot be framed
//     any more and is abandoned (BODY_LENGTH_CHANGED; an adapter that rewrites a
//     streamed body removes content-length in on_request_headers, as in Envoy);
//   * part of it is known and its length already changed: chunked.

import type { HeaderPair } from '../abi/pairs.js';

export class RequestFraming {
  private inBytes = 0;
  private outBytes = 0;
  private committed = false;

  /** `open` sends the request head: with this Content-Length, or chunked (null). Called once. */
  private constructor(
    private readonly open: (contentLength: number | null) => void,
    private declared: number | null,
  ) {}

  /** Framing for a request whose body adapters see, or null when there is no Content-Length to keep. */
  static forRequest(headers: readonly HeaderPair[], open: (contentLength: number | null) => void): RequestFraming | null {
    const cl = headers.find(([k]) => k === 'content-length')?.[1];
    if (cl === undefined || !/^\d{1,15}$/.test(cl)) return null;
    return new RequestFraming(open, Number(cl));
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
      if (eos) this.declared = total;
      else if (total !== this.inBytes) this.declared = null;
      this.open(this.declared);
    }
    this.outBytes += n;
    const d = this.declared;
    return d === null || (this.outBytes <= d && (!eos || this.outBytes === d));
  }
}
