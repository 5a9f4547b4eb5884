// A request and its response as request.ts hands them to upstream.ts.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HostStream, LocalReply } from '../chain/chain.js';
import type { WasmHost } from '../host.js';

/** A request and its response, with the three ways the proxy ends one itself. */
export interface Exchange {
  readonly host: WasmHost;
  readonly stream: HostStream;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Answers locally (framed here), or closes the response if its headers already went out. */
  reply(r: LocalReply): void;
  /** Resets both sides (flag DC). */
  reset(): void;
  /** An error in the proxy itself: logged, answered 500. */
  fail(e: unknown): void;
}
