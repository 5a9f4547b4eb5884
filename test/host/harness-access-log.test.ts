// Adapter authors see access-log entries in the harness, not on stdout.
import t from 'tap';
import { loadAdapter } from '../../host/testing/index.js';

t.test('the logging adapter writes entries the harness captures', async (t) => {
  const h = await loadAdapter('wasm/logging.wasm', { name: 'logging', config: {} });
  t.teardown(() => h.close());
  await h.run({ method: 'POST', path: '/orders?id=7', headers: { 'user-agent': 'test-agent' } }, { status: 201, body: 'created' });
  t.equal(h.accessLogs.length, 1);
  const e = JSON.parse(h.accessLogs[0]!.line) as Record<string, unknown>;
  t.equal(e.method, 'POST');
  t.equal(e.response_code, 201);
  t.equal(e.user_agent, 'test-agent');
  t.equal(h.accessLogs[0]!.adapter, 'logging');
});
