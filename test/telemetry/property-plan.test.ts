// get_property_set resolves each path once (telemetry/property-plan.ts): for every path of
// the property table (both spellings), headers and filter state, its answer must be exactly
// what proxy_get_property's getProperty gives, in a request and outside one.
import t from 'tap';
import { PropertyPlan } from '../../host/src/telemetry/property-plan.js';
import { PROPERTIES, getProperty, propertyBytes, type PluginFacts, type PropertyValue } from '../../host/src/plugin/properties.js';
import { HttpStream } from '../../host/src/stream/http-stream.js';

const facts: PluginFacts = { name: 'logging', rootId: 'root', vmId: 'vm', workerQuotaCluster: 'wq' };

function stream(): HttpStream {
  const s = new HttpStream(
    [[':method', 'POST'], [':path', '/api/v1/orders?page=2'], [':authority', 'orders.local'], [':scheme', 'https'], ['user-agent', 'ua/1 ü'],
      ['x-request-id', 'r-1'], ['referer', 'http://x/'], ['x-empty', ''],
      ['x-long', 'a'.repeat(17) + '/ascii/long/enough/to/be/copied/natively'], ['x-long-u', 'é'.repeat(20) + ' past the native thresholds ü']],
    { sourceAddress: '::1', sourcePort: 41000, destinationPort: 8443, connectionId: 7, routeName: 'orders', clusterName: 'orders-c', upstreamAddress: '10.0.0.1:80',
      responseCode: 503, responseCodeDetails: 'upstream_reset', responseFlags: 'UF', requestBytes: 12, responseBytes: 2 ** 40, tls: true,
      endMono: process.hrtime.bigint(), upstreamFirstByteMono: process.hrtime.bigint() },
  );
  s.responseHeaders = [['content-type', 'text/plain'], ['grpc-status', '14']];
  s.responseTrailers = [['x-t', '1']];
  s.filterState.set('mixer.principal', Buffer.from('svc-a'));
  s.filterState.set('a\0b', Buffer.from('nul-key'));
  return s;
}

/** The answer's values: null when unknown. */
function decode(t: Tap.Test, out: Uint8Array): Array<Buffer | null> {
  const b = Buffer.from(out);
  const n = b.readUInt32LE(0);
  const values: Array<Buffer | null> = [];
  let off = 4;
  for (let i = 0; i < n; i++) {
    const len = b.readInt32LE(off);
    off += 4;
    values.push(len < 0 ? null : b.subarray(off, off + len));
    if (len > 0) off += len;
  }
  t.equal(off, b.length, 'the answer is exactly as long as its size');
  return values;
}

const names = Object.keys(PROPERTIES).filter((n) => n !== 'request.duration'); // read at call time: differs between two reads
const paths = [
  ...names, ...names.map((n) => n.replace(/\./g, '\0')),
  'request\0headers\0:path', 'request\0headers\0User-Agent', 'request\0headers\0x-long', 'request\0headers\0x-long-u', 'request\0headers\0x-empty', 'request\0headers\0missing', 'request.headers.user-agent',
  'response\0headers\0grpc-status', 'response\0headers\0CONTENT-TYPE', 'response\0headers\0',
  'mixer\0principal', 'mixer.principal', 'a\0b', 'request\0headers\0a\0b', 'nope', 'nope\0x',
];

for (const [where, s] of [['in a request', stream()], ['outside a request', null]] as const) {
  t.test(`every path answers as getProperty does, ${where}`, async (t) => {
    const plan = new PropertyPlan(paths).read(s, facts);
    const out = new Uint8Array(plan.size);
    plan.write(out);
    const got = decode(t, out);
    paths.forEach((p, i) => {
      const v = getProperty(p, s, facts);
      t.same(got[i], v === null ? null : Buffer.from(propertyBytes(v)), JSON.stringify(p));
    });
  });
}

t.test('a plan is reused: each read answers for its own request', async (t) => {
  const plan = new PropertyPlan(['request\0headers\0x-request-id', 'response\0code']);
  const a = stream();
  const b = stream();
  b.requestHeaders[5]![1] = 'r-2';
  b.info.responseCode = 0;
  for (const [s, id, code] of [[a, 'r-1', 503], [b, 'r-2', null], [a, 'r-1', 503]] as const) {
    const out = new Uint8Array(plan.read(s, facts).size);
    plan.write(out);
    const [v0, v1] = decode(t, out);
    t.equal(v0!.toString(), id);
    t.same(v1 === null ? null : Number(v1.readBigInt64LE(0)), code);
  }
});

t.test('values are encoded as they are read, into a buffer reused across reads of any size', async (t) => {
  // every length around the loop/native switch (64 UTF-16 units), ASCII and not, and
  // answers that grow the buffer past its first size and past what it keeps (64 KiB)
  const strings: string[] = ['', 'a', 'é', '😀', 'a😀b', '\ud800 lone', 'x\udc00'];
  for (const n of [63, 64, 65, 200]) strings.push('a'.repeat(n), `${'a'.repeat(n - 1)}é`, `é${'a'.repeat(n - 1)}`, '😀'.repeat(n >> 1));
  strings.push('b'.repeat(5000), 'c'.repeat(70_000), 'ü'.repeat(40_000));
  const values: Array<PropertyValue | null> = [...strings, null, Buffer.from([0, 1, 2]), new Uint8Array(0), 0, 7, 2 ** 40, -1, 1.5, 2n ** 63n, -(2n ** 63n), true, false];
  const paths = values.map((_, i) => `p${i}`);
  const plan = new PropertyPlan(paths);
  const answer = (pick: (i: number) => boolean) => {
    const got = decode(t, (() => {
      const p = plan.readEach((path) => {
        const i = Number(path.slice(1));
        return pick(i) ? values[i]! : null;
      });
      const out = new Uint8Array(p.size);
      p.write(out);
      return out;
    })());
    values.forEach((v, i) => {
      const want = !pick(i) || v === null ? null : Buffer.from(propertyBytes(v));
      if (!Buffer.from(got[i] ?? []).equals(want ?? Buffer.alloc(0)) || (got[i] === null) !== (want === null)) t.fail(`value ${i} (${typeof v}) differs`);
    });
  };
  const big = (i: number) => typeof values[i] === 'string' && (values[i] as string).length > 4000;
  for (const pick of [(i: number) => !big(i), () => true, (i: number) => i % 2 === 0, (i: number) => !big(i), () => false, () => true]) answer(pick);
  t.pass('every answer decoded to exactly the bytes propertyBytes gives');
});

t.test('a value equal to the last read one is left in place, and only while nothing before it moved', async (t) => {
  // Each read's answer must be exactly a fresh plan's: values of one length and of another,
  // repeated and changed, before and after each other, bytes changed in place, a growing buffer.
  const choices: Array<Array<PropertyValue | null>> = [
    ['GET', 'POST', 'PUT', null],
    [200n, 200n, 503n, 2n ** 40n],
    ['orders', 'orders', 'ordersX', ''],
    [7, 7, 123456, true],
    [Buffer.from('svc-a'), Buffer.from('svc-b'), Buffer.from('svc-ab'), null],
    ['x'.repeat(70), 'y'.repeat(70), 'z'.repeat(2000), 'é'.repeat(30)],
  ];
  const paths = choices.map((_, i) => `p${i}`);
  const plan = new PropertyPlan(paths);
  const shared = Buffer.from('abc');
  let seed = 1;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  let mismatches = 0;
  for (let r = 0; r < 400; r++) {
    const picked = choices.map((c) => c[rnd(c.length)]!);
    if (r % 7 < 2) {
      picked[4] = shared;
      shared[0] = 0x61 + (r % 3); // the same array with other bytes: must not be taken as unchanged
    }
    const answer = (p: PropertyPlan) => {
      p.readEach((path) => picked[Number(path.slice(1))]!);
      const out = new Uint8Array(p.size);
      p.write(out);
      return Buffer.from(out);
    };
    if (!answer(plan).equals(answer(new PropertyPlan(paths)))) mismatches++;
  }
  t.equal(mismatches, 0, 'every answer of the reused plan equals a fresh plan\'s');
});
