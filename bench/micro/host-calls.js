// Host calls per request of each benchmark adapter alone (the issue-14 micro tier's
// request, bench/micro/request.js): counts every import call a module makes, by name,
// over --requests requests after a warm-up, and reports calls per request. For
// foreign functions the function name is counted too. Exact counts, no timing.
//
//   node bench/micro/host-calls.js [--requests 1000] [--only auth,auth jwt,logging]
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../core/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: opt } = benchArgs({ requests: 1000, only: undefined, help: false });
if (opt.help) {
  process.stdout.write('node bench/micro/host-calls.js [--requests 1000] [--only auth,auth jwt,logging]\n');
  process.exit(0);
}

// Counting wrapper around every import function (installed before the host module loads).
let counts = null;
const RealInstance = WebAssembly.Instance;
WebAssembly.Instance = function (module, imports) {
  if (!imports?.env) return new RealInstance(module, imports);
  const wrapped = {};
  for (const [ns, fns] of Object.entries(imports)) {
    wrapped[ns] = {};
    for (const [name, f] of Object.entries(fns)) {
      if (typeof f !== 'function') {
        wrapped[ns][name] = f;
        continue;
      }
      wrapped[ns][name] = function (...args) {
        if (counts !== null) {
          let key = name;
          if (name === 'proxy_call_foreign_function') {
            const mem = new Uint8Array(instance.exports.memory.buffer, args[0], args[1]);
            key += ' ' + Buffer.from(mem).toString();
          }
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        return f.apply(this, args);
      };
    }
  }
  const instance = new RealInstance(module, wrapped);
  return instance;
};

const { WasmHost } = await import('../../dist/host/src/index.js');
const { validateConfig } = await import('../../dist/host/src/config/load.js');
const { benchConfig, chainPlugins, makeCredentials } = await import('../e2e/configs.js');
const { driveRequest } = await import('./request.js');

const tmp = await mkdtemp(join(os.tmpdir(), 'wm-bench-host-calls-'));
const creds = await makeCredentials();
const wasmDir = resolve(root, 'wasm');
const all = chainPlugins(4, creds, wasmDir);
const byName = Object.fromEntries(all.map((p) => [p.name, p]));
async function host(plugins) {
  const c = benchConfig({ mode: 'inproc', n: 4, creds, wasmDir, upstreamPort: 9, logDir: tmp });
  c.plugins = plugins.map((p) => structuredClone(p));
  return WasmHost.create(validateConfig(c, 'bench host-calls'), { logger: { level: 5, log() {} }, baseDir: tmp });
}
const variants = {
  auth: [[byName.auth], ['x-api-key', creds.apiKey]],
  'auth jwt': [[byName.auth], ['authorization', `Bearer ${creds.jwt}`]],
  quota: [[byName.quota], ['x-api-key', creds.apiKey]],
  logging: [[byName.logging], ['x-api-key', creds.apiKey]],
  prometheus: [[byName.prometheus], ['x-api-key', creds.apiKey]],
};
for (const [name, [plugins, cred]] of Object.entries(variants)) {
  if (opt.only && !opt.only.split(',').includes(name)) continue;
  const h = await host(plugins);
  for (let i = 0; i < 200; i++) driveRequest(h, cred.slice(), i % 16);
  counts = new Map();
  for (let i = 0; i < opt.requests; i++) driveRequest(h, cred.slice(), i % 16);
  const rows = [...counts].sort((a, b) => b[1] - a[1]);
  counts = null;
  const total = rows.reduce((s, [, n]) => s + n, 0);
  process.stdout.write(`${name}: ${(total / opt.requests).toFixed(2)} host calls per request\n`);
  for (const [k, n] of rows) process.stdout.write(`  ${(n / opt.requests).toFixed(2)}  ${k}\n`);
  await h.close?.();
}
process.exit(0);
