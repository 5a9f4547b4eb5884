// The `wasm-mixer` command: proxy, serve, build, check, demo-upstream.

import { basename, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfigFile, validateConfig } from '../config/load.js';
import type { MixerConfig, PluginConfig } from '../config/schema.js';
import { describeError, HostError, isHostError } from '../errors.js';
import { startDemoUpstream } from '../proxy/demo-upstream.js';
import { startProxy, type RunningProxy } from '../proxy/proxy.js';
import { startWatchdog } from '../watchdog.js';
import { compileModule } from '../vm/module.js';
import { trialLoad } from '../plugin/trial-load.js';
import { readLocalModule } from '../vm/module-source.js';

const USAGE: Record<string, string> = {
  proxy: `Usage:
  wasm-mixer proxy --config FILE [--listen [ADDRESS:]PORT | --port N] [--admin N] [--to URL] [--remote ADDRESS] [--log-level LEVEL] [--workers N|auto]
  wasm-mixer proxy --listen [ADDRESS:]PORT --to URL [--adapter FILE.wasm [--adapter-config JSON]]... [--admin N] [--fail-open] [--workers N|auto]

both forms:
  --workers N|auto    worker processes, each with its own adapter VMs, behind one port (overrides the
                      file's workers:; default auto = one per core; 1 = a single process; docs/operating.md "Workers")

proxy, config-file form (every option overrides the file, so an example runs on other ports):
  --config FILE       YAML or JSON (see README "Configuration"); refused with the bad field's path if invalid
  --listen [ADDR:]PORT  override listen (address and port);  --port N  override listen.port only
  --admin N           override admin.port
  --to URL            override the upstream of every route (refused if the file's routes use several upstreams)
  --remote ADDRESS    override remote.address: where the adapter server listens (host:port or unix:/path)
  --log-level LEVEL   override logLevel: trace|debug|info|warn|error|critical

proxy, quick form (like caddy reverse-proxy --from --to):
  --listen [ADDR:]PORT  port to listen on (127.0.0.1 unless ADDRESS: is given; default 8080)
  --to URL            upstream base URL, e.g. http://127.0.0.1:3000
  --adapter FILE      an adapter .wasm; repeat for a chain, in order
  --adapter-config C  config for the --adapter just before it: JSON, or any other text as a plain string
  --admin N           admin port (/ready, /metrics, /adapters) on 127.0.0.1
  --fail-open         adapters that fail are skipped instead of failing the request
  --log-level LEVEL   trace|debug|info|warn|error|critical (default info)

SIGHUP reloads adapters and routes from the config file. Ctrl-C / SIGTERM stop accepting,
drain in-flight requests, then exit.`,
  serve: `Usage:
  wasm-mixer serve --config FILE [--listen ADDRESS] [--admin N] [--log-level LEVEL]

The adapter server (out-of-process mode, docs/out-of-process.md): the same adapters, over gRPC.
  --config FILE       the same config file as the proxy; the proxy runs the plugins that
                      remote.plugins / a plugin's remote: true select in this server
  --listen ADDRESS    gRPC address, host:port or unix:/path (default remote.address, 127.0.0.1:9091)
  --admin N           admin port (/ready, /metrics, /adapters) on 127.0.0.1 (default remote.server.admin)
  --log-level LEVEL   trace|debug|info|warn|error|critical
Serves wasm_mixer.v1.Mixer (for the proxy), envoy.service.auth.v3.Authorization (ext_authz),
envoy.service.ratelimit.v3.RateLimitService and grpc.health.v1.Health.`,
  build: `Usage:
  wasm-mixer build DIR...   compile AssemblyScript adapter folders to wasm/NAME.wasm
  wasm-mixer build --all    every folder under adapters/ (also the default with no argument)`,
  check: `Usage:
  wasm-mixer check FILE.wasm...   validate modules (ABI marker, allocator, imports) and trial-load them as the proxy
                                  would under the default limits (exit 1 if one would not load)`,
  'demo-upstream': `Usage:
  wasm-mixer demo-upstream [--port N]   a JSON echo server to put behind the proxy (default port 3000)`,
};

const HELP = `wasm-mixer — Proxy-Wasm adapters (policy, telemetry) for a Node.js proxy

Commands:
  wasm-mixer proxy --config FILE [--port N] [--admin N] [--to URL] [--remote ADDRESS]
  wasm-mixer proxy --listen PORT --to URL [--adapter FILE.wasm [--adapter-config JSON]]... [--admin PORT] [--fail-open]
  wasm-mixer serve --config FILE [--listen ADDRESS] [--admin PORT]
                                        the adapter server: the same adapters, out of process, over gRPC
  wasm-mixer build DIR | --all          compile an AssemblyScript adapter folder to wasm/NAME.wasm
  wasm-mixer check FILE.wasm            validate a module (ABI marker, allocator, imports) and trial-load it under the default limits
  wasm-mixer demo-upstream [--port N]   a JSON echo server to put behind the proxy
  wasm-mixer help [COMMAND]             this text, or a command's options (also: COMMAND --help)

${USAGE.proxy}

serve:
${USAGE.serve.split('\n').slice(2).join('\n')}

Errors print a stable code (e.g. CONFIG_INVALID, WASM_IMPORT_UNKNOWN, LISTEN_FAILED); see host/ERRORS.md.
Exit status: 0 ok, 1 error, 64 usage error, 69 a port could not be listened on (LISTEN_FAILED).`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd !== undefined && cmd in USAGE && (rest.includes('--help') || rest.includes('-h'))) {
      console.log(USAGE[cmd]);
      return 0;
    }
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
      case '-h': {
        const topic = rest[0];
        if (topic !== undefined && !(topic in USAGE)) throw new HostError('USAGE', `no command "${topic}"; run wasm-mixer help`);
        console.log(topic !== undefined ? USAGE[topic] : HELP);
        return 0;
      }
      default:
        throw new HostError('USAGE', `unknown command "${cmd}"; run wasm-mixer help`);
    }
  } catch (err) {
    console.error(`wasm-mixer: ${describeError(err)}`);
    if (isHostError(err, 'USAGE')) return 64; // EX_USAGE
    if (isHostError(err, 'LISTEN_FAILED')) return 69; // EX_UNAVAILABLE
    return 1;
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs, with its errors turned into USAGE errors that name the command. */
function parse<O extends Options>(cmd: string, args: string[], options: O, positionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true, tokens: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    const unknown = /^Unknown option '([^']+)'/.exec(e.message);
    const why = unknown ? `unknown option "${unknown[1]}"` : e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' ? `unexpected argument: ${e.message.replace(/^Unexpected argument '([^']+)'.*$/s, '"$1"')}` : e.message.replace(/\.$/, '');
    throw new HostError('USAGE', `${why} for ${cmd}; run wasm-mixer ${cmd} --help`, {}, { cause: err });
  }
}

function parsePort(v: string, flag: string): number {
  const n = Number(v);
  if (v === '' || !Number.isInteger(n) || n < 0 || n > 65535) throw new HostError('USAGE', `${flag} must be a port number (0-65535), got "${v}"`);
  return n;
}

function parseListen(v: string, flag: string): { address: string; port: number } {
  const c = v.lastIndexOf(':');
  return c < 0 ? { address: '127.0.0.1', port: parsePort(v, flag) } : { address: v.slice(0, c).replace(/^\[(.*)\]$/, '$1'), port: parsePort(v.slice(c + 1), flag) };
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'critical'];
function parseLogLevelFlag(v: string | undefined): MixerConfig['logLevel'] {
  if (v === undefined) return undefined;
  if (!LOG_LEVELS.includes(v)) throw new HostError('USAGE', `--log-level must be one of ${LOG_LEVELS.join('|')}, got "${v}"`);
  return v as MixerConfig['logLevel'];
}

const PROXY_OPTIONS = {
  config: { type: 'string' },
  port: { type: 'string' },
  listen: { type: 'string' },
  to: { type: 'string' },
  admin: { type: 'string' },
  remote: { type: 'string' },
  'fail-open': { type: 'boolean' },
  'log-level': { type: 'string' },
  adapter: { type: 'string', multiple: true },
  'adapter-config': { type: 'string', multiple: true },
  workers: { type: 'string' },
} as const satisfies Options;

/** Command-line values that override the config file (`--config` form). */
export interface ProxyOverrides {
  listen?: { address: string; port: number };
  port?: number;
  admin?: number;
  to?: string;
  remote?: string;
  logLevel?: MixerConfig['logLevel'];
  /** --workers: N or "auto" (resolved with the file's workers: by host/src/workers). */
  workers?: string;
}

/** Parses `proxy` arguments: the quick form into the same config object a file would give, or the file and its overrides. */
export function quickConfig(args: string[]): { config: MixerConfig; configFile: string | null; port?: number; admin?: number; overrides: ProxyOverrides } {
  const { values: v, tokens } = parse('proxy', args, PROXY_OPTIONS);
  const overrides: ProxyOverrides = {
    ...(v.listen !== undefined ? { listen: parseListen(v.listen, '--listen') } : {}),
    ...(v.port !== undefined ? { port: parsePort(v.port, '--port') } : {}),
    ...(v.admin !== undefined ? { admin: parsePort(v.admin, '--admin') } : {}),
    ...(v.to !== undefined ? { to: v.to } : {}),
    ...(v.remote !== undefined ? { remote: v.remote } : {}),
    ...(v['log-level'] !== undefined ? { logLevel: parseLogLevelFlag(v['log-level']) } : {}),
    ...(v.workers !== undefined ? { workers: v.workers } : {}),
  };
  // --adapter-config configures the --adapter just before it: their order matters, so read the tokens.
  const plugins: PluginConfig[] = [];
  for (const tok of tokens ?? []) {
    if (tok.kind !== 'option') continue;
    if (tok.name === 'adapter') {
      const file = tok.value!;
      const name = basename(file).replace(/\.wasm$/, '');
      const taken = plugins.filter((p) => p.name === name || p.name.startsWith(`${name}-`)).length;
      plugins.push({ name: taken === 0 ? name : `${name}-${taken + 1}`, url: resolve(file) });
    } else if (tok.name === 'adapter-config') {
      const last = plugins[plugins.length - 1];
      if (last === undefined) throw new HostError('USAGE', '--adapter-config must follow the --adapter it configures');
      // Plugin configuration is bytes: JSON is passed as JSON, anything else as the plain string.
      // Only text that looks like a JSON object or array must parse (a typo there is an error, not a string).
      const v = tok.value!;
      try {
        last.pluginConfig = JSON.parse(v);
      } catch (err) {
        if (/^\s*[[{]/.test(v)) throw new HostError('USAGE', `--adapter-config for ${last.name} looks like JSON but does not parse: ${(err as Error).message}; quote a plain string so it does not start with { or [`);
        last.pluginConfig = v;
      }
    }
  }
  if (v.config !== undefined) {
    if (plugins.length > 0 || v['fail-open']) throw new HostError('USAGE', '--adapter and --fail-open belong to the quick form; with --config FILE, list plugins in the file');
    return { config: {}, configFile: v.config, port: overrides.port, admin: overrides.admin, overrides };
  }
  if (v.to === undefined) throw new HostError('USAGE', 'proxy needs --config FILE, or --to URL (with --listen PORT)');
  if (v.remote !== undefined) throw new HostError('USAGE', '--remote needs --config FILE (the file says which plugins run in the adapter server)');
  if (v['fail-open']) for (const p of plugins) p.failStrategy = 'FAIL_OPEN';
  const config = validateConfig(
    {
      listen: overrides.listen ?? { address: '127.0.0.1', port: overrides.port ?? 8080 },
      ...(overrides.admin !== undefined ? { admin: { address: '127.0.0.1', port: overrides.admin } } : {}),
      ...(overrides.logLevel ? { logLevel: overrides.logLevel } : {}),
      routes: [{ name: 'default', upstream: v.to }],
      plugins,
    },
    'command line',
  );
  return { config, configFile: null, port: overrides.port, admin: overrides.admin, overrides };
}

/** Applies command-line overrides to a config read from a file; the result is validated again. */
export function applyOverrides(config: MixerConfig, o: ProxyOverrides, file: string): MixerConfig {
  const out: MixerConfig = { ...config };
  if (o.listen) out.listen = { ...out.listen, ...o.listen };
  if (o.port !== undefined) out.listen = { ...(out.listen ?? { address: '127.0.0.1' }), port: o.port };
  if (o.admin !== undefined) out.admin = { ...(out.admin ?? { address: '127.0.0.1' }), port: o.admin };
  if (o.logLevel !== undefined) out.logLevel = o.logLevel;
  if (o.to !== undefined) {
    const upstreams = new Set((out.routes ?? []).map((r) => r.upstream));
    if (upstreams.size > 1) throw new HostError('USAGE', `--to replaces the upstream of every route, but ${file} routes to ${upstreams.size} upstreams (${[...upstreams].join(', ')}); edit the file instead`);
    out.routes = (out.routes ?? []).length > 0 ? out.routes!.map((r) => ({ ...r, upstream: o.to! })) : [{ name: 'default', upstream: o.to }];
  }
  if (o.remote !== undefined) {
    if (out.remote === undefined) throw new HostError('USAGE', `--remote overrides remote.address, but ${file} has no remote block`);
    out.remote = { ...out.remote, address: o.remote };
  }
  return validateConfig(out, `${file} with command-line overrides`);
}

async function proxyCommand(args: string[]): Promise<number> {
  const q = quickConfig(args);
  let config = q.config;
  let baseDir = process.cwd();
  if (q.configFile !== null) {
    ({ config, baseDir } = await loadConfigFile(q.configFile));
    config = applyOverrides(config, q.overrides, q.configFile);
  }
  // More than one worker: node:cluster processes behind one port (host/src/workers); 1 = this process serves.
  const { resolveWorkers } = await import('../workers/worker-config.js');
  const workers = resolveWorkers(q.overrides.workers, config);
  if (workers > 1) {
    // Imported only here: node:cluster and the primary's modules cost a single process's start ~5 ms.
    const { runPrimaryCommand } = await import('../workers/cli.js');
    const configOverride = q.configFile !== null ? (c: MixerConfig) => applyOverrides(c, q.overrides, q.configFile!) : undefined;
    return runPrimaryCommand(config, { workers, baseDir, configFile: q.configFile ?? undefined, configOverride }, waitForSignal);
  }
  const proxy: RunningProxy = await startProxy(config, { baseDir, configFile: q.configFile ?? undefined, configOverride: q.configFile !== null ? (c) => applyOverrides(c, q.overrides, q.configFile!) : undefined });
  // The last line: a blocked event loop past watchdog.hardLimitMs ends the process (docs/operating.md "Watchdog").
  const watchdog = config.watchdog?.enabled === false ? null : startWatchdog({ hardLimitMs: config.watchdog?.hardLimitMs });
  // SIGHUP reloads adapters (and routes) from the config file; a bad reload is logged and the old config keeps serving.
  const onHup = () => void proxy.reload({ reason: 'SIGHUP' }).catch(() => {});
  process.on('SIGHUP', onHup);
  console.error(`wasm-mixer proxy listening on http://${config.listen?.address ?? '127.0.0.1'}:${proxy.port}${proxy.adminPort !== null ? ` (admin http://127.0.0.1:${proxy.adminPort})` : ''}`);
  await waitForSignal();
  console.error('wasm-mixer: shutting down, draining in-flight requests');
  await proxy.close();
  // Remote adapters: send the last batch of reports before exiting.
  await import('../oop/remote-clients.js').then((m) => m.closeRemote(proxy.host));
  await watchdog?.stop();
  return 0;
}

async function serveCommand(args: string[]): Promise<number> {
  const { values: v } = parse('serve', args, {
    config: { type: 'string' },
    listen: { type: 'string' },
    admin: { type: 'string' },
    'log-level': { type: 'string' },
  });
  if (v.config === undefined) throw new HostError('USAGE', 'serve needs --config FILE (the same file the proxy uses)');
  const adminPort = v.admin !== undefined ? parsePort(v.admin, '--admin') : undefined;
  const logLevel = parseLogLevelFlag(v['log-level']);
  const { config, baseDir } = await loadConfigFile(v.config);
  if (logLevel !== undefined) config.logLevel = logLevel;
  const { startAdapterServer } = await import('../oop/server.js');
  const server = await startAdapterServer(config, { baseDir, listen: v.listen, adminPort });
  // The adapter server runs VMs too: the same last line as the proxy.
  const watchdog = config.watchdog?.enabled === false ? null : startWatchdog({ hardLimitMs: config.watchdog?.hardLimitMs });
  console.error(`wasm-mixer adapter server listening on ${server.address}${server.adminPort !== null ? ` (admin http://127.0.0.1:${server.adminPort})` : ''}`);
  await waitForSignal();
  console.error('wasm-mixer: shutting down the adapter server, draining in-flight calls');
  await server.close();
  await watchdog?.stop();
  return 0;
}

async function buildCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse('build', args, { all: { type: 'boolean' } }, true);
  const { buildAdapter, buildAllAdapters } = await import('../build/build-adapter.js');
  if (values.all || positionals.length === 0) {
    if (positionals.length > 0) throw new HostError('USAGE', 'build takes DIR... or --all, not both');
    const results = await buildAllAdapters(process.cwd());
    for (const r of results) console.log(`built ${r.wasmPath} (${r.bytes} bytes)`);
    return 0;
  }
  for (const dir of positionals) {
    const r = await buildAdapter(resolve(dir));
    console.log(`built ${r.wasmPath} (${r.bytes} bytes)`);
  }
  return 0;
}

async function checkCommand(args: string[]): Promise<number> {
  const { positionals } = parse('check', args, {}, true);
  if (positionals.length === 0) throw new HostError('USAGE', 'check needs a .wasm file');
  let failed = 0;
  for (const file of positionals) {
    try {
      const m = compileModule(await readLocalModule(resolve(file), `the command line's "${file}", relative to ${process.cwd()}`), file);
      // "ok" must mean the proxy loads it under the default limits: instantiate it (its start function runs under the start budget).
      const trial = trialLoad(m);
      if (!trial.loads) throw new HostError(trial.code, `${trial.reason}; it would not load in the proxy under the default limits`);
      console.log(`${file}: ok — Proxy-Wasm ABI ${m.abiVersion}, ${m.bytes} bytes, sha256 ${m.sha256}${m.hasStart ? ', start function ran under the start budget' : ''}`);
      if (trial.configureNote !== null) console.log(`  note: it refused ${trial.configureNote}; give it the pluginConfig (and rootId) it expects`);
      if (m.unimplementedImports.length > 0) console.log(`  imports not implemented by this host (calls return UNIMPLEMENTED): ${m.unimplementedImports.join(', ')}`);
    } catch (err) {
      failed++;
      console.error(`${file}: ${describeError(err)}`);
    }
  }
  return failed === 0 ? 0 : 1;
}

async function demoCommand(args: string[]): Promise<number> {
  const { values } = parse('demo-upstream', args, { port: { type: 'string' } });
  const port = values.port !== undefined ? parsePort(values.port, '--port') : 3000;
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
