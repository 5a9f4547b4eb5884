// One process per role, so each has its own event loop and its CPU time can be read
// from /proc/<pid>/stat (started by bench/run.js; each prints "ready ..." on stdout):
//
//   node bench/e2e/roles.js upstream                 an echo-like upstream: reads the body, answers 1 KiB
//   node bench/e2e/roles.js proxy CONFIG.json        startProxy(config): "ready PORT ADMINPORT"
//   node bench/e2e/roles.js server CONFIG.json       startAdapterServer(config) on 127.0.0.1:0: "ready PORT"
//
// Everything listens on 127.0.0.1 with port 0 (a free port). SIGTERM closes and exits 0
// (so `node --cpu-prof` writes its profile).
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const [role, configFile] = process.argv.slice(2);
let close = async () => {};

if (role === 'upstream') {
  // Istio's fortio echo server answers with the payload it received (1 KiB); answering
  // a fixed 1 KiB body costs the same and does not depend on the client.
  const body = Buffer.alloc(1024, 'x');
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  close = () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); });
  console.log(`ready ${server.address().port}`);
} else if (role === 'proxy' || role === 'server') {
  if (process.env.WM_BENCH_PROBE === '1') await import('./probe.js'); // bench/e2e/saturation.js --probe
  const { validateConfig } = await import('../../dist/host/src/config/load.js');
  const config = validateConfig(JSON.parse(await readFile(configFile, 'utf8')), configFile);
  const baseDir = dirname(configFile);
  if (role === 'proxy') {
    const { startProxy } = await import('../../dist/host/src/index.js');
    const proxy = await startProxy(config, { baseDir, port: 0, adminPort: 0, drainMs: 500 });
    proxy.server.keepAliveTimeout = 60_000;
    close = () => proxy.close();
    console.log(`ready ${proxy.port} ${proxy.adminPort}`);
  } else {
    const { startAdapterServer } = await import('../../dist/host/src/oop/server.js');
    const server = await startAdapterServer(config, { baseDir, listen: '127.0.0.1:0', adminPort: 0 });
    close = () => server.close(500);
    console.log(`ready ${server.port} ${server.adminPort}`);
  }
} else {
  console.error(`unknown role ${role}`);
  process.exit(2);
}

let closing = false;
process.on('SIGTERM', () => {
  if (closing) return;
  closing = true;
  const t = setTimeout(() => process.exit(0), 3000);
  close().finally(() => {
    clearTimeout(t);
    process.exit(0);
  });
});
// The runner is gone (crashed, killed): do not linger.
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
