// The proxy / adapter-server configuration, validated with a JSON Schema (ajv) so a
// bad file is refused with the path of the bad field and what was expected.
// Plugin fields mirror Istio's WasmPlugin (url, sha256, phase, priority,
// failStrategy, pluginConfig, vmConfig) so operators recognise them.

import { MAX_TABLE_ELEMENTS_LIMIT } from '../limits.js';
import { CAPABILITIES } from '../abi/names.js';
import { PLUGIN_REMOTE_SCHEMA, REMOTE_SCHEMA } from './remote.js';

export type * from './types.js';

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
            items: { enum: CAPABILITIES },
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
      properties: {
        dir: { type: 'string', minLength: 1 },
        fetchTimeoutMs: { type: 'integer', minimum: 1 },
        // Instrumented (metered) modules, by content (host/src/vm/instrumented-cache.ts).
        instrumented: {
          type: 'object',
          additionalProperties: false,
          properties: { enabled: { type: 'boolean' }, dir: { type: 'string', minLength: 1 }, maxMb: { type: 'number', exclusiveMinimum: 0 } },
        },
      },
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
