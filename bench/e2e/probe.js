// In-process counters for a proxy role, loaded by roles.js only when WM_BENCH_PROBE=1
// (bench/e2e/saturation.js --probe): garbage collections (count and main-thread pause,
// from perf_hooks), and wall time inside the adapter chain's entry points (newStream,
// request/response headers, log phase), so a run can split the proxy's CPU into
// "the chain" and "everything else". Each SIGUSR2 prints one line, `probe {json}`, with
// the totals since start; the runner subtracts two of them.
import { PerformanceObserver, constants } from 'node:perf_hooks';

const totals = { requests: 0, scavenges: 0, scavengeMs: 0, majorGcs: 0, majorGcMs: 0, otherGcMs: 0, chainMs: { newStream: 0, requestHeaders: 0, responseHeaders: 0, finish: 0 }, chainCpuMs: { newStream: 0, requestHeaders: 0, responseHeaders: 0, finish: 0 } };

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = e.detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      totals.scavenges++;
      totals.scavengeMs += e.duration;
    } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
      totals.majorGcs++;
      totals.majorGcMs += e.duration;
    } else totals.otherGcMs += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

const timed = (proto, name, count = false) => {
  const f = proto[name];
  proto[name] = function (...args) {
    if (count) totals.requests++;
    const t = performance.now();
    const c = process.cpuUsage();
    try {
      return f.apply(this, args);
    } finally {
      totals.chainMs[name] += performance.now() - t;
      const d = process.cpuUsage(c);
      totals.chainCpuMs[name] += (d.user + d.system) / 1000;
    }
  };
};
const { WasmHost } = await import('../../dist/host/src/host.js');
const { HostStream } = await import('../../dist/host/src/chain/chain.js');
timed(WasmHost.prototype, 'newStream', true);
for (const m of ['requestHeaders', 'responseHeaders', 'finish']) timed(HostStream.prototype, m);

process.on('SIGUSR2', () => process.stdout.write(`probe ${JSON.stringify(totals)}\n`));
