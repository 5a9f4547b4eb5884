// The proxy / adapter-server configuration, validated with a JSON Schema (ajv) so a
// bad file is refused with the path of the bad field and what was expected.
// Plugin fields mirror Istio's WasmPlugin (url, sha256, phase, priority,
// failStrategy, pluginConfig, vmConfig) so operators recognise them.

import { MAX_TABLE_ELEMENTS_LIMIT } from '../limits.js';
import { PLUGIN_REMOTE_SCHEMA, REMOTE_SCHEMA, type PluginRemoteSettings, type RemoteSettings } from '../oop/config.js';

export type Phase = 'AUTHN' | 'AUTHZ' | 'STATS' | 'UNSPECIFIED_PHASE';
export type FailStrategyName = 'FAIL_CLOSE' | 'FAIL_OPEN';

export interface PathMatch {
  exact?: string;
  prefix?: string;
}

export interface PluginMatch {
  /** Host names (the request's :authority without port); `*.example.com` wildcards allowed. */
  hosts?: string[];
  paths?: PathMatch[];
  /** Route names this plugin applies to; all routes when absent. */
  routes?: string[];
}

export interface PluginConfig {
  name: string;
  /**
   * The root id the module's root context is created under (Envoy `root_id`, Istio
   * WasmPlugin `pluginName`; property `plugin_root_id`). Default "" (the C++ SDK's
   * default root). Several plugins may share one module's root id.
   */
  rootId?: string;
  /** A file path (relative to the config file), or a file:// URL. */
  url: string;
  sha256?: string;
  phase?: Phase;
  priority?: number;
  failStrategy?: FailStrategyName;
  /** The adapter's own configuration: an object is passed as JSON text, a string as-is. */
  pluginConfig?: unknown;
  vmConfig?: { vmId?: string; env?: Record<string, string>; configuration?: unknown };
  match?: PluginMatch[];
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'critical';
  /** How long the adapter may pause a request (e.g. waiting for a call-out) before its fail strategy applies. */
  timeoutMs?: number;
  /** Clusters this adapter may call with proxy_http_call (none when absent). */
  clusters?: string[];
  /** Isolation limits (docs/operating.md "Limits"). */
  limits?: { metering?: boolean; fuelPerCallback?: number; maxMemoryMb?: number; maxTableElements?: number; maxSharedDataMb?: number; maxQueueMb?: number; maxBufferedBodyBytes?: number };
  /** Crash-rate limit and backoff for VM restarts. */
  restart?: { maxRestarts?: number; windowMs?: number; initialBackoffMs?: number; maxBackoffMs?: number };
  /** Host capabilities granted; all when absent (HTTP call-outs are granted by `clusters`). */
  capabilities?: Array<'local_response' | 'modify_headers' | 'modify_body' | 'shared_data' | 'shared_queue' | 'metrics' | 'foreign_function' | 'timer' | 'filter_state'>;
  /** Run this plugin in the adapter server (`true`/`false`, or settings); overrides remote.plugins. See docs/out-of-process.md. */
  remote?: boolean | PluginRemoteSettings;
}

export interface RouteConfig {
  name: string;
  match?: { prefix?: string; hosts?: string[] };
  /** Base URL of the upstream, e.g. http://127.0.0.1:3000 */
  upstream: string;
  timeoutMs?: number;
  /** Caps the body bytes any adapter may buffer on this route (the lower of this and the plugin's limits.maxBufferedBodyBytes). */
  maxBufferedBodyBytes?: number;
}

export interface ClusterConfig {
  url: string;
}

export interface ListenConfig {
  address?: string;
  port: number;
}

/** The proxy port: also its limits against slow and oversized requests (docs/operating.md "Proxy port limits"). */
export interface ProxyListenConfig extends ListenConfig {
  /** A request's line and headers must arrive within this (default 10 000 ms); else 408 and the connection closes. */
  headersTimeoutMs?: number;
  /** The whole request, body included, must arrive within this (default 120 000 ms); else 408. */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this (default 5 000 ms). */
  keepAliveTimeoutMs?: number;
  /** Largest request line + headers (default 16 384 bytes); larger ones get 431. */
  maxHeaderBytes?: number;
}

export interface AdminConfig extends ListenConfig {
  /** The admin port listens on loopback unless this is set. */
  allowRemote?: boolean;
  /** POST /reload is accepted from loopback peers only, unless this is set too. */
  allowRemoteReload?: boolean;
}

export interface AccessLogSinkConfig {
  type: 'stdout' | 'stderr' | 'file' | 'otlp';
  /** Label in the access-log metrics (default: the type). */
  name?: string;
  /** Only entries with these log names (the logging adapter's log_name); all when absent. */
  logNames?: string[];
  /** stdout, stderr, file: memory for entries waiting to be written; more are dropped and counted. */
  bufferBytes?: number;
  /** file: path (relative to the config file). */
  path?: string;
  /** file: rotate before the file would grow past this (default 100 MiB). */
  maxBytes?: number;
  /** file: rotated files kept, PATH.1 … PATH.N (default 5). */
  maxFiles?: number;
  /** otlp: full logs URL (default: otlp.endpoint + /v1/logs). */
  endpoint?: string;
  /** otlp: export period (default 1000 ms), entries per request (default 512), entries kept while the collector lags (default 8192). */
  intervalMs?: number;
  maxBatch?: number;
  maxQueue?: number;
}

export interface OtlpConfig {
  /** OTLP/HTTP base URL; /v1/metrics and /v1/logs are appended (default http://127.0.0.1:4318). */
  endpoint?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Resource attributes; service.name defaults to wasm-mixer. */
  resource?: Record<string, string>;
  metrics?: { enabled?: boolean; intervalMs?: number };
}

export interface MixerConfig {
  listen?: ProxyListenConfig;
  admin?: AdminConfig;
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'critical';
  /** Repeated warn/error lines: `burst` per key per `intervalMs` (default 1 per 5000 ms), then a count of the suppressed ones. */
  logRateLimit?: { intervalMs?: number; burst?: number };
  routes?: RouteConfig[];
  plugins?: PluginConfig[];
  clusters?: Record<string, ClusterConfig>;
  /** Upstream connection pool. */
  upstream?: { maxSockets?: number; keepAliveMs?: number };
  /** Histogram bucket overrides by metric family name; the series cap per family (default 2000). */
  metrics?: { histogramBuckets?: Record<string, number[]>; maxSeriesPerMetric?: number };
  /** Where access-log entries from logging adapters go (default: stdout). See host/src/log/access-log.ts. */
  accessLog?: { sinks?: AccessLogSinkConfig[] };
  /** OpenTelemetry export over OTLP/HTTP: metrics (unless metrics.enabled is false) and, with an `otlp` access-log sink, logs. */
  otlp?: OtlpConfig;
  /** Where modules fetched from http(s) URLs are cached (by sha256). */
  moduleCache?: { dir?: string; fetchTimeoutMs?: number };
  /** Hot reload of adapters: watch the config and module files, and how long old VMs may finish in-flight requests. */
  reload?: { watch?: boolean; debounceMs?: number; drainTimeoutMs?: number };
  /** The last-line watchdog: a blocked event loop past hardLimitMs ends the process (docs/operating.md "Watchdog"). */
  watchdog?: { enabled?: boolean; hardLimitMs?: number };
  /** Out-of-process mode: adapter server address, which plugins run there, client cache/batching/prefetch, server settings (docs/out-of-process.md). */
  remote?: RemoteSettings;
  /** `wasm-mixer proxy`: worker processes (node:cluster), each with its own VMs; "auto" = one per core (host/src/workers). */
  workers?: number | 'auto';
  /** Crash-rate limit and backoff for replacing a worker process that died. */
  workerRestart?: { maxRestarts?: number; windowMs?: number; initialBackoffMs?: number; maxBackoffMs?: number };
}

/** A crash-restart policy: a plugin's VM restarts (plugins[].restart) and the workers' (workerRestart). */
const restartPolicy = {
  type: 'object',
  additionalProperties: false,
  properties: {
    maxRestarts: { type: 'integer', minimum: 0 },
    windowMs: { type: 'integer', minimum: 1 },
    initialBackoffMs: { type: 'integer', minimum: 0 },
    maxBackoffMs: { type: 'integer', minimum: 0 },
  },
} as const;
const logLevel = { enum: ['trace', 'debug', 'info', 'warn', 'error', 'critical'] };
const listen = {
  type: 'object',
  additionalProperties: false,
  required: ['port'],
  properties: { address: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 0, maximum: 65535 }, allowRemote: { type: 'boolean' } },
};

export const CONFIG_SCHEMA = {
  $id: 'https://wasm-mixer.dev/config.schema.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: {
      ...listen,
      properties: {
        ...listen.properties,
        headersTimeoutMs: { type: 'integer', minimum: 100, maximum: 3600000 },
        requestTimeoutMs: { type: 'integer', minimum: 100, maximum: 86400000 },
        keepAliveTimeoutMs: { type: 'integer', minimum: 0, maximum: 3600000 },
        maxHeaderBytes: { type: 'integer', minimum: 1024, maximum: 1048576 },
      },
    },
    admin: { ...listen, properties: { ...listen.properties, allowRemoteReload: { type: 'boolean' } } },
    logLevel,
    logRateLimit: {
      type: 'object',
      additionalProperties: false,
      properties: { intervalMs: { type: 'integer', minimum: 0, maximum: 3600000 }, burst: { type: 'integer', minimum: 1, maximum: 100000 } },
    },
    workers: { anyOf: [{ type: 'integer', minimum: 1, maximum: 256 }, { const: 'auto' }] },
    workerRestart: restartPolicy,
    routes: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'upstream'],
        properties: {
          name: { type: 'string', minLength: 1 },
          match: {
            type: 'object',
            additionalProperties: false,
            properties: { prefix: { type: 'string', pattern: '^/' }, hosts: { type: 'array', items: { type: 'string', minLength: 1 } } },
          },
          upstream: { type: 'string', pattern: '^https?://' },
          timeoutMs: { type: 'integer', minimum: 1 },
          maxBufferedBodyBytes: { type: 'integer', minimum: 1024, maximum: 1073741824 },
        },
      },
    },
    plugins: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'url'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$' },
          rootId: { type: 'string', maxLength: 256 },
          url: { type: 'string', minLength: 1 },
          sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
          phase: { enum: ['AUTHN', 'AUTHZ', 'STATS', 'UNSPECIFIED_PHASE'] },
          priority: { type: 'integer' },
          failStrategy: { enum: ['FAIL_CLOSE', 'FAIL_OPEN'] },
          pluginConfig: {},
          vmConfig: {
            type: 'object',
            additionalProperties: false,
            properties: {
              vmId: { type: 'string' },
              env: { type: 'object', additionalProperties: { type: 'string' } },
              configuration: {},
            },
          },
          match: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              properties: {
                hosts: { type: 'array', items: { type: 'string', minLength: 1 } },
                routes: { type: 'array', items: { type: 'string', minLength: 1 } },
                paths: {
                  type: 'array',
                  items: {
                    type: 'object',
                    additionalProperties: false,
                    minProperties: 1,
                    maxProperties: 1,
                    properties: { exact: { type: 'string', pattern: '^/' }, prefix: { type: 'string', pattern: '^/' } },
                  },
                },
              },
            },
          },
          logLevel,
          timeoutMs: { type: 'integer', minimum: 1 },
          clusters: { type: 'array', items: { type: 'string', minLength: 1 } },
          limits: {
            type: 'object',
            additionalProperties: false,
            properties: {
              metering: { type: 'boolean' },
              fuelPerCallback: { type: 'integer', minimum: 1000, maximum: 2000000000 },
              maxMemoryMb: { type: 'integer', minimum: 0, maximum: 4096 },
              maxTableElements: { type: 'integer', minimum: 1, maximum: MAX_TABLE_ELEMENTS_LIMIT },
              maxSharedDataMb: { type: 'integer', minimum: 1, maximum: 4096 },
              maxQueueMb: { type: 'integer', minimum: 1, maximum: 4096 },
              maxBufferedBodyBytes: { type: 'integer', minimum: 1024, maximum: 1073741824 },
            },
          },
          restart: restartPolicy,
          capabilities: {
            type: 'array',
            uniqueItems: true,
            items: { enum: ['local_response', 'modify_headers', 'modify_body', 'shared_data', 'shared_queue', 'metrics', 'foreign_function', 'timer', 'filter_state'] },
          },
          remote: PLUGIN_REMOTE_SCHEMA,
        },
        // A module fetched over the network is only trusted when pinned.
        if: { properties: { url: { pattern: '^[hH][tT][tT][pP][sS]?://' } } },
        then: { required: ['sha256'] },
      },
    },
    clusters: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['url'],
        // http(s):// for HTTP call-outs; redis(s):// (one node), redis(s)+cluster:// and redis(s)+sentinel://
        // for the quota adapter's global limits (host/src/quota/lease.ts).
        properties: { url: { type: 'string', pattern: '^(https?|rediss?|rediss?\\+cluster|rediss?\\+sentinel)://' } },
      },
    },
    upstream: {
      type: 'object',
      additionalProperties: false,
      properties: { maxSockets: { type: 'integer', minimum: 1 }, keepAliveMs: { type: 'integer', minimum: 1 } },
    },
    moduleCache: {
      type: 'object',
      additionalProperties: false,
      properties: { dir: { type: 'string', minLength: 1 }, fetchTimeoutMs: { type: 'integer', minimum: 1 } },
    },
    reload: {
      type: 'object',
      additionalProperties: false,
      properties: { watch: { type: 'boolean' }, debounceMs: { type: 'integer', minimum: 0 }, drainTimeoutMs: { type: 'integer', minimum: 0 } },
    },
    metrics: {
      type: 'object',
      additionalProperties: false,
      properties: {
        histogramBuckets: { type: 'object', additionalProperties: { type: 'array', items: { type: 'number' }, minItems: 1 } },
        maxSeriesPerMetric: { type: 'integer', minimum: 1 },
      },
    },
    accessLog: {
      type: 'object',
      additionalProperties: false,
      properties: {
        sinks: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['type'],
            properties: {
              type: { enum: ['stdout', 'stderr', 'file', 'otlp'] },
              name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]+$' },
              logNames: { type: 'array', items: { type: 'string', minLength: 1 } },
              bufferBytes: { type: 'integer', minimum: 1024 },
              path: { type: 'string', minLength: 1 },
              maxBytes: { type: 'integer', minimum: 1024 },
              maxFiles: { type: 'integer', minimum: 0, maximum: 1000 },
              endpoint: { type: 'string', pattern: '^https?://' },
              intervalMs: { type: 'integer', minimum: 10 },
              maxBatch: { type: 'integer', minimum: 1 },
              maxQueue: { type: 'integer', minimum: 1 },
            },
            if: { properties: { type: { const: 'file' } } },
            then: { required: ['path'] },
          },
        },
      },
    },
    otlp: {
      type: 'object',
      additionalProperties: false,
      properties: {
        endpoint: { type: 'string', pattern: '^https?://' },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
        timeoutMs: { type: 'integer', minimum: 1 },
        resource: { type: 'object', additionalProperties: { type: 'string' } },
        metrics: {
          type: 'object',
          additionalProperties: false,
          properties: { enabled: { type: 'boolean' }, intervalMs: { type: 'integer', minimum: 100 } },
        },
      },
    },
    watchdog: {
      type: 'object',
      additionalProperties: false,
      properties: { enabled: { type: 'boolean' }, hardLimitMs: { type: 'integer', minimum: 500, maximum: 600000 } },
    },
    remote: REMOTE_SCHEMA,
  },
} as const;
