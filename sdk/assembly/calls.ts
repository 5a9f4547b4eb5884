// Outstanding HTTP call-outs by token.

import { HttpCallback, AdapterHttpCallback } from "./context";

export class PendingCall {
  constructor(
    public streamId: u32,
    public rootId: u32,
    public cb: HttpCallback | null,
    public adapterCb: AdapterHttpCallback | null,
  ) {}
}

export const pendingCalls = new Map<u32, PendingCall>();

export function registerCall(
  token: u32, streamId: u32, rootId: u32, cb: HttpCallback | null, adapterCb: AdapterHttpCallback | null,
): void {
  pendingCalls.set(token, new PendingCall(streamId, rootId, cb, adapterCb));
}
