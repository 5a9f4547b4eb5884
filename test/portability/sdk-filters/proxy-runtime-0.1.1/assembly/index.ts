// A filter written against @solo-io/proxy-runtime 0.1.1, the SDK's first release
// on npm: an ABI 0.1.0 build (proxy_abi_version_0_1_0, proxy_get_configuration,
// two-parameter header callbacks), with the pre-virtual-method API of that release
// (RootContextHelper/ContextHelper wrappers, configuration read in onConfigure).
// Built at test time from the npm package (test/portability/sdk-build.ts).
//   request:  x-sdk-config: <plugin configuration>; /deny-old -> 403 "denied by proxy-runtime 0.1.1"
//   response: x-sdk: proxy-runtime-0.1.1
//   on_log:   counter sdk_proxy_runtime_011_requests_total
// Two bugs of this release are worked around, as a user of it in Envoy would have to:
//   * its header-pair serialiser copies each value into subarray(offset, length)
//     (an end index taken for a length), so a local reply with a non-empty header
//     traps (proc_exit 255) in any host: the reply here carries no extra headers;
//   * its Counter class redeclares metric_id, shadowing the id Metric's constructor
//     set, so increment() passes id 0, which Envoy (first counter id 4) and this
//     host both answer NotFound: the id from define_metric is used directly.
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, RootContextHelper, ContextHelper, registerRootContext,
  FilterHeadersStatusValues, FilterDataStatusValues, stream_context, Headers, WasmResultValues,
} from "@solo-io/proxy-runtime";
import {
  send_local_response, GrpcStatusValues, define_metric, increment_metric, MetricTypeValues,
} from "@solo-io/proxy-runtime/runtime";

class OldRoot extends RootContext {
  configuration: string = "";
  requests: u32 = 0;

  onConfigure(): bool {
    this.configuration = String.UTF8.decode(super.getConfiguration());
    return true;
  }

  createContext(): Context {
    if (this.requests == 0) {
      const m = define_metric(MetricTypeValues.Counter, "sdk_proxy_runtime_011_requests_total");
      if (m.result == WasmResultValues.Ok) this.requests = m.metric_id;
    }
    return ContextHelper.wrap(new OldFilter(this));
  }
}

class OldFilter extends Context {
  root: OldRoot;
  constructor(root: OldRoot) {
    super();
    this.root = root;
  }

  onRequestHeaders(a: u32): FilterHeadersStatusValues {
    if (stream_context.headers.request.get(":path") == "/deny-old") {
      const headers: Headers = [];
      send_local_response(403, "denied", String.UTF8.encode("denied by proxy-runtime 0.1.1"), headers, GrpcStatusValues.Unknown);
      return FilterHeadersStatusValues.StopIteration;
    }
    stream_context.headers.request.add("x-sdk-config", this.root.configuration);
    return FilterHeadersStatusValues.Continue;
  }

  onRequestBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    return FilterDataStatusValues.Continue;
  }

  onResponseHeaders(a: u32): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-sdk", "proxy-runtime-0.1.1");
    return FilterHeadersStatusValues.Continue;
  }

  onLog(): void {
    if (this.root.requests != 0) increment_metric(this.root.requests, 1);
  }
}

registerRootContext(() => { return RootContextHelper.wrap(new OldRoot()); }, "conformance-old");
