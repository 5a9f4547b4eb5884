// Proxy-Wasm ABI v0.2.1 host functions, imported from module "env".
// Raw declarations only: every parameter is i32/usize except the three i64s
// (increment/record metric values), every function returns a proxy_status_t.
// Pointers named `ret*` are where the host writes results; buffers it returns
// are allocated through our proxy_on_memory_allocate / malloc export.
// Typed wrappers live in ../hostcalls.ts.

// ---- logging, time, timers, context ------------------------------------------------------------

@external("env", "proxy_log")
export declare function proxy_log(level: u32, message: usize, messageSize: usize): u32;

@external("env", "proxy_get_log_level")
export declare function proxy_get_log_level(retLevel: usize): u32;

@external("env", "proxy_get_current_time_nanoseconds")
export declare function proxy_get_current_time_nanoseconds(retTime: usize): u32;

@external("env", "proxy_set_tick_period_milliseconds")
export declare function proxy_set_tick_period_milliseconds(periodMs: u32): u32;

@external("env", "proxy_set_effective_context")
export declare function proxy_set_effective_context(contextId: u32): u32;

@external("env", "proxy_done")
export declare function proxy_done(): u32;

@external("env", "proxy_get_status")
export declare function proxy_get_status(retCode: usize, retMessage: usize, retMessageSize: usize): u32;

// ---- buffers -----------------------------------------------------------------------------------

@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(
  bufferType: u32, start: u32, maxSize: u32, retData: usize, retSize: usize,
): u32;

@external("env", "proxy_set_buffer_bytes")
export declare function proxy_set_buffer_bytes(
  bufferType: u32, start: u32, size: u32, value: usize, valueSize: usize,
): u32;

@external("env", "proxy_get_buffer_status")
export declare function proxy_get_buffer_status(bufferType: u32, retSize: usize, retFlags: usize): u32;

// ---- header maps -------------------------------------------------------------------------------

@external("env", "proxy_get_header_map_size")
export declare function proxy_get_header_map_size(mapType: u32, retSize: usize): u32;

@external("env", "proxy_get_header_map_pairs")
export declare function proxy_get_header_map_pairs(mapType: u32, retData: usize, retSize: usize): u32;

@external("env", "proxy_set_header_map_pairs")
export declare function proxy_set_header_map_pairs(mapType: u32, pairs: usize, pairsSize: usize): u32;

@external("env", "proxy_get_header_map_value")
export declare function proxy_get_header_map_value(
  mapType: u32, key: usize, keySize: usize, retValue: usize, retValueSize: usize,
): u32;

@external("env", "proxy_add_header_map_value")
export declare function proxy_add_header_map_value(
  mapType: u32, key: usize, keySize: usize, value: usize, valueSize: usize,
): u32;

@external("env", "proxy_replace_header_map_value")
export declare function proxy_replace_header_map_value(
  mapType: u32, key: usize, keySize: usize, value: usize, valueSize: usize,
): u32;

@external("env", "proxy_remove_header_map_value")
export declare function proxy_remove_header_map_value(mapType: u32, key: usize, keySize: usize): u32;

// ---- stream control ----------------------------------------------------------------------------

@external("env", "proxy_continue_stream")
export declare function proxy_continue_stream(streamType: u32): u32;

@external("env", "proxy_close_stream")
export declare function proxy_close_stream(streamType: u32): u32;

@external("env", "proxy_send_local_response")
export declare function proxy_send_local_response(
  statusCode: u32,
  details: usize, detailsSize: usize,
  body: usize, bodySize: usize,
  headers: usize, headersSize: usize,
  grpcStatus: i32,
): u32;

// ---- HTTP and gRPC call-outs -------------------------------------------------------------------

@external("env", "proxy_http_call")
export declare function proxy_http_call(
  upstream: usize, upstreamSize: usize,
  headers: usize, headersSize: usize,
  body: usize, bodySize: usize,
  trailers: usize, trailersSize: usize,
  timeoutMs: u32, retToken: usize,
): u32;

@external("env", "proxy_grpc_call")
export declare function proxy_grpc_call(
  upstream: usize, upstreamSize: usize,
  serviceName: usize, serviceNameSize: usize,
  methodName: usize, methodNameSize: usize,
  initialMetadata: usize, initialMetadataSize: usize,
  message: usize, messageSize: usize,
  timeoutMs: u32, retToken: usize,
): u32;

@external("env", "proxy_grpc_stream")
export declare function proxy_grpc_stream(
  upstream: usize, upstreamSize: usize,
  serviceName: usize, serviceNameSize: usize,
  methodName: usize, methodNameSize: usize,
  initialMetadata: usize, initialMetadataSize: usize,
  retToken: usize,
): u32;

@external("env", "proxy_grpc_send")
export declare function proxy_grpc_send(token: u32, message: usize, messageSize: usize, endStream: u32): u32;

@external("env", "proxy_grpc_cancel")
export declare function proxy_grpc_cancel(token: u32): u32;

@external("env", "proxy_grpc_close")
export declare function proxy_grpc_close(token: u32): u32;

// ---- shared data and queues --------------------------------------------------------------------

@external("env", "proxy_get_shared_data")
export declare function proxy_get_shared_data(
  key: usize, keySize: usize, retValue: usize, retValueSize: usize, retCas: usize,
): u32;

@external("env", "proxy_set_shared_data")
export declare function proxy_set_shared_data(
  key: usize, keySize: usize, value: usize, valueSize: usize, cas: u32,
): u32;

@external("env", "proxy_register_shared_queue")
export declare function proxy_register_shared_queue(name: usize, nameSize: usize, retQueueId: usize): u32;

@external("env", "proxy_resolve_shared_queue")
export declare function proxy_resolve_shared_queue(
  vmId: usize, vmIdSize: usize, name: usize, nameSize: usize, retQueueId: usize,
): u32;

@external("env", "proxy_enqueue_shared_queue")
export declare function proxy_enqueue_shared_queue(queueId: u32, value: usize, valueSize: usize): u32;

@external("env", "proxy_dequeue_shared_queue")
export declare function proxy_dequeue_shared_queue(queueId: u32, retValue: usize, retValueSize: usize): u32;

// ---- metrics -----------------------------------------------------------------------------------

@external("env", "proxy_define_metric")
export declare function proxy_define_metric(metricType: u32, name: usize, nameSize: usize, retMetricId: usize): u32;

@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(metricId: u32, delta: i64): u32;

@external("env", "proxy_record_metric")
export declare function proxy_record_metric(metricId: u32, value: i64): u32;

@external("env", "proxy_get_metric")
export declare function proxy_get_metric(metricId: u32, retValue: usize): u32;

// ---- properties and foreign functions ----------------------------------------------------------

@external("env", "proxy_get_property")
export declare function proxy_get_property(path: usize, pathSize: usize, retValue: usize, retValueSize: usize): u32;

@external("env", "proxy_set_property")
export declare function proxy_set_property(path: usize, pathSize: usize, value: usize, valueSize: usize): u32;

@external("env", "proxy_call_foreign_function")
export declare function proxy_call_foreign_function(
  name: usize, nameSize: usize, args: usize, argsSize: usize, retResult: usize, retResultSize: usize,
): u32;
