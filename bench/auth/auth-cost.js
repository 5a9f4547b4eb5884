// Benchmark (not a test): the auth adapter's cost per request, against baselines
// measured in the same process, interleaved run by run:
//
//   baseline            the host's request lifecycle with no adapter
//   header-check        the example adapter (reads one header, adds one): "any adapter"
//   auth, nothing       auth loaded but nothing required (requires: none, no rules): its floor
//   API key             a key from x-api-key: SHA-256 in the module, map lookup, tenant forwarded
//   API key + 3 rules   the same plus DENY by client CIDR, ALLOW by path, AUDIT (no match)
//   JWT cached …        a token verified once, then found in the module's token cache
//   JWT uncached …      the cache off (max_entries 0): every request parses the token, checks
//                       the claims and verifies the signature — HS* in the module (SHA-2/HMAC
//                       in AssemblyScript), RS*/ES* through the host's verify_signature
//                       foreign function (node:crypto / OpenSSL)
//
//   node bench/auth/auth-cost.js [--runs 7] [--requests 10000] [--out bench/results/auth.json]
//
// Needs `npm run build` first (dist/). Times are CPU time of this process per request
// (process.cpuUsage: host + adapter + the host's signature check), medians of --runs runs;
// ratios are of medians; added = variant - baseline within the same run. Prints a
// Markdown table and writes the JSON (with the command) to --out.

import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { WasmHost } from '../../dist/host/src/index.js';
import { buildAdapter } from '../../dist/host/src/build/build-adapter.js';
import { median, percentile, spread, round } from '../core/stats.js';
import { benchArgs } from '../core/args.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: opt } = benchArgs({ runs: 7, requests: 10000, out: resolve(root, 'bench/results/auth.json') });
const { runs: RUNS, requests: REQUESTS, out: OUT } = opt;

const quiet = { level: 5, log() {} };
const loadBefore = os.loadavg().map((x) => round(x, 2));
const tmp = await mkdtemp(join(os.tmpdir(), 'auth-bench-'));
const authWasm = await readFile((await buildAdapter(resolve(root, 'adapters/auth'), { outDir: tmp })).wasmPath);
const checkWasm = await readFile((await buildAdapter(resolve(root, 'adapters/header-check'), { outDir: tmp })).wasmPath);

// --- keys and tokens (jose) ---------------------------------------------------------------------
const ISS = 'https://idp.example.com';
const exp = Math.floor(Date.now() / 1000) + 24 * 3600;
const claims = { iss: ISS, aud: 'api', sub: 'user-1234567890', exp, iat: exp - 3600, scope: 'read write', groups: ['dev', 'ops'], tenant: 'acme' };
const keys = {};
const jwks = [];
for (const alg of ['HS256', 'HS512', 'RS256', 'RS512', 'ES256', 'ES384']) {
  if (alg.startsWith('HS')) {
    const secret = crypto.getRandomValues(new Uint8Array(64));
    keys[alg] = secret;
    jwks.push({ kty: 'oct', k: Buffer.from(secret).toString('base64url'), kid: alg, alg });
  } else {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
    keys[alg] = privateKey;
    jwks.push({ ...(await exportJWK(publicKey)), kid: alg, alg, use: 'sig' });
  }
}
const tokens = {};
for (const alg of Object.keys(keys)) tokens[alg] = await new SignJWT(claims).setProtectedHeader({ alg, kid: alg, typ: 'JWT' }).sign(keys[alg]);

const API_KEY = 'bk_live_3f9a1c0e7d2b4a6f8e1c3b5d7f9a2c4e';
const sha = (s) => createHash('sha256').update(s).digest('hex');
const apiKeys = { keys: [{ name: 'billing-svc', tenant: 'acme', sha256: sha(API_KEY) }, ...Array.from({ length: 99 }, (_, i) => ({ name: `svc-${i}`, sha256: sha(`other-${i}`) }))] };
const provider = { name: 'corp', issuer: ISS, audiences: ['api'], local_jwks: { keys: jwks }, claim_to_headers: [{ claim: 'sub', header: 'x-user' }], tenant_claim: 'tenant' };
const rules = [
  { name: 'block-nets', action: 'DENY', match: { source_ips: ['203.0.113.0/24', '2001:db8:bad::/48'] } },
  { name: 'api', action: 'ALLOW', match: { paths: ['/api/**'], methods: ['GET', 'POST'] } },
  { name: 'audit-deletes', action: 'AUDIT', match: { methods: ['DELETE'] } },
];

const baseHeaders = [
  ['user-agent', 'curl/8.5.0'],
  ['accept', '*/*'],
  ['content-type', 'application/json'],
];
const respHeaders = [['content-type', 'application/json'], ['content-length', '12']];
const jwtVariant = (alg, cached) => ({
  config: { jwt: { providers: [provider], cache: { max_entries: cached ? 256 : 0 } } },
  headers: [['authorization', `Bearer ${tokens[alg]}`]],
});

const variants = {
  baseline: null,
  'header-check': { wasm: checkWasm, config: { header: 'x-user' }, headers: [['x-user', 'ann']] },
  'auth, nothing required': { config: { requires: 'none' }, headers: [] },
  'API key': { config: { api_keys: apiKeys }, headers: [['x-api-key', API_KEY]] },
  'API key + 3 rules': { config: { api_keys: apiKeys, rules }, headers: [['x-api-key', API_KEY]] },
  'JWT cached (RS256)': jwtVariant('RS256', true),
  'JWT cached (ES256)': jwtVariant('ES256', true),
  'JWT uncached HS256': jwtVariant('HS256', false),
  'JWT uncached HS512': jwtVariant('HS512', false),
  'JWT uncached RS256 (2048)': jwtVariant('RS256', false),
  'JWT uncached RS512 (2048)': jwtVariant('RS512', false),
  'JWT uncached ES256': jwtVariant('ES256', false),
  'JWT uncached ES384': jwtVariant('ES384', false),
  // reference: node:crypto's verification alone (what the host's verify_signature spends in OpenSSL)
  'crypto.verify alone RS256': { raw: 'RS256' },
  'crypto.verify alone ES256': { raw: 'ES256' },
  'crypto.verify alone ES384': { raw: 'ES384' },
};

// crypto.verify inputs: the signing input, the public key, the signature in DER (as the module sends it)
const rawChecks = {};
for (const alg of ['RS256', 'ES256', 'ES384']) {
  const [h, p, sig] = tokens[alg].split('.');
  const jwk = jwks.find((k) => k.kid === alg);
  rawChecks[alg] = {
    hash: alg === 'ES384' ? 'sha384' : 'sha256',
    text: Buffer.from(`${h}.${p}`),
    key: createPublicKey({ key: jwk, format: 'jwk' }),
    sig: Buffer.from(sig, 'base64url'),
    dsaEncoding: alg.startsWith('ES') ? 'ieee-p1363' : undefined,
  };
}

const hosts = {};
for (const [name, v] of Object.entries(variants)) {
  if (v?.raw) continue;
  if (v === null) {
    hosts[name] = await WasmHost.create({}, { logger: quiet });
    continue;
  }
  hosts[name] = await WasmHost.create(
    { logLevel: 'warn', plugins: [{ name: 'a', url: 'a.wasm', pluginConfig: v.config, logLevel: 'warn' }] },
    { logger: quiet, modules: { 'a.wasm': v.wasm ?? authWasm } },
  );
}

async function oneRequest(host, extra) {
  const s = host.newStream({ method: 'GET', path: '/api/v1/items?id=7', authority: 'example.com', headers: [...baseHeaders, ...extra], info: { sourceAddress: '10.0.0.7', sourcePort: 51234 } });
  let d = s.requestHeaders(true);
  if (d instanceof Promise) d = await d;
  if (d.action !== 'continue') throw new Error(`unexpected decision ${d.action}: ${d.reply ? Buffer.from(d.reply.body).toString() : ''}`);
  s.stream.requestHeadersSent = true;
  let r = s.responseHeaders(200, respHeaders.slice(), false);
  if (r instanceof Promise) await r;
  s.stream.responseHeadersSent = true;
  s.finish();
}

async function timeLoop(name, n) {
  const raw = variants[name]?.raw;
  if (raw) {
    const r = rawChecks[raw];
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) if (!cryptoVerify(r.hash, r.text, { key: r.key, dsaEncoding: r.dsaEncoding }, r.sig)) throw new Error('raw verify failed');
    const c = process.cpuUsage(c0);
    return ((c.user + c.system) * 1000) / n;
  }
  const host = hosts[name];
  const extra = variants[name]?.headers ?? [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await oneRequest(host, extra);
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n;
}

const names = Object.keys(variants);
for (const name of names) await timeLoop(name, Math.min(REQUESTS, 3000)); // warm-up: JIT, lazy wasm compilation, key imports

const samples = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < RUNS; r++) for (const name of names) samples[name].push(await timeLoop(name, REQUESTS));

// sanity: the variants did what they say
const m = (name, family, labels) => hosts[name].metrics.value(family, labels) ?? 0;
const checks = {
  'API key allowed': m('API key', 'auth_allowed_total', { method: 'api_key' }),
  'cached RS256 hits': m('JWT cached (RS256)', 'auth_jwt_cache_total', { result: 'hit' }),
  'cached RS256 misses': m('JWT cached (RS256)', 'auth_jwt_cache_total', { result: 'miss' }),
  'uncached RS256 misses': m('JWT uncached RS256 (2048)', 'auth_jwt_cache_total', { result: 'miss' }),
};

const base = samples.baseline;
const check = samples['header-check'];
const rows = {};
for (const name of names) {
  const xs = samples[name];
  const added = xs.map((x, i) => x - base[i]);
  rows[name] = {
    perRequestNs: { median: round(median(xs)), spread: spread(xs).map((x) => round(x)) },
    addedNs: { median: round(median(added)), p90: round(percentile(added, 90)) },
    ratioToBaseline: round(median(xs) / median(base), 2),
    ratioToHeaderCheck: round(median(xs) / median(check), 2),
  };
}

const result = {
  command: `node bench/auth/auth-cost.js --runs ${RUNS} --requests ${REQUESTS}`,
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: round(os.totalmem() / 2 ** 30, 1), node: process.version, openssl: process.versions.openssl },
  // 1/5/15-minute load averages before and after: other work on the machine inflates absolute
  // times; the interleaved runs keep the ratios comparable
  loadavg: { before: loadBefore, after: os.loadavg().map((x) => round(x, 2)) },
  adapterBytes: authWasm.length,
  tokenBytes: Object.fromEntries(Object.entries(tokens).map(([k, v]) => [k, v.length])),
  note:
    'CPU ns per request of this process (host + adapter + host-side signature check), medians of interleaved runs; ratios of medians; added = variant - baseline, same run. ' +
    'HS* is computed in the module; RS*/ES* by the host (verify_signature, node:crypto). The crypto.verify rows time node:crypto alone, no host or adapter (their added/ratio columns compare a bare call with a request).',
  checks,
  variants: rows,
};
await mkdir(dirname(OUT), { recursive: true });
await writeFile(OUT, JSON.stringify(result, null, 2) + '\n');

console.log(`| variant | CPU per request (median, spread of ${RUNS} runs) | added vs baseline | × baseline | × header-check |
|---|---|---|---|---|`);
for (const name of names) {
  const r = rows[name];
  console.log(
    `| ${name} | ${r.perRequestNs.median} ns (${r.perRequestNs.spread.join('–')}) | ${name === 'baseline' || variants[name]?.raw ? '' : `${r.addedNs.median} ns`} | ×${r.ratioToBaseline} | ×${r.ratioToHeaderCheck} |`,
  );
}
console.log(JSON.stringify(checks));

for (const h of Object.values(hosts)) h.close();
await rm(tmp, { recursive: true, force: true });
