// Metric ids belong to the VM that defined them, as in Envoy (each Wasm VM keeps its
// own id table): an adapter cannot raise or read another adapter's series or the
// host's own by guessing small integer ids, and cannot reach a host family
// (wasm_mixer_*) by defining its name. Guest: test/fixtures/guests/metric-thief.wat.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import wabtInit from 'wabt';
import { MetricType } from '../../host/src/abi/constants.js';
import { MetricsRegistry } from '../../host/src/metrics/registry.js';
import { AdapterHarness } from '../../host/testing/index.js';
import { compileGuest } from '../fixtures/guests/index.js';

const wabt = await wabtInit();
const src = await readFile(new URL('../fixtures/guests/metric-thief.wat', import.meta.url), 'utf8');
const mod = wabt.parseWat('metric-thief.wat', src);
const thief = new Uint8Array(mod.toBinary({}).buffer);
mod.destroy();

t.test("an adapter increments and reads only its own metrics", async (t) => {
  const h = await AdapterHarness.create([
    // The victim defines abi_misc_* series in its proxy_on_configure and counts on /metrics.
    { wasm: await compileGuest('abi-misc'), name: 'victim', vmConfig: { vmId: 'victim' } },
    { wasm: thief, name: 'thief', vmConfig: { vmId: 'thief' } },
  ]);
  t.teardown(() => h.close());
  // Both requests run both adapters: the victim counts on /metrics, the thief probes on each.
  await h.run({ path: '/metrics' });
  await h.run({ path: '/other' });
  const raw = h.sharedData('thief', 'thief');
  t.ok(raw, 'the thief recorded its results');
  const v = new DataView(raw!.buffer, raw!.byteOffset, raw!.byteLength);
  const [own, incs, gets, defineHost] = [0, 4, 8, 12].map((o) => v.getUint32(o, true));
  t.equal(own, 0, 'its own counter: OK');
  t.equal(h.metric('thief_total'), 2, 'and the host sees it (one per request)');
  t.equal(incs, 0, 'no other id of 1..512 accepts an increment from it');
  t.equal(gets, 0, 'no other id of 1..512 can be read by it');
  t.equal(defineHost, 2, 'defining a host family name (wasm_mixer_host_streams_total) is BAD_ARGUMENT');
  t.equal(h.metric('abi_misc_counter'), 10, "the victim's counter holds only its own count (test/host/abi-misc.test.ts: 10 after one /metrics)");
});

t.test('a host family an adapter defined first is claimed by the host when it defines it', async (t) => {
  const r = new MetricsRegistry();
  const id = r.define(MetricType.Counter, 'wasm_mixer_vm_crashes_total', 'thief');
  t.ok(id !== null && r.adapterMayUse(id), 'before the host needs it, the adapter has the name');
  t.equal(r.define(MetricType.Counter, 'wasm_mixer_vm_crashes_total', 'host'), id, 'the host gets the same series');
  t.notOk(r.adapterMayUse(id!), 'and the adapter can no longer write or read it');
  t.equal(r.define(MetricType.Counter, 'wasm_mixer_vm_crashes_total', 'thief'), null, 'nor define it again');
  const shared = r.define(MetricType.Counter, 'requests_total', 'a');
  t.equal(r.define(MetricType.Counter, 'requests_total', 'b'), shared, 'adapters share families by name, as Envoy stats do');
});

t.test('the host claims the whole family when it defines a new series of it (adapterMayUse reads the flag kept with the owner)', async (t) => {
  const r = new MetricsRegistry();
  const a = r.define(MetricType.Counter, 'wasm_mixer_late_total{x="1"}', 'thief')!;
  t.ok(r.adapterMayUse(a));
  const h = r.define(MetricType.Counter, 'wasm_mixer_late_total{x="2"}', 'worker');
  t.ok(h !== null && h !== a, 'a series of its own');
  t.notOk(r.adapterMayUse(a), "the adapter's earlier series is the host's now");
  t.notOk(r.adapterMayUse(h!));
  t.notOk(r.adapterMayUse(9999), 'unknown ids are refused');
});
