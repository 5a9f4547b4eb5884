// Credentials found in the bytes the host wrote (assembly/credential.ts) and the cache of
// verified tokens by their exact bytes (assembly/token-cache.ts): the same token as the
// text rules find (prefix case, whitespace, query parameters, percent-encoding), a repeated
// token answered from the cache, and the headers the adapter owns set or removed as before
// whichever way the request goes.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { WasmHost } from '../../../host/src/host.js';
import type { MixerConfig } from '../../../host/src/config/schema.js';
import { authWasm, makeKey, nowS, sha256hex, sign } from './helpers.js';

const quiet = { level: 5, log() {} } as never;
const ISS = 'https://idp.example.com';
const API_KEY = 'ak_live_0123456789abcdef';
const hs = await makeKey('HS256', 'k1');
const claims = (extra: Record<string, unknown> = {}) => ({ iss: ISS, aud: 'orders', sub: 'user-42', org: 'acme', exp: nowS() + 300, ...extra });

async function makeHost(extra: Record<string, unknown> = {}) {
  const pluginConfig = {
    api_keys: { keys: [{ name: 'billing', tenant: 'globex', sha256: sha256hex(API_KEY) }] },
    jwt: {
      providers: [{ name: 'corp', issuer: ISS, audiences: ['orders'], local_jwks: { keys: [hs.jwk] }, tenant_claim: 'org', claim_to_headers: [{ claim: 'sub', header: 'x-user' }], forward: true }],
    },
    ...extra,
  };
  const wasm = await readFile(await authWasm());
  const config = { plugins: [{ name: 'auth', url: 'auth.wasm', pluginConfig }] } as MixerConfig;
  const host = await WasmHost.create(config, { modules: { 'auth.wasm': wasm }, logger: quiet });
  const send = async (headers: Array<[string, string]>, path = '/o') => {
    const st = host.newStream({ method: 'GET', path, authority: 'api', headers: headers.slice() });
    let d = st.requestHeaders(true);
    if (d instanceof Promise) d = await d;
    const upstream = st.stream.requestHeaders.filter(([k]) => !k.startsWith(':')).map(([k, v]) => [k, v]);
    st.finish();
    return { status: d.action === 'continue' ? 200 : d.action === 'respond' ? d.reply.status : 0, headers: upstream };
  };
  const cache = (result: string) => host.metrics.value('auth_jwt_cache_total', { result }) ?? 0;
  return { host, send, cache };
}

t.test('a token is found in bytes exactly as the text rules find it', async (t) => {
  const { host, send, cache } = await makeHost();
  t.teardown(() => host.close());
  const tok = await sign(hs, claims());
  t.equal((await send([['authorization', `Bearer ${tok}`]])).status, 200);
  t.equal(cache('miss'), 1);
  t.equal((await send([['authorization', `Bearer ${tok}`]])).status, 200);
  t.equal(cache('hit'), 1, 'the same bytes again: from the cache');
  t.equal((await send([['authorization', `bEaReR \t${tok} \t`]])).status, 200, 'the prefix in any case, whitespace trimmed');
  t.equal((await send([['authorization', `Bearer${tok}`]])).status, 401, 'without the prefix it is no credential of that source');
  t.equal((await send([], `/o?access_token=${tok}`)).status, 200, 'query parameter');
  t.equal((await send([], `/o?a=1&acc%65ss_token=${tok}`)).status, 200, 'a percent-encoded name');
  t.equal((await send([], `/o?access_token=${tok.replace(/\./g, '%2E')}`)).status, 200, 'a percent-encoded value');
  t.equal((await send([], `/o?access_token=&access_token=${tok}`)).status, 401, 'the first parameter of that name decides: empty, no credential');
  t.equal((await send([], `/o?x=1#access_token=${tok}`)).status, 401, 'a fragment is not the query');
  t.equal((await send([['authorization', `Bearer ${tok}`]], `/o?access_token=${tok}`)).status, 200, 'the same token in two sources');
  t.equal(cache('miss'), 1, 'every one of those was the cached token');
  const tampered = tok.slice(0, -2) + (tok.at(-2) === 'A' ? 'B' : 'A') + tok.at(-1);
  t.equal((await send([['authorization', `Bearer ${tampered}`]])).status, 401, 'one byte different: verified, and refused');
});

t.test('owned headers: replaced when set, removed when not, whichever way the request goes', async (t) => {
  const { host, send } = await makeHost();
  t.teardown(() => host.close());
  const forged: Array<[string, string]> = [['x-auth-principal', 'admin'], ['accept', '*/*'], ['x-user', 'root'], ['x-auth-tenant', 'evil']];
  const tok = await sign(hs, claims());
  const viaJwt = await send([...forged, ['authorization', `Bearer ${tok}`]]);
  t.equal(viaJwt.status, 200);
  t.same(viaJwt.headers, [['accept', '*/*'], ['authorization', `Bearer ${tok}`], ['x-auth-principal', 'user-42'], ['x-auth-tenant', 'acme'], ['x-user', 'user-42']]);
  const viaKey = await send([...forged, ['x-api-key', API_KEY]]);
  t.equal(viaKey.status, 200);
  t.same(viaKey.headers, [['accept', '*/*'], ['x-api-key', API_KEY], ['x-auth-principal', 'billing'], ['x-auth-tenant', 'globex']], 'x-user, not set for an API key, is removed');
  const denied = await send([...forged]);
  t.equal(denied.status, 401);
  t.same(denied.headers, [['accept', '*/*']], 'a denied request keeps none of them (what later adapters and logs see)');
});

t.test('a condition on an owned header sees it removed first', async (t) => {
  const { host, send } = await makeHost({ rules: [{ name: 'no-tenant-header', action: 'DENY', match: { headers: [{ name: 'x-auth-tenant', present: true }] } }] });
  t.teardown(() => host.close());
  const r = await send([['x-auth-tenant', 'evil'], ['x-api-key', API_KEY]]);
  t.equal(r.status, 200, 'the forged header was gone before the rule looked');
  t.same(r.headers, [['x-api-key', API_KEY], ['x-auth-principal', 'billing'], ['x-auth-tenant', 'globex']]);
});
