// wasm-mixer's public API for embedding the host in another Node proxy or gateway.
// Everything not exported here is internal.

// --- the host and a request through it ---
export { WasmHost } from './host.js';
export type { HostOptions, LoadedPlugin, StreamInit } from './host.js';
export { HostStream, CONTINUE } from './chain/chain.js';
export type { Decision, LocalReply, ChainEntry } from './chain/chain.js';
// A loaded plugin's running adapter (LoadedPlugin.adapter, ChainEntry.adapter): an in-process VM or a remote adapter.
export type { Adapter, AdapterDetails, AdapterRuntime, CrashInfo } from './chain/adapter.js';

// --- the bundled proxy ---
export { startProxy } from './proxy/proxy.js';
export type { ProxyOptions, RunningProxy } from './proxy/proxy.js';
export { startDemoUpstream } from './proxy/demo-upstream.js';

// --- out-of-process mode (the adapter server, and the proxy's remote adapters) ---
export { startAdapterServer, flushRemote, closeRemote, resolveRemote, pluginRemote, isRemotePlugin } from './oop/index.js';
export type { RunningServer, ServerOptions, RemoteSettings, RemoteServerSettings, PluginRemoteSettings } from './oop/index.js';

// --- configuration ---
export { loadConfigFile, validateConfig } from './config/load.js';
export type { MixerConfig, PluginConfig, RouteConfig, PluginMatch, Phase, FailStrategyName } from './config/schema.js';

// --- modules, errors, metrics, logs ---
export { compileModule, loadModuleFile } from './vm/module.js';
export type { CompiledModule } from './vm/module.js';
export { HostError, isHostError } from './errors.js';
export type { HostErrorCode } from './errors.js';
export { MetricsRegistry } from './metrics/registry.js';
export { createLogger } from './log/logger.js';
export type { LogRecord, LogSink, HostLogger } from './log/logger.js';
export type { HeaderPair } from './abi/pairs.js';
export { PROPERTIES } from './plugin/properties.js';
