// The RateLimit headers of an admitted request, written in the response phase
// straight from bytes: the limit and policy values are encoded once per parameter
// set, the numbers formatted into a reused buffer. The same headers, values and
// order as queueing them with Request.setResponseHeader, without a string or a
// queue per request. Pending headers wait in a map by context id until the
// response headers arrive, or are dropped when the request ends without them.

import { Bytes, setResponseHeader } from "wasm-mixer/sdk/assembly/hostbytes";
import { IdTable } from "wasm-mixer/sdk/assembly/idtable";
import { HeaderStyle } from "./spec";

const H_LIMIT = new Bytes("ratelimit-limit");
const H_POLICY = new Bytes("ratelimit-policy");
const H_REMAINING = new Bytes("ratelimit-remaining");
const H_RESET = new Bytes("ratelimit-reset");
const H_X_LIMIT = new Bytes("x-ratelimit-limit");
const H_X_REMAINING = new Bytes("x-ratelimit-remaining");
const H_X_RESET = new Bytes("x-ratelimit-reset");

/** What one admitted request's response gets. */
export class PendingHeaders {
  style: HeaderStyle = HeaderStyle.Draft;
  /** Draft: RateLimit-Limit; X: "limit, policy" for X-RateLimit-Limit. */
  limit: Bytes = H_LIMIT;
  /** Draft only: RateLimit-Policy. */
  policy: Bytes = H_POLICY;
  remaining: i64 = 0;
  resetMs: i64 = 0;
}

const NUM = memory.data(24, 8);
let numLen: usize = 0;

/** Decimal digits of v >= 0 into NUM. */
function formatNum(v: i64): void {
  let buf = NUM + 23;
  let n: usize = 0;
  do {
    store<u8>(buf - n, <u8>(0x30 + v % 10));
    v /= 10;
    n++;
  } while (v > 0);
  numLen = n;
}

@inline function numPtr(): usize {
  return NUM + 24 - numLen;
}

/** Writes the headers: as admit() queued them (names, values and order). */
export function writeHeaders(p: PendingHeaders): void {
  let remaining = max<i64>(0, p.remaining);
  let reset = p.resetMs <= 0 ? <i64>0 : (p.resetMs + 999) / 1000; // headerSeconds
  if (p.style == HeaderStyle.Draft) {
    setResponseHeader(H_LIMIT, p.limit.ptr, p.limit.len);
    setResponseHeader(H_POLICY, p.policy.ptr, p.policy.len);
    formatNum(remaining);
    setResponseHeader(H_REMAINING, numPtr(), numLen);
    formatNum(reset);
    setResponseHeader(H_RESET, numPtr(), numLen);
  } else {
    setResponseHeader(H_X_LIMIT, p.limit.ptr, p.limit.len);
    formatNum(remaining);
    setResponseHeader(H_X_REMAINING, numPtr(), numLen);
    formatNum(reset);
    setResponseHeader(H_X_RESET, numPtr(), numLen);
  }
}

/** Pending headers by stream context id, with a free list so steady traffic allocates none. */
export class PendingMap {
  // IdTable, not Map: a set and delete per request allocate nothing (std Map appends an entry per set)
  private byId: IdTable<PendingHeaders> = new IdTable<PendingHeaders>();
  private free: PendingHeaders[] = [];

  /** A record for this request (replacing one it had). */
  take(id: u32): PendingHeaders {
    let had = this.byId.find(id);
    if (had !== null) return had;
    let p = this.free.length > 0 ? this.free.pop() : new PendingHeaders();
    this.byId.set(id, p);
    return p;
  }

  /** Writes and forgets the request's headers, if it has any. */
  flush(id: u32): void {
    let p = this.byId.take(id);
    if (p === null) return;
    writeHeaders(p);
    this.release(p);
  }

  /** Forgets the request's headers (it ended without response headers). */
  drop(id: u32): void {
    let p = this.byId.take(id);
    if (p !== null) this.release(p);
  }

  private release(p: PendingHeaders): void {
    if (this.free.length < 1024) this.free.push(p);
  }

  get size(): i32 {
    return this.byId.size;
  }
}
