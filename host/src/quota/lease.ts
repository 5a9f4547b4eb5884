// The quota lease protocol's Redis implementation (its shapes and parsing are in
// lease-protocol.ts, which the multi-worker proxy's workers use without loading ioredis).
// About 400 lines, one file: the Lua scripts and their Redis transport (one node, Cluster,
// Sentinel) change together.
//
// The quota adapter (adapters/quota) runs in wasm and cannot open sockets. For
// global limits it leases batches of tokens with proxy_http_call to a cluster:
//
//   POST /quota/v1/lease            content-type: application/json
//   {"algorithm":"fixed_window","key":"...","limit":100,"want":10,"need":1,
//    "window_ms":60000,"window_start":1700000040000}                     (fixed window)
//   {"algorithm":"sliding_window",...,"bucket":170000004,"buckets":10,"bucket_ms":6000}
//   {"algorithm":"token_bucket",...,"burst":100,"rate_per_ms":0.00166}
//
//   200 {"granted":10,"used":40,"remaining":60,"retry_ms":0,"retry_buckets":0}
//
//   GET /quota/v1/ready             200 {"ready":true} once Redis answers (scripts loaded), else 503;
//                                   the adapter calls it once per cluster when its config loads
//
// `granted` tokens (0..want) were taken from the shared budget and are now the
// caller's to spend; `used` is the budget consumed after the grant (fixed and
// sliding windows) and `remaining` what is left; `retry_ms` (token bucket) and
// `retry_buckets` (sliding window) say when `need` tokens will be free again.
//
// When a cluster's url is redis:// or rediss://, the host's call-out transport
// answers the lease itself with one atomic Lua script per lease (this file).
// The same protocol can be served over HTTP by startLeaseServer(), so a
// proxy whose call-outs can only speak HTTP (e.g. Envoy) points the cluster at
// that server instead; the adapter is the same module either way.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Cluster, Redis } from 'ioredis';
import type { HeaderPair } from '../abi/pairs.js';
import type { HttpCallRequest, HttpCallResult } from '../transport/types.js';
import { BadLease, LEASE_PATH, parseLease, READY_PATH, type LeaseRequest, type LeaseResponse } from './lease-protocol.js';
import { parseRedisUrl } from './redis-url.js';
import { leaseDeadline } from './deadline.js';

// ---- Lua: each lease is one script, so Redis applies it atomically ---------------------------

/** Fixed window. KEYS[1] = counter of one window. ARGV: limit, want, ttl_ms. Returns {granted, used}. */
export const FIXED_WINDOW_LUA = `
local limit = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = limit - used
if grant > want then grant = want end
if grant < 0 then grant = 0 end
if grant > 0 then
  used = redis.call('INCRBY', KEYS[1], grant)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {grant, used}
`;

/**
 * Rolling window of buckets. KEYS[1] = hash bucket-index -> tokens leased in
 * that bucket. ARGV: limit, want, current bucket, buckets, ttl_ms, need.
 * Buckets that left the window are deleted. Returns {granted, used, retry_buckets}:
 * retry_buckets = how many bucket boundaries until `need` tokens are free (0 = now).
 */
export const SLIDING_WINDOW_LUA = `
local limit = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local cur = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local need = tonumber(ARGV[6])
local all = redis.call('HGETALL', KEYS[1])
local used = 0
local idx = {}
local cnt = {}
for i = 1, #all, 2 do
  local b = tonumber(all[i])
  local c = tonumber(all[i + 1])
  if b <= cur - n then
    redis.call('HDEL', KEYS[1], all[i])
  else
    used = used + c
    if cnt[b] == nil then idx[#idx + 1] = b; cnt[b] = 0 end
    cnt[b] = cnt[b] + c
  end
end
local grant = limit - used
if grant > want then grant = want end
if grant < 0 then grant = 0 end
if grant > 0 then
  redis.call('HINCRBY', KEYS[1], cur, grant)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  used = used + grant
  if cnt[cur] == nil then idx[#idx + 1] = cur; cnt[cur] = 0 end
  cnt[cur] = cnt[cur] + grant
end
local retry = 0
if used + need > limit then
  table.sort(idx)
  local u = used
  retry = n
  for _, b in ipairs(idx) do
    u = u - cnt[b]
    if u + need <= limit then retry = b + n - cur; break end
  end
end
return {grant, used, retry}
`;

/**
 * Token bucket on Redis's clock (TIME), so proxies with skewed clocks share
 * one refill schedule. KEYS[1] = hash {tokens, ts}. ARGV: burst, rate (tokens
 * per ms), want, need, ttl_ms. Returns {granted, tokens-left (string), retry_ms}.
 */
export const TOKEN_BUCKET_LUA = `
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local need = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1])
local ts = tonumber(v[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
if now > ts then tokens = tokens + (now - ts) * rate end
if tokens > burst then tokens = burst end
local grant = math.floor(tokens + 1e-9)
if grant > want then grant = want end
if grant < 0 then grant = 0 end
tokens = tokens - grant
if tokens < 0 then tokens = 0 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local retry = 0
if tokens + 1e-9 < need then retry = math.ceil((need - tokens) / rate) end
return {grant, tostring(tokens), retry}
`;

// ---- Redis -----------------------------------------------------------------------------------

type LeaseCommands = {
  wmQuotaFixed(key: string, limit: number, want: number, ttl: number): Promise<[number, number]>;
  wmQuotaSliding(key: string, limit: number, want: number, bucket: number, buckets: number, ttl: number, need: number): Promise<[number, number, number]>;
  wmQuotaToken(key: string, burst: number, rate: string, want: number, need: number, ttl: number): Promise<[number, string, number]>;
};
/** One Redis node or Sentinel-managed master (Redis), or a Redis Cluster (Cluster). */
type LeaseRedis = (Redis | Cluster) & LeaseCommands;

/** Extra seconds on top of a window before Redis expires its key (as envoyproxy/ratelimit's jitter, but fixed). */
const EXPIRY_SLACK_MS = 1000;

/**
 * Runs one lease against Redis; the script makes it atomic. Keys: fixed window
 * `KEY:<window start ms>` (a counter), sliding window `KEY:sw` (hash bucket → tokens),
 * token bucket `KEY:tb` (hash tokens, ts); each expires when it no longer matters.
 */
export async function leaseOnRedis(client: LeaseRedis, l: LeaseRequest): Promise<LeaseResponse> {
  // Redis Cluster: the key is a hash tag, so every key of one limit and dimension values (all its
  // windows) lives in one slot, on one master. Each script touches one key either way.
  const base = client instanceof Cluster ? `{${l.key.replace(/[{}]/g, '_')}}` : l.key;
  if (l.algorithm === 'fixed_window') {
    const key = `${base}:${l.window_start}`;
    const [granted, used] = await client.wmQuotaFixed(key, l.limit, l.want, l.window_ms + EXPIRY_SLACK_MS);
    return { granted: Number(granted), used: Number(used), remaining: Math.max(0, l.limit - Number(used)), retry_ms: 0, retry_buckets: 0 };
  }
  if (l.algorithm === 'sliding_window') {
    const ttl = l.window_ms + l.bucket_ms! + EXPIRY_SLACK_MS;
    const [granted, used, retry] = await client.wmQuotaSliding(`${base}:sw`, l.limit, l.want, l.bucket!, l.buckets!, ttl, l.need);
    return { granted: Number(granted), used: Number(used), remaining: Math.max(0, l.limit - Number(used)), retry_ms: 0, retry_buckets: Number(retry) };
  }
  const rate = l.rate_per_ms!;
  const ttl = Math.ceil(l.burst! / rate) + EXPIRY_SLACK_MS;
  const [granted, left, retry] = await client.wmQuotaToken(`${base}:tb`, l.burst!, String(rate), l.want, l.need, Math.min(ttl, 2 ** 31 - 1));
  const tokens = Number(left);
  return { granted: Number(granted), used: Math.max(0, Math.round(l.burst! - tokens)), remaining: Math.floor(tokens + 1e-9), retry_ms: Number(retry), retry_buckets: 0 };
}

export interface RedisClientOptions {
  /** Connection attempt timeout (ms). */
  connectTimeoutMs?: number;
}

const clients = new Map<string, LeaseRedis>();

/**
 * One client per Redis URL, shared by every adapter and call in the process.
 * Commands fail at once while disconnected (no offline queue, no retries per
 * request) so a down Redis costs a fast error, never a hang; the client keeps
 * reconnecting in the background with a capped backoff. Its socket does not keep
 * the process alive.
 */
export function redisClient(url: string, opts: RedisClientOptions = {}): LeaseRedis {
  let c = clients.get(url);
  if (c !== undefined) return c;
  const backoff = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);
  const node = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: true,
    connectTimeout: opts.connectTimeoutMs ?? 1000,
    retryStrategy: backoff,
    lazyConnect: false,
  };
  const target = parseRedisUrl(url);
  const unrefSocket = (r: Redis) => (r as unknown as { stream?: { unref?: () => void } }).stream?.unref?.();
  if (target.kind === 'cluster') {
    // Redis Cluster (redis+cluster://seed,seed): MOVED/ASK are followed and the slot map refreshed
    // by ioredis; while a master fails over, leases fail fast and the limit's on_error applies.
    const { enableOfflineQueue: _single, ...nodeOptions } = node;
    const cl = new Cluster(target.nodes, {
      // Leases queue while the cluster (re)discovers its slots — at start, during a failover — instead
      // of failing at once: the lease's deadline (timeout_ms, and the transport's timer) bounds the
      // wait, and the adapter's cap on call-outs in flight bounds the queue.
      enableOfflineQueue: true,
      enableAutoPipelining: true,
      scaleReads: 'master',
      maxRedirections: 16,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: opts.connectTimeoutMs ?? 1000,
      clusterRetryStrategy: backoff,
      redisOptions: { ...nodeOptions, username: target.username, password: target.password, tls: target.tls ? {} : undefined },
    });
    cl.on('+node', (n: Redis) => n.on('connect', () => unrefSocket(n)));
    c = cl as LeaseRedis;
  } else if (target.kind === 'sentinel') {
    // Sentinel (redis+sentinel://s1,s2/master): the client asks the sentinels for the master,
    // and again after a failover (failoverDetector also listens for +switch-master).
    c = new Redis({
      ...node,
      sentinels: target.sentinels,
      name: target.name,
      db: target.db,
      username: target.username,
      password: target.password,
      tls: target.tls ? {} : undefined,
      failoverDetector: true,
      sentinelRetryStrategy: backoff,
    }) as LeaseRedis;
  } else {
    c = new Redis(url, node) as LeaseRedis;
  }
  c.defineCommand('wmQuotaFixed', { numberOfKeys: 1, lua: FIXED_WINDOW_LUA });
  c.defineCommand('wmQuotaSliding', { numberOfKeys: 1, lua: SLIDING_WINDOW_LUA });
  c.defineCommand('wmQuotaToken', { numberOfKeys: 1, lua: TOKEN_BUCKET_LUA });
  c.on('error', () => {
    // Reported per lease (the adapter counts and logs errors); an unhandled 'error' would crash the process.
  });
  if (c instanceof Redis) {
    const r = c;
    r.on('connect', () => unrefSocket(r));
  }
  clients.set(url, c);
  return c;
}

/** Closes every Redis client the transport opened (tests, shutdown). */
export async function closeRedisClients(): Promise<void> {
  const all = [...clients.values()];
  clients.clear();
  await Promise.all(all.map((c) => c.quit().catch(() => c.disconnect())));
}

// ---- the call-out transport and the HTTP server ------------------------------------------------

const JSON_HEADERS: HeaderPair[] = [['content-type', 'application/json']];

function reply(status: number, body: unknown): HttpCallResult {
  return { headers: [[':status', String(status)], ...JSON_HEADERS], body: Buffer.from(JSON.stringify(body)), trailers: [] };
}

/** Answers one lease body: 200 with the result, 400 for a bad request, 503 when Redis fails. */
export async function answerLease(client: LeaseRedis, method: string, path: string, body: Uint8Array): Promise<HttpCallResult> {
  const p = path.split('?')[0];
  if (p === READY_PATH) {
    try {
      await settleConnection(client, 1000);
      await Promise.all([FIXED_WINDOW_LUA, SLIDING_WINDOW_LUA, TOKEN_BUCKET_LUA].map((lua) => client.script('LOAD', lua)));
      return reply(200, { ready: true });
    } catch (err) {
      return reply(503, { error: `redis: ${(err as Error).message}` });
    }
  }
  if (p !== LEASE_PATH) return reply(404, { error: `unknown path ${p}; the quota lease endpoint is POST ${LEASE_PATH}` });
  if (method !== 'POST') return reply(405, { error: 'lease requests are POST' });
  let lease: LeaseRequest;
  try {
    lease = parseLease(body);
  } catch (err) {
    if (err instanceof BadLease) return reply(400, { error: err.message });
    throw err;
  }
  try {
    await settleConnection(client, 1000);
    return reply(200, await leaseOnRedis(client, lease));
  } catch (err) {
    return reply(503, { error: `redis: ${(err as Error).message}` });
  }
}

/**
 * The proxy_http_call transport for a redis:// cluster. The call fails (no
 * response, as a timeout does in Envoy) when the deadline passes or the caller
 * aborts; Redis errors come back as a 503 the adapter can log.
 */
export function redisLeaseCall(req: HttpCallRequest): Promise<HttpCallResult> {
  const pseudo = (k: string) => req.headers.find(([n]) => n === k)?.[1] ?? '';
  const client = redisClient(req.baseUrl);
  return new Promise<HttpCallResult>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      cancelDeadline();
      req.signal.removeEventListener('abort', onAbort);
      fn();
    };
    // The deadline measures Redis, not how busy this process is (deadline.ts).
    const cancelDeadline = leaseDeadline(req.timeoutMs, () => finish(() => reject(new Error(`quota lease timed out after ${req.timeoutMs} ms`))));
    const onAbort = () => finish(() => reject(new Error('quota lease aborted')));
    req.signal.addEventListener('abort', onAbort);
    answerLease(client, pseudo(':method'), pseudo(':path'), req.body).then(
      (r) => finish(() => resolve(r)),
      (err) => finish(() => reject(err)),
    );
  });
}

/**
 * Resolves once a connection being set up (the first lease after start, or a
 * reconnect attempt in progress) is ready or has failed, at most `maxMs`. A
 * client between reconnect attempts (Redis down) resolves at once, so the lease
 * fails fast instead of waiting.
 */
function settleConnection(client: LeaseRedis, maxMs: number): Promise<void> {
  const st = client.status;
  if (st !== 'wait' && st !== 'connecting' && st !== 'connect') return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      client.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, maxMs);
    client.on('ready', done);
    client.on('close', done);
    if (st === 'wait') client.connect().catch(() => {});
  });
}

/** True for a cluster url the Redis lease transport serves. */
export function isRedisUrl(url: string): boolean {
  return /^rediss?(\+cluster|\+sentinel)?:\/\//.test(url);
}

export interface LeaseServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The lease protocol over plain HTTP, backed by Redis: for proxies whose
 * call-outs speak HTTP only. Point a cluster at http://host:port and the quota
 * adapter behaves exactly as with a redis:// cluster.
 */
export async function startLeaseServer(opts: { redisUrl: string; port?: number; address?: string }): Promise<LeaseServer> {
  const client = redisClient(opts.redisUrl);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 64 * 1024) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      answerLease(client, req.method ?? 'GET', req.url ?? '/', Buffer.concat(chunks)).then(
        (r) => {
          const status = Number(r.headers[0]![1]);
          res.writeHead(status, { 'content-type': 'application/json' }).end(r.body);
        },
        (err) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(err) })),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.address ?? '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
