// Header maps through the real host, driven by a guest written from the Proxy-Wasm
// ABI v0.2.1 spec (test/fixtures/guests/abi-headers.wat; its header lists every
// observation key used below).
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { startDemoUpstream, startProxy } from '../../host/src/index.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { guestHarness, recorder } from './guest-recorder.js';
import { serialize, type Pairs } from './pairs-codec.js';



const sortPairs = (p: Pairs) => [...p].sort((a, b) => (a[0] + '\0' + a[1] < b[0] + '\0' + b[1] ? -1 : 1));

const harness = (t: { teardown(fn: () => unknown): void }, vmId: string) => guestHarness(t, 'abi-headers', vmId, { name: 'headers' });

t.test('request and response header maps: size, pairs, first value, add, replace, remove', async (t) => {
  const { h, rec } = await harness(t, 'hdr-edit');
  const r = await h.run(
    { method: 'GET', path: '/edit', host: 'svc.local', headers: [['x-dup', 'one'], ['X-Dup', 'two'], ['x-remove-me', 'bye'], ['x-keep', 'k']] },
    { status: 201, headers: [['x-up', 'u1'], ['x-up', 'u2'], ['x-up-remove', 'gone'], ['content-type', 'text/plain']] },
  );
  const before: Pairs = [[':method', 'GET'], [':path', '/edit'], [':authority', 'svc.local'], [':scheme', 'http'], ['x-dup', 'one'], ['x-dup', 'two'], ['x-remove-me', 'bye'], ['x-keep', 'k']];
  t.equal(rec.u32('req-n'), before.length, 'num_headers is the number of pairs');
  t.same(rec.pairs('req-pairs'), before, 'get_header_map_pairs: every header in order, pseudo-headers first, names lower-case');
  t.same(rec.ret('req-pairs').bytes, serialize(before), 'byte-exact pairs serialization');
  t.same(rec.u32s('req-size'), [0, serialize(before).length], 'get_header_map_size is the serialized size');
  t.same(rec.ret('req-dup-first'), { status: 0, text: 'one', bytes: Buffer.from('one') }, 'get_header_map_value returns the first of repeated values');
  t.equal(rec.ret('req-dup-upper').text, 'one', 'names match case-insensitively');

  t.same(rec.u32s('req-ops-st'), [0, 0, 0, 0, 0, 0, 0], 'add, add, replace, replace (absent), remove, remove (absent), add: all OK');
  t.equal(rec.ret('req-added-first').text, 'a1', 'after two adds, the first value is returned');
  const after = rec.pairs('req-after');
  t.same(sortPairs(after), sortPairs([
    [':method', 'GET'], [':path', '/edit'], [':authority', 'svc.local'], [':scheme', 'http'], ['x-keep', 'k'],
    ['x-added', 'a1'], ['x-added', 'a2'], ['x-dup', 'replaced'], ['x-new', 'n'], ['x-upper', 'v'],
  ]), 'the edits: repeated adds kept, replace drops every old value, remove drops the header, names lower-cased');
  t.same(after.filter(([k]) => k === 'x-added').map(([, v]) => v), ['a1', 'a2'], 'added values keep their order');
  t.same(after.slice(0, 4).map(([k]) => k), [':method', ':path', ':authority', ':scheme'], 'pseudo-headers stay first');
  t.same(rec.u32s('req-size-after'), [0, serialize(after).length]);

  t.equal(r.upstream?.headers['x-added'], 'a1, a2', 'the upstream gets both added values');
  t.equal(r.upstream?.headers['x-dup'], 'replaced');
  t.equal(r.upstream?.headers['x-new'], 'n');
  t.equal(r.upstream?.headers['x-upper'], 'v');
  t.equal(r.upstream?.headers['x-keep'], 'k');
  t.notOk('x-remove-me' in (r.upstream?.headers ?? {}), 'removed header not forwarded');

  const respBefore: Pairs = [[':status', '201'], ['x-up', 'u1'], ['x-up', 'u2'], ['x-up-remove', 'gone'], ['content-type', 'text/plain']];
  t.equal(rec.u32('resp-n'), respBefore.length);
  t.same(rec.pairs('resp-pairs'), respBefore, 'response map: :status first');
  t.same(rec.u32s('resp-size'), [0, serialize(respBefore).length]);
  t.equal(rec.ret('resp-status').text, '201');
  t.same(rec.u32s('resp-ops-st'), [0, 0, 0, 0]);
  t.same(sortPairs(rec.pairs('resp-after')), sortPairs([[':status', '201'], ['content-type', 'text/plain'], ['x-resp-added', '1'], ['x-resp-added', '2'], ['x-up', 'replaced']]));
  t.equal(r.status, 201);
  t.equal(r.headers['x-resp-added'], '1, 2');
  t.equal(r.headers['x-up'], 'replaced');
  t.notOk('x-up-remove' in r.headers);

  t.equal(rec.ret('log-req-added').text, 'a1', 'proxy_on_log reads request headers (first value)');
  t.same(rec.pairs('log-req-pairs'), after, 'proxy_on_log sees the edited request map');
  t.same(rec.pairs('log-resp-pairs'), rec.pairs('resp-after'), 'proxy_on_log sees the edited response map');
  t.not(rec.u32('log-add-st'), 0, 'maps are read-only in proxy_on_log (add refused)');
  t.not(rec.u32('log-set-st'), 0, 'maps are read-only in proxy_on_log (set_header_map_pairs refused)');
});

t.test('set_header_map_pairs replaces whole maps, pseudo-headers included', async (t) => {
  const { h, rec } = await harness(t, 'hdr-set');
  const r = await h.run({ method: 'GET', path: '/setpairs', headers: { 'x-gone': '1' } }, { status: 200, headers: { 'x-up': 'u' } });
  t.equal(rec.u32('req-set-st'), 0);
  t.same(rec.pairs('req-after'), [[':method', 'PUT'], [':path', '/replaced'], [':authority', 'other.example'], [':scheme', 'http'], ['x-only', '1']], 'the new map, names lower-cased');
  t.same(r.upstream, { method: 'PUT', path: '/replaced', headers: { 'x-only': '1' }, body: '' }, 'the upstream request is the new map');
  t.equal(rec.u32('resp-set-st'), 0);
  t.same(rec.pairs('resp-after'), [[':status', '202'], ['x-resp', 'r']]);
  t.equal(r.status, 202, ':status set through the map is the status sent');
  t.same(r.headers, { 'x-resp': 'r' });
});

// ------------------------------------------------------------------ the real proxy

interface Res { status: number; headers: http.IncomingHttpHeaders; body: string }

function get(port: number, path: string, headers: Record<string, string | string[]> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`request ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

t.test('the real proxy forwards the edited request map and sends the edited response map', async (t) => {
  const upstream = await startDemoUpstream(0);
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }], plugins: [{ name: 'headers', url: 'abi-headers.wasm' }], logLevel: 'error' },
    { modules: { 'abi-headers.wasm': await compileGuest('abi-headers') } },
  );
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });

  const a = await get(proxy.port, '/edit?q=1', { 'x-dup': ['one', 'two'], 'x-remove-me': 'bye' });
  t.equal(a.status, 200);
  const echoA = JSON.parse(a.body) as { method: string; url: string; headers: Record<string, string> };
  t.equal(echoA.url, '/edit?q=1');
  t.equal(echoA.headers['x-dup'], 'replaced');
  t.equal(echoA.headers['x-added'], 'a1, a2', 'repeated values reach the upstream as two header lines');
  t.equal(echoA.headers['x-upper'], 'v');
  t.equal(echoA.headers['x-remove-me'], undefined);
  t.equal(a.headers['x-resp-added'], '1, 2');

  const b = await get(proxy.port, '/setpairs', { 'x-gone': '1' });
  t.equal(b.status, 202, 'the status set through the response map reaches the client');
  t.equal(b.headers['x-resp'], 'r');
  t.equal(b.headers['content-type'], undefined, 'upstream headers absent from the new map are not sent');
  const echoB = JSON.parse(b.body) as { method: string; url: string; headers: Record<string, string> };
  t.equal(echoB.method, 'PUT');
  t.equal(echoB.url, '/replaced');
  t.equal(echoB.headers.host, 'other.example', ':authority becomes the Host header');
  t.equal(echoB.headers['x-only'], '1');
  t.equal(echoB.headers['x-gone'], undefined);
  t.equal(echoB.headers['x-request-id'], undefined, 'the whole map was replaced, including the proxy-added x-request-id');
});

t.test('header values are bytes: the wire carries exactly what the guest wrote and sees exactly what was sent', async (t) => {
  // A raw upstream, to see the bytes of the forwarded request head.
  let head: Buffer = Buffer.alloc(0);
  const up = net.createServer((s) => s.once('data', (d: Buffer) => {
    head = d;
    s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
  }));
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [{ name: 'raw', upstream: `http://127.0.0.1:${(up.address() as net.AddressInfo).port}` }], plugins: [{ name: 'headers', url: 'abi-headers.wasm', vmConfig: { vmId: 'hdr-bytes' } }], logLevel: 'critical' },
    { modules: { 'abi-headers.wasm': await compileGuest('abi-headers') } },
  );
  t.teardown(async () => {
    await proxy.close();
    up.close();
  });
  const response = await new Promise<Buffer>((resolve, reject) => {
    const s = net.connect(proxy.port, '127.0.0.1', () => s.write(Buffer.concat([Buffer.from('GET /bytes HTTP/1.1\r\nhost: a\r\nx-in: caf'), Buffer.from([0xc3, 0xa9]), Buffer.from('\r\nconnection: close\r\n\r\n')])));
    let b: Buffer = Buffer.alloc(0);
    s.on('data', (d: Buffer) => (b = Buffer.concat([b, d])));
    s.on('close', () => resolve(b));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('timed out')));
  });
  const rec = recorder((k) => proxy.host.shared.forVm('hdr-bytes').get(k)?.value);
  t.same(rec.ret('bytes-in').bytes, Buffer.concat([Buffer.from('caf'), Buffer.from([0xc3, 0xa9])]), 'the guest sees the bytes the client sent');
  t.equal(rec.u32('bytes-st'), 0);
  t.ok(head.includes(Buffer.concat([Buffer.from('x-name: Jos'), Buffer.from([0xc3, 0xa9]), Buffer.from('\r\n')])), 'the upstream receives the bytes the guest wrote');
  t.match(response.toString('latin1'), /^HTTP\/1\.1 200 /, 'a non-latin1 response header value does not break the response');
  t.ok(response.includes(Buffer.concat([Buffer.from('x-euro: '), Buffer.from([0xe2, 0x82, 0xac]), Buffer.from('\r\n')])), 'the client receives the bytes the guest wrote');
});
