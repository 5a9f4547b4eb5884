/*
 * A Proxy-Wasm filter in C, shaped like what the C++ SDK emits (proxy-wasm-cpp-sdk
 * under Emscripten): ABI 0.2.1, exports malloc and proxy_on_memory_allocate and
 * memory, a WASI-reactor _initialize that runs static constructors (where the C++
 * SDK's RegisterContextFactory objects register), root contexts looked up by the
 * plugin_root_id property, with the empty root id as the registered one. Compiled
 * at test time by clang + wasm-ld for wasm32 (test/portability/native-build.ts) against
 * proxy_wasm.h, written from the spec; no libc.
 *
 *   on_vm_start:  keeps the VM configuration     on_configure: keeps the plugin configuration;
 *                 ("fail-configure" -> false)    defines counter c_filter_requests_total
 *   request:      x-c-config: <plugin config>, x-c-vm: <vm config>;
 *                 with an x-c-deny header -> 451 "denied by c filter" [x-c-reason: <its value>]
 *   response:     x-c-filter: c
 *   on_log:       counter + 1
 * A root id with no registration gets no-op contexts, as in the C++ SDK.
 */
#include "proxy_wasm.h"

/* ---- memory: size-class free lists over a bump region after __heap_base ---- */
extern unsigned char __heap_base;
static uintptr_t heap_top;
static void *free_lists[28];

static void *raw_copy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

PW_EXPORT(malloc) void *malloc(size_t size) {
  uint32_t cls = 4; /* 16-byte minimum block, 8 of it header */
  while (((size_t)1 << cls) < size + 8) cls++;
  void *block = free_lists[cls];
  if (block != 0) {
    free_lists[cls] = *(void **)((char *)block + 8);
    return (char *)block + 8;
  }
  if (heap_top == 0) heap_top = ((uintptr_t)&__heap_base + 15) & ~(uintptr_t)15;
  uintptr_t end = heap_top + ((size_t)1 << cls);
  uintptr_t have = __builtin_wasm_memory_size(0) * 65536;
  if (end > have && __builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == (size_t)-1) return 0;
  block = (void *)heap_top;
  heap_top = end;
  *(uint32_t *)block = cls;
  return (char *)block + 8;
}

PW_EXPORT(free) void free(void *p) {
  if (p == 0) return;
  char *block = (char *)p - 8;
  uint32_t cls = *(uint32_t *)block;
  *(void **)(block + 8) = free_lists[cls];
  free_lists[cls] = block;
}

PW_EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(size_t size) { return malloc(size); }

PW_EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}

/* ---- strings ---- */
typedef struct { char *data; size_t size; } bytes_t;

static int equals(bytes_t b, const char *lit) {
  size_t i = 0;
  for (; lit[i] != 0; i++) if (i >= b.size || b.data[i] != lit[i]) return 0;
  return i == b.size;
}

static void log_info2(const char *prefix, size_t prefix_size, bytes_t rest) {
  char *msg = malloc(prefix_size + rest.size);
  raw_copy(msg, prefix, prefix_size);
  raw_copy(msg + prefix_size, rest.data, rest.size);
  proxy_log(PW_LOG_INFO, msg, prefix_size + rest.size);
  free(msg);
}

#define LIT(s) s, sizeof(s) - 1

/* ---- registration, as the C++ SDK's RegisterContextFactory: a static constructor adds
 * the filter, by root id, to a heap-allocated registry (so it runs in _initialize and
 * cannot be folded into the data section at compile time) ---- */
typedef struct root root_t;
typedef struct registration {
  const char *root_id;
  uint32_t (*on_request_headers)(uint32_t context_id, root_t *root);
  uint32_t (*on_response_headers)(uint32_t context_id, root_t *root);
  struct registration *next;
} registration_t;

static registration_t *registry;

static void register_root(const char *root_id, uint32_t (*req)(uint32_t, root_t *), uint32_t (*resp)(uint32_t, root_t *)) {
  registration_t *r = malloc(sizeof *r);
  r->root_id = root_id;
  r->on_request_headers = req;
  r->on_response_headers = resp;
  r->next = registry;
  registry = r;
}

/* ---- contexts ---- */
struct root {
  uint32_t id;
  const registration_t *reg; /* none: the C++ SDK's default no-op contexts */
  bytes_t vm_config, config;
  uint32_t requests_metric;
};

typedef struct stream {
  uint32_t id;
  root_t *root;
  struct stream *next;
} stream_t;

#define MAX_ROOTS 16
static root_t roots[MAX_ROOTS];
static uint32_t root_count;
static stream_t *streams;

static root_t *find_root(uint32_t id) {
  for (uint32_t i = 0; i < root_count; i++) if (roots[i].id == id) return &roots[i];
  return 0;
}

static stream_t *find_stream(uint32_t id) {
  for (stream_t *s = streams; s != 0; s = s->next) if (s->id == id) return s;
  return 0;
}

static bytes_t read_buffer(uint32_t type, size_t size) {
  bytes_t b = {0, 0};
  if (size > 0 && proxy_get_buffer_bytes(type, 0, size, &b.data, &b.size) != PW_OK) b.size = 0;
  return b;
}

PW_EXPORT(proxy_on_context_create) void proxy_on_context_create(uint32_t id, uint32_t parent) {
  if (parent == 0) {
    if (root_count == MAX_ROOTS) return;
    root_t *r = &roots[root_count++];
    r->id = id;
    bytes_t root_id = {0, 0};
    proxy_get_property(LIT("plugin_root_id"), &root_id.data, &root_id.size);
    for (const registration_t *reg = registry; reg != 0 && r->reg == 0; reg = reg->next) {
      if (equals(root_id, reg->root_id)) r->reg = reg;
    }
    free(root_id.data);
    return;
  }
  stream_t *s = malloc(sizeof *s);
  s->id = id;
  s->root = find_root(parent);
  s->next = streams;
  streams = s;
}

PW_EXPORT(proxy_on_vm_start) uint32_t proxy_on_vm_start(uint32_t root_id, size_t vm_config_size) {
  root_t *r = find_root(root_id);
  if (r != 0) r->vm_config = read_buffer(PW_VM_CONFIGURATION, vm_config_size);
  return 1;
}

PW_EXPORT(proxy_on_configure) uint32_t proxy_on_configure(uint32_t root_id, size_t config_size) {
  root_t *r = find_root(root_id);
  if (r == 0 || r->reg == 0) return 1;
  free(r->config.data);
  r->config = read_buffer(PW_PLUGIN_CONFIGURATION, config_size);
  if (equals(r->config, "fail-configure")) return 0;
  if (r->requests_metric == 0) proxy_define_metric(PW_METRIC_COUNTER, LIT("c_filter_requests_total"), &r->requests_metric);
  log_info2(LIT("c filter configured: "), r->config);
  return 1;
}

static root_t *active_root_of(uint32_t context_id) {
  stream_t *s = find_stream(context_id);
  return s != 0 && s->root != 0 && s->root->reg != 0 ? s->root : 0;
}

PW_EXPORT(proxy_on_request_headers) uint32_t proxy_on_request_headers(uint32_t id, uint32_t n, uint32_t eos) {
  root_t *r = active_root_of(id);
  return r != 0 ? r->reg->on_request_headers(id, r) : PW_CONTINUE;
}

PW_EXPORT(proxy_on_request_body) uint32_t proxy_on_request_body(uint32_t id, size_t size, uint32_t eos) { return PW_CONTINUE; }
PW_EXPORT(proxy_on_request_trailers) uint32_t proxy_on_request_trailers(uint32_t id, uint32_t n) { return PW_CONTINUE; }

PW_EXPORT(proxy_on_response_headers) uint32_t proxy_on_response_headers(uint32_t id, uint32_t n, uint32_t eos) {
  root_t *r = active_root_of(id);
  return r != 0 ? r->reg->on_response_headers(id, r) : PW_CONTINUE;
}

PW_EXPORT(proxy_on_response_body) uint32_t proxy_on_response_body(uint32_t id, size_t size, uint32_t eos) { return PW_CONTINUE; }
PW_EXPORT(proxy_on_response_trailers) uint32_t proxy_on_response_trailers(uint32_t id, uint32_t n) { return PW_CONTINUE; }

PW_EXPORT(proxy_on_done) uint32_t proxy_on_done(uint32_t id) { return 1; }

PW_EXPORT(proxy_on_log) void proxy_on_log(uint32_t id) {
  root_t *r = active_root_of(id);
  if (r != 0 && r->requests_metric != 0) proxy_increment_metric(r->requests_metric, 1);
}

PW_EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t id) {
  for (stream_t **p = &streams; *p != 0; p = &(*p)->next) {
    if ((*p)->id == id) {
      stream_t *s = *p;
      *p = s->next;
      free(s);
      return;
    }
  }
}

/* ---- the filter ---- */

/* One header pair in the spec's serialized form: count, lengths, then NUL-terminated key and value. */
static bytes_t one_pair(const char *key, size_t key_size, bytes_t value) {
  bytes_t out;
  out.size = 12 + key_size + 1 + value.size + 1;
  out.data = malloc(out.size);
  uint32_t head[3] = {1, (uint32_t)key_size, (uint32_t)value.size};
  raw_copy(out.data, head, 12);
  raw_copy(out.data + 12, key, key_size);
  out.data[12 + key_size] = 0;
  raw_copy(out.data + 13 + key_size, value.data, value.size);
  out.data[out.size - 1] = 0;
  return out;
}

static uint32_t filter_request_headers(uint32_t context_id, root_t *r) {
  bytes_t deny = {0, 0};
  if (proxy_get_header_map_value(PW_HTTP_REQUEST_HEADERS, LIT("x-c-deny"), &deny.data, &deny.size) == PW_OK) {
    bytes_t headers = one_pair(LIT("x-c-reason"), deny);
    proxy_send_local_response(451, LIT("c_filter_denied"), LIT("denied by c filter"), headers.data, headers.size, -1);
    free(headers.data);
    free(deny.data);
    return PW_PAUSE;
  }
  proxy_add_header_map_value(PW_HTTP_REQUEST_HEADERS, LIT("x-c-config"), r->config.data, r->config.size);
  proxy_add_header_map_value(PW_HTTP_REQUEST_HEADERS, LIT("x-c-vm"), r->vm_config.data, r->vm_config.size);
  return PW_CONTINUE;
}

static uint32_t filter_response_headers(uint32_t context_id, root_t *r) {
  proxy_add_header_map_value(PW_HTTP_RESPONSE_HEADERS, LIT("x-c-filter"), LIT("c"));
  return PW_CONTINUE;
}

__attribute__((constructor)) static void register_filter(void) {
  register_root("", filter_request_headers, filter_response_headers); /* the C++ SDK's default root id */
}

/* WASI reactor entry, as Emscripten's standalone builds export it: runs the static constructors. */
extern void __wasm_call_ctors(void);
PW_EXPORT(_initialize) void _initialize(void) { __wasm_call_ctors(); }
