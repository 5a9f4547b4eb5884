// The dispatcher: owns the context registry (root contexts by id, HTTP
// stream contexts by id, each stream mapped to its root) and turns the raw
// proxy_on_* callbacks into calls on Adapter / Request / Report.
//
// Every callback that runs adapter code is bracketed by begin()/end():
// begin() forgets the cached log level, end() unpins any host-written buffer
// the SDK did not take, so nothing the host allocates outlives a callback.

import { Action, BufferType } from "./abi/constants";
import * as host from "./hostcalls";
import { releaseAll } from "./runtime";
import { resetLogLevelCache, log } from "./log";
import { Adapter, Request, Report, HttpCallResponse, applyDecision } from "./context";
import { pendingCalls } from "./calls";
import { Config } from "./config";
import { JSONValue, parseJSON } from "./json";
import { encodePath } from "./properties";
import { IdTable } from "./idtable";

export type AdapterFactory = () => Adapter;

const factoryIds: string[] = [];
const factories: AdapterFactory[] = [];
const roots = new IdTable<Adapter>(2);
const streams = new IdTable<Report>();

/**
 * Registers the adapter class of this module. Call it once at the top level
 * of assembly/index.ts: `register<MyAdapter>()`. With several adapters in one
 * module, give each a root id; the host's plugin_root_id selects one.
 */
export function register<T extends Adapter>(rootId: string = ""): void {
  registerFactory((): Adapter => instantiate<T>(), rootId);
}

/** Registers a factory function instead of a class (for adapters with constructor arguments). */
export function registerFactory(factory: AdapterFactory, rootId: string = ""): void {
  let i = factoryIds.indexOf(rootId);
  if (i >= 0) {
    factories[i] = factory;
    return;
  }
  factoryIds.push(rootId);
  factories.push(factory);
}

@inline function begin(): void {
  resetLogLevelCache();
}

@inline function end(): void {
  releaseAll();
}

function pickFactory(): AdapterFactory {
  let n = factories.length;
  if (n == 0) abort("no adapter registered: call register<MyAdapter>() at the top level of assembly/index.ts");
  if (n == 1) return factories[0];
  let rootId = host.getPropertyString(encodePath(["plugin_root_id"]));
  let i = rootId !== null ? factoryIds.indexOf(rootId) : -1;
  if (i < 0) i = factoryIds.indexOf("");
  if (i < 0) {
    abort("no adapter registered for plugin_root_id '" + (rootId !== null ? rootId : "") +
      "' (registered: " + factoryIds.join(", ") + ")");
  }
  return factories[i];
}

// Both tables remember their last hit (idtable.ts): a request's callbacks come one after
// another, and a module usually has one root, so most lookups skip the probe.
function findRoot(id: u32): Adapter | null {
  return roots.find(id);
}

function rootOf(id: u32): Adapter {
  let a = findRoot(id);
  if (a === null) abort("unknown root context " + id.toString());
  return a!;
}

function findStream(id: u32): Report | null {
  return streams.find(id);
}

// Reports of ended requests, reused by the next ones (linked through nextFree), so a
// request allocates nothing in steady state. At most POOL_MAX wait here; one the adapter
// may still hold (Request.retained) is never put back.
const POOL_MAX = 64;
let pool: Request | null = null;
let pooled = 0;

function newReport(id: u32, adapter: Adapter): Report {
  let r = pool;
  if (r === null) return new Report(id, adapter);
  pool = r.nextFree;
  pooled--;
  r.reuse(id, adapter);
  return changetype<Report>(r);
}

function recycle(r: Report): void {
  if (r.retained || pooled >= POOL_MAX) return;
  r.reset(); // drops the request's strings and maps now, not at reuse
  r.nextFree = pool;
  pool = r;
  pooled++;
}

function streamOf(id: u32): Report {
  let r = findStream(id);
  if (r === null) abort("unknown stream context " + id.toString());
  return r!;
}

// ---- lifecycle ---------------------------------------------------------------------------------

export function onContextCreate(id: u32, parentId: u32): void {
  begin();
  if (parentId == 0) {
    let adapter = pickFactory()();
    adapter.contextId = id;
    roots.set(id, adapter);
  } else {
    streams.set(id, newReport(id, rootOf(parentId)));
  }
  end();
}

export function onVmStart(rootId: u32, vmConfigSize: u32): u32 {
  return 1;
}

export function onConfigure(rootId: u32, configSize: u32): u32 {
  begin();
  let adapter = rootOf(rootId);
  let text = "";
  if (configSize > 0) {
    let b = host.getBufferBytes(BufferType.PluginConfiguration, 0, configSize);
    if (b !== null) text = String.UTF8.decode(b);
  }
  let value: JSONValue;
  if (text.trim().length == 0) {
    value = JSONValue.newObject();
  } else {
    let parsed = parseJSON(text);
    if (!parsed.ok) {
      log.error("invalid configuration: not valid JSON: " + parsed.error!);
      end();
      return 0;
    }
    value = parsed.value!;
  }
  let err = adapter.configure(new Config(value, text));
  end();
  if (err !== null) {
    begin();
    log.error("configuration refused: " + err);
    end();
    return 0;
  }
  return 1;
}

export function onLog(id: u32): void {
  begin();
  let r = findStream(id);
  if (r !== null) r.adapter.report(r);
  end();
}

export function onDelete(id: u32): void {
  let r = streams.take(id);
  if (r !== null) {
    begin();
    r.adapter.onEnd(r);
    if (r.pendingCalls > 0) dropCallsOf(id);
    recycle(r);
  } else {
    roots.delete(id);
  }
  end();
}

function dropCallsOf(streamId: u32): void {
  let tokens = pendingCalls.keys();
  for (let i = 0; i < tokens.length; i++) {
    let t = unchecked(tokens[i]);
    if (pendingCalls.get(t).streamId == streamId) pendingCalls.delete(t);
  }
}

// ---- timers and queues -------------------------------------------------------------------------

export function onTick(rootId: u32): void {
  begin();
  rootOf(rootId).onTick();
  end();
}

export function onQueueReady(rootId: u32, queueId: u32): void {
  begin();
  rootOf(rootId).onQueueReady(queueId);
  end();
}

// ---- HTTP --------------------------------------------------------------------------------------

export function onRequestHeaders(id: u32, headerCount: u32, endOfStream: u32): u32 {
  begin();
  let r = streamOf(id);
  let action = applyDecision(r, r.adapter.check(r), false);
  end();
  return action;
}

export function onResponseHeaders(id: u32, headerCount: u32, endOfStream: u32): u32 {
  begin();
  let r = streamOf(id);
  r.adapter.onResponse(r);
  r.applyResponseHeaders();
  end();
  return Action.Continue;
}

export function onHttpCallResponse(contextId: u32, token: u32, headerCount: u32, bodySize: u32, trailerCount: u32): void {
  begin();
  if (!pendingCalls.has(token)) {
    log.debug("http call response for unknown token " + token.toString());
    end();
    return;
  }
  let call = pendingCalls.get(token);
  pendingCalls.delete(token);
  let resp = new HttpCallResponse(token, headerCount, bodySize, trailerCount);
  if (call.streamId != 0) {
    // A call made for a request: switch to that request, run the callback, apply its decision.
    let r = findStream(call.streamId);
    if (r !== null) {
      r.pendingCalls--;
      if (host.setEffectiveContext(call.streamId)) {
        let d = call.cb!(r, resp);
        applyDecision(r, d, true);
      }
    }
  } else {
    let a = findRoot(call.rootId);
    if (a !== null) call.adapterCb!(a, resp);
  }
  end();
}

// ---- stream callbacks the SDK passes through ---------------------------------------------------

export function ignore2(a: u32, b: u32): void {}

export function ignore3(a: u32, b: u32, c: u32): void {}

/** Number of live contexts (for tests). */
export function liveContexts(): i32 {
  return roots.size + streams.size;
}

/** Ended requests' objects waiting for reuse (for tests). */
export function pooledContexts(): i32 {
  return pooled;
}
