// The auth adapter reads what it decides on with one wasm_mixer.get_property_set call and
// sets its properties with one wasm_mixer.set_properties call (reads.ts, the SDK's
// propwrite.ts). A host without those functions (Envoy; here: refused by the grant) gets
// the standard calls, and both must give the same decisions, upstream headers and filter
// state, byte for byte, including for header values that are not ASCII (the set encodes
// values as UTF-8, the standard calls hand header bytes over as they came).
import t from 'tap';
import { loadAdapter, type AdapterHarness } from '../../../host/testing/index.js';
import { authWasm, makeKey, nowS, sha256hex, sign } from './helpers.js';

const ISS = 'https://idp.example.com';
const wasm = await authWasm();
const hs = await makeKey('HS256', 'h');
const config = {
  api_keys: { keys: [{ name: 'svc', tenant: 'acme', sha256: sha256hex('key-1234567') }, { name: 'intl', sha256: sha256hex('key-é') }] },
  jwt: { providers: [{ name: 'corp', issuer: ISS, local_jwks: { keys: [hs.jwk] }, tenant_claim: 'org', claim_to_headers: [{ claim: 'sub', header: 'x-user' }] }] },
  rules: [
    { name: 'block', action: 'DENY', match: { remote_ips: ['203.0.113.0/24'] } },
    { name: 'api', action: 'ALLOW', match: { paths: ['/api/**'], methods: ['GET', 'POST'], authenticated: true } },
  ],
  default_action: 'DENY',
};

async function harness(batched: boolean): Promise<AdapterHarness> {
  const h = await loadAdapter(wasm, { config, logLevel: 'warn' });
  // Refused after configure: the module registered its lists, then finds the functions gone (as in a host that drops them).
  if (!batched) h.host.telemetry.foreign.setGrant((_a, name) => !name.startsWith('wasm_mixer.') || name === 'wasm_mixer.access_log');
  return h;
}

interface Seen {
  action: string;
  status: number | undefined;
  headers: Array<[string, string]>;
  state: Array<[string, string]>;
}

async function decide(h: AdapterHarness, req: { method?: string; path: string; headers: Record<string, string>; sourceAddress?: string }): Promise<Seen> {
  const s = h.stream(req);
  try {
    const d = await s.requestHeaders(true);
    return {
      action: d.action,
      status: d.action === 'respond' ? d.reply.status : undefined,
      headers: s.stream.requestHeaders.map(([k, v]) => [k, v] as [string, string]).sort(),
      state: [...s.stream.filterState].map(([k, v]) => [k, Buffer.from(v).toString('hex')] as [string, string]),
    };
  } finally {
    s.finish();
  }
}

t.test('batched and standard host calls give the same decisions, headers and properties', async (t) => {
  const batched = await harness(true);
  const standard = await harness(false);
  t.teardown(() => Promise.all([batched.close(), standard.close()]));
  const tok = await sign(hs, { iss: ISS, sub: 'user-7', org: 'globex', exp: nowS() + 600 });
  const cases: Array<[string, Parameters<typeof decide>[1], string, number | undefined]> = [
    ['JWT', { path: '/api/orders', headers: { authorization: `Bearer ${tok}` } }, 'continue', undefined],
    ['API key', { method: 'POST', path: '/api/orders?page=2', headers: { 'x-api-key': 'key-1234567' } }, 'continue', undefined],
    ['both', { path: '/api/x', headers: { authorization: `Bearer ${tok}`, 'x-api-key': 'key-1234567' } }, 'continue', undefined],
    ['a non-ASCII API key, read as its bytes', { path: '/api/x', headers: { 'x-api-key': 'key-é' } }, 'continue', undefined],
    ['a non-ASCII path', { path: '/api/é', headers: { 'x-api-key': 'key-1234567' } }, 'continue', undefined],
    ['unknown key', { path: '/api/x', headers: { 'x-api-key': 'nope' } }, 'respond', 401],
    ['no credentials', { path: '/api/x', headers: {} }, 'respond', 401],
    ['denied peer', { path: '/api/x', headers: { 'x-api-key': 'key-1234567' }, sourceAddress: '203.0.113.9' }, 'respond', 403],
    ['outside /api', { path: '/admin', headers: { authorization: `Bearer ${tok}` } }, 'respond', 403],
    ['method not allowed', { method: 'DELETE', path: '/api/x', headers: { 'x-api-key': 'key-1234567' } }, 'respond', 403],
  ];
  for (let round = 0; round < 2; round++) {
    for (const [name, req, action, status] of cases) {
      const a = await decide(batched, req);
      const b = await decide(standard, req);
      t.equal(a.action, action, `${name}: decision`);
      t.equal(a.status, status, `${name}: status`);
      t.same(a, b, `${name}: the same with the standard calls (round ${round + 1})`);
    }
  }
  const ok = await decide(batched, cases[0]![1]);
  const state = Object.fromEntries(ok.state.map(([k, v]) => [k, Buffer.from(v, 'hex').toString()]));
  t.match(state, { 'mixer.principal': 'user-7', 'mixer.auth_method': 'jwt', 'mixer.tenant': 'globex', 'mixer.jwt_issuer': ISS, 'mixer.jwt_provider': 'corp' });
  t.equal(JSON.parse(state['mixer.jwt_payload']!).sub, 'user-7');
});
