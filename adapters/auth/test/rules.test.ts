// ALLOW / DENY / AUDIT rules through the real proxy: principal, claims, path (exact,
// prefix, glob, normalized), method, host, headers, source and client CIDR ranges
// (IPv4 and IPv6, real sockets and x-forwarded-for), deny-wins, default action,
// `unless`, audit logging, and dry-run.
import t from 'tap';
import { makeKey, nowS, sha256hex, sign, startAuthProxy, type AuthProxy } from './helpers.js';

const ISS = 'https://idp.example.com';
const hs = await makeKey('HS256', 'k1');
const OPS = 'ops-key-000000000000000000000001';
const GUEST = 'guest-key-00000000000000000000002';
const jwt = async (c: Record<string, unknown>) => ({ authorization: `Bearer ${await sign(hs, { iss: ISS, exp: nowS() + 300, ...c })}` });

const rulesConfig = {
  requires: 'optional',
  xff_trusted_hops: 1,
  api_keys: { keys: [{ name: 'ops-bot', sha256: sha256hex(OPS) }, { name: 'guest', sha256: sha256hex(GUEST) }] },
  jwt: { providers: [{ issuer: ISS, local_jwks: { keys: [hs.jwk] } }] },
  rules: [
    { name: 'block-bad-nets', action: 'DENY', match: { remote_ips: ['203.0.113.0/24', '2001:db8:bad::/48'] } },
    { name: 'no-deletes-for-guests', action: 'DENY', match: { principals: ['guest'], methods: ['delete'] } },
    { name: 'admin-only', action: 'DENY', match: { paths: ['/admin/**', { exact: '/admin' }] }, unless: { claims: [{ claim: 'groups', values: ['admin'] }] } },
    { name: 'writes-need-scope', action: 'DENY', match: { methods: ['POST', 'PUT'], authenticated: true }, unless: { claims: [{ claim: 'scope', values: ['write'] }], auth_methods: ['jwt'] } },
    { name: 'audit-writes', action: 'AUDIT', match: { methods: ['POST', 'PUT', 'DELETE'] } },
    { name: 'public', action: 'ALLOW', match: { paths: ['/public/**', { exact: '/healthz' }, { prefix: '/static' }, '/v*/items/*/view'] } },
    { name: 'members', action: 'ALLOW', match: { authenticated: true } },
    { name: 'beta', action: 'ALLOW', match: { hosts: ['beta.example.com', '*.beta.example.org'], headers: [{ name: 'x-beta', exact: '1' }] } },
  ],
};

let p: AuthProxy;
t.before(async () => {
  p = await startAuthProxy(rulesConfig, { logLevel: 'info' });
});
t.teardown(() => p.close());

t.test('ALLOW rules present: what none allows is denied (Istio); DENY wins over ALLOW', async (t) => {
  t.equal((await p.get('/public/a/b')).status, 200, 'public subtree');
  t.equal((await p.get('/healthz')).status, 200, 'exact');
  t.equal((await p.get('/healthz/x')).status, 403, 'exact is exact');
  t.equal((await p.get('/static.css')).status, 200, 'prefix');
  t.equal((await p.get('/v2/items/9/view')).status, 200, 'glob: * within a segment');
  t.equal((await p.get('/v2/items/9/x/view')).status, 403, 'glob: * does not cross "/"');
  const denied = await p.get('/private');
  t.equal(denied.status, 403);
  t.equal(denied.json.error, 'forbidden');
  t.equal(denied.json.message, 'Access to this resource is denied.');
  t.notMatch(denied.body, /rule|public|members|beta/, 'no rule names in the response');
  t.equal((await p.get('/private', { 'x-api-key': GUEST })).status, 200, 'authenticated members allowed');
  t.equal((await p.get('/private', { 'x-api-key': GUEST }, { method: 'DELETE' })).status, 403, 'principal + method DENY');
  t.equal((await p.get('/private', { 'x-api-key': OPS }, { method: 'DELETE' })).status, 200, 'another principal');
  t.equal((await p.get('/public/x', { 'x-forwarded-for': '203.0.113.7' })).status, 403, 'DENY by client range beats ALLOW');
  t.equal(await p.metric('auth_denied_total', { status: '403', reason: 'no_allow_rule' }), 3);
  t.equal(await p.metric('auth_denied_total', { status: '403', reason: 'rule_denied' }), 2);
});

t.test('claims, unless, host and header conditions', async (t) => {
  t.equal((await p.get('/admin/users', await jwt({ sub: 'ann', groups: ['dev', 'admin'] }))).status, 200, 'groups contain admin');
  t.equal((await p.get('/admin', await jwt({ sub: 'ann', groups: 'admin' }))).status, 200, 'a string claim equal to the value');
  t.equal((await p.get('/admin/users', await jwt({ sub: 'bob', groups: ['dev'] }))).status, 403);
  t.equal((await p.get('/admin/users', { 'x-api-key': OPS })).status, 403, 'API keys have no claims');
  t.equal((await p.get('/admin/users')).status, 403);
  t.equal((await p.get('/items', await jwt({ sub: 'c', scope: 'read write' }), { method: 'POST' })).status, 200, 'space-separated scope');
  t.equal((await p.get('/items', await jwt({ sub: 'c', scope: 'read' }), { method: 'POST' })).status, 403);
  t.equal((await p.get('/items', { 'x-api-key': OPS }, { method: 'PUT' })).status, 403, 'unless needs every field: auth_methods jwt');
  t.equal((await p.get('/x', { 'x-beta': '1' }, { host: '127.0.0.1' })).status, 403);
  const viaHost = async (host: string, beta = '1') => (await p.get('/x', { host, 'x-beta': beta })).status;
  t.equal(await viaHost('beta.example.com'), 200);
  t.equal(await viaHost('BETA.example.com:8080'), 200, 'host without port, case-insensitive');
  t.equal(await viaHost('eu.beta.example.org'), 200, 'host glob');
  t.equal(await viaHost('beta.example.com', '2'), 403, 'header value');
  t.equal(await viaHost('evil.com'), 403);
});

t.test('paths are normalized before matching: dot segments, encoded unreserved characters, repeated slashes', async (t) => {
  for (const path of ['/public/../admin/users', '/public/%2e%2e/admin/users', '/public/%2E%2E/%61dmin/users', '/public/..//admin', '//admin//users', '/./admin/users', '/admin/users?x=/public/']) {
    t.equal((await p.get(path)).status, 403, path);
  }
  t.equal((await p.get('/admin/../public/x')).status, 200, 'and the other way round');
  t.equal((await p.get('/public%2F..%2Fadmin')).status, 403, '%2F is not a separator: /public%2F..%2Fadmin is not under /public/');
});

t.test('client CIDR ranges from x-forwarded-for (xff_trusted_hops: 1), IPv4 and IPv6 edge cases', async (t) => {
  const cases: Array<[string, number]> = [
    ['203.0.113.0', 403], ['203.0.113.255', 403], ['203.0.112.255', 200], ['203.0.114.0', 200],
    ['::ffff:203.0.113.9', 403], ['::FFFF:cb00:7109', 403], ['[::ffff:203.0.113.9]', 403],
    ['2001:db8:bad::', 403], ['2001:db8:bad:ffff:ffff:ffff:ffff:ffff', 403], ['2001:0db8:0bad:0000:0000:0000:0000:0001', 403],
    ['2001:db8:bae::1', 200], ['2001:db8:bac:ffff::1', 200], ['2001:db8::bad', 200],
    ['fe80::1%eth0', 200], ['10.0.0.1, 203.0.113.5', 403], ['203.0.113.5, 10.0.0.1', 200],
    ['not-an-ip', 200], ['203.0.113.07', 200], ['1.2.3', 200], ['::ffff:999.1.1.1', 200], ['2001:db8:bad::1::2', 200],
  ];
  for (const [xff, want] of cases) t.equal((await p.get('/public/x', { 'x-forwarded-for': xff })).status, want, `x-forwarded-for: ${xff}`);
});

t.test('CIDR matching on the real peer address, IPv4 and IPv6 sockets', async (t) => {
  const q = await startAuthProxy(
    {
      rules: [
        { name: 'v4-host', action: 'DENY', match: { source_ips: ['127.0.0.2/32'] } },
        { name: 'v4-range', action: 'DENY', match: { source_ips: ['127.9.0.0/16'] } },
        { name: 'v6-loopback', action: 'DENY', match: { source_ips: ['::1/128'] }, unless: { paths: ['/v6-ok'] } },
      ],
    },
    { listenAddress: '::' },
  );
  t.teardown(() => q.close());
  const from = async (localAddress: string, path = '/x') => (await q.get(path, {}, { localAddress, host: localAddress.includes(':') ? '::1' : '127.0.0.1' })).status;
  t.equal(await from('127.0.0.1'), 200, 'peer ::ffff:127.0.0.1 (dual-stack) is 127.0.0.1');
  t.equal(await from('127.0.0.2'), 403, '/32');
  t.equal(await from('127.0.0.3'), 200, 'next address');
  t.equal(await from('127.9.255.254'), 403, '/16 upper end');
  t.equal(await from('127.10.0.1'), 200, 'outside /16');
  t.equal(await from('::1'), 403, 'IPv6 peer');
  t.equal(await from('::1', '/v6-ok'), 200, 'unless');
  t.equal(await q.metric('auth_allowed_total', { method: 'anonymous' }), 4, 'no credentials needed without api_keys/jwt');
});

t.test('AUDIT rules log and count, never deny (and log requests other rules deny)', async (t) => {
  const before = await p.metric('auth_audit_total', { rule: 'audit-writes' });
  const r = await p.get('/public/form', {}, { method: 'POST' });
  t.equal(r.status, 200);
  t.equal((await p.get('/private', { 'x-api-key': GUEST }, { method: 'DELETE' })).status, 403);
  t.equal(await p.metric('auth_audit_total', { rule: 'audit-writes' }), before + 2);
  t.ok(p.logs.some((l) => l.source === 'auth' && l.level === 'info' && /^audit rule=audit-writes principal=anonymous POST \/public\/form from /.test(l.message)));
});

t.test('dry-run: what would be denied is logged and counted, and let through', async (t) => {
  const q = await startAuthProxy({ ...rulesConfig, dry_run: true }, { logLevel: 'info' });
  t.teardown(() => q.close());
  t.equal((await q.get('/private')).status, 200);
  t.equal((await q.get('/x', { authorization: 'Bearer not.a.token' })).status, 200);
  t.equal((await q.get('/admin/x', { 'x-api-key': OPS })).status, 200);
  const fwd = await q.get('/admin/x', { 'x-api-key': OPS });
  t.equal(fwd.json.headers['x-auth-principal'], 'ops-bot', 'a request let through in dry-run still carries its identity');
  t.equal(await q.metric('auth_shadow_denied_total', { reason: 'no_allow_rule' }), 1);
  t.equal(await q.metric('auth_shadow_denied_total', { reason: 'token_malformed' }), 1);
  t.equal(await q.metric('auth_shadow_denied_total', { reason: 'rule_denied' }), 2);
  t.equal(await q.metric('auth_denied_total', { status: '403', reason: 'rule_denied' }), 0);
  const lines = q.logs.filter((l) => l.source === 'auth' && l.message.startsWith('dry-run')).map((l) => l.message);
  t.match(lines[0], /^dry-run: would deny 403 reason=no_allow_rule principal=anonymous GET \/private from /);
  t.match(lines[1], /^dry-run: would deny 401 reason=token_malformed principal=anonymous GET \/x from /);
  t.match(lines[2], /^dry-run: would deny 403 reason=rule_denied rule=admin-only principal=/);

  // one rule in dry-run: it logs, the others still apply
  const r = await startAuthProxy({
    rules: [
      { name: 'trial-block', action: 'DENY', dry_run: true, match: { methods: ['GET'] } },
      { name: 'real-block', action: 'DENY', match: { paths: ['/blocked'] } },
    ],
  }, { logLevel: 'info' });
  t.teardown(() => r.close());
  t.equal((await r.get('/ok')).status, 200, 'only DENY rules: default ALLOW');
  t.equal((await r.get('/blocked')).status, 403);
  t.equal(await r.metric('auth_shadow_denied_total', { reason: 'rule_denied' }), 2);
});

t.test('default_action and CORS preflight bypass', async (t) => {
  const q = await startAuthProxy({
    default_action: 'DENY',
    bypass_cors_preflight: true,
    api_keys: { keys: [{ name: 'a', sha256: sha256hex(OPS) }] },
    route_requirements: [{ match: { paths: ['/healthz'] }, requires: 'none' }],
    rules: [{ name: 'all-get', action: 'ALLOW', match: { methods: ['GET', 'OPTIONS'] } }],
  });
  t.teardown(() => q.close());
  t.equal((await q.get('/x', { 'x-api-key': OPS })).status, 200);
  t.equal((await q.get('/x', { 'x-api-key': OPS }, { method: 'PUT' })).status, 403, 'default DENY');
  t.equal((await q.get('/healthz')).status, 200, 'route requirement none');
  t.equal((await q.get('/x')).status, 401);
  t.equal((await q.get('/x', { origin: 'https://app.example.com', 'access-control-request-method': 'GET' }, { method: 'OPTIONS' })).status, 200, 'preflight bypasses authentication');
  t.equal((await q.get('/x', { origin: 'https://app.example.com' }, { method: 'OPTIONS' })).status, 401, 'a plain OPTIONS does not');
});

t.test('rule config errors name the field', async (t) => {
  await t.rejects(
    startAuthProxy({
      rules: [
        { name: 'a', action: 'BLOCK', match: { paths: ['admin'] } },
        { name: 'a', action: 'DENY', match: { source_ips: ['10.0.0.0/33', '010.0.0.1', '1.2.3.4/8x', 'fe80::1%eth0/64'], methdos: ['GET'] } },
        { action: 'ALLOW', match: { claims: [{ claim: 'x' }], headers: [{ name: 'x', exact: 'a', prefix: 'b' }, { name: 'y', equals: 'z' }] } },
      ],
    }),
    {
      message:
        /rules\[0\].action": must be ALLOW, DENY or AUDIT.*rules\[0\].match.paths\[0\]": a path pattern must start with '\/'.*rules\[1\].name": "a" is used by another rule.*rules\[1\].match.methdos": unknown match field.*source_ips\[0\]": "10.0.0.0\/33" is not.*source_ips\[1\]".*source_ips\[2\]".*source_ips\[3\]".*rules\[2\].match.headers\[0\]": use one of exact, prefix, suffix, contains, present.*rules\[2\].match.headers\[1\].equals": unknown setting.*rules\[2\].match.claims\[0\]": a claim condition needs "values" or "present"/,
    },
  );
});
