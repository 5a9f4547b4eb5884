// Processes the proxy comparisons start, one per role so each gets its own event loop:
//   node bench/core/servers.js upstream PORT
//   node bench/core/servers.js wasm-mixer PORT UPSTREAM_PORT [ADAPTER.wasm]
//   node bench/core/servers.js wasm-mixer-four PORT UPSTREAM_PORT CREDENTIALS.json   (the benchmark's four adapters)
//   node bench/core/servers.js fastify PORT UPSTREAM_PORT
//   node bench/core/servers.js forward-agent PORT UPSTREAM_PORT    (bench/core/upstream-pool.js)
//   node bench/core/servers.js forward-undici PORT UPSTREAM_PORT   (bench/core/upstream-pool.js)
//   node bench/core/servers.js forward-dispatch PORT UPSTREAM_PORT (bench/core/upstream-pool.js)
// WASM_MIXER_DIST=DIR runs the wasm-mixer role from another build's dist/ (a baseline in the same run).
// Each prints "ready PORT" on stdout when listening.
import { pathToFileURL } from 'node:url';
import { startJsonUpstream } from './json-upstream.js';

const [role, portArg, upstreamArg, adapter] = process.argv.slice(2);
const port = Number(portArg);
const upstream = `http://127.0.0.1:${upstreamArg}`;

if (role === 'upstream') {
  startJsonUpstream(port);
} else if (role === 'wasm-mixer') {
  const dist = process.env.WASM_MIXER_DIST ? pathToFileURL(`${process.env.WASM_MIXER_DIST}/host/src/index.js`).href : '../../dist/host/src/index.js';
  const { startProxy } = await import(dist);
  const plugins = adapter ? [{ name: 'a', url: adapter }] : [];
  const proxy = await startProxy(
    { listen: { address: '127.0.0.1', port }, logLevel: 'error', routes: [{ name: 'r', upstream }], plugins, upstream: { maxSockets: 128 } },
    { baseDir: process.cwd(), logger: { level: 4, log() {} } },
  );
  console.log(`ready ${proxy.port}`);
} else if (role === 'wasm-mixer-four') {
  // The benchmark's four adapters (bench/e2e/configs.js) from this build's wasm/, or the
  // baseline's (next to WASM_MIXER_DIST); credentials from the file the parent wrote (argv[5]).
  const { readFileSync } = await import('node:fs');
  const { dirname, resolve } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const distDir = process.env.WASM_MIXER_DIST;
  const dist = distDir ? pathToFileURL(`${distDir}/host/src/index.js`).href : '../../dist/host/src/index.js';
  const wasmDir = distDir ? resolve(distDir, '../wasm') : resolve(dirname(new URL(import.meta.url).pathname), '../../wasm');
  const { startProxy } = await import(dist);
  const { benchConfig } = await import('../e2e/configs.js');
  const creds = JSON.parse(readFileSync(adapter, 'utf8'));
  const config = benchConfig({ mode: 'inproc', n: 4, creds, wasmDir, upstreamPort: Number(upstreamArg), logDir: tmpdir() });
  config.listen = { address: '127.0.0.1', port };
  config.admin = undefined;
  const proxy = await startProxy(config, { baseDir: process.cwd(), logger: { level: 4, log() {} } });
  console.log(`ready ${proxy.port}`);
} else if (role === 'fastify') {
  const { default: Fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = Fastify({ logger: false });
  await app.register(proxy, { upstream, http: { agentOptions: { keepAlive: true, maxSockets: 128 } } });
  await app.listen({ port, host: '127.0.0.1' });
  console.log(`ready ${app.server.address().port}`);
} else if (role === 'forward-agent' || role === 'forward-undici' || role === 'forward-dispatch') {
  const { startForwarder } = await import('./forwarders.js');
  console.log(`ready ${await startForwarder(role.slice('forward-'.length), port, upstream)}`);
} else {
  console.error(`unknown role ${role}`);
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
