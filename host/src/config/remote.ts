// Configuration of the out-of-process mode: the top-level `remote` block (where the
// adapter server is, client-side caching/batching/prefetch, server settings, TLS)
// and a plugin's own `remote` switch, with defaults applied. The JSON Schema
// fragments are referenced from config/schema.ts so one file validates both the
// proxy and the adapter server. No gRPC here: an in-process host reads this too.

import type { AdminConfig, CacheMode, MixerConfig, PluginConfig, PluginRemoteSettings, RemoteSettings } from './types.js';

export type { CacheMode, PluginRemoteSettings, RemoteServerSettings, RemoteSettings, RemoteTlsSettings } from './types.js';

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

export const TLS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    server: {
      type: 'object',
      additionalProperties: false,
      required: ['cert', 'key'],
      properties: { cert: { type: 'string', minLength: 1 }, key: { type: 'string', minLength: 1 }, clientCa: { type: 'string', minLength: 1 }, requireClientCert: { type: 'boolean' } },
    },
    client: {
      type: 'object',
      additionalProperties: false,
      properties: { ca: { type: 'string', minLength: 1 }, cert: { type: 'string', minLength: 1 }, key: { type: 'string', minLength: 1 }, serverName: { type: 'string', minLength: 1 } },
    },
  },
} as const;

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
