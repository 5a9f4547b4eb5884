// Every host function validates its arguments and returns the status the
// Proxy-Wasm spec lists: a hostile module (test/fixtures/guests/abi-abuse.wat)
// calls each one with out-of-range pointers, huge lengths, unknown enums and ids.
import t from 'tap';
import { AdapterHarness } from '../../host/testing/index.js';
import { ABI_ABUSE_CALLS, compileGuest } from '../fixtures/guests/index.js';

t.test('hostile ABI calls get the spec statuses and never crash the host', async (t) => {
  const h = await AdapterHarness.create([{ wasm: await compileGuest('abi-abuse'), name: 'abuse' }]);
  t.teardown(() => h.close());
  const r = await h.run({ path: '/x' });
  t.equal(r.status, 200, 'the request still completes');
  const got = (r.upstream?.headers['x-abi-abuse'] ?? '').split(',').map(Number);
  t.equal(got.length, ABI_ABUSE_CALLS.length, 'every call returned');
  for (const [i, c] of ABI_ABUSE_CALLS.entries()) {
    t.equal(got[i], c.expect, `#${i} ${c.fn}: ${c.abuse}`);
  }
  t.equal(h.host.plugins[0]!.vm.healthy, true, 'the VM is still healthy');
  // A second request on the same VM works the same way.
  const again = await h.run({ path: '/y' });
  t.equal(again.upstream?.headers['x-abi-abuse'], r.upstream?.headers['x-abi-abuse']);
});
