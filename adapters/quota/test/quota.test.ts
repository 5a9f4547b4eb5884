// The quota adapter in the real host through the in-process harness: algorithms,
// headers, dimensions and overrides, several limits per request, weighted hits,
// shadow mode, metrics and configuration errors. Global mode and the real proxy
// are in global.test.ts and proxy.test.ts.
import t from 'tap';
import { loadAdapter, type AdapterHarness } from '../../../host/testing/index.js';
import { buildQuota, sleep } from './helpers.js';

const { wasm, cleanup } = await buildQuota();
t.teardown(cleanup);

async function quota(config: unknown): Promise<AdapterHarness> {
  return loadAdapter(wasm, { name: 'quota', config });
}

async function statuses(h: AdapterHarness, n: number, req: Parameters<AdapterHarness['run']>[0] = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await h.run(req)).status);
  return out;
}

t.test('fixed window: exactly N admitted, then 429 with Retry-After, RateLimit-* and a JSON body', async (t) => {
  const h = await quota({ limits: [{ name: 'per_ip', algorithm: 'fixed_window', limit: 3, window: '1d', dimensions: { ip: 'source.ip' } }] });
  t.teardown(() => h.close());
  const first = await h.run({ sourceAddress: '10.0.0.1' });
  t.equal(first.status, 200);
  t.equal(first.headers['ratelimit-limit'], '3');
  t.equal(first.headers['ratelimit-remaining'], '2');
  t.equal(first.headers['ratelimit-policy'], '3;w=86400;name="per_ip"', 'the policy (window, name) on allowed responses too, for current_limit in Envoy\'s RLS');
  const reset = Number(first.headers['ratelimit-reset']);
  t.ok(reset >= 1 && reset <= 86400, 'reset is the time to the end of the window, in seconds');
  t.same(await statuses(h, 2, { sourceAddress: '10.0.0.1' }), [200, 200]);
  const denied = await h.run({ sourceAddress: '10.0.0.1' });
  t.equal(denied.status, 429);
  t.equal(denied.upstream, null, 'the upstream is not called');
  t.equal(denied.headers['ratelimit-remaining'], '0');
  t.equal(denied.headers['ratelimit-policy'], '3;w=86400;name="per_ip"');
  t.equal(denied.headers['retry-after'], denied.headers['ratelimit-reset']);
  t.ok(Math.abs(Number(denied.headers['retry-after']) - reset) <= 1);
  t.equal(denied.headers['content-type'], 'application/json');
  t.same(JSON.parse(denied.body), { error: 'rate limit exceeded', limit: 'per_ip', retry_after: Number(denied.headers['retry-after']) });
  t.match(denied.localReply?.details, /quota_exceeded/);
  t.equal((await h.run({ sourceAddress: '10.0.0.2' })).status, 200, 'another source address has its own counter');
  t.equal(h.metric('quota_requests_total', { limit: 'per_ip', result: 'allowed' }), 4);
  t.equal(h.metric('quota_requests_total', { limit: 'per_ip', result: 'over_limit' }), 1);
  t.equal(h.metric('quota_hits_total', { limit: 'per_ip' }), 4);
  t.equal(h.metric('quota_near_limit_total', { limit: 'per_ip' }), 2, 'near limit: used >= floor(0.8 * 3)');
});

t.test('x-ratelimit header style (as Envoy), no headers on allowed requests, custom status and body', async (t) => {
  const h = await quota({
    headers: 'x-ratelimit',
    headers_on_allowed: false,
    deny_status: 503,
    deny_body: 'slow down',
    limits: [{ name: 'all', limit: 1, window: '1m' }],
  });
  t.teardown(() => h.close());
  const ok = await h.run();
  t.equal(ok.status, 200);
  t.notOk('x-ratelimit-limit' in ok.headers, 'headers_on_allowed: false');
  const denied = await h.run();
  t.equal(denied.status, 503);
  t.equal(denied.body, 'slow down');
  t.equal(denied.headers['x-ratelimit-limit'], '1, 1;w=60;name="all"');
  t.equal(denied.headers['x-ratelimit-remaining'], '0');
  t.ok(Number(denied.headers['x-ratelimit-reset']) <= 60);
  t.ok('retry-after' in denied.headers);
  t.notOk('ratelimit-limit' in denied.headers);

  const none = await quota({ headers: 'none', limits: [{ name: 'all', limit: 0, window: '1m' }] });
  t.teardown(() => none.close());
  const r = await none.run();
  t.equal(r.status, 429, 'limit 0 blocks');
  t.notOk('ratelimit-limit' in r.headers);
  t.ok('retry-after' in r.headers, 'Retry-After is always sent on a 429');
});

t.test('token bucket: burst, then refill at limit/window', async (t) => {
  // 10 tokens per 10 s = one a second, bucket of 3: a loaded machine can take a few hundred ms over
  // the three requests after the wait without a fourth token arriving.
  const h = await quota({ limits: [{ name: 'tb', algorithm: 'token_bucket', limit: 10, window: '10s', burst: 3 }] });
  t.teardown(() => h.close());
  const first = await h.run();
  t.equal(first.headers['ratelimit-limit'], '3', 'a token bucket reports its capacity');
  t.same(await statuses(h, 3), [200, 200, 429], 'the burst of 3 is spent');
  const denied = await h.run();
  t.equal(denied.status, 429);
  t.equal(denied.headers['retry-after'], '1', 'the next token is <= 1 s away (rounded up)');
  await sleep(2300); // >= 2 tokens back
  const after = await statuses(h, 3);
  t.same(after.slice(0, 2), [200, 200], 'tokens refilled while waiting');
  t.equal(after[2], 429);
});

t.test('sliding window: the budget comes back bucket by bucket, never as a fresh window', async (t) => {
  // 4 per 400 ms in 4 buckets of 100 ms.
  const h = await quota({ limits: [{ name: 'sw', algorithm: 'sliding_window', limit: 4, window: '400ms', buckets: 4 }] });
  t.teardown(() => h.close());
  t.same(await statuses(h, 5), [200, 200, 200, 200, 429]);
  const denied = await h.run();
  t.equal(denied.headers['retry-after'], '1');
  await sleep(150); // one or two bucket boundaries later: the 4 hits are still in the window
  t.equal((await h.run()).status, 429, 'not reset at a bucket boundary');
  await sleep(400); // now they all left
  t.same(await statuses(h, 4), [200, 200, 200, 200]);
  t.equal((await h.run()).status, 429);
});

t.test('dimensions and overrides: per-tenant limits, a higher limit for one tenant, zero for a blocked one', async (t) => {
  const h = await quota({
    limits: [
      {
        name: 'per_tenant',
        limit: 2,
        window: '1d',
        dimensions: { tenant: 'header:x-tenant', method: 'request.method' },
        overrides: [
          { match: { tenant: 'gold' }, limit: 5, name: 'gold' },
          { match: { tenant: ['blocked', 'banned'] }, limit: 0 },
          { match: { tenant: 'vip' }, unlimited: true },
        ],
      },
    ],
  });
  t.teardown(() => h.close());
  const as = (tenant: string, method = 'GET') => ({ method, headers: { 'x-tenant': tenant } });
  t.same(await statuses(h, 3, as('acme')), [200, 200, 429], 'default limit');
  t.same(await statuses(h, 2, as('acme', 'POST')), [200, 200], 'method is part of the key');
  t.same(await statuses(h, 6, as('gold')), [200, 200, 200, 200, 200, 429], 'override raises the limit');
  const gold = await h.run(as('gold'));
  t.equal(gold.status, 429);
  t.equal(gold.headers['ratelimit-limit'], '5');
  t.equal(gold.headers['ratelimit-policy'], '5;w=86400;name="gold"', 'the override name is reported');
  t.same(await statuses(h, 1, as('blocked')), [429], 'override with limit 0 blocks');
  t.same(await statuses(h, 1, as('banned')), [429], 'a list of values matches any of them');
  t.same(await statuses(h, 10, as('vip')), Array(10).fill(200), 'unlimited override');
  t.same(await statuses(h, 5, {}), Array(5).fill(200), 'no x-tenant header: the limit does not apply (missing: skip)');

  // An unlimited default with limits for some values only.
  const some = await quota({
    limits: [{ name: 'only_free', unlimited: true, dimensions: { plan: 'header:x-plan' }, overrides: [{ match: { plan: 'free' }, limit: 1, window: '1d' }] }],
  });
  t.teardown(() => some.close());
  t.same(await statuses(some, 2, { headers: { 'x-plan': 'free' } }), [200, 429]);
  t.same(await statuses(some, 3, { headers: { 'x-plan': 'pro' } }), [200, 200, 200]);
  t.equal(h.metric('quota_unkeyed_total', { limit: 'per_tenant' }), 5);
});

t.test('missing: shared puts requests without the value in one counter; path and property sources', async (t) => {
  const h = await quota({
    limits: [
      { name: 'by_key', limit: 2, window: '1d', dimensions: { api_key: 'header:x-api-key' }, missing: 'shared' },
      { name: 'by_route', limit: 3, window: '1d', dimensions: { route: 'request.path_prefix:2', ua: 'property:request.useragent' } },
    ],
  });
  t.teardown(() => h.close());
  t.same(await statuses(h, 3, { path: '/x' }), [200, 200, 429], 'anonymous requests share one counter');
  t.same(await statuses(h, 2, { path: '/x', headers: { 'x-api-key': 'k1' } }), [200, 200]);
  const ua = { 'x-api-key': 'other', 'user-agent': 'probe/1' };
  t.same(await statuses(h, 1, { path: '/v1/orders/1', headers: { ...ua, 'x-api-key': 'a' } }), [200]);
  t.same(await statuses(h, 1, { path: '/v1/orders/2?q=1', headers: { ...ua, 'x-api-key': 'b' } }), [200]);
  t.same(await statuses(h, 1, { path: '/v1/orders', headers: { ...ua, 'x-api-key': 'c' } }), [200]);
  t.same(await statuses(h, 1, { path: '/v1/orders/3', headers: { ...ua, 'x-api-key': 'd' } }), [429], '/v1/orders/* share the route counter');
  t.same(await statuses(h, 1, { path: '/v1/users/3', headers: { ...ua, 'x-api-key': 'e' } }), [200], 'another prefix');
  t.same(await statuses(h, 1, { path: '/v1/orders/3', headers: { 'x-api-key': 'f', 'user-agent': 'other/2' } }), [200], 'another property value');
});

t.test('several limits: a request denied by one limit is not charged to the others', async (t) => {
  const h = await quota({
    limits: [
      { name: 'per_user', limit: 2, window: '1d', dimensions: { user: 'header:x-user' } },
      { name: 'global', limit: 5, window: '1d' },
    ],
  });
  t.teardown(() => h.close());
  const u = (user: string) => ({ headers: { 'x-user': user } });
  t.same(await statuses(h, 6, u('ann')), [200, 200, 429, 429, 429, 429], 'per_user denies ann from her third request');
  // global has been charged 2 (ann's admitted requests), not 6: three more fit.
  t.same(await statuses(h, 2, u('bob')), [200, 200]);
  t.same(await statuses(h, 2, u('cy')), [200, 429], 'global is exhausted after 5 admitted requests');
  const denied = await h.run(u('dee'));
  t.equal(denied.headers['ratelimit-limit'], '5', 'the headers describe the limit that denied');
  t.equal(h.metric('quota_hits_total', { limit: 'global' }), 5);
  t.equal(h.metric('quota_requests_total', { limit: 'per_user', result: 'over_limit' }), 4);
  const two = await quota({ limits: [{ name: 'big', limit: 100, window: '1d' }, { name: 'small', limit: 3, window: '1d' }] });
  t.teardown(() => two.close());
  t.equal((await two.run()).headers['ratelimit-limit'], '3', 'allowed requests report the limit closest to its end');
});

t.test('weighted hits: cost from a header (request size), with default, unit and cap', async (t) => {
  const h = await quota({
    limits: [{ name: 'bytes', limit: 10, window: '1d', cost: { header: 'content-length', unit: 1024, default: 1, max: 8 } }],
  });
  t.teardown(() => h.close());
  const sized = (n: number) => ({ method: 'POST', headers: { 'content-length': String(n) } });
  t.equal((await h.run(sized(4096))).status, 200, 'cost 4');
  t.equal((await h.run(sized(3000))).headers['ratelimit-remaining'], '3', 'cost ceil(3000/1024) = 3');
  t.equal((await h.run(sized(4000))).status, 429, 'cost 4 does not fit in 3');
  t.equal((await h.run({})).headers['ratelimit-remaining'], '2', 'no header: default cost 1');
  t.equal((await h.run(sized(1_000_000))).status, 429, 'cost capped at 8, still more than 2');
  t.equal((await h.run(sized(2048))).status, 200, 'cost 2 fits exactly');
  t.equal(h.metric('quota_hits_total', { limit: 'bytes' }), 10);
  const fixed = await quota({ limits: [{ name: 'expensive', limit: 10, window: '1d', cost: 4 }] });
  t.teardown(() => fixed.close());
  t.same(await statuses(fixed, 3), [200, 200, 429], 'a fixed cost of 4 admits two requests out of 10');
});

t.test('shadow mode counts and reports but never denies', async (t) => {
  const h = await quota({
    limits: [
      { name: 'new_limit', limit: 2, window: '1d', shadow: true },
      { name: 'real', limit: 100, window: '1d' },
    ],
  });
  t.teardown(() => h.close());
  t.same(await statuses(h, 5), [200, 200, 200, 200, 200]);
  t.equal(h.metric('quota_requests_total', { limit: 'new_limit', result: 'allowed' }), 2);
  t.equal(h.metric('quota_requests_total', { limit: 'new_limit', result: 'shadow_over_limit' }), 3);
  const r = await h.run();
  t.equal(r.headers['ratelimit-limit'], '100', 'shadow limits do not appear in the headers');

  const dry = await quota({ shadow: true, limits: [{ name: 'a', limit: 1, window: '1d' }, { name: 'b', limit: 0, window: '1d' }] });
  t.teardown(() => dry.close());
  t.same(await statuses(dry, 3), [200, 200, 200], 'top-level shadow: a dry run of every limit');
  t.equal(dry.metric('quota_requests_total', { limit: 'b', result: 'shadow_over_limit' }), 3);
});

t.test('match: a limit applies only to its paths, methods and hosts', async (t) => {
  const h = await quota({
    limits: [{ name: 'login', limit: 1, window: '1d', match: { path_prefix: ['/login', '/auth'], methods: ['post'], hosts: ['*.example.com'] } }],
  });
  t.teardown(() => h.close());
  t.equal((await h.run({ method: 'POST', path: '/login', host: 'api.example.com' })).status, 200);
  t.equal((await h.run({ method: 'POST', path: '/login?x', host: 'api.example.com:8443' })).status, 429);
  t.equal((await h.run({ method: 'GET', path: '/login', host: 'api.example.com' })).status, 200, 'other method');
  t.equal((await h.run({ method: 'POST', path: '/home', host: 'api.example.com' })).status, 200, 'other path');
  t.equal((await h.run({ method: 'POST', path: '/login', host: 'other.org' })).status, 200, 'other host');
});

t.test('metrics are rendered for the admin port', async (t) => {
  const h = await quota({ limits: [{ name: 'm', limit: 1, window: '1d' }] });
  t.teardown(() => h.close());
  await statuses(h, 3);
  const text = h.metricsText();
  t.match(text, /quota_requests_total\{limit="m",result="allowed"\} 1/);
  t.match(text, /quota_requests_total\{limit="m",result="over_limit"\} 2/);
  t.match(text, /quota_near_limit_total\{limit="m"\} 1/);
});

t.test('configuration errors are refused at configure time with the path of the bad field', async (t) => {
  const refuse = async (config: unknown, message: RegExp) =>
    t.rejects(quota(config), { code: 'PLUGIN_CONFIGURE_FAILED', message }, String(message));
  await refuse({}, /config "limits": is required/);
  await refuse({ limits: [] }, /config "limits": is empty/);
  await refuse({ limits: [{ name: 'a', algorithm: 'leaky_bucket', limit: 1, window: '1s' }] }, /config "limits\[0\]\.algorithm": unknown algorithm "leaky_bucket"/);
  await refuse({ limits: [{ name: 'a', limit: -5, window: '1s' }] }, /config "limits\[0\]\.limit": must not be negative, got -5/);
  await refuse({ limits: [{ name: 'a', limit: 5, window: '10 seconds' }] }, /config "limits\[0\]\.window": bad duration "10 seconds"/);
  await refuse({ limits: [{ name: 'a', limit: 5 }] }, /config "limits\[0\]\.window": is required/);
  await refuse({ limits: [{ name: 'a', window: '1s' }] }, /config "limits\[0\]\.limit": is required/);
  await refuse({ limits: [{ name: 'a', limit: 5, window: '1s', windw: 1 }] }, /config "limits\[0\]\.windw": unknown key/);
  await refuse({ limits: [{ name: 'a', limit: 5, window: '1s' }, { name: 'a', limit: 1, window: '1s' }] }, /duplicate limit name "a"/);
  await refuse({ limits: [{ name: 'a', limit: 5, window: '1s', dimensions: { ip: 'client.ip' } }] }, /config "limits\[0\]\.dimensions\.ip": unknown dimension source "client\.ip"/);
  await refuse({ limits: [{ name: 'a', limit: 5, window: '1s', dimensions: { t: 'header:x-t' }, overrides: [{ match: { tenant: 'x' }, limit: 9 }] }] },
    /config "limits\[0\]\.overrides\[0\]\.match\.tenant": is not one of this limit's "dimensions" \(t\)/);
  await refuse({ limits: [{ name: 'a', algorithm: 'sliding_window', limit: 5, window: '1s', buckets: 7 }] }, /does not divide into 7 buckets/);
  await refuse({ limits: [{ name: 'a', algorithm: 'fixed_window', limit: 5, window: '1s', burst: 9 }] }, /"limits\[0\]\.burst": only applies to token_bucket/);
  await refuse({ limits: [{ name: 'a', limit: 5, window: '1s', mode: 'global' }] }, /a global limit needs "cluster"/);
  await refuse({ global: { cluster: 'r', on_error: 'maybe' }, limits: [{ name: 'a', limit: 5, window: '1s', mode: 'global' }] }, /"global\.on_error": must be "open", "closed" or "local"/);
  await refuse({ headers: 'rfc', limits: [{ name: 'a', limit: 5, window: '1s' }] }, /config "headers": must be "draft"/);
  await refuse({ deny_status: 200, limits: [{ name: 'a', limit: 5, window: '1s' }] }, /config "deny_status": must be a 4xx or 5xx status/);
  await refuse({ limits: [{ name: 'a', limit: 5, window: '1s', cost: 0 }] }, /config "limits\[0\]\.cost": must be at least 1/);
  await refuse({ limits: [{ name: 'a', unlimited: true, dimensions: { t: 'header:x-t' }, overrides: [{ match: { t: 'x' }, limit: 5 }] }] },
    /config "limits\[0\]\.overrides\[0\]\.window": is required: the limit itself has none/);
  await refuse('{"limits": [', /not valid JSON/);
  // every problem at once
  await refuse({ limits: [{ name: 'a', algorithm: 'x', limit: -1, window: 'soon' }] }, /unknown algorithm "x".*must not be negative.*bad duration "soon"/);
});

t.test('global limit with its backend failing: on_error local uses the key\'s own limit, or fallback_limit, and says so in the headers', async (t) => {
  let calls = 0;
  const h = await loadAdapter(wasm, {
    name: 'quota',
    clusters: ['redis'],
    httpCall: async (req) => {
      if (req.headers.some(([k, v]) => k === ':path' && v === '/quota/v1/lease')) calls++; // not the startup probe
      throw new Error('connection refused');
    },
    config: {
      global: { cluster: 'redis', on_error: 'local', down_for: '1m' },
      limits: [
        { name: 'tenant', limit: 2, window: '1h', dimensions: { t: 'header:x-t' }, mode: 'global', overrides: [{ match: { t: 'gold' }, limit: 4 }] },
        { name: 'capped', limit: 100, window: '1h', mode: 'global', match: { path_prefix: '/capped' }, global: { fallback_limit: 1 } },
      ],
    },
  });
  t.teardown(() => h.close());
  t.same(await statuses(h, 3, { headers: { 'x-t': 'acme' } }), [200, 200, 429], 'default limit, enforced on this proxy');
  const gold = await statuses(h, 5, { headers: { 'x-t': 'gold' } });
  t.same(gold, [200, 200, 200, 200, 429], 'the override applies in fallback too');
  const capped = await h.run({ path: '/capped', headers: { 'x-t': 'z' } });
  t.equal(capped.status, 200);
  t.equal(capped.headers['ratelimit-limit'], '1', 'headers report the fallback limit in force');
  t.equal((await h.run({ path: '/capped', headers: { 'x-t': 'y' } })).status, 429);
  t.equal(calls, 1, 'after the first failure the circuit stays open for down_for: no call per request');
  t.equal(h.metric('quota_errors_total', { limit: 'tenant', reason: 'backend' }), 1);
  t.ok((h.metric('quota_fallback_total', { limit: 'tenant' }) ?? 0) >= 8);
  t.match(h.logsAt('warn', 'quota').map((r) => r.message).join('\n'), /lease for limit tenant from cluster redis failed/);
});

t.test('shared data full: new keys are admitted without a counter and counted as errors; known keys stay exact', async (t) => {
  const { WasmHost } = await import('../../../host/src/host.js');
  const { SharedStore } = await import('../../../host/src/shared/shared-store.js');
  const { readFile } = await import('node:fs/promises');
  const host = await WasmHost.create(
    { plugins: [{ name: 'quota', url: 'q.wasm', pluginConfig: { limits: [{ name: 'per_user', limit: 1, window: '1d', dimensions: { user: 'header:x-user' } }] } }] },
    { modules: { 'q.wasm': await readFile(wasm) }, shared: new SharedStore({ maxKeysPerVm: 2, maxValueBytes: 1024, maxQueueItems: 10 }), logger: { level: 5, log() {} } as never },
  );
  t.teardown(() => host.close());
  const status = async (user: string) => {
    const st = host.newStream({ method: 'GET', path: '/', authority: 'x', headers: [['x-user', user]] });
    let d = st.requestHeaders(true);
    if (d instanceof Promise) d = await d;
    st.finish();
    return d.action === 'continue' ? 200 : d.action === 'respond' ? d.reply.status : 0;
  };
  t.same([await status('a'), await status('a'), await status('b'), await status('b')], [200, 429, 200, 429], 'two keys fit');
  t.same([await status('c'), await status('c')], [200, 200], 'a third key cannot be stored: admitted');
  t.equal(host.metrics.value('quota_errors_total', { limit: 'per_user', reason: 'store' }), 2);
  t.equal(await status('a'), 429, 'stored keys are still enforced');
});

t.test('config.schema.json describes config.example.json, and the adapter accepts the example', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const { default: Ajv2020 } = await import('ajv/dist/2020.js');
  const dir = new URL('..', import.meta.url);
  const schema = JSON.parse(await readFile(new URL('config.schema.json', dir), 'utf8'));
  const example = JSON.parse(await readFile(new URL('config.example.json', dir), 'utf8'));
  const ajv = new (Ajv2020 as unknown as typeof import('ajv').default)({ allErrors: true, strict: false });
  const validate = ajv.compile(schema);
  t.ok(validate(example), JSON.stringify(validate.errors));
  t.notOk(validate({ limits: [{ name: 'a', algorithm: 'leaky', limit: -1, window: '10 seconds' }] }), 'the schema rejects what the adapter rejects');
  const h = await loadAdapter(wasm, { name: 'quota', config: example, clusters: ['redis'], httpCall: async () => Promise.reject(new Error('no redis here')) });
  t.teardown(() => h.close());
  t.equal((await h.run({ headers: { 'x-tenant': 'acme' } })).status, 200);
});

t.test('the decision is left for later adapters and the access log as mixer.quota', async (t) => {
  const built = await buildQuota();
  const h = await loadAdapter(built.wasm, { name: 'quota', config: { limits: [{ name: 'all', limit: 1, window: '1m' }] } });
  t.teardown(async () => {
    h.close();
    await built.cleanup();
  });
  const decision = async () => {
    const s = h.stream({ path: '/' });
    await s.requestHeaders(true);
    const v = s.stream.filterState.get('mixer.quota');
    s.finish();
    return v === undefined ? undefined : Buffer.from(v).toString();
  };
  t.equal(await decision(), 'ok');
  t.equal(await decision(), 'over_limit');
});
