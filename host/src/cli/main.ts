// The `wasm-mixer` command: proxy, serve, build, check, demo-upstream.

import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { loadConfigFile, validateConfig } from '../config/load.js';
import type { MixerConfig, PluginConfig } from '../config/schema.js';
import { describeError, HostError, isHostError } from '../errors.js';
import { startDemoUpstream } from '../proxy/demo-upstream.js';
import { startProxy, type RunningProxy } from '../proxy/proxy.js';
import { compileModule } from '../vm/module.js';

const HELP = `wasm-mixer — Proxy-Wasm adapters (policy, telemetry) for a Node.js proxy

Usage:
  wasm-mixer proxy --config FILE [--port N] [--admin N] [--workers N|auto]
  wasm-mixer proxy --listen PORT --to URL [--adapter FILE.wasm [--adapter-config JSON]]... [--admin PORT] [--fail-open] [--workers N|auto]
  wasm-mixer serve --config FILE [--listen ADDRESS] [--admin PORT]
                                        the adapter server: the same adapters, out of process, over gRPC
  wasm-mixer build DIR | --all          compile an AssemblyScript adapter folder to wasm/NAME.wasm
  wasm-mixer check FILE.wasm            validate a module: ABI marker, allocator, imports
  wasm-mixer demo-upstream [--port N]   a JSON echo server to put behind the proxy
  wasm-mixer help

proxy, config-file form:
  --config FILE       YAML or JSON (see README "Configuration"); refused with the bad field's path if invalid
  --port N            override listen.port;  --admin N  override admin.port
  --workers N|auto    worker processes, each with its own adapter VMs, behind one port (overrides
                      the config's workers:; default auto = one per core; 1 = a single process)

proxy, quick form (like caddy reverse-proxy --from --to):
  --listen PORT       port to listen on (127.0.0.1), or ADDRESS:PORT
  --to URL            upstream base URL, e.g. http://127.0.0.1:3000
  --adapter FILE      an adapter .wasm; repeat for a chain, in order
  --adapter-config J  JSON config for the --adapter just before it
  --admin PORT        admin port (/ready, /metrics, /adapters) on 127.0.0.1
  --fail-open         adapters that fail are skipped instead of failing the request
  --log-level LEVEL   trace|debug|info|warn|error|critical (default info)

serve (out-of-process mode, docs/out-of-process.md):
  --config FILE       the same config file as the proxy; the proxy runs the plugins that
                      remote.plugins / a plugin's remote: true select in this server
  --listen ADDRESS    gRPC address, host:port or unix:/path (default remote.address, 127.0.0.1:9091)
  --admin PORT        admin port (/ready, /metrics, /adapters) on 127.0.0.1 (default remote.server.admin)
  --log-level LEVEL   trace|debug|info|warn|error|critical
  Serves wasm_mixer.v1.Mixer (for the proxy), envoy.service.auth.v3.Authorization (ext_authz),
  envoy.service.ratelimit.v3.RateLimitService and grpc.health.v1.Health.

Ctrl-C stops accepting, drains in-flight requests, then exits.
Errors print a stable code (e.g. CONFIG_INVALID, WASM_IMPORT_UNKNOWN); see host/ERRORS.md.`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'proxy':
        return await proxyCommand(rest);
      case 'serve':
        return await serveCommand(rest);
      case 'build':
        return await buildCommand(rest);
      case 'check':
        return await checkCommand(rest);
      case 'demo-upstream':
        return await demoCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(HELP);
        return 0;
      default:
        throw new HostError('USAGE', `unknown command "${cmd}"; run wasm-mixer help`);
    }
  } catch (err) {
    console.error(`wasm-mixer: ${describeError(err)}`);
    return isHostError(err) && err.code === 'USAGE' ? 64 : 1;
  }
}

function takeValue(args: string[], i: number, flag: string): string {
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new HostError('USAGE', `${flag} needs a value`);
  return v;
}

function parsePort(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new HostError('USAGE', `${flag} must be a port number (0-65535), got "${v}"`);
  return n;
}

/** Parses the quick form into the same config object a file would give. */
export function quickConfig(args: string[]): { config: MixerConfig; configFile: string | null; port?: number; admin?: number } {
  let configFile: string | null = null;
  let listen: { address: string; port: number } | null = null;
  let to: string | null = null;
  let admin: number | undefined;
  let port: number | undefined;
  let failOpen = false;
  let logLevel: MixerConfig['logLevel'];
  const plugins: PluginConfig[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    switch (a) {
      case '--config':
        configFile = takeValue(args, i++, a);
        break;
      case '--port':
        port = parsePort(takeValue(args, i++, a), a);
        break;
      case '--listen': {
        const v = takeValue(args, i++, a);
        const c = v.lastIndexOf(':');
        listen = c < 0 ? { address: '127.0.0.1', port: parsePort(v, a) } : { address: v.slice(0, c), port: parsePort(v.slice(c + 1), a) };
        break;
      }
      case '--to':
        to = takeValue(args, i++, a);
        break;
      case '--admin':
        admin = parsePort(takeValue(args, i++, a), a);
        break;
      case '--fail-open':
        failOpen = true;
        break;
      case '--log-level':
        logLevel = takeValue(args, i++, a) as MixerConfig['logLevel'];
        break;
      case '--adapter': {
        const file = takeValue(args, i++, a);
        const name = basename(file).replace(/\.wasm$/, '');
        const taken = plugins.filter((p) => p.name === name || p.name.startsWith(`${name}-`)).length;
        plugins.push({ name: taken === 0 ? name : `${name}-${taken + 1}`, url: resolve(file) });
        break;
      }
      case '--adapter-config': {
        const last = plugins[plugins.length - 1];
        if (last === undefined) throw new HostError('USAGE', '--adapter-config must follow the --adapter it configures');
        const v = takeValue(args, i++, a);
        try {
          last.pluginConfig = JSON.parse(v);
        } catch (err) {
          throw new HostError('USAGE', `--adapter-config for ${last.name} is not valid JSON: ${(err as Error).message}`);
        }
        break;
      }
      default:
        throw new HostError('USAGE', `unknown option "${a}" for proxy; run wasm-mixer help`);
    }
  }
  if (configFile !== null) {
    if (listen || to || plugins.length > 0) throw new HostError('USAGE', 'use either --config FILE or the quick form (--listen/--to/--adapter), not both');
    return { config: {}, configFile, port, admin };
  }
  if (to === null) throw new HostError('USAGE', 'proxy needs --config FILE, or --to URL (with --listen PORT)');
  if (failOpen) for (const p of plugins) p.failStrategy = 'FAIL_OPEN';
  const config = validateConfig(
    {
      listen: listen ?? { address: '127.0.0.1', port: port ?? 8080 },
      ...(admin !== undefined ? { admin: { address: '127.0.0.1', port: admin } } : {}),
      ...(logLevel ? { logLevel } : {}),
      routes: [{ name: 'default', upstream: to }],
      plugins,
    },
    'command line',
  );
  return { config, configFile: null, port, admin };
}

async function proxyCommand(argv: string[]): Promise<number> {
  const { takeWorkersFlag, resolveWorkers, runPrimaryCommand } = await import('../workers/index.js');
  const { workers: workersFlag, rest: args } = takeWorkersFlag(argv);
  const q = quickConfig(args);
  let config = q.config;
  let baseDir = process.cwd();
  if (q.configFile !== null) ({ config, baseDir } = await loadConfigFile(q.configFile));
  // More than one worker: node:cluster processes behind one port (host/src/workers); 1 = this process serves.
  const workers = resolveWorkers(workersFlag, config);
  if (workers > 1) return runPrimaryCommand(config, { workers, baseDir, configFile: q.configFile ?? undefined, port: q.port, adminPort: q.admin }, waitForSignal);
  const proxy: RunningProxy = await startProxy(config, { baseDir, port: q.port, adminPort: q.admin, configFile: q.configFile ?? undefined });
  // SIGHUP reloads adapters (and routes) from the config file; a bad reload is logged and the old config keeps serving.
  const onHup = () => void proxy.reload({ reason: 'SIGHUP' }).catch(() => {});
  process.on('SIGHUP', onHup);
  console.error(`wasm-mixer proxy listening on http://${config.listen?.address ?? '127.0.0.1'}:${proxy.port}${proxy.adminPort !== null ? ` (admin http://127.0.0.1:${proxy.adminPort})` : ''}`);
  await waitForSignal();
  console.error('wasm-mixer: shutting down, draining in-flight requests');
  await proxy.close();
  // Remote adapters: send the last batch of reports before exiting.
  await import('../oop/remote-adapter.js').then((m) => m.closeRemote(proxy.host));
  return 0;
}

async function serveCommand(args: string[]): Promise<number> {
  let configFile: string | null = null;
  let listen: string | undefined;
  let adminPort: number | undefined;
  let logLevel: MixerConfig['logLevel'];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    switch (a) {
      case '--config':
        configFile = takeValue(args, i++, a);
        break;
      case '--listen':
        listen = takeValue(args, i++, a);
        break;
      case '--admin':
        adminPort = parsePort(takeValue(args, i++, a), a);
        break;
      case '--log-level':
        logLevel = takeValue(args, i++, a) as MixerConfig['logLevel'];
        break;
      default:
        throw new HostError('USAGE', `unknown option "${a}" for serve; run wasm-mixer help`);
    }
  }
  if (configFile === null) throw new HostError('USAGE', 'serve needs --config FILE (the same file the proxy uses)');
  const { config, baseDir } = await loadConfigFile(configFile);
  if (logLevel !== undefined) config.logLevel = logLevel;
  const { startAdapterServer } = await import('../oop/server.js');
  const server = await startAdapterServer(config, { baseDir, listen, adminPort });
  console.error(`wasm-mixer adapter server listening on ${server.address}${server.adminPort !== null ? ` (admin http://127.0.0.1:${server.adminPort})` : ''}`);
  await waitForSignal();
  console.error('wasm-mixer: shutting down the adapter server, draining in-flight calls');
  await server.close();
  return 0;
}

async function buildCommand(args: string[]): Promise<number> {
  const { buildAdapter, buildAllAdapters } = await import('../build/build-adapter.js');
  if (args[0] === '--all' || args.length === 0) {
    const results = await buildAllAdapters(process.cwd());
    for (const r of results) console.log(`built ${r.wasmPath} (${r.bytes} bytes)`);
    return 0;
  }
  for (const dir of args) {
    const r = await buildAdapter(resolve(dir));
    console.log(`built ${r.wasmPath} (${r.bytes} bytes)`);
  }
  return 0;
}

async function checkCommand(args: string[]): Promise<number> {
  if (args.length === 0) throw new HostError('USAGE', 'check needs a .wasm file');
  let failed = 0;
  for (const file of args) {
    try {
      const m = compileModule(await readFile(file), file);
      console.log(`${file}: ok — Proxy-Wasm ABI ${m.abiVersion}, ${m.bytes} bytes, sha256 ${m.sha256}`);
      if (m.unimplementedImports.length > 0) console.log(`  imports not implemented by this host (calls return UNIMPLEMENTED): ${m.unimplementedImports.join(', ')}`);
    } catch (err) {
      failed++;
      console.error(`${file}: ${describeError(err)}`);
    }
  }
  return failed === 0 ? 0 : 1;
}

async function demoCommand(args: string[]): Promise<number> {
  let port = 3000;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') port = parsePort(takeValue(args, i++, '--port'), '--port');
    else throw new HostError('USAGE', `unknown option "${args[i]}" for demo-upstream`);
  }
  const up = await startDemoUpstream(port);
  console.error(`demo upstream listening on http://127.0.0.1:${up.port}`);
  await waitForSignal();
  await up.close();
  return 0;
}

function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
