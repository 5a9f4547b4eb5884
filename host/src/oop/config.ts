// Configuration of the out-of-process mode: the top-level `remote` block (where the
// adapter server is, client-side caching/batching/prefetch, server settings) and a
// plugin's own `remote` switch. The JSON Schema fragments are referenced from
// config/schema.ts so one file validates both the proxy and the adapter server.

import type { AdminConfig, MixerConfig, PluginConfig } from '../config/schema.js';
import { TLS_SCHEMA, type RemoteTlsSettings } from './tls.js';

/** Top-level `remote:` — shared by the proxy (client) and `wasm-mixer serve` (server). */
export interface RemoteSettings {
  /** gRPC address of the adapter server: `host:port`, `unix:/path` (default 127.0.0.1:9091). The server listens on it, the proxy connects to it. */
  address?: string;
  /** Which plugins the proxy runs out of process unless a plugin says otherwise: `all`, `none` (default), or a list of names. */
  plugins?: 'all' | 'none' | string[];
  /** Deadline of a Check call, ms (default 500). A request never waits longer for the adapter server. */
  timeoutMs?: number;
  /** Deadline of a Report call, ms (default 5000). */
  reportTimeoutMs?: number;
  /** Client-side check cache (Mixer's L1 cache). */
  checkCache?: { enabled?: boolean; maxEntries?: number };
  /** Report batching: flush at maxEntries or after maxDelayMs; at most maxPending entries wait (more are dropped and counted). */
  reportBatch?: { enabled?: boolean; maxEntries?: number; maxDelayMs?: number; maxPending?: number };
  /** Quota prefetch for plugins marked `remote.prefetch` (Mixer's algorithm). */
  quotaPrefetch?: { enabled?: boolean; minPrefetch?: number; predictWindowMs?: number; closeWaitMs?: number; maxPools?: number };
  /** Reconnect backoff after the server goes away. */
  reconnect?: { initialBackoffMs?: number; maxBackoffMs?: number };
  /** Settings of `wasm-mixer serve`. */
  server?: RemoteServerSettings;
  /** TLS / mutual TLS between the proxy and the adapter server (paths relative to the config file). */
  tls?: RemoteTlsSettings;
  /** Allow plaintext gRPC on a non-loopback address (refused otherwise). */
  insecure?: boolean;
}

export interface RemoteServerSettings {
  /** Admin port of the adapter server (/ready, /metrics, /adapters); none unless set. */
  admin?: AdminConfig;
  /** On SIGTERM: how long in-flight calls may finish before the server stops, ms (default 5000). */
  drainMs?: number;
  /** How long a Check's contexts wait for their Report before the log phase runs without it, ms (default 60000). */
  sessionTtlMs?: number;
  /** At most this many held sessions; the oldest is closed first (default 100000). */
  maxSessions?: number;
  /** Plugins that answer envoy.service.auth.v3.Authorization/Check, in chain order (default: every plugin whose phase is not STATS). */
  extAuthz?: { plugins?: string[] };
  /** Plugins that answer envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit (default: plugins marked remote.prefetch, else every plugin whose phase is not STATS). */
  rateLimit?: {
    plugins?: string[];
    /** RateLimitRequest.domain -> the plugins that serve it (each domain also keeps its own counters in the quota adapter). */
    domains?: Record<string, { plugins: string[] }>;
    /** A domain not in `domains`: `default` (served by `plugins`; the default without `domains`), `ok` (no limits; the default with `domains`), `error` (NOT_FOUND). */
    unknownDomain?: 'default' | 'ok' | 'error';
  };
}

export type CacheMode = 'auto' | 'always' | 'off';

/** A plugin's `remote:` — `true`/`false`, or an object. */
export interface PluginRemoteSettings {
  /** Run this plugin in the adapter server (default: what remote.plugins says). */
  enabled?: boolean;
  /** Check deadline for this plugin, ms (default remote.timeoutMs). */
  timeoutMs?: number;
  /**
   * How the server lets clients cache this adapter's decisions:
   * auto (default): only checks that read nothing but request attributes and had no
   * effect other than metric updates and log lines (which are replayed on cache hits);
   * always: any check (the operator asserts the decision depends only on what it read);
   * off: never.
   */
  cache?: { mode?: CacheMode; validDurationMs?: number; validUseCount?: number };
  /** A quota adapter: each allowed check uses one unit; the proxy may prefetch units (remote.quotaPrefetch). */
  prefetch?: boolean;
  /** How long prefetched units stay valid, ms (default 1000). */
  quotaValidDurationMs?: number;
  /**
   * When the server runs proxy_on_response_headers: `check` (default) against a
   * placeholder 200 response during the Check, returning its header changes (Mixer's
   * route directive); `report` with the real response just before the log phase
   * (its header changes are then not applied).
   */
  responsePhase?: 'check' | 'report';
}

export type ConfigWithRemote = MixerConfig & { remote?: RemoteSettings };
export type PluginWithRemote = PluginConfig & { remote?: boolean | PluginRemoteSettings };

export const DEFAULT_REMOTE_ADDRESS = '127.0.0.1:9091';

/** Everything a client or server needs, with defaults applied. */
export interface ResolvedRemote {
  address: string;
  timeoutMs: number;
  reportTimeoutMs: number;
  checkCache: { enabled: boolean; maxEntries: number };
  reportBatch: { enabled: boolean; maxEntries: number; maxDelayMs: number; maxPending: number };
  quotaPrefetch: { enabled: boolean; minPrefetch: number; predictWindowMs: number; closeWaitMs: number; maxPools: number };
  reconnect: { initialBackoffMs: number; maxBackoffMs: number };
  server: {
    admin: AdminConfig | null;
    drainMs: number;
    sessionTtlMs: number;
    maxSessions: number;
    extAuthz: string[] | null;
    rateLimit: string[] | null;
    rateLimitDomains: Record<string, string[]> | null;
    rateLimitUnknownDomain: 'default' | 'ok' | 'error';
  };
}

export function resolveRemote(config: MixerConfig): ResolvedRemote {
  const r = (config as ConfigWithRemote).remote ?? {};
  return {
    address: r.address ?? DEFAULT_REMOTE_ADDRESS,
    timeoutMs: r.timeoutMs ?? 500,
    reportTimeoutMs: r.reportTimeoutMs ?? 5000,
    checkCache: { enabled: r.checkCache?.enabled ?? true, maxEntries: r.checkCache?.maxEntries ?? 10_000 },
    reportBatch: {
      enabled: r.reportBatch?.enabled ?? true,
      maxEntries: r.reportBatch?.maxEntries ?? 100,
      maxDelayMs: r.reportBatch?.maxDelayMs ?? 1000,
      maxPending: r.reportBatch?.maxPending ?? 10_000,
    },
    quotaPrefetch: {
      enabled: r.quotaPrefetch?.enabled ?? true,
      minPrefetch: r.quotaPrefetch?.minPrefetch ?? 10,
      predictWindowMs: r.quotaPrefetch?.predictWindowMs ?? 1000,
      closeWaitMs: r.quotaPrefetch?.closeWaitMs ?? 500,
      maxPools: r.quotaPrefetch?.maxPools ?? 10_000,
    },
    reconnect: { initialBackoffMs: r.reconnect?.initialBackoffMs ?? 100, maxBackoffMs: r.reconnect?.maxBackoffMs ?? 1000 },
    server: {
      admin: r.server?.admin ?? null,
      drainMs: r.server?.drainMs ?? 5000,
      sessionTtlMs: r.server?.sessionTtlMs ?? 60_000,
      maxSessions: r.server?.maxSessions ?? 100_000,
      extAuthz: r.server?.extAuthz?.plugins ?? null,
      rateLimit: r.server?.rateLimit?.plugins ?? null,
      rateLimitDomains: r.server?.rateLimit?.domains ? Object.fromEntries(Object.entries(r.server.rateLimit.domains).map(([d, v]) => [d, v.plugins])) : null,
      rateLimitUnknownDomain: r.server?.rateLimit?.unknownDomain ?? (r.server?.rateLimit?.domains ? 'ok' : 'default'),
    },
  };
}

/** A plugin's remote settings with defaults; `enabled` says whether the proxy runs it out of process. */
export interface ResolvedPluginRemote {
  enabled: boolean;
  timeoutMs: number;
  cacheMode: CacheMode;
  validDurationMs: number;
  validUseCount: number;
  prefetch: boolean;
  quotaValidDurationMs: number;
  responsePhase: 'check' | 'report';
}

/** Default validity of a cacheable check: short, because a check may depend on the time (a token's expiry), which the server cannot see it read. */
export const DEFAULT_VALID_DURATION_MS = 10_000;
export const DEFAULT_VALID_USE_COUNT = 10_000;

export function pluginRemote(config: MixerConfig, plugin: PluginConfig): ResolvedPluginRemote {
  const global = (config as ConfigWithRemote).remote;
  const raw = (plugin as PluginWithRemote).remote;
  const own: PluginRemoteSettings = typeof raw === 'boolean' ? { enabled: raw } : (raw ?? {});
  const list = global?.plugins ?? 'none';
  const byDefault = list === 'all' ? true : list === 'none' ? false : list.includes(plugin.name);
  return {
    enabled: own.enabled ?? byDefault,
    timeoutMs: own.timeoutMs ?? global?.timeoutMs ?? 500,
    cacheMode: own.cache?.mode ?? 'auto',
    validDurationMs: own.cache?.validDurationMs ?? DEFAULT_VALID_DURATION_MS,
    validUseCount: own.cache?.validUseCount ?? DEFAULT_VALID_USE_COUNT,
    prefetch: own.prefetch ?? false,
    quotaValidDurationMs: own.quotaValidDurationMs ?? 1000,
    responsePhase: own.responsePhase ?? 'check',
  };
}

/** True when the proxy should run this plugin in the adapter server. */
export function isRemotePlugin(config: MixerConfig, plugin: PluginConfig): boolean {
  return pluginRemote(config, plugin).enabled;
}

// --- JSON Schema fragments (referenced from config/schema.ts) -----------------------------

const ms = { type: 'integer', minimum: 1 } as const;
const listen = {
  type: 'object',
  additionalProperties: false,
  required: ['port'],
  properties: { address: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 0, maximum: 65535 }, allowRemote: { type: 'boolean' } },
} as const;

export const REMOTE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    address: { type: 'string', minLength: 1 },
    tls: TLS_SCHEMA,
    insecure: { type: 'boolean' },
    plugins: { anyOf: [{ enum: ['all', 'none'] }, { type: 'array', items: { type: 'string', minLength: 1 } }] },
    timeoutMs: ms,
    reportTimeoutMs: ms,
    checkCache: {
      type: 'object',
      additionalProperties: false,
      properties: { enabled: { type: 'boolean' }, maxEntries: ms },
    },
    reportBatch: {
      type: 'object',
      additionalProperties: false,
      properties: { enabled: { type: 'boolean' }, maxEntries: ms, maxDelayMs: ms, maxPending: ms },
    },
    quotaPrefetch: {
      type: 'object',
      additionalProperties: false,
      properties: { enabled: { type: 'boolean' }, minPrefetch: ms, predictWindowMs: ms, closeWaitMs: { type: 'integer', minimum: 0 }, maxPools: ms },
    },
    reconnect: {
      type: 'object',
      additionalProperties: false,
      properties: { initialBackoffMs: ms, maxBackoffMs: ms },
    },
    server: {
      type: 'object',
      additionalProperties: false,
      properties: {
        admin: listen,
        drainMs: { type: 'integer', minimum: 0 },
        sessionTtlMs: ms,
        maxSessions: ms,
        extAuthz: { type: 'object', additionalProperties: false, properties: { plugins: { type: 'array', items: { type: 'string', minLength: 1 } } } },
        rateLimit: {
          type: 'object',
          additionalProperties: false,
          properties: {
            plugins: { type: 'array', items: { type: 'string', minLength: 1 } },
            domains: {
              type: 'object',
              additionalProperties: {
                type: 'object',
                additionalProperties: false,
                required: ['plugins'],
                properties: { plugins: { type: 'array', items: { type: 'string', minLength: 1 } } },
              },
            },
            unknownDomain: { enum: ['default', 'ok', 'error'] },
          },
        },
      },
    },
  },
} as const;

export const PLUGIN_REMOTE_SCHEMA = {
  anyOf: [
    { type: 'boolean' },
    {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        timeoutMs: ms,
        cache: {
          type: 'object',
          additionalProperties: false,
          properties: { mode: { enum: ['auto', 'always', 'off'] }, validDurationMs: { type: 'integer', minimum: 0 }, validUseCount: { type: 'integer', minimum: 0 } },
        },
        prefetch: { type: 'boolean' },
        quotaValidDurationMs: ms,
        responsePhase: { enum: ['check', 'report'] },
      },
    },
  ],
} as const;

/** Cross-field checks the schema cannot express; returns problems as `path: message`. */
export function checkRemoteConfig(config: MixerConfig): string[] {
  const problems: string[] = [];
  const names = new Set((config.plugins ?? []).map((p) => p.name));
  const r = (config as ConfigWithRemote).remote;
  if (r && Array.isArray(r.plugins)) {
    for (const n of r.plugins) if (!names.has(n)) problems.push(`/remote/plugins names "${n}", which is not a plugin in this config`);
  }
  for (const key of ['extAuthz', 'rateLimit'] as const) {
    for (const n of r?.server?.[key]?.plugins ?? []) {
      if (!names.has(n)) problems.push(`/remote/server/${key}/plugins names "${n}", which is not a plugin in this config`);
    }
  }
  for (const [domain, v] of Object.entries(r?.server?.rateLimit?.domains ?? {})) {
    for (const n of v.plugins ?? []) {
      if (!names.has(n)) problems.push(`/remote/server/rateLimit/domains/${domain}/plugins names "${n}", which is not a plugin in this config`);
    }
  }
  if (r?.reconnect && (r.reconnect.initialBackoffMs ?? 100) > (r.reconnect.maxBackoffMs ?? 1000)) {
    problems.push('/remote/reconnect: initialBackoffMs must not exceed maxBackoffMs');
  }
  return problems;
}
