// A small C++ layer over proxy_wasm.h, written for this test suite from the
// Proxy-Wasm spec, in the shape C++ SDK filters have: a RootContext per plugin and a
// Context per stream, virtual callbacks, factories registered by root id from static
// objects (run by the WASI reactor's _initialize), contexts kept in
// std::unordered_map. Built with libc++ and wasi-libc for wasm32-wasi (native-build.ts).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern "C" {
#include "proxy_wasm.h"
}

namespace pw {

enum class Action : uint32_t { Continue = PW_CONTINUE, Pause = PW_PAUSE };

class RootContext {
 public:
  RootContext(uint32_t id, std::string_view root_id) : id_(id), root_id_(root_id) {}
  virtual ~RootContext() = default;
  virtual bool onVmStart(size_t vm_configuration_size) { return true; }
  virtual bool onConfigure(size_t configuration_size) { return true; }
  uint32_t id() const { return id_; }
  const std::string &rootId() const { return root_id_; }

 private:
  uint32_t id_;
  std::string root_id_;
};

class Context {
 public:
  Context(uint32_t id, RootContext *root) : id_(id), root_(root) {}
  virtual ~Context() = default;
  virtual Action onRequestHeaders(uint32_t headers, bool end_of_stream) { return Action::Continue; }
  virtual Action onRequestBody(size_t body_size, bool end_of_stream) { return Action::Continue; }
  virtual Action onResponseHeaders(uint32_t headers, bool end_of_stream) { return Action::Continue; }
  virtual Action onResponseBody(size_t body_size, bool end_of_stream) { return Action::Continue; }
  virtual void onLog() {}
  uint32_t id() const { return id_; }
  RootContext *root() const { return root_; }

 private:
  uint32_t id_;
  RootContext *root_;
};

using RootFactory = std::function<std::unique_ptr<RootContext>(uint32_t id, std::string_view root_id)>;
using ContextFactory = std::function<std::unique_ptr<Context>(uint32_t id, RootContext *root)>;

// Declare one as a static object: its constructor registers the factories under root_id.
struct Registration {
  Registration(std::string_view root_id, RootFactory root, ContextFactory context);
};

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::optional<std::string> bufferBytes(uint32_t type, size_t size);
std::optional<std::string> header(uint32_t map, std::string_view name);
void addHeader(uint32_t map, std::string_view name, std::string_view value);
// A property by its segments, sent NUL-separated as the spec says.
std::optional<std::string> property(std::initializer_list<std::string_view> path);
void sendLocalResponse(uint32_t status, std::string_view details, std::string_view body, const Pairs &headers);
void log(uint32_t level, std::string_view message);

class Counter {
 public:
  explicit Counter(std::string_view name);
  void increment(int64_t by = 1) const;

 private:
  uint32_t id_ = 0;
};

}  // namespace pw
