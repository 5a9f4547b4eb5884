// Issue 12 item 11: the README's quick starts run on ports other than 8080/9901/3000/9091,
// chosen on the command line, with the example files unchanged.
import t from 'tap';
import { freePorts, get, startCli } from './cli-process.js';

t.test('quick start (examples/quickstart.yaml) on other ports: --port, --admin, --to', async (t) => {
  const [up, proxy, admin] = await freePorts(3);
  const upstream = startCli(['demo-upstream', '--port', String(up)]);
  t.teardown(() => upstream.stop());
  await upstream.waitFor(new RegExp(`listening on http://127.0.0.1:${up}`));
  const p = startCli(['proxy', '--config', 'examples/quickstart.yaml', '--port', String(proxy), '--admin', String(admin), '--to', `http://127.0.0.1:${up}`]);
  t.teardown(() => p.stop());
  await p.waitFor(/wasm-mixer proxy listening/);
  t.match(p.stderr(), new RegExp(`listening on http://127.0.0.1:${proxy} \\(admin http://127.0.0.1:${admin}\\)`));
  const denied = await get(proxy!, '/hello');
  t.equal(denied.status, 403, 'the adapter denies without x-user');
  const ok = await get(proxy!, '/hello', { 'x-user': 'ann' });
  t.equal(ok.status, 200, 'reaches the demo upstream on the --to port');
  t.match(ok.body, /"x-header-check":"ok"/);
  const metrics = await get(admin!, '/metrics');
  t.match(metrics.body, /header_check/);
  t.equal(await p.stop(), 0);
});

t.test('--to is refused when the file routes to several upstreams; --remote without a remote block', async (t) => {
  const { applyOverrides } = await import('../../host/src/cli/main.js');
  t.throws(() => applyOverrides({ routes: [{ name: 'a', upstream: 'http://127.0.0.1:1' }, { name: 'b', upstream: 'http://127.0.0.1:2' }] }, { to: 'http://127.0.0.1:3' }, 'x.yaml'), { code: 'USAGE', message: /2 upstreams/ });
  t.throws(() => applyOverrides({}, { remote: '127.0.0.1:1' }, 'x.yaml'), { code: 'USAGE', message: /no remote block/ });
  const c = applyOverrides({ listen: { address: '127.0.0.1', port: 8080 }, routes: [{ name: 'a', upstream: 'http://127.0.0.1:1' }] }, { port: 0, to: 'http://127.0.0.1:9' }, 'x.yaml');
  t.same([c.listen?.port, c.routes?.[0]?.upstream], [0, 'http://127.0.0.1:9']);
});
