// prometheus: Istio's standard HTTP metrics, recorded in the log phase (proxy_on_log, after
// the response), through the ABI's metric calls, and served by the host's /metrics.
//
//   istio_requests_total                    counter
//   istio_request_duration_milliseconds     histogram (Envoy/Istio default buckets, fractional ms)
//   istio_request_bytes, istio_response_bytes   histograms of body sizes
//
// with Istio's standard labels, tag overrides in the style of Istio's Telemetry API
// (UPSERT a label from an attribute expression or a literal, REMOVE one, disable a metric),
// a "istio_seconds" preset (Mixer 1.1's istio_request_duration_seconds), and a cap on label
// sets per metric: beyond it, requests are recorded in one overflow series whose per-request
// label values are "__overflow__", and counted in wasm_mixer_prometheus_overflow_total.
// See README.md for the config.

import {
  Adapter, AttrSource, AttrType, BytesMap, Config, Counter, Histogram, Metric, PathFilter, PropertySet, Report, attrError,
  callForeignFunction, log, parseAttr, parseJSON, quoteJSON, register,
} from "wasm-mixer/sdk";
import { LabelDef, LabelSet, Plan, Src, Values } from "./labels";
// The ABI callbacks by name rather than `export *`: this adapter works only in the log phase
// (report; no check, no onResponse, no response headers queued), and a host skips a callback
// the module does not export, so leaving out proxy_on_request_headers and
// proxy_on_response_headers saves two guest calls per request. Export them again if the
// adapter starts to check requests or touch responses.
export {
  proxy_abi_version_0_2_1, proxy_on_memory_allocate, malloc, proxy_on_context_create, proxy_on_vm_start, proxy_on_configure,
  proxy_on_tick, proxy_on_queue_ready, proxy_on_foreign_function, proxy_on_log, proxy_on_delete,
  proxy_on_http_call_response, proxy_on_grpc_receive_initial_metadata, proxy_on_grpc_receive,
  proxy_on_grpc_receive_trailing_metadata, proxy_on_grpc_close,
} from "wasm-mixer/sdk/exports";

const DESCRIBE_FUNCTION = "wasm_mixer.describe_metric";
export const OVERFLOW_VALUE = "__overflow__";

const ENVOY_BUCKETS: f64[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
const SECONDS_BUCKETS: f64[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const MIXER_BYTES_BUCKETS: f64[] = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000];

/** Istio's standard HTTP labels, in Istio's order. */
const STANDARD_LABELS: string[] = [
  "reporter",
  "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version", "source_cluster",
  "source_canonical_service", "source_canonical_revision",
  "destination_workload", "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
  "destination_service", "destination_service_name", "destination_service_namespace", "destination_cluster",
  "destination_canonical_service", "destination_canonical_revision",
  "request_protocol", "response_code", "grpc_response_status", "response_flags", "connection_security_policy",
];

// ---- metrics -----------------------------------------------------------------------------------

enum Kind {
  Count = 0,
  Duration = 1,
  RequestSize = 2,
  ResponseSize = 3,
}

const KIND_NAMES = ["REQUEST_COUNT", "REQUEST_DURATION", "REQUEST_SIZE", "RESPONSE_SIZE"];

class MetricDef {
  kind: Kind;
  family: string = "";
  help: string = "";
  unit: string = "";
  buckets: f64[] = [];
  /** Multiplier the host applies to recorded values (ns → ms for durations). */
  scale: f64 = 1;
  /** Without the host's describe_metric (e.g. in Envoy): record durations as integer ms. */
  integerMs: bool = false;
  enabled: bool = true;
  labels: LabelSet = new LabelSet();
  /** The series of each label set seen, by the label set's key bytes. */
  series: BytesMap<Metric> = new BytesMap<Metric>(64);
  overflow: Metric | null = null;
  overflowCount: Counter | null = null;
  /** The series lookup() found for the label set's generation `lastGen` (never the overflow series, which counts each request). */
  last: Metric | null = null;
  lastGen: i32 = -1;

  constructor(kind: Kind) {
    this.kind = kind;
  }

  make(name: string): Metric {
    return this.kind == Kind.Count ? <Metric>new Counter(name) : <Metric>new Histogram(name);
  }

  /** The series for this request's label values (the overflow series once the cap is reached). */
  lookup(ls: LabelSet, cap: i32): Metric {
    let last = this.last;
    if (last !== null && this.lastGen == ls.generation) return last;
    let m = this.find(ls, cap);
    if (m !== this.overflow) {
      this.last = m;
      this.lastGen = ls.generation;
    }
    return m;
  }

  private find(ls: LabelSet, cap: i32): Metric {
    let k = ls.key;
    let i = this.series.find(k.ptr, k.len, ls.hash);
    if (i >= 0) return this.series.valueAt(i);
    if (this.series.size >= cap) {
      let o = this.overflow;
      if (o === null) {
        let vals: string[] = new Array<string>(ls.dynamic.length);
        for (let i = 0; i < vals.length; i++) vals[i] = OVERFLOW_VALUE;
        o = this.make(ls.render(this.family, vals));
        this.overflow = o;
        this.overflowCount = new Counter("wasm_mixer_prometheus_overflow_total", ["metric", this.family]);
      }
      this.overflowCount!.inc();
      return o;
    }
    let m = this.make(ls.render(this.family, ls.values()));
    this.series.add(k.ptr, k.len, ls.hash, m);
    return m;
  }
}

function isLabelName(s: string): bool {
  if (s.length == 0 || s.startsWith("__") || s == "le") return false;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    let ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c == 0x5f || (i > 0 && c >= 0x30 && c <= 0x39);
    if (!ok) return false;
  }
  return true;
}

function describe(d: MetricDef): string | null {
  let parts: string[] = ["{\"name\":", quoteJSON(d.family), ",\"type\":", d.kind == Kind.Count ? "\"counter\"" : "\"histogram\"",
    ",\"help\":", quoteJSON(d.help), ",\"unit\":", quoteJSON(d.unit)];
  if (d.kind != Kind.Count) {
    parts.push(",\"buckets\":[");
    for (let i = 0; i < d.buckets.length; i++) {
      if (i > 0) parts.push(",");
      parts.push(d.buckets[i].toString());
    }
    parts.push("],\"scale\":");
    parts.push(d.scale.toString());
  }
  parts.push("}");
  let res = callForeignFunction(DESCRIBE_FUNCTION, String.UTF8.encode(parts.join("")));
  if (res === null) return "-"; // not our host
  let j = parseJSON(String.UTF8.decode(res));
  if (!j.ok || !j.value!.isObject) return "unexpected answer from " + DESCRIBE_FUNCTION;
  let ok = j.value!.get("ok");
  if (ok !== null && ok.isBool && ok.boolValue) return null;
  let e = j.value!.get("error");
  return e !== null && e.isString ? e.strValue : "refused";
}

class Prometheus extends Adapter {
  props: PropertySet = new PropertySet();
  plan: Plan = new Plan();
  values: Values = new Values(this.props, this.plan);
  metrics: MetricDef[] = [];
  sets: LabelSet[] = [];
  cap: i32 = 1000;
  exclude: PathFilter = new PathFilter();
  stamp: i32 = 0;

  configure(c: Config): string | null {
    let known = ["preset", "reporter", "overrides", "max_series_per_metric", "exclude_paths", "buckets"];
    let keys = c.keys();
    for (let i = 0; i < keys.length; i++) if (!known.includes(keys[i])) c.fail(keys[i], "unknown key; known keys: " + known.join(", "));

    let preset = c.getString("preset", "istio");
    if (preset != "istio" && preset != "istio_seconds") c.fail("preset", "must be \"istio\" or \"istio_seconds\"");
    let seconds = preset == "istio_seconds";
    let reporter = c.getString("reporter", "destination");
    if (reporter != "destination" && reporter != "source") c.fail("reporter", "must be \"destination\" or \"source\"");
    this.cap = <i32>c.getInt("max_series_per_metric", 1000);
    if (this.cap < 1 || this.cap > 1000000) c.fail("max_series_per_metric", "must be between 1 and 1000000");

    // the four metrics with the preset's names, buckets and units
    this.metrics = [];
    for (let k = 0; k < 4; k++) {
      let d = new MetricDef(<Kind>k);
      if (k == Kind.Count) {
        d.family = "istio_requests_total";
        d.help = "Requests handled by the proxy, by Istio's standard labels.";
      } else if (k == Kind.Duration) {
        d.family = seconds ? "istio_request_duration_seconds" : "istio_request_duration_milliseconds";
        d.help = "Request duration from the first request byte to the end of the response.";
        d.unit = seconds ? "seconds" : "milliseconds";
        d.buckets = seconds ? SECONDS_BUCKETS.slice(0) : ENVOY_BUCKETS.slice(0);
        d.scale = seconds ? 1e-9 : 1e-6;
      } else {
        d.family = k == Kind.RequestSize ? "istio_request_bytes" : "istio_response_bytes";
        d.help = k == Kind.RequestSize ? "Request body sizes." : "Response body sizes.";
        d.unit = "bytes";
        d.buckets = seconds ? MIXER_BYTES_BUCKETS.slice(0) : ENVOY_BUCKETS.slice(0);
      }
      this.metrics.push(d);
    }
    let b = c.getObject("buckets");
    let bk = b.keys();
    for (let i = 0; i < bk.length; i++) {
      let idx = KIND_NAMES.indexOf(bk[i]);
      if (idx < 1) {
        b.fail(bk[i], "buckets apply to REQUEST_DURATION, REQUEST_SIZE or RESPONSE_SIZE");
        continue;
      }
      let arr = b.getArray(bk[i]);
      let bounds: f64[] = [];
      for (let j = 0; j < arr.length; j++) {
        let v = arr[j].value;
        if (!v.isNumber) {
          b.fail(bk[i], "must be an array of numbers");
          break;
        }
        if (bounds.length > 0 && v.numValue <= bounds[bounds.length - 1]) {
          b.fail(bk[i], "must be strictly increasing");
          break;
        }
        bounds.push(v.numValue);
      }
      if (bounds.length == 0) b.fail(bk[i], "must not be empty");
      this.metrics[idx].buckets = bounds;
    }

    // labels: the standard set, then the overrides in order
    let base: LabelDef[] = [];
    for (let i = 0; i < STANDARD_LABELS.length; i++) base.push(standardLabel(STANDARD_LABELS[i], reporter));
    let per: LabelDef[][] = [];
    for (let k = 0; k < 4; k++) per.push(base.slice(0));

    let overrides = c.getArray("overrides");
    for (let i = 0; i < overrides.length; i++) {
      let o = overrides[i];
      let okeys = o.keys();
      for (let j = 0; j < okeys.length; j++) {
        let k = okeys[j];
        if (k != "match" && k != "disabled" && k != "tagOverrides") o.fail(k, "unknown key; known keys: match, disabled, tagOverrides");
      }
      let m = o.getObject("match");
      let metric = m.getString("metric", "ALL_METRICS");
      let mode = m.getString("mode", "CLIENT_AND_SERVER");
      if (mode != "CLIENT_AND_SERVER" && mode != "CLIENT" && mode != "SERVER") m.fail("mode", "must be CLIENT_AND_SERVER, CLIENT or SERVER");
      if ((mode == "CLIENT" && reporter != "source") || (mode == "SERVER" && reporter != "destination")) continue;
      let targets: i32[] = [];
      if (metric == "ALL_METRICS") targets = [0, 1, 2, 3];
      else {
        let idx = KIND_NAMES.indexOf(metric);
        if (idx >= 0) targets = [idx];
        else if (metric.startsWith("GRPC_") || metric.startsWith("TCP_")) {
          log.warn("overrides[" + i.toString() + "]: " + metric + " is not recorded by this adapter (HTTP metrics only); ignored");
          continue;
        } else {
          m.fail("metric", "must be ALL_METRICS, REQUEST_COUNT, REQUEST_DURATION, REQUEST_SIZE or RESPONSE_SIZE");
          continue;
        }
      }
      if (o.has("disabled")) {
        let dis = o.getBool("disabled");
        for (let t = 0; t < targets.length; t++) this.metrics[targets[t]].enabled = !dis;
      }
      let tags = o.getObject("tagOverrides");
      let names = tags.keys();
      for (let j = 0; j < names.length; j++) {
        let name = names[j];
        let spec = tags.getObject(name);
        if (!isLabelName(name)) {
          tags.fail(name, "is not a valid Prometheus label name");
          continue;
        }
        let op = spec.getString("operation", "UPSERT");
        if (op == "REMOVE") {
          for (let t = 0; t < targets.length; t++) removeLabel(per[targets[t]], name);
          continue;
        }
        if (op != "UPSERT") {
          spec.fail("operation", "must be UPSERT or REMOVE");
          continue;
        }
        if (!spec.has("value")) {
          spec.fail("value", "is required for UPSERT (an attribute such as request.host, request.headers['x'], or a quoted literal)");
          continue;
        }
        let a = parseAttr(spec.getString("value"));
        if (a === null) {
          spec.fail("value", attrError);
          continue;
        }
        let def = a.source == AttrSource.Literal ? new LabelDef(name, Src.Const, a.value) : new LabelDef(name, Src.Attr, "", a);
        for (let t = 0; t < targets.length; t++) upsertLabel(per[targets[t]], def);
      }
    }

    // share label sets between metrics with identical definitions
    this.sets = [];
    let sigs: string[] = [];
    for (let k = 0; k < 4; k++) {
      let ls = new LabelSet();
      ls.labels = per[k];
      let sig = ls.signature();
      let at = sigs.indexOf(sig);
      if (at >= 0) this.metrics[k].labels = this.sets[at];
      else {
        ls.finish();
        sigs.push(sig);
        this.sets.push(ls);
        this.metrics[k].labels = ls;
      }
    }

    this.exclude = PathFilter.fromConfig(c, "exclude_paths");
    if (c.error !== null) return c.error;

    // every attribute a request reads, fetched in one host call per request
    let ps = new PropertySet();
    let plan = new Plan();
    plan.code = ps.add(["response", "code"]);
    plan.flags = ps.add(["response", "flags"]);
    plan.contentType = ps.add(["request", "headers", "content-type"]);
    plan.grpcStatus = ps.add(["response", "headers", "grpc-status"]);
    plan.principal = ps.add(["mixer", "principal"]);
    plan.cluster = ps.add(["cluster_name"]);
    plan.mtls = ps.add(["connection", "mtls"]);
    plan.duration = ps.add(["request", "duration"]);
    plan.requestSize = ps.add(["request", "size"]);
    plan.responseSize = ps.add(["response", "size"]);
    plan.path = ps.add(["request", "headers", ":path"]);
    for (let k = 0; k < this.sets.length; k++) {
      let labels = this.sets[k].labels;
      for (let i = 0; i < labels.length; i++) {
        let l = labels[i];
        if (l.src != Src.Attr) continue;
        let a = l.attr!;
        if (a.source == AttrSource.RequestHeader) l.idx = ps.add(["request", "headers", a.value]);
        else if (a.source == AttrSource.ResponseHeader) l.idx = ps.add(["response", "headers", a.value]);
        else if (a.source == AttrSource.Property && a.type != AttrType.Map) l.idx = ps.add(a.path);
      }
    }
    ps.register();
    this.props = ps;
    this.plan = plan;
    this.values = new Values(ps, plan);

    // tell the host about help, units, buckets and scale (histogram values go in as integers)
    for (let k = 0; k < 4; k++) {
      let d = this.metrics[k];
      if (!d.enabled) continue;
      let err = describe(d);
      if (err === null) continue;
      if (err == "-") {
        // no describe_metric here: record whole milliseconds (or seconds) as Envoy's stats do
        d.integerMs = true;
        continue;
      }
      c.fail("", d.family + ": " + err);
    }
    return c.error;
  }

  report(r: Report): void {
    let ps = this.props;
    let plan = this.plan;
    ps.reset();
    if (!this.exclude.isEmpty) {
      let n = ps.len(plan.path);
      if (n >= 0 && this.exclude.matchesBytes(ps.ptr(plan.path), n)) return;
    }
    let v = this.values;
    let stamp = ++this.stamp;
    let ms = this.metrics;
    for (let i = 0; i < ms.length; i++) {
      let d = unchecked(ms[i]);
      if (!d.enabled) continue;
      d.labels.compute(v, stamp);
      let m = d.lookup(d.labels, this.cap);
      if (d.kind == Kind.Count) {
        (<Counter>m).inc();
      } else if (d.kind == Kind.Duration) {
        let ns = ps.int(plan.duration, 0);
        if (ns < 0) ns = 0;
        (<Histogram>m).record(d.integerMs ? (d.scale < 1e-6 ? ns / 1_000_000_000 : ns / 1_000_000) : ns);
      } else if (d.kind == Kind.RequestSize) {
        (<Histogram>m).record(ps.int(plan.requestSize, 0));
      } else {
        (<Histogram>m).record(ps.int(plan.responseSize, 0));
      }
    }
  }
}

function standardLabel(name: string, reporter: string): LabelDef {
  if (name == "reporter") return new LabelDef(name, Src.Const, reporter);
  if (name == "source_principal") return new LabelDef(name, Src.Principal);
  if (name == "destination_service" || name == "destination_service_name") return new LabelDef(name, Src.Cluster);
  if (name == "request_protocol") return new LabelDef(name, Src.RequestProtocol);
  if (name == "response_code") return new LabelDef(name, Src.ResponseCode);
  if (name == "grpc_response_status") return new LabelDef(name, Src.GrpcStatus);
  if (name == "response_flags") return new LabelDef(name, Src.ResponseFlags);
  if (name == "connection_security_policy") return reporter == "destination" ? new LabelDef(name, Src.SecurityPolicy) : new LabelDef(name, Src.Const, "unknown");
  return new LabelDef(name, Src.Const, "unknown");
}

function removeLabel(list: LabelDef[], name: string): void {
  for (let i = 0; i < list.length; i++) {
    if (list[i].name == name) {
      list.splice(i, 1);
      return;
    }
  }
}

function upsertLabel(list: LabelDef[], def: LabelDef): void {
  for (let i = 0; i < list.length; i++) {
    if (list[i].name == def.name) {
      list[i] = def;
      return;
    }
  }
  list.push(def);
}

register<Prometheus>();
