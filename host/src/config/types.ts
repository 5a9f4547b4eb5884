// The configuration's types: the proxy / adapter-server config file as it is
// after validation (config/schema.ts holds the JSON Schema, config/remote.ts the
// out-of-process mode's defaults and cross-field checks). Types only: importing
// this file loads nothing.

import type { Capability } from '../abi/names.js';

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
  capabilities?: Capability[];
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
  /**
   * Where modules fetched from http(s) URLs are cached (by sha256); `instrumented`: the cache of
   * metered modules (host/src/vm/instrumented-cache.ts; default on, in
   * $WASM_MIXER_INSTRUMENTED_CACHE or $XDG_CACHE_HOME/wasm-mixer/instrumented, 64 MiB at most).
   */
  moduleCache?: { dir?: string; fetchTimeoutMs?: number; instrumented?: { enabled?: boolean; dir?: string; maxMb?: number } };
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

export interface RemoteTlsSettings {
  /** The adapter server's side. */
  server?: {
    /** PEM certificate chain and private key the server presents. */
    cert: string;
    key: string;
    /** PEM CA bundle that client certificates must chain to (mutual TLS). */
    clientCa?: string;
    /** Refuse clients without a valid certificate (default true when clientCa is set). */
    requireClientCert?: boolean;
  };
  /** The proxy's side. */
  client?: {
    /** PEM CA bundle the server certificate must chain to (default: the system's). */
    ca?: string;
    /** PEM certificate and key the proxy presents (mutual TLS). */
    cert?: string;
    key?: string;
    /** Name to verify in the server certificate when it differs from the address's host. */
    serverName?: string;
  };
}
