// Issue 12 item 11: the out-of-process quick start (README, docs/out-of-process.md) runs on
// ports other than 8080/9901/3000/9091/9902, chosen on the command line, with examples/remote.yaml unchanged.
import t from 'tap';
import { freePorts, get, startCli } from './cli-process.js';

t.test('out-of-process quick start (examples/remote.yaml) on other ports: serve --listen/--admin, proxy --remote', async (t) => {
  const [up, grpc, serverAdmin, proxy, admin] = await freePorts(5);
  const upstream = startCli(['demo-upstream', '--port', String(up)]);
  t.teardown(() => upstream.stop());
  const server = startCli(['serve', '--config', 'examples/remote.yaml', '--listen', `127.0.0.1:${grpc}`, '--admin', String(serverAdmin)]);
  t.teardown(() => server.stop());
  await server.waitFor(/adapter server listening on/);
  await upstream.waitFor(/listening/);
  const p = startCli(['proxy', '--config', 'examples/remote.yaml', '--port', String(proxy), '--admin', String(admin), '--to', `http://127.0.0.1:${up}`, '--remote', `127.0.0.1:${grpc}`]);
  t.teardown(() => p.stop());
  await p.waitFor(/wasm-mixer proxy listening/);
  // The proxy connects to the server in the background: poll until the adapter answers.
  let denied = { status: 0, body: '' };
  for (const until = Date.now() + 30_000; Date.now() < until && denied.status !== 403; ) {
    denied = await get(proxy!, '/hello');
    if (denied.status !== 403) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(denied.status, 403, '403 from header-check, decided in the adapter server');
  const ok = await get(proxy!, '/hello', { 'x-user': 'ann' });
  t.equal(ok.status, 200);
  t.match(ok.body, /"x-header-check":"ok"/);
  t.match((await get(serverAdmin!, '/metrics')).body, /header_check/, 'the adapter ran in the server on --admin');
  t.equal(await p.stop(), 0);
  t.equal(await server.stop(), 0);
});
