// A filter written against @solo-io/proxy-runtime (the AssemblyScript SDK of
// solo-io), built at test time from the npm package (test/portability/sdk-build.ts).
// It looks its root context up by root id ("conformance"), as that SDK does.
//   request:  x-sdk-config: <plugin configuration>; /deny -> 403 "denied by proxy-runtime" [x-sdk: denied]
//   response: x-sdk: proxy-runtime
//   on_log:   counter sdk_proxy_runtime_requests_total
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues,
  stream_context, send_local_response, GrpcStatusValues, Headers, HeaderPair, Counter,
} from "@solo-io/proxy-runtime";

class ConformanceRoot extends RootContext {
  requests: Counter | null = null;
  createContext(context_id: u32): Context {
    if (this.requests == null) this.requests = new Counter("sdk_proxy_runtime_requests_total");
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
      headers.push(new HeaderPair(String.UTF8.encode("x-sdk"), String.UTF8.encode("denied")));
      send_local_response(403, "denied", String.UTF8.encode("denied by proxy-runtime"), headers, GrpcStatusValues.Unknown);
      return FilterHeadersStatusValues.StopIteration;
    }
    stream_context.headers.request.add("x-sdk-config", this.root.getConfiguration());
    return FilterHeadersStatusValues.Continue;
  }
  onRequestBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    return FilterDataStatusValues.Continue;
  }
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-sdk", "proxy-runtime");
    return FilterHeadersStatusValues.Continue;
  }
  onLog(): void {
    const c = this.root.requests;
    if (c != null) c.increment(1);
  }
}

registerRootContext((context_id: u32) => { return new ConformanceRoot(context_id); }, "conformance");
