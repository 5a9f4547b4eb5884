// Property values as proxy_get_property and get_property_set write them: int64 and boolean
// values encoded where they are written, dynamic paths (one header, filter state), and the
// remembered "ip:port" strings following a changed address.
import t from 'tap';
import { HttpStream } from '../../host/src/stream/http-stream.js';
import { dottedPath, getProperty, propertyBytes, writeFixedProperty } from '../../host/src/plugin/properties.js';

const facts = { name: 'p', rootId: 'r', vmId: 'v' };
const enc = (v: number | bigint | boolean) => {
  const b = Buffer.alloc(typeof v === 'boolean' ? 1 : 8, 0xee);
  writeFixedProperty(v, b, 0);
  return b;
};

t.test('int64 and boolean encodings', async (t) => {
  t.equal(enc(0).readBigInt64LE(0), 0n);
  t.equal(enc(443).readBigInt64LE(0), 443n);
  t.equal(enc(0x1_2345_6789).readBigInt64LE(0), 0x1_2345_6789n, 'above 2^32');
  t.equal(enc(2 ** 53 - 2).readBigInt64LE(0), 2n ** 53n - 2n);
  t.equal(enc(-5).readBigInt64LE(0), -5n, 'negative numbers');
  t.equal(enc(7.9).readBigInt64LE(0), 7n, 'truncated');
  t.equal(enc(2n ** 63n - 1n).readBigInt64LE(0), 2n ** 63n - 1n);
  t.equal(enc(2n ** 64n + 3n).readBigInt64LE(0), 3n, 'wraps modulo 2^64');
  t.same(enc(true), Buffer.from([1]));
  t.same(enc(false), Buffer.from([0]));
  const at = Buffer.alloc(12, 0xee);
  writeFixedProperty(258, at, 3);
  t.same([...at], [0xee, 0xee, 0xee, 2, 1, 0, 0, 0, 0, 0, 0, 0xee], 'at an offset, nothing else touched');
  t.same(propertyBytes(5), Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]));
  t.same(propertyBytes('é'), Buffer.from('é', 'utf8'));
});

t.test('table, header and filter-state paths', async (t) => {
  const s = new HttpStream([[':path', '/a?b=1'], ['x-foo', 'bar']], { sourceAddress: '10.0.0.1', sourcePort: 1234, requestBytes: 77 });
  t.equal(getProperty('request\0size', s, facts), 77);
  t.equal(getProperty('request.size', s, facts), 77, 'dotted form');
  t.equal(getProperty('request\0query', s, facts), 'b=1');
  t.equal(getProperty('request\0headers\0X-Foo', s, facts), 'bar', 'one header, any case');
  t.equal(getProperty('request\0headers\0x-none', s, facts), null);
  t.equal(getProperty('response\0headers\0x-foo', s, facts), null, 'no response headers yet');
  s.responseHeaders = [['x-foo', 'r']];
  t.equal(getProperty('response\0headers\0x-foo', s, facts), 'r');
  s.filterState.set(dottedPath('mixer\0principal'), new Uint8Array([1, 2]));
  t.same(getProperty('mixer\0principal', s, facts), new Uint8Array([1, 2]), 'filter state by NUL path');
  t.same(getProperty('mixer.principal', s, facts), new Uint8Array([1, 2]), 'and by dotted path');
  t.equal(getProperty('mixer\0other', s, facts), null);
  t.equal(getProperty('request\0size', null, facts), null, 'stream properties need a stream');
  t.equal(getProperty('plugin_name', null, facts), 'p');
});

t.test('source.address follows the stream it is read from', async (t) => {
  const a = new HttpStream([], { sourceAddress: '10.0.0.1', sourcePort: 1 });
  const b = new HttpStream([], { sourceAddress: '::1', sourcePort: 2 });
  t.equal(getProperty('source\0address', a, facts), '10.0.0.1:1');
  t.equal(getProperty('source\0address', b, facts), '[::1]:2');
  a.info.sourcePort = 3;
  t.equal(getProperty('source\0address', a, facts), '10.0.0.1:3', 'a changed port is not served stale');
});

// The values computed for a request are kept on its stream and shared by every adapter of
// the chain (stream/property-memo.ts); each of these reads would see the old value if the
// memo were not checked against its inputs.
t.test('computed values shared by a request are never served stale', async (t) => {
  const s = new HttpStream([[':path', '/a/b?x=1'], ['x-foo', 'bar']], { sourceAddress: '10.0.0.1', sourcePort: 1, destinationAddress: '10.0.0.2', destinationPort: 80 });
  const other = { name: 'q', rootId: '', vmId: 'q' };
  t.equal(getProperty('request\0url_path', s, facts), '/a/b');
  t.equal(getProperty('request\0query', s, other), 'x=1', 'a second adapter reads the same request');
  t.equal(s.propertyMemo !== null, true, 'kept on the stream');
  s.requestHeaders[0] = [':path', '/c?y=2'];
  t.equal(getProperty('request\0url_path', s, facts), '/c', 'a rewritten :path is split again');
  t.equal(getProperty('request\0query', s, facts), 'y=2');
  s.requestHeaders.splice(0, 1);
  t.equal(getProperty('request\0url_path', s, facts), '', 'no :path: empty, not the old value');
  t.equal(getProperty('destination\0address', s, facts), '10.0.0.2:80');
  s.info.destinationPort = 8080;
  t.equal(getProperty('destination\0address', s, other), '10.0.0.2:8080', 'a port set later is seen');
  s.info.destinationAddress = '::1';
  t.equal(getProperty('destination\0address', s, facts), '[::1]:8080');
  t.equal(getProperty('request\0headers\0x-foo', s, facts), 'bar');
  s.requestHeaders.push(['x-new', 'v']);
  t.equal(getProperty('request\0headers\0x-new', s, facts), 'v', 'a header added after the first read');
  t.equal(getProperty('response\0code', s, facts), null, 'no response yet');
  s.info.responseCode = 503;
  t.equal(getProperty('response\0code', s, facts), 503, 'response.code after the response headers');
  s.filterState.set('mixer.principal', new Uint8Array([1]));
  t.same(getProperty('mixer\0principal', s, other), new Uint8Array([1]), 'filter state set by an earlier adapter');
  s.filterState.set('mixer.principal', new Uint8Array([2]));
  t.same(getProperty('mixer\0principal', s, other), new Uint8Array([2]), 'and replaced later');
});

t.test('resolved paths: table names, headers and filter state do not shadow each other', async (t) => {
  const s = new HttpStream([[':path', '/'], ['x-a', '1']], {});
  s.filterState.set('request.headers.x-a', new Uint8Array([9]));
  t.equal(getProperty('request\0headers\0x-a', s, facts), '1', 'a header path reads the header');
  t.same(getProperty('request.headers.x-a', s, facts), new Uint8Array([9]), 'the dotted form of a header path is filter state, as before');
  s.filterState.set('request.size', new Uint8Array([7]));
  t.equal(getProperty('request\0size', s, facts), 0, 'a table property wins over filter state of the same name');
  t.equal(getProperty('request\0headers\0a\0b', s, facts), null, 'a deeper header path names nothing');
});
