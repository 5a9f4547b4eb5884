// The one table of host functions: every import this host links, the ABI
// versions it is linked for, and the capability group that grants it. The
// import object (abi/imports.ts), the load-time import check (vm/module.ts), the
// capability stubs (plugin/capabilities.ts) and the config schema's
// `capabilities` list all derive from it; test/host/abi-names.test.ts checks that
// the table, the import object actually built and the SDK's declarations agree.

/** Capability groups an adapter can be restricted to (plugin `capabilities`); HTTP/gRPC call-outs are granted by `clusters`. */
export type Capability = 'local_response' | 'modify_headers' | 'modify_body' | 'shared_data' | 'shared_queue' | 'metrics' | 'foreign_function' | 'timer' | 'filter_state';

/** Which ABI versions link a function (as proxy-wasm-cpp-host does): all, 0.1.0 modules only, or 0.2.x modules only. */
export type AbiLink = 'all' | '0.1.0' | '0.2';

export interface HostFunction {
  /** Import module: "env" for the Proxy-Wasm ABI, "wasi" for either WASI module name. */
  readonly module: 'env' | 'wasi';
  readonly name: string;
  readonly abi: AbiLink;
  /** The capability group that grants it; null: always granted. */
  readonly capability: Capability | null;
  /** False: linked to a stub returning ENOSYS (WASI functions that make no sense for a filter). */
  readonly implemented: boolean;
}

const env = (name: string, capability: Capability | null = null, abi: AbiLink = 'all'): HostFunction => ({ module: 'env', name, abi, capability, implemented: true });
const wasi = (name: string, implemented = true): HostFunction => ({ module: 'wasi', name, abi: 'all', capability: null, implemented });

export const HOST_FUNCTIONS: readonly HostFunction[] = [
  // logging, time, timers, contexts
  env('proxy_log'),
  env('proxy_get_log_level'),
  env('proxy_get_current_time_nanoseconds'),
  env('proxy_set_tick_period_milliseconds', 'timer'),
  env('proxy_set_effective_context'),
  env('proxy_done'),
  env('proxy_get_status'),
  // stream control
  env('proxy_continue_stream', null, '0.2'),
  env('proxy_close_stream', 'local_response', '0.2'),
  env('proxy_send_local_response', 'local_response'),
  env('proxy_continue_request', null, '0.1.0'),
  env('proxy_continue_response', null, '0.1.0'),
  env('proxy_clear_route_cache', null, '0.1.0'),
  env('proxy_get_configuration', null, '0.1.0'),
  // header maps
  env('proxy_get_header_map_size'),
  env('proxy_get_header_map_pairs'),
  env('proxy_set_header_map_pairs', 'modify_headers'),
  env('proxy_get_header_map_value'),
  env('proxy_add_header_map_value', 'modify_headers'),
  env('proxy_replace_header_map_value', 'modify_headers'),
  env('proxy_remove_header_map_value', 'modify_headers'),
  // buffers
  env('proxy_get_buffer_bytes'),
  env('proxy_get_buffer_status'),
  env('proxy_set_buffer_bytes', 'modify_body'),
  // properties
  env('proxy_get_property'),
  env('proxy_set_property', 'filter_state'),
  // shared data and queues
  env('proxy_get_shared_data', 'shared_data'),
  env('proxy_set_shared_data', 'shared_data'),
  env('proxy_register_shared_queue', 'shared_queue'),
  env('proxy_resolve_shared_queue', 'shared_queue'),
  env('proxy_enqueue_shared_queue', 'shared_queue'),
  env('proxy_dequeue_shared_queue', 'shared_queue'),
  // metrics
  env('proxy_define_metric', 'metrics'),
  env('proxy_increment_metric', 'metrics'),
  env('proxy_record_metric', 'metrics'),
  env('proxy_get_metric', 'metrics'),
  // call-outs and foreign functions
  env('proxy_http_call'),
  env('proxy_grpc_call'),
  env('proxy_grpc_stream'),
  env('proxy_grpc_send'),
  env('proxy_grpc_cancel'),
  env('proxy_grpc_close'),
  env('proxy_call_foreign_function', 'foreign_function'),
  // what proxy-wasm-cpp-host gives every module (Emscripten builds import these)
  env('emscripten_notify_memory_growth'),
  env('pthread_equal'),
  // WASI
  ...['fd_write', 'proc_exit', 'clock_time_get', 'random_get', 'environ_sizes_get', 'environ_get', 'args_sizes_get', 'args_get', 'sched_yield'].map((n) => wasi(n)),
  // Envoy registers these; they make no sense for a filter and return ENOSYS.
  ...[
    'fd_read', 'fd_close', 'fd_seek', 'fd_fdstat_get', 'fd_fdstat_set_flags', 'fd_prestat_get', 'fd_prestat_dir_name',
    'fd_filestat_get', 'fd_tell', 'fd_sync', 'fd_readdir', 'path_open', 'path_filestat_get', 'path_create_directory',
    'path_remove_directory', 'path_unlink_file', 'path_rename', 'poll_oneoff', 'sock_accept', 'sock_recv', 'sock_send',
    'sock_shutdown', 'clock_res_get',
  ].map((n) => wasi(n, false)),
];

/** The module names WASI functions are imported from. */
export const WASI_MODULES: ReadonlySet<string> = new Set(['wasi_snapshot_preview1', 'wasi_unstable']);

const envNames = (abi: AbiLink): ReadonlySet<string> => new Set(HOST_FUNCTIONS.filter((f) => f.module === 'env' && f.abi === abi).map((f) => f.name));

/** ABI 0.1.0's functions, replaced in 0.2.0 (cpp-host links them for 0.1.0 modules only). */
export const ABI_0_1_0_ONLY = envNames('0.1.0');
/** ABI 0.2.x's stream functions (cpp-host links them for 0.2.x modules only). */
export const ABI_0_2_ONLY = envNames('0.2');

/** The env functions the import object has. */
export const ENV_FUNCTIONS: readonly string[] = HOST_FUNCTIONS.filter((f) => f.module === 'env').map((f) => f.name);
/** WASI functions linked to stubs returning ENOSYS. */
export const UNIMPLEMENTED_WASI: readonly string[] = HOST_FUNCTIONS.filter((f) => f.module === 'wasi' && !f.implemented).map((f) => f.name);

/** Import names the host implements: `proxy_*` for env, `wasi.<name>` for either WASI module. */
export const IMPLEMENTED_IMPORTS: ReadonlySet<string> = new Set(HOST_FUNCTIONS.filter((f) => f.implemented).map((f) => (f.module === 'env' ? f.name : `wasi.${f.name}`)));
/** Import names that link to stubs returning ENOSYS; loading logs a warning naming them. */
export const KNOWN_UNIMPLEMENTED_IMPORTS: ReadonlySet<string> = new Set(UNIMPLEMENTED_WASI.map((n) => `wasi.${n}`));

/** Capability group → the functions it grants, in table order. */
export const CAPABILITY_GROUPS: Readonly<Record<Capability, readonly string[]>> = (() => {
  const groups: Record<Capability, string[]> = {
    local_response: [], modify_headers: [], modify_body: [], shared_data: [], shared_queue: [], metrics: [], foreign_function: [], timer: [], filter_state: [],
  };
  for (const f of HOST_FUNCTIONS) if (f.capability !== null) groups[f.capability].push(f.name);
  return groups;
})();

/** Every capability group, in the order the config schema lists them. */
export const CAPABILITIES: readonly Capability[] = Object.keys(CAPABILITY_GROUPS) as Capability[];
