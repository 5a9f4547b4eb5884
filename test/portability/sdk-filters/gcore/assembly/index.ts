// A filter written against @gcoredev/proxy-wasm-sdk-as (G-Core's fork of the
// AssemblyScript SDK, FastEdge-flavoured: one root context, logging and
// environment variables through WASI), built at test time from the npm package
// with @assemblyscript/wasi-shim (test/portability/sdk-build.ts).
//   request:  x-sdk-config: <plugin configuration>, x-sdk-env: <env SDK_ENV>;
//             /deny -> 403 "denied by gcore" [x-sdk: denied]
//   response: x-sdk: gcore
//   on_log:   counter sdk_gcore_requests_total, and a log line through WASI fd_write
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues,
  stream_context, send_local_response, GrpcStatusValues, Headers, makeHeaderPair, Counter, log, LogLevelValues,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { getEnvVar } from "@gcoredev/proxy-wasm-sdk-as/assembly/fastedge";

class ConformanceRoot extends RootContext {
  requests: Counter | null = null;
  createContext(context_id: u32): Context {
    if (this.requests == null) this.requests = new Counter("sdk_gcore_requests_total");
    return new Conformance(context_id, this);
  }
}

class Conformance extends Context {
  readonly root: ConformanceRoot;
  constructor(context_id: u32, root_context: ConformanceRoot) {
    super(context_id, root_context);
    this.root = root_context;
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const path = stream_context.headers.request.get(":path");
    if (path == "/deny") {
      const headers: Headers = [];
      headers.push(makeHeaderPair("x-sdk", "denied"));
      send_local_response(403, "denied", String.UTF8.encode("denied by gcore"), headers, GrpcStatusValues.Unknown);
      return FilterHeadersStatusValues.StopIteration;
    }
    stream_context.headers.request.add("x-sdk-config", this.root.getConfiguration());
    stream_context.headers.request.add("x-sdk-env", getEnvVar("SDK_ENV"));
    return FilterHeadersStatusValues.Continue;
  }
  onRequestBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    return FilterDataStatusValues.Continue;
  }
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-sdk", "gcore");
    return FilterHeadersStatusValues.Continue;
  }
  onLog(): void {
    const c = this.root.requests;
    if (c != null) c.increment(1);
    log(LogLevelValues.warn, "gcore conformance log");
  }
}

registerRootContext((context_id: u32) => { return new ConformanceRoot(context_id); }, "conformance");
