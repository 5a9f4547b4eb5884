// Processes for the proxy part of bench/telemetry/telemetry-cost.js, one per role:
//   node bench/telemetry/servers.js upstream PORT
//   node bench/telemetry/servers.js proxy PORT UPSTREAM_PORT PLUGINS_JSON
// The proxy writes access-log entries to a file sink in a temp folder (real I/O, rotated at
// 100 MiB). Each prints "ready PORT" when listening.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startJsonUpstream } from '../core/json-upstream.js';

const [role, portArg, upstreamArg, pluginsJson] = process.argv.slice(2);
const port = Number(portArg);

if (role === 'upstream') {
  startJsonUpstream(port);
} else if (role === 'proxy') {
  const { startProxy } = await import('../../dist/host/src/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'wm-bench-proxy-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const proxy = await startProxy(
    {
      listen: { address: '127.0.0.1', port },
      logLevel: 'error',
      routes: [{ name: 'backend', upstream: `http://127.0.0.1:${upstreamArg}` }],
      plugins: JSON.parse(pluginsJson ?? '[]'),
      upstream: { maxSockets: 128 },
      accessLog: { sinks: [{ type: 'file', path: join(dir, 'access.log') }] },
    },
    { baseDir: process.cwd(), logger: { level: 4, log() {} } },
  );
  console.log(`ready ${proxy.port}`);
} else {
  console.error(`unknown role ${role}`);
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
