// Local mode through the real proxy on real sockets: with limit N, exactly N
// requests are admitted however many arrive at once, for each algorithm; the
// client sees the headers; the admin port serves the metrics.
import t from 'tap';
import { startDemoUpstream, startProxy } from '../../../host/src/index.js';
import { blast, buildQuota, count, metricValue, request } from './helpers.js';

const { wasm, cleanup } = await buildQuota();
t.teardown(cleanup);

const upstream = await startDemoUpstream(0);
t.teardown(() => upstream.close());

async function proxyWith(pluginConfig: unknown) {
  const p = await startProxy({
    listen: { port: 0 },
    admin: { port: 0 },
    routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }],
    plugins: [{ name: 'quota', url: wasm, pluginConfig }],
  });
  return p;
}

for (const algorithm of ['fixed_window', 'sliding_window', 'token_bucket']) {
  t.test(`${algorithm}: exactly N of many concurrent requests are admitted`, async (t) => {
    // A day-long window (and a token bucket refilling 50 tokens a day): the test sees one window.
    const limit = 50;
    const proxy = await proxyWith({ limits: [{ name: 'exact', algorithm, limit, window: '1d', dimensions: { tenant: 'header:x-tenant' } }] });
    t.teardown(() => proxy.close());
    const rs = await blast(proxy.port, 400, 64, (i) => ({ headers: { 'x-tenant': i % 2 === 0 ? 'even' : 'odd' } }));
    t.equal(count(rs, 200), 2 * limit, `${2 * limit} admitted: ${limit} per tenant`);
    t.equal(count(rs, 429), 400 - 2 * limit, 'every other request got 429');
    for (const tenant of ['even', 'odd']) {
      const admitted = rs.filter((r, i) => r.status === 200 && (i % 2 === 0 ? 'even' : 'odd') === tenant).length;
      t.equal(admitted, limit, `tenant ${tenant}: exactly ${limit}`);
    }
    const metrics = (await request(proxy.adminPort!, '/metrics')).body;
    t.equal(metricValue(metrics, 'quota_requests_total{limit="exact",result="allowed"}'), 2 * limit);
    t.equal(metricValue(metrics, 'quota_requests_total{limit="exact",result="over_limit"}'), 400 - 2 * limit);
    t.equal(metricValue(metrics, 'wasm_mixer_proxy_responses_total{route="default",code="429"}'), 400 - 2 * limit);
  });
}

t.test('the client sees RateLimit-* on allowed responses and Retry-After on the 429', async (t) => {
  const proxy = await proxyWith({ limits: [{ name: 'per_ip', limit: 2, window: '1h', dimensions: { ip: 'source.ip' } }] });
  t.teardown(() => proxy.close());
  const a = await request(proxy.port, '/a');
  t.equal(a.status, 200);
  t.equal(a.headers['ratelimit-limit'], '2');
  t.equal(a.headers['ratelimit-remaining'], '1');
  t.ok(Number(a.headers['ratelimit-reset']) <= 3600);
  t.ok((JSON.parse(a.body) as { url: string }).url === '/a', 'the upstream answered');
  await request(proxy.port, '/b');
  const c = await request(proxy.port, '/c');
  t.equal(c.status, 429);
  t.equal(c.headers['ratelimit-remaining'], '0');
  t.equal(c.headers['retry-after'], c.headers['ratelimit-reset']);
  t.equal((JSON.parse(c.body) as { limit: string }).limit, 'per_ip');
});
