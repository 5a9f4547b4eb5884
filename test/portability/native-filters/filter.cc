// A Proxy-Wasm filter in C++ (context.hpp), built with clang++, libc++ and wasi-libc
// for wasm32-wasi as a WASI reactor (native-build.ts): the toolchain shape of a C++ SDK
// build. Two registrations in one module, as C++ SDK filters often have:
//   root id ""          request: x-cxx-config: <plugin configuration>,
//                                x-cxx-path: <property request.path (NUL-separated)>;
//                       :path == "/cxx-deny" -> 403 "denied by c++ filter" [x-cxx-reason: <configuration>]
//                       response: x-cxx: main; on_log: counter cxx_filter_requests_total;
//                       on_configure logs through printf (WASI fd_write)
//   root id "cxx-alt"   response: x-cxx: alt
#include <cstdio>

#include "context.hpp"

namespace {

class MainRoot : public pw::RootContext {
 public:
  using RootContext::RootContext;
  bool onConfigure(size_t size) override {
    config = pw::bufferBytes(PW_PLUGIN_CONFIGURATION, size).value_or("");
    std::printf("c++ filter configured: %s\n", config.c_str());
    std::fflush(stdout);
    return true;
  }
  std::string config;
  pw::Counter requests{"cxx_filter_requests_total"};
};

class MainFilter : public pw::Context {
 public:
  using Context::Context;
  pw::Action onRequestHeaders(uint32_t, bool) override {
    auto *r = static_cast<MainRoot *>(root());
    if (pw::header(PW_HTTP_REQUEST_HEADERS, ":path") == "/cxx-deny") {
      pw::sendLocalResponse(403, "cxx_denied", "denied by c++ filter", {{"x-cxx-reason", r->config}});
      return pw::Action::Pause;
    }
    pw::addHeader(PW_HTTP_REQUEST_HEADERS, "x-cxx-config", r->config);
    pw::addHeader(PW_HTTP_REQUEST_HEADERS, "x-cxx-path", pw::property({"request", "path"}).value_or("?"));
    return pw::Action::Continue;
  }
  pw::Action onResponseHeaders(uint32_t, bool) override {
    pw::addHeader(PW_HTTP_RESPONSE_HEADERS, "x-cxx", "main");
    return pw::Action::Continue;
  }
  void onLog() override { static_cast<MainRoot *>(root())->requests.increment(); }
};

class AltFilter : public pw::Context {
 public:
  using Context::Context;
  pw::Action onResponseHeaders(uint32_t, bool) override {
    pw::addHeader(PW_HTTP_RESPONSE_HEADERS, "x-cxx", "alt");
    return pw::Action::Continue;
  }
};

pw::Registration main_filter(
    "", [](uint32_t id, std::string_view root_id) { return std::make_unique<MainRoot>(id, root_id); },
    [](uint32_t id, pw::RootContext *root) { return std::make_unique<MainFilter>(id, root); });

pw::Registration alt_filter(
    "cxx-alt", [](uint32_t id, std::string_view root_id) { return std::make_unique<pw::RootContext>(id, root_id); },
    [](uint32_t id, pw::RootContext *root) { return std::make_unique<AltFilter>(id, root); });

}  // namespace
