// The standard process metrics every Prometheus target exposes (the names client_golang and
// prom-client use), refreshed when the registry is rendered or collected.

import type { MetricsRegistry } from './registry.js';

const registered = new WeakSet<MetricsRegistry>();

export function registerProcessMetrics(registry: MetricsRegistry): void {
  if (registered.has(registry)) return;
  registered.add(registry);
  const cpu = registry.counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', {}, { unit: 'seconds' });
  const rss = registry.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', {}, { unit: 'bytes' });
  const start = registry.gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', {}, { unit: 'seconds' });
  const heap = registry.gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', {}, { unit: 'bytes' });
  start(Math.round((Date.now() - process.uptime() * 1000) / 1000));
  let lastCpu = 0;
  registry.addCollector(() => {
    const u = process.cpuUsage();
    const total = (u.user + u.system) / 1e6;
    if (total > lastCpu) {
      cpu(total - lastCpu);
      lastCpu = total;
    }
    const m = process.memoryUsage();
    rss(m.rss);
    heap(m.heapUsed);
  });
}
