// Test harness for adapter authors: load a built .wasm into the real host,
// in-process, feed it requests and responses, and assert on decisions, headers,
// logs and metrics — no network, no proxy. Modelled on proxy-wasm-go-sdk's proxytest.
//
//   const h = await loadAdapter('wasm/header-check.wasm', { config: { header: 'x-user' } });
//   const r = await h.run({ path: '/', headers: { 'x-user': 'ann' } });
//   t.equal(r.status, 200); t.equal(r.upstream?.headers['x-header-check'], 'ok');

import { readFile } from 'node:fs/promises';
import { LogLevel } from '../src/abi/constants.js';
import type { HeaderPair } from '../src/abi/pairs.js';
import { isPromise, type Decision, type HostStream, type Maybe } from '../src/chain/chain.js';
import type { PluginConfig } from '../src/config/schema.js';
import { WasmHost } from '../src/host.js';
import { createLogger, type LogRecord } from '../src/log/logger.js';
import type { HttpCallRequest, HttpCallResult } from '../src/transport/http-call.js';
import type { AccessLogSink } from '../src/log/access-log.js';

export type Headers = Record<string, string> | HeaderPair[];

export interface TestRequest {
  method?: string;
  path?: string;
  host?: string;
  headers?: Headers;
  body?: string | Uint8Array;
  trailers?: Headers;
  sourceAddress?: string;
  sourcePort?: number;
}

export interface TestResponse {
  status?: number;
  headers?: Headers;
  body?: string | Uint8Array;
  trailers?: Headers;
}

export interface AdapterSpec {
  /** Path to the .wasm, or its bytes. */
  wasm: string | Uint8Array;
  name?: string;
  /** The plugin's root id (property plugin_root_id; default ""). */
  rootId?: string;
  /** The adapter's pluginConfig (objects are passed as JSON). */
  config?: unknown;
  failStrategy?: 'FAIL_CLOSE' | 'FAIL_OPEN';
  vmConfig?: PluginConfig['vmConfig'];
  timeoutMs?: number;
}

export interface HarnessOptions {
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'critical';
  /** Answers the adapters' proxy_http_call, by cluster. */
  httpCall?: (req: HttpCallRequest) => HttpCallResult | Promise<HttpCallResult>;
  /** Cluster names adapters may call (the URL is not used when httpCall answers). */
  clusters?: string[];
}

export interface RunResult {
  /** Status sent downstream (the upstream's, or a local reply's). */
  status: number;
  /** Headers sent downstream. */
  headers: Record<string, string>;
  body: string;
  /** What reached the upstream, or null when an adapter answered locally. */
  upstream: { method: string; path: string; headers: Record<string, string>; body: string } | null;
  /** The local reply an adapter (or a fail strategy) sent, if any. */
  localReply: { status: number; adapter: string; details: string } | null;
}

// Tests write header values as ordinary (Unicode) strings. On the wire they are bytes,
// and the host holds them the way Node's HTTP layer does (one char per byte), so the
// harness converts through UTF-8 both ways: an adapter sees the same bytes it would
// see behind the real proxy, and tests read back what a client would decode.
const toWire = (v: string): string => Buffer.from(v, 'utf8').toString('latin1');
const fromWire = (v: string): string => Buffer.from(v, 'latin1').toString('utf8');

function toPairs(h: Headers | undefined): HeaderPair[] {
  if (h === undefined) return [];
  const pairs = Array.isArray(h) ? h : Object.entries(h);
  return pairs.map(([k, v]) => [k.toLowerCase(), toWire(v)]);
}

function toRecord(pairs: readonly HeaderPair[] | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, raw] of pairs ?? []) {
    const v = fromWire(raw);
    out[k] = k in out ? `${out[k]}, ${v}` : v;
  }
  return out;
}

const bytes = (b: string | Uint8Array | undefined): Uint8Array => (b === undefined ? new Uint8Array(0) : typeof b === 'string' ? Buffer.from(b) : b);
const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

const concatBytes = (a: Uint8Array, b: Uint8Array): Uint8Array => (b.length === 0 ? a : a.length === 0 ? b : Buffer.concat([a, b]));

async function settle<T>(v: Maybe<T>): Promise<T> {
  return isPromise(v) ? await v : v;
}

/** An access-log entry an adapter wrote (the logging adapter, or any using wasm_mixer.access_log). */
export interface CapturedAccessLog {
  adapter: string;
  logName: string;
  level: LogRecord['level'];
  format: 'json' | 'text';
  /** The formatted line. */
  line: string;
}

export class AdapterHarness {
  readonly logs: LogRecord[] = [];
  /** Access-log entries, in order; captured in memory instead of going to stdout. */
  readonly accessLogs: CapturedAccessLog[] = [];

  private constructor(readonly host: WasmHost) {}

  static async create(adapters: AdapterSpec[], options: HarnessOptions = {}): Promise<AdapterHarness> {
    const modules: Record<string, Uint8Array> = {};
    const plugins: PluginConfig[] = [];
    for (const [i, a] of adapters.entries()) {
      const key = typeof a.wasm === 'string' ? a.wasm : `<adapter ${i}>`;
      modules[key] = typeof a.wasm === 'string' ? await readFile(a.wasm) : a.wasm;
      plugins.push({
        name: a.name ?? (typeof a.wasm === 'string' ? a.wasm.replace(/^.*\//, '').replace(/\.wasm$/, '') : `adapter-${i}`),
        url: key,
        rootId: a.rootId,
        pluginConfig: a.config,
        failStrategy: a.failStrategy,
        vmConfig: a.vmConfig,
        timeoutMs: a.timeoutMs,
        clusters: options.clusters,
      });
    }
    const records: LogRecord[] = [];
    const accessLogs: CapturedAccessLog[] = [];
    const levels = ['trace', 'debug', 'info', 'warn', 'error', 'critical'] as const;
    const accessLogSink: AccessLogSink = {
      name: 'harness',
      buffered: 0,
      write(e) {
        accessLogs.push({ adapter: e.adapter, logName: e.logName, level: levels[e.level] ?? 'info', format: e.format, line: Buffer.from(e.line).toString('utf8') });
        return true;
      },
      flush: async () => {},
      close: async () => {},
    };
    const clusters = Object.fromEntries((options.clusters ?? []).map((c) => [c, { url: `http://${c}.invalid` }]));
    const httpCall = options.httpCall;
    const host = await WasmHost.create(
      { plugins, clusters, logLevel: options.logLevel ?? 'trace' },
      {
        modules,
        logger: createLogger(LogLevel.Trace, (r) => records.push(r)),
        accessLogSinks: [accessLogSink],
        httpTransport: httpCall ? async (req) => httpCall(req) : async () => Promise.reject(new Error('no httpCall handler in the harness')),
      },
    ).catch((err) => {
      throw err;
    });
    const h = new AdapterHarness(host);
    // Share the arrays so records written during create are kept.
    (h as { logs: LogRecord[] }).logs = records;
    (h as { accessLogs: CapturedAccessLog[] }).accessLogs = accessLogs;
    return h;
  }

  /** Starts a request without running any callback; for step-by-step tests. */
  stream(req: TestRequest = {}): HostStream {
    return this.host.newStream({
      method: req.method ?? 'GET',
      path: toWire(req.path ?? '/'),
      authority: req.host ?? 'example.com',
      headers: toPairs(req.headers),
      info: { sourceAddress: req.sourceAddress ?? '127.0.0.1', sourcePort: req.sourcePort ?? 40000, destinationAddress: '127.0.0.1', destinationPort: 8080 },
    });
  }

  /** Runs a whole request/response exchange through the chain, as the proxy would. */
  async run(req: TestRequest = {}, res: TestResponse = {}): Promise<RunResult> {
    const s = this.stream(req);
    try {
      return await this.drive(s, req, res);
    } finally {
      s.finish();
    }
  }

  private async drive(s: HostStream, req: TestRequest, res: TestResponse): Promise<RunResult> {
    const reqBody = bytes(req.body);
    const reqTrailers = toPairs(req.trailers);
    const respond = (d: Decision): RunResult => {
      if (d.action === 'reset') return { status: 0, headers: {}, body: '', upstream: null, localReply: { status: 0, adapter: '', details: 'reset' } };
      if (d.action !== 'respond') throw new Error('unreachable');
      const r = d.reply;
      return {
        status: r.status,
        headers: toRecord(r.headers),
        body: text(r.body),
        upstream: null,
        localReply: { status: r.status, adapter: r.adapter, details: r.details },
      };
    };
    const d = await settle(s.requestHeaders(reqBody.length === 0 && reqTrailers.length === 0));
    if (d.action !== 'continue') return respond(d);
    let forwarded: Uint8Array = new Uint8Array(0);
    if (reqBody.length > 0) {
      const out = await settle(s.requestBody(reqBody, reqTrailers.length === 0));
      if (!(out instanceof Uint8Array)) return respond(out);
      forwarded = out;
    }
    if (reqTrailers.length > 0) {
      const t = await settle(s.requestTrailers(reqTrailers));
      if (!(t instanceof Uint8Array)) return respond(t);
      forwarded = concatBytes(forwarded, t);
    }
    s.stream.requestHeadersSent = true;
    const rh = s.stream.requestHeaders;
    const upstream = {
      method: rh.find(([k]) => k === ':method')?.[1] ?? '',
      path: rh.find(([k]) => k === ':path')?.[1] ?? '',
      headers: toRecord(rh.filter(([k]) => !k.startsWith(':'))),
      body: text(forwarded),
    };
    const resBody = bytes(res.body);
    const resTrailers = toPairs(res.trailers);
    const rd = await settle(s.responseHeaders(res.status ?? 200, toPairs(res.headers), resBody.length === 0 && resTrailers.length === 0));
    if (rd.action !== 'continue') return { ...respond(rd), upstream };
    s.stream.responseHeadersSent = true;
    let body: Uint8Array = new Uint8Array(0);
    if (resBody.length > 0) {
      const out = await settle(s.responseBody(resBody, resTrailers.length === 0));
      if (!(out instanceof Uint8Array)) return { ...respond(out), upstream };
      body = out;
    }
    if (resTrailers.length > 0) {
      const t = await settle(s.responseTrailers(resTrailers));
      if (!(t instanceof Uint8Array)) return { ...respond(t), upstream };
      body = concatBytes(body, t);
    }
    s.stream.info.responseBytes = body.length;
    const headers = s.stream.responseHeaders ?? [];
    return {
      status: Number(headers.find(([k]) => k === ':status')?.[1] ?? res.status ?? 200),
      headers: toRecord(headers.filter(([k]) => !k.startsWith(':'))),
      body: text(body),
      upstream,
      localReply: null,
    };
  }

  /** Log records at or above a level, optionally from one adapter. */
  logsAt(level: LogRecord['level'], source?: string): LogRecord[] {
    const order = ['trace', 'debug', 'info', 'warn', 'error', 'critical'];
    const min = order.indexOf(level);
    return this.logs.filter((r) => order.indexOf(r.level) >= min && (source === undefined || r.source === source));
  }

  /** Current value of a metric series (a histogram's sample count). */
  metric(family: string, labels: Record<string, string> = {}): number | undefined {
    return this.host.metrics.value(family, labels);
  }

  /** The Prometheus exposition the proxy's /metrics would serve. */
  metricsText(): string {
    return this.host.metrics.render();
  }

  sharedData(vmId: string, key: string): Uint8Array | undefined {
    return this.host.shared.forVm(vmId).get(key)?.value;
  }

  close(): void {
    this.host.close();
  }
}

/** Loads one adapter into a fresh in-process host. */
export async function loadAdapter(wasm: string | Uint8Array, spec: Omit<AdapterSpec, 'wasm'> & HarnessOptions = {}): Promise<AdapterHarness> {
  const { logLevel, httpCall, clusters, ...adapter } = spec;
  return AdapterHarness.create([{ wasm, ...adapter }], { logLevel, httpCall, clusters });
}

export type { LogRecord, HttpCallRequest, HttpCallResult };
