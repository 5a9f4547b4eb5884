// Processes the proxy comparisons start, one per role so each gets its own event loop:
//   node bench/core/servers.js upstream PORT
//   node bench/core/servers.js wasm-mixer PORT UPSTREAM_PORT [ADAPTER.wasm]
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
