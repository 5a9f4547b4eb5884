// proxy_http_call's transport, chosen by the cluster URL's scheme: http(s)://
// here (transport/http.ts); other schemes are registered by the module that
// serves them (redis:// by quota/callout-scheme.ts, the workers' IPC lease
// protocol by workers/callout-scheme.ts), so this file knows none of them.
// The transport is an interface so the test harness can answer call-outs in-process.

import { performHttp } from './http.js';
import type { HttpCallTransport } from './types.js';

export type { HttpCallRequest, HttpCallResult, HttpCallTransport } from './types.js';

const schemes: Array<{ readonly prefix: string; readonly transport: HttpCallTransport }> = [];

/** Sends call-outs to clusters whose base URL starts with `prefix` through `transport` (the first registered match wins). */
export function registerCalloutScheme(prefix: string, transport: HttpCallTransport): void {
  if (!schemes.some((s) => s.prefix === prefix)) schemes.push({ prefix, transport });
}

export const performHttpCall: HttpCallTransport = (req) => {
  for (const s of schemes) if (req.baseUrl.startsWith(s.prefix)) return s.transport(req);
  return performHttp(req);
};
