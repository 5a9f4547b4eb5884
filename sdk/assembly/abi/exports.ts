// Proxy-Wasm ABI v0.2.1 module exports. Each is one call into the dispatcher
// (or the allocator). An adapter re-exports this file from its entry point:
//   export * from "wasm-mixer/sdk/exports";

import * as d from "../dispatcher";
import { allocate } from "../runtime";

/** ABI version marker; never called. */
export function proxy_abi_version_0_2_1(): void {}

// ---- memory ------------------------------------------------------------------------------------

export function proxy_on_memory_allocate(size: usize): usize { return allocate(size); }
/** Deprecated alias some hosts look up first (cpp-host prefers it). */
export function malloc(size: usize): usize { return allocate(size); }

// ---- lifecycle ---------------------------------------------------------------------------------

export function proxy_on_context_create(contextId: u32, parentContextId: u32): void { d.onContextCreate(contextId, parentContextId); }
export function proxy_on_vm_start(rootContextId: u32, vmConfigurationSize: u32): u32 { return d.onVmStart(rootContextId, vmConfigurationSize); }
export function proxy_on_configure(rootContextId: u32, pluginConfigurationSize: u32): u32 { return d.onConfigure(rootContextId, pluginConfigurationSize); }
export function proxy_on_tick(rootContextId: u32): void { d.onTick(rootContextId); }
export function proxy_on_queue_ready(rootContextId: u32, queueId: u32): void { d.onQueueReady(rootContextId, queueId); }
export function proxy_on_foreign_function(rootContextId: u32, functionId: u32, argumentsSize: u32): void { d.ignore3(rootContextId, functionId, argumentsSize); }
// No proxy_on_done: the SDK runs no adapter code there and would only answer "done", which
// is what a host assumes of a module without it (Envoy, cpp-host, this host), so leaving it
// out saves a guest call per request.
export function proxy_on_log(contextId: u32): void { d.onLog(contextId); }
export function proxy_on_delete(contextId: u32): void { d.onDelete(contextId); }

// ---- HTTP streams ------------------------------------------------------------------------------
// Body, trailer and TCP callbacks are deliberately not exported: every callback is
// optional in the ABI, and a host that sees proxy_on_request_body/proxy_on_response_body
// must run each body chunk through the module instead of streaming it (Envoy and our
// proxy both do). An adapter that needs bodies exports its own proxy_on_request_body
// (see sdk/README.md, "Bodies").

export function proxy_on_request_headers(contextId: u32, numHeaders: u32, endOfStream: u32): u32 { return d.onRequestHeaders(contextId, numHeaders, endOfStream); }
export function proxy_on_response_headers(contextId: u32, numHeaders: u32, endOfStream: u32): u32 { return d.onResponseHeaders(contextId, numHeaders, endOfStream); }


// ---- call-outs ---------------------------------------------------------------------------------

export function proxy_on_http_call_response(contextId: u32, token: u32, numHeaders: u32, bodySize: u32, numTrailers: u32): void { d.onHttpCallResponse(contextId, token, numHeaders, bodySize, numTrailers); }
export function proxy_on_grpc_receive_initial_metadata(contextId: u32, token: u32, numElements: u32): void { d.ignore3(contextId, token, numElements); }
export function proxy_on_grpc_receive(contextId: u32, token: u32, messageSize: u32): void { d.ignore3(contextId, token, messageSize); }
export function proxy_on_grpc_receive_trailing_metadata(contextId: u32, token: u32, numElements: u32): void { d.ignore3(contextId, token, numElements); }
export function proxy_on_grpc_close(contextId: u32, token: u32, statusCode: u32): void { d.ignore3(contextId, token, statusCode); }
