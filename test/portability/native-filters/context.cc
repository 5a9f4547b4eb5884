// The exported Proxy-Wasm callbacks of context.hpp: dispatch by context id to the
// contexts created from the factories registered under the plugin's root id. A root
// id with no registration gets the base classes, which do nothing (no-op contexts).
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "context.hpp"

#define EXPORT(name) extern "C" __attribute__((export_name(#name)))

namespace pw {
namespace {

struct Factories {
  RootFactory root;
  ContextFactory context;
};

// Function-local statics: safe to use from other translation units' static constructors.
std::unordered_map<std::string, Factories> &registry() {
  static std::unordered_map<std::string, Factories> r;
  return r;
}
std::unordered_map<uint32_t, std::unique_ptr<RootContext>> roots;
std::unordered_map<uint32_t, std::unique_ptr<Context>> streams;

// Host-allocated result: owned by the module, freed here after copying.
std::string take(char *data, size_t size) {
  std::string s(data == nullptr ? "" : data, data == nullptr ? 0 : size);
  std::free(data);
  return s;
}

Context *stream(uint32_t id) {
  auto it = streams.find(id);
  return it == streams.end() ? nullptr : it->second.get();
}

RootContext *root(uint32_t id) {
  auto it = roots.find(id);
  return it == roots.end() ? nullptr : it->second.get();
}

}  // namespace

Registration::Registration(std::string_view root_id, RootFactory root, ContextFactory context) {
  registry()[std::string(root_id)] = Factories{std::move(root), std::move(context)};
}

std::optional<std::string> bufferBytes(uint32_t type, size_t size) {
  char *data = nullptr;
  size_t got = 0;
  if (proxy_get_buffer_bytes(type, 0, size, &data, &got) != PW_OK) return std::nullopt;
  return take(data, got);
}

std::optional<std::string> header(uint32_t map, std::string_view name) {
  char *data = nullptr;
  size_t size = 0;
  if (proxy_get_header_map_value(map, name.data(), name.size(), &data, &size) != PW_OK) return std::nullopt;
  return take(data, size);
}

void addHeader(uint32_t map, std::string_view name, std::string_view value) {
  proxy_add_header_map_value(map, name.data(), name.size(), value.data(), value.size());
}

std::optional<std::string> property(std::initializer_list<std::string_view> path) {
  std::string joined;
  for (auto segment : path) {
    if (!joined.empty()) joined.push_back('\0');
    joined.append(segment);
  }
  char *data = nullptr;
  size_t size = 0;
  if (proxy_get_property(joined.data(), joined.size(), &data, &size) != PW_OK) return std::nullopt;
  return take(data, size);
}

void sendLocalResponse(uint32_t status, std::string_view details, std::string_view body, const Pairs &headers) {
  // Spec "Serialization": u32 count, u32 (key, value) lengths, then each key and value NUL-terminated.
  std::string out(4 + 8 * headers.size(), '\0');
  uint32_t n = headers.size();
  std::memcpy(out.data(), &n, 4);
  for (size_t i = 0; i < headers.size(); i++) {
    uint32_t lens[2] = {uint32_t(headers[i].first.size()), uint32_t(headers[i].second.size())};
    std::memcpy(out.data() + 4 + 8 * i, lens, 8);
  }
  for (const auto &[key, value] : headers) {
    out.append(key).push_back('\0');
    out.append(value).push_back('\0');
  }
  proxy_send_local_response(status, details.data(), details.size(), body.data(), body.size(), out.data(), out.size(), -1);
}

void log(uint32_t level, std::string_view message) { proxy_log(level, message.data(), message.size()); }

Counter::Counter(std::string_view name) { proxy_define_metric(PW_METRIC_COUNTER, name.data(), name.size(), &id_); }
void Counter::increment(int64_t by) const {
  if (id_ != 0) proxy_increment_metric(id_, by);
}

}  // namespace pw

using namespace pw;

EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1() {}
EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(size_t size) { return std::malloc(size); }

EXPORT(proxy_on_context_create) void proxy_on_context_create(uint32_t id, uint32_t parent) {
  if (parent == 0) {
    std::string root_id = property({"plugin_root_id"}).value_or("");
    auto it = registry().find(root_id);
    roots[id] = it != registry().end() ? it->second.root(id, root_id) : std::make_unique<RootContext>(id, root_id);
    return;
  }
  RootContext *r = root(parent);
  auto it = r == nullptr ? registry().end() : registry().find(r->rootId());
  streams[id] = it != registry().end() ? it->second.context(id, r) : std::make_unique<Context>(id, r);
}

EXPORT(proxy_on_vm_start) uint32_t proxy_on_vm_start(uint32_t id, size_t size) {
  RootContext *r = root(id);
  return r == nullptr || r->onVmStart(size);
}
EXPORT(proxy_on_configure) uint32_t proxy_on_configure(uint32_t id, size_t size) {
  RootContext *r = root(id);
  return r == nullptr || r->onConfigure(size);
}

#define STREAM_CALLBACK(export_name, method, T)                          \
  EXPORT(export_name) uint32_t export_name(uint32_t id, T n, uint32_t eos) { \
    Context *c = stream(id);                                             \
    return uint32_t(c == nullptr ? Action::Continue : c->method(n, eos != 0)); \
  }
STREAM_CALLBACK(proxy_on_request_headers, onRequestHeaders, uint32_t)
STREAM_CALLBACK(proxy_on_request_body, onRequestBody, size_t)
STREAM_CALLBACK(proxy_on_response_headers, onResponseHeaders, uint32_t)
STREAM_CALLBACK(proxy_on_response_body, onResponseBody, size_t)

EXPORT(proxy_on_done) uint32_t proxy_on_done(uint32_t id) { return 1; }
EXPORT(proxy_on_log) void proxy_on_log(uint32_t id) {
  if (Context *c = stream(id)) c->onLog();
}
EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t id) {
  if (streams.erase(id) == 0) roots.erase(id);
}
