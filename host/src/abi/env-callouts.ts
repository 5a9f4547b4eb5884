// Host functions: HTTP and gRPC call-outs, proxy_get_status, foreign functions, and
// what proxy-wasm-cpp-host gives every module (Emscripten builds import these).

import { Status } from './constants.js';
import { deserializePairs } from './pairs.js';
import type { GrpcRequest } from '../plugin/grpc-call.js';
import { MAX_CALLOUT_TIMEOUT_MS } from '../limits.js';
import { validHeader } from './guest-io.js';
import type { AbiContext } from './context.js';
import type { GuestIo, HostFn } from './guest-io.js';
import type { GuestMemory } from '../vm/guest-memory.js';

const textEncoder = new TextEncoder();

export function calloutFunctions(vm: AbiContext, { mem, copyOut, copyOutSized }: GuestIo): Record<string, HostFn> {
  const foreignNames = new RecentNames();
  // Small arguments (a list id: get_property_set) are copied into a reused array of their size:
  // a view of guest memory costs several times more than copying a few bytes.
  const smallArgs: Uint8Array[] = [];
  for (let n = 0; n <= SMALL_ARGS_MAX; n++) smallArgs.push(new Uint8Array(n));
  /** The arguments proxy_grpc_call and proxy_grpc_stream share; a status, or null for an upstream the plugin may not call. */
  function grpcRequest(
    upstreamPtr: number, upstreamSize: number, servicePtr: number, serviceSize: number, methodPtr: number, methodSize: number,
    metadataPtr: number, metadataSize: number, fn: string,
  ): GrpcRequest | null | Status {
    const m = mem();
    const upstream = m.string(upstreamPtr, upstreamSize);
    const service = m.string(servicePtr, serviceSize);
    const method = m.string(methodPtr, methodSize);
    const rawMetadata = m.view(metadataPtr, metadataSize);
    if (upstream === null || service === null || method === null || rawMetadata === null) return Status.InvalidMemoryAccess;
    const metadata = deserializePairs(rawMetadata);
    if (metadata === null || !metadata.every(([k, v]) => validHeader(k, v))) return Status.BadArgument;
    const target = vm.grpcTarget(upstream, fn);
    return target === null ? null : { target, service, method, metadata };
  }


  return {
    // --- HTTP call-outs -------------------------------------------------------------
    proxy_http_call(
      upstreamPtr: number, upstreamSize: number, headersPtr: number, headersSize: number, bodyPtr: number, bodySize: number,
      trailersPtr: number, trailersSize: number, timeoutMs: number, retToken: number,
    ): number {
      const m = mem();
      const upstream = m.string(upstreamPtr, upstreamSize);
      const rawHeaders = m.view(headersPtr, headersSize);
      const body = m.copy(bodyPtr, bodySize);
      const rawTrailers = m.view(trailersPtr, trailersSize);
      if (upstream === null || rawHeaders === null || body === null || rawTrailers === null) return Status.InvalidMemoryAccess;
      if (!m.inBounds(retToken, 4)) return Status.InvalidMemoryAccess;
      const headers = deserializePairs(rawHeaders);
      if (headers === null || deserializePairs(rawTrailers) === null) return Status.BadArgument;
      const has = (k: string) => headers.some(([n]) => n === k);
      if (!has(':method') || !has(':path') || !has(':authority')) return Status.BadArgument;
      const timeout = Math.min(timeoutMs >>> 0 || MAX_CALLOUT_TIMEOUT_MS, MAX_CALLOUT_TIMEOUT_MS);
      const token = vm.httpCall(upstream, headers, body, timeout);
      if (token === null) return Status.BadArgument;
      m.setU32(retToken, token);
      return Status.Ok;
    },

    // --- gRPC call-outs (plugin/grpc-call.ts) -------------------------------------------
    proxy_grpc_call(
      upstreamPtr: number, upstreamSize: number, servicePtr: number, serviceSize: number, methodPtr: number, methodSize: number,
      metadataPtr: number, metadataSize: number, messagePtr: number, messageSize: number, timeoutMs: number, retToken: number,
    ): number {
      const req = grpcRequest(upstreamPtr, upstreamSize, servicePtr, serviceSize, methodPtr, methodSize, metadataPtr, metadataSize, 'proxy_grpc_call');
      const message = mem().copy(messagePtr, messageSize);
      if (typeof req === 'number') return req;
      if (message === null || !mem().inBounds(retToken, 4)) return Status.InvalidMemoryAccess;
      if (req === null) return Status.ParseFailure;
      const token = vm.grpcCall(req, message, Math.min(timeoutMs >>> 0 || MAX_CALLOUT_TIMEOUT_MS, MAX_CALLOUT_TIMEOUT_MS));
      if (token === null) return Status.InternalFailure;
      mem().setU32(retToken, token);
      return Status.Ok;
    },
    proxy_grpc_stream(
      upstreamPtr: number, upstreamSize: number, servicePtr: number, serviceSize: number, methodPtr: number, methodSize: number,
      metadataPtr: number, metadataSize: number, retToken: number,
    ): number {
      const req = grpcRequest(upstreamPtr, upstreamSize, servicePtr, serviceSize, methodPtr, methodSize, metadataPtr, metadataSize, 'proxy_grpc_stream');
      if (typeof req === 'number') return req;
      if (!mem().inBounds(retToken, 4)) return Status.InvalidMemoryAccess;
      if (req === null) return Status.ParseFailure;
      const token = vm.grpcStream(req);
      if (token === null) return Status.InternalFailure;
      mem().setU32(retToken, token);
      return Status.Ok;
    },
    proxy_grpc_send(token: number, messagePtr: number, messageSize: number, endStream: number): number {
      const message = mem().copy(messagePtr, messageSize);
      if (message === null) return Status.InvalidMemoryAccess;
      return vm.grpcCallouts().send(token >>> 0, message, endStream !== 0) ? Status.Ok : Status.NotFound;
    },
    proxy_grpc_cancel(token: number): number {
      return vm.grpcCallouts().cancel(token >>> 0) ? Status.Ok : Status.NotFound;
    },
    proxy_grpc_close(token: number): number {
      return vm.grpcCallouts().close(token >>> 0) ? Status.Ok : Status.NotFound;
    },
    proxy_get_status(retCode: number, retMsgPtr: number, retMsgSize: number): number {
      const m = mem();
      if (!m.inBounds(retCode, 4)) return Status.InvalidMemoryAccess;
      const st = vm.lastCallStatus;
      m.setU32(retCode, st.code);
      return copyOut(textEncoder.encode(st.message), retMsgPtr, retMsgSize);
    },
    proxy_call_foreign_function(namePtr: number, nameSize: number, argsPtr: number, argsSize: number, retPtr: number, retSize: number): number {
      const m = mem();
      const name = foreignNames.decode(m, namePtr, nameSize);
      // A view or a reused array, not a copy of its own: foreign functions consume their
      // arguments before returning (ForeignFunction's contract), and nothing calls into the
      // guest until they have.
      argsSize >>>= 0;
      let args: Uint8Array | null = null;
      if (argsSize <= SMALL_ARGS_MAX) {
        args = smallArgs[argsSize]!;
        if (!m.copyInto(argsPtr, args)) args = null;
      } else args = m.view(argsPtr, argsSize);
      if (name === null || args === null) return Status.InvalidMemoryAccess;
      const result = vm.callForeign(name, args);
      if (typeof result === 'number') return result;
      if (result instanceof Uint8Array) return copyOut(result, retPtr, retSize);
      return copyOutSized(result, retPtr, retSize);
    },

    // --- what proxy-wasm-cpp-host gives every module (Emscripten builds import these) ---
    emscripten_notify_memory_growth(_memoryIndex: number): void {
      // Memory views are re-read on every access (vm/guest-memory.ts): nothing to refresh.
    },
    pthread_equal(left: number, right: number): number {
      return left === right ? 1 : 0;
    },
  };
}

/**
 * The foreign-function names a VM called last (an adapter calls the same two or three on
 * every request), each with its bytes: a name is found by comparing the guest's bytes with
 * those (GuestMemory.equals), which costs less than decoding it through the string cache.
 */
class RecentNames {
  private readonly bytes: Uint8Array[] = [];
  private readonly names: string[] = [];
  private next = 0;

  decode(m: GuestMemory, ptr: number, len: number): string | null {
    const b = this.bytes;
    for (let i = 0; i < b.length; i++) {
      if (b[i]!.length === len && m.equals(ptr, len, b[i]!)) return this.names[i]!;
    }
    const name = m.string(ptr, len);
    if (name === null || len > RECENT_NAME_MAX) return name;
    const copy = m.copy(ptr, len);
    if (copy === null) return name;
    this.bytes[this.next] = copy;
    this.names[this.next] = name;
    this.next = (this.next + 1) % RECENT_NAMES;
    return name;
  }
}
const RECENT_NAMES = 4;
const SMALL_ARGS_MAX = 16;
const RECENT_NAME_MAX = 64;
