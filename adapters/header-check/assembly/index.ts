// header-check: denies requests that lack a configured header.
import { Adapter, Config, Counter, Decision, LogLevel, Report, Request, log, register } from "wasm-mixer/sdk";
// The ABI callbacks by name rather than `export *`: a host skips a callback the module does not
// export, and this adapter has nothing to do in proxy_on_response_headers (no onResponse, no
// response headers queued), so leaving it out saves a guest call per request. An adapter built
// from this one that adds onResponse or queues response headers exports it again.
export {
  proxy_abi_version_0_2_1, proxy_on_memory_allocate, malloc, proxy_on_context_create, proxy_on_vm_start, proxy_on_configure,
  proxy_on_tick, proxy_on_queue_ready, proxy_on_foreign_function, proxy_on_request_headers, proxy_on_log, proxy_on_delete,
  proxy_on_http_call_response, proxy_on_grpc_receive_initial_metadata, proxy_on_grpc_receive,
  proxy_on_grpc_receive_trailing_metadata, proxy_on_grpc_close,
} from "wasm-mixer/sdk/exports";

const checks = new Counter("header_check_requests_total");
const allowed = checks.with(["result", "allowed"]);   // one handle per label set, made once
const denied = checks.with(["result", "denied"]);

class HeaderCheck extends Adapter {
  header: string = "";
  status: u32 = 403;

  configure(c: Config): string | null {
    this.header = c.requireString("header").toLowerCase();
    this.status = <u32>c.getInt("deny_status", 403);
    if (this.status < 400 || this.status > 599) c.fail("deny_status", "must be a 4xx or 5xx status");
    return c.error;
  }

  check(req: Request): Decision {
    if (!req.hasHeader(this.header)) {
      denied.inc();
      return Decision.denyJSON(this.status, "missing header " + this.header).withDetails("header_check_missing");
    }
    allowed.inc();
    req.setHeader("x-header-check", "ok");
    return Decision.allow();
  }

  report(r: Report): void {
    if (!log.enabled(LogLevel.Info)) return; // skip building the line when the host would drop it
    log.info(`${r.method} ${r.path} -> ${r.responseCode} in ${r.duration / 1000}us`);
  }
}

register<HeaderCheck>();
