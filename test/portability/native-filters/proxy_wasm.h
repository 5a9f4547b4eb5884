/*
 * A minimal C binding of the Proxy-Wasm ABI 0.2.1, written for this test suite from
 * the spec (proxy-wasm/spec abi-versions/v0.2.1; ../shared/reference/proxy-wasm.md
 * sections 1.3-1.6). Only declarations: hostcalls are imported from module "env",
 * callbacks are exported by name. wasm32: every pointer and size is 32 bits.
 */
#ifndef PROXY_WASM_H
#define PROXY_WASM_H

#include <stddef.h>
#include <stdint.h>

#define PW_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define PW_EXPORT(name) __attribute__((export_name(#name)))

typedef uint32_t proxy_status_t;
enum { PW_OK = 0, PW_NOT_FOUND = 1, PW_BAD_ARGUMENT = 2, PW_INVALID_MEMORY_ACCESS = 6, PW_EMPTY = 7 };
enum { PW_LOG_TRACE = 0, PW_LOG_DEBUG, PW_LOG_INFO, PW_LOG_WARN, PW_LOG_ERROR, PW_LOG_CRITICAL };
enum { PW_CONTINUE = 0, PW_PAUSE = 1 }; /* proxy_action_t */
enum { /* proxy_buffer_type_t */
  PW_HTTP_REQUEST_BODY = 0, PW_HTTP_RESPONSE_BODY = 1, PW_DOWNSTREAM_DATA = 2, PW_UPSTREAM_DATA = 3,
  PW_HTTP_CALL_RESPONSE_BODY = 4, PW_GRPC_CALL_MESSAGE = 5, PW_VM_CONFIGURATION = 6,
  PW_PLUGIN_CONFIGURATION = 7, PW_FOREIGN_FUNCTION_ARGUMENTS = 8,
};
enum { /* proxy_map_type_t */
  PW_HTTP_REQUEST_HEADERS = 0, PW_HTTP_REQUEST_TRAILERS = 1, PW_HTTP_RESPONSE_HEADERS = 2,
  PW_HTTP_RESPONSE_TRAILERS = 3,
};
enum { PW_METRIC_COUNTER = 0, PW_METRIC_GAUGE = 1, PW_METRIC_HISTOGRAM = 2 };

/* Logging and time. */
PW_IMPORT(proxy_log) proxy_status_t proxy_log(uint32_t level, const char *msg, size_t msg_size);
PW_IMPORT(proxy_get_log_level) proxy_status_t proxy_get_log_level(uint32_t *return_level);
PW_IMPORT(proxy_get_current_time_nanoseconds) proxy_status_t proxy_get_current_time_nanoseconds(uint64_t *return_time);
PW_IMPORT(proxy_set_tick_period_milliseconds) proxy_status_t proxy_set_tick_period_milliseconds(uint32_t period);

/* Buffers (configuration, bodies). Returned data is allocated through the module's allocator. */
PW_IMPORT(proxy_get_buffer_bytes) proxy_status_t proxy_get_buffer_bytes(uint32_t type, uint32_t start, uint32_t max_size, char **return_data, size_t *return_size);
PW_IMPORT(proxy_get_buffer_status) proxy_status_t proxy_get_buffer_status(uint32_t type, size_t *return_size, uint32_t *return_flags);
PW_IMPORT(proxy_set_buffer_bytes) proxy_status_t proxy_set_buffer_bytes(uint32_t type, uint32_t start, uint32_t size, const char *data, size_t data_size);

/* Header maps. */
PW_IMPORT(proxy_get_header_map_value) proxy_status_t proxy_get_header_map_value(uint32_t type, const char *key, size_t key_size, char **return_value, size_t *return_size);
PW_IMPORT(proxy_add_header_map_value) proxy_status_t proxy_add_header_map_value(uint32_t type, const char *key, size_t key_size, const char *value, size_t value_size);
PW_IMPORT(proxy_replace_header_map_value) proxy_status_t proxy_replace_header_map_value(uint32_t type, const char *key, size_t key_size, const char *value, size_t value_size);
PW_IMPORT(proxy_remove_header_map_value) proxy_status_t proxy_remove_header_map_value(uint32_t type, const char *key, size_t key_size);
PW_IMPORT(proxy_get_header_map_pairs) proxy_status_t proxy_get_header_map_pairs(uint32_t type, char **return_pairs, size_t *return_size);
PW_IMPORT(proxy_get_header_map_size) proxy_status_t proxy_get_header_map_size(uint32_t type, size_t *return_size);

/* Stream control. Headers of a local reply are serialized pairs (spec "Serialization"). */
PW_IMPORT(proxy_continue_stream) proxy_status_t proxy_continue_stream(uint32_t stream_type);
PW_IMPORT(proxy_send_local_response) proxy_status_t proxy_send_local_response(uint32_t status_code, const char *details, size_t details_size, const char *body, size_t body_size, const char *headers, size_t headers_size, int32_t grpc_status);

/* Properties: the path is NUL-separated segments. */
PW_IMPORT(proxy_get_property) proxy_status_t proxy_get_property(const char *path, size_t path_size, char **return_value, size_t *return_size);

/* Metrics. */
PW_IMPORT(proxy_define_metric) proxy_status_t proxy_define_metric(uint32_t type, const char *name, size_t name_size, uint32_t *return_id);
PW_IMPORT(proxy_increment_metric) proxy_status_t proxy_increment_metric(uint32_t id, int64_t delta);
PW_IMPORT(proxy_record_metric) proxy_status_t proxy_record_metric(uint32_t id, uint64_t value);
PW_IMPORT(proxy_get_metric) proxy_status_t proxy_get_metric(uint32_t id, uint64_t *return_value);

#endif
