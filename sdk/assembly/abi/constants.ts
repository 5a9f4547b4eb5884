// Proxy-Wasm ABI v0.2.1 enum values (proxy-wasm/spec abi-versions/v0.2.1, "Types";
// Envoy's richer action codes from the C++ SDK's proxy_wasm_enums.h).

export namespace Status {
  export const Ok: u32 = 0;
  export const NotFound: u32 = 1;
  export const BadArgument: u32 = 2;
  export const SerializationFailure: u32 = 3;
  export const ParseFailure: u32 = 4;
  export const BadExpression: u32 = 5;
  export const InvalidMemoryAccess: u32 = 6;
  export const Empty: u32 = 7;
  export const CasMismatch: u32 = 8;
  export const ResultMismatch: u32 = 9;
  export const InternalFailure: u32 = 10;
  export const BrokenConnection: u32 = 11;
  export const Unimplemented: u32 = 12;
}

/** Name of a status for error messages, e.g. "BAD_ARGUMENT". */
export function statusName(status: u32): string {
  switch (status) {
    case 0: return "OK";
    case 1: return "NOT_FOUND";
    case 2: return "BAD_ARGUMENT";
    case 3: return "SERIALIZATION_FAILURE";
    case 4: return "PARSE_FAILURE";
    case 5: return "BAD_EXPRESSION";
    case 6: return "INVALID_MEMORY_ACCESS";
    case 7: return "EMPTY";
    case 8: return "CAS_MISMATCH";
    case 9: return "RESULT_MISMATCH";
    case 10: return "INTERNAL_FAILURE";
    case 11: return "BROKEN_CONNECTION";
    case 12: return "UNIMPLEMENTED";
  }
  return "UNKNOWN";
}

export enum LogLevel {
  Trace = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
  Critical = 5,
}

/** What header/trailer callbacks return (Envoy FilterHeadersStatus). Spec: CONTINUE 0, PAUSE 1. */
export namespace Action {
  export const Continue: u32 = 0;
  export const Pause: u32 = 1;
}

export enum BufferType {
  HttpRequestBody = 0,
  HttpResponseBody = 1,
  DownstreamData = 2,
  UpstreamData = 3,
  HttpCallResponseBody = 4,
  GrpcReceiveBuffer = 5,
  VmConfiguration = 6,
  PluginConfiguration = 7,
  ForeignFunctionArguments = 8,
}

export enum MapType {
  HttpRequestHeaders = 0,
  HttpRequestTrailers = 1,
  HttpResponseHeaders = 2,
  HttpResponseTrailers = 3,
  GrpcReceiveInitialMetadata = 4,
  GrpcReceiveTrailingMetadata = 5,
  HttpCallResponseHeaders = 6,
  HttpCallResponseTrailers = 7,
}

export enum StreamType {
  HttpRequest = 0,
  HttpResponse = 1,
  Downstream = 2,
  Upstream = 3,
}

export enum MetricType {
  Counter = 0,
  Gauge = 1,
  Histogram = 2,
}
