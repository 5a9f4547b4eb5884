// The telemetry foreign functions' wire formats: access-log envelopes, property sets,
// describe_metric; malformed input is refused with the statuses the ABI defines.
import t from 'tap';
import { LogLevel, MetricType, Status } from '../../host/src/abi/constants.js';
import { createLogger } from '../../host/src/log/logger.js';
import { MetricsRegistry } from '../../host/src/metrics/registry.js';
import { Telemetry } from '../../host/src/telemetry/index.js';
import { foreignBytes, type ForeignWriter } from '../../host/src/plugin/foreign-functions.js';
import type { PropertyValue } from '../../host/src/plugin/properties.js';
import { MemorySink } from './helpers.js';

function setup() {
  const metrics = new MetricsRegistry();
  const sink = new MemorySink();
  const tel = new Telemetry({}, metrics, createLogger(LogLevel.Critical, () => {}), { accessLogSinks: [sink] });
  const props: Record<string, PropertyValue> = {
    'request\0time': new Uint8Array(8).fill(1), 'request\0headers\0user-agent': 'ua/1 ü', 'route_name': '',
    'request\0size': 0x1_0000_0203, 'request\0duration': -2n, 'connection\0mtls': true,
  };
  const caller = { adapter: 'a', property: (p: string) => props[p] ?? null };
  const call = (name: string, args: Uint8Array) => tel.foreign.call(caller, name, args);
  return { metrics, sink, tel, call };
}

const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const pathList = (paths: string[]) => Buffer.concat([u32(paths.length), ...paths.flatMap((p) => [u32(Buffer.byteLength(p)), Buffer.from(p)])]);

t.test('property sets: register once, read every value in one call', async (t) => {
  const { call } = setup();
  const paths = ['request\0time', 'request\0headers\0user-agent', 'nope', 'route_name', 'request\0size', 'request\0duration', 'connection\0mtls'];
  const id = call('wasm_mixer.property_set', pathList(paths)) as Uint8Array;
  t.equal(Buffer.from(id).readUInt32LE(0), 0);
  t.same(call('wasm_mixer.property_set', pathList(paths)), id, 'the same list gets the same id');
  t.equal(Buffer.from(call('wasm_mixer.property_set', pathList(['x'])) as Uint8Array).readUInt32LE(0), 1);
  const out = Buffer.from(foreignBytes(call('wasm_mixer.get_property_set', u32(0)) as Uint8Array | ForeignWriter));
  t.equal(out.readUInt32LE(0), 7);
  let off = 4;
  const values: Array<Buffer | null> = [];
  for (let i = 0; i < 7; i++) {
    const n = out.readInt32LE(off);
    off += 4;
    values.push(n < 0 ? null : out.subarray(off, off + n));
    if (n > 0) off += n;
  }
  t.equal(off, out.length);
  t.same(values[0], Buffer.alloc(8, 1));
  t.equal(values[1]!.toString('utf8'), 'ua/1 ü', 'strings as UTF-8');
  t.equal(values[2], null, 'unknown: -1');
  t.equal(values[3]!.length, 0, 'empty');
  t.equal(values[4]!.readBigInt64LE(0), 0x1_0000_0203n, 'numbers as int64 little-endian');
  t.equal(values[5]!.readBigInt64LE(0), -2n, 'bigints as int64 little-endian');
  t.same(values[6], Buffer.from([1]), 'booleans as one byte');
  t.equal(call('wasm_mixer.get_property_set', u32(9)), Status.NotFound);
  t.equal(call('wasm_mixer.get_property_set', Buffer.alloc(3)), Status.BadArgument);
  t.equal(call('wasm_mixer.property_set', Buffer.from([5, 0, 0, 0, 1])), Status.BadArgument, 'truncated list');
  t.equal(call('wasm_mixer.property_set', u32(100000)), Status.BadArgument, 'too many paths');
});

t.test('access-log envelopes', async (t) => {
  const { call, sink, metrics } = setup();
  const env = (level: number, format: number, name: string, line: string, version = 1, flags = 0) =>
    Buffer.concat([Buffer.from([version, level, format, flags]), (() => { const b = Buffer.alloc(8); b.writeBigInt64LE(123n); return b; })(), (() => { const b = Buffer.alloc(2); b.writeUInt16LE(Buffer.byteLength(name)); return b; })(), Buffer.from(name), Buffer.from(line)]);
  t.same(call('wasm_mixer.access_log', env(LogLevel.Error, 1, 'audit', '{"a":1}')), new Uint8Array([0]));
  t.same(call('wasm_mixer.access_log', env(LogLevel.Info, 0, '', 'text line')), new Uint8Array([0]));
  t.same(call('wasm_mixer.access_log', env(LogLevel.Info, 0, 'audit', 'again')), new Uint8Array([0]));
  t.same(call('wasm_mixer.access_log', env(LogLevel.Info, 0, 'audiT', 'same length')), new Uint8Array([0]));
  t.same(call('wasm_mixer.access_log', env(LogLevel.Info, 0, 'журнал', 'utf-8 name')), new Uint8Array([0]));
  t.same(sink.entries.map((e) => [e.level, e.format, e.logName, e.timeNs, Buffer.from(e.line).toString()]), [
    [LogLevel.Error, 'json', 'audit', 123n, '{"a":1}'],
    [LogLevel.Info, 'text', 'access', 123n, 'text line'],
    [LogLevel.Info, 'text', 'audit', 123n, 'again'],
    [LogLevel.Info, 'text', 'audiT', 123n, 'same length'],
    [LogLevel.Info, 'text', 'журнал', 123n, 'utf-8 name'],
  ]);
  t.equal(call('wasm_mixer.access_log', env(LogLevel.Info, 0, 'audit', 'no answer', 1, 1)), Status.Ok, 'flag 1: a taken entry gets OK and no result bytes');
  t.equal(sink.entries.at(-1)?.logName, 'audit', 'and is taken like any other');
  t.equal(call('wasm_mixer.access_log', env(2, 0, 'x', 'y', 2)), Status.BadArgument, 'unknown envelope version');
  t.equal(call('wasm_mixer.access_log', env(LogLevel.Info, 0, 'x', 'y', 1, 2)), Status.BadArgument, 'unknown flag bits');
  t.equal(call('wasm_mixer.access_log', env(9, 0, 'x', 'y')), Status.BadArgument, 'bad level');
  t.equal(call('wasm_mixer.access_log', Buffer.alloc(5)), Status.BadArgument, 'short');
  t.equal(metrics.value('wasm_mixer_access_log_entries_total', { sink: 'memory' }), undefined, 'the memory sink counts nothing itself');
});

t.test('access-log envelopes with flag 1 answer a drop, and only a drop', async (t) => {
  const full = { name: 'full', write: () => false, flush: async () => {}, close: async () => {}, buffered: 0 };
  const tel = new Telemetry({}, new MetricsRegistry(), createLogger(LogLevel.Critical, () => {}), { accessLogSinks: [full] });
  const env = (flags: number) => Buffer.concat([Buffer.from([1, LogLevel.Info, 1, flags]), Buffer.alloc(8), Buffer.from([0, 0]), Buffer.from('{}')]);
  t.same(tel.foreign.call({ adapter: 'a' }, 'wasm_mixer.access_log', env(1)), new Uint8Array([1]), 'dropped: the one-byte answer, as without the flag');
  t.same(tel.foreign.call({ adapter: 'a' }, 'wasm_mixer.access_log', env(0)), new Uint8Array([1]));
});

t.test('describe_metric', async (t) => {
  const { call, metrics } = setup();
  const d = (o: unknown) => JSON.parse(Buffer.from(call('wasm_mixer.describe_metric', Buffer.from(JSON.stringify(o))) as Uint8Array).toString()) as { ok: boolean; error?: string };
  t.same(d({ name: 'a_ms', type: 'histogram', help: 'A.', unit: 'ms', buckets: [1, 2], scale: 0.001, max_series: 5 }), { ok: true });
  const id = metrics.define(MetricType.Histogram, 'a_ms{x="1"}', 'a')!;
  metrics.record(id, 1500); // 1.5 after the scale
  t.same(metrics.histogramValue('a_ms', { x: '1' }), { sum: 1.5, count: 1, buckets: { 1: 0, 2: 1, '+Inf': 1 } });
  t.match(d({ name: 'a_ms', type: 'histogram', buckets: [1, 3] }), { ok: false, error: /other buckets/ });
  t.match(d({ name: 'b', type: 'summary' }), { ok: false, error: /required/ });
  t.equal(call('wasm_mixer.describe_metric', Buffer.from('{nope')), Status.BadArgument);
});

t.test('access-log arguments are borrowed: a sink that keeps entries gets a copy, one that copies lines gets them as they came', async (t) => {
  const metrics = new MetricsRegistry();
  const keeping = new MemorySink('keeping');
  const borrowed: Uint8Array[] = [];
  const borrowing = Object.assign(new MemorySink('borrowing'), { borrows: true });
  const copyLine = borrowing.write.bind(borrowing);
  borrowing.write = (e) => {
    borrowed.push(e.line);
    return copyLine({ ...e, line: e.line.slice() });
  };
  const tel = new Telemetry({}, metrics, createLogger(LogLevel.Critical, () => {}), { accessLogSinks: [keeping, borrowing] });
  // One "guest memory", reused for every call as a guest reuses its output buffer.
  const memory = new Uint8Array(64);
  const put = (time: bigint, line: string) => {
    memory.fill(0);
    memory.set([1, LogLevel.Info, 0, 0]);
    new DataView(memory.buffer).setBigInt64(4, time, true);
    memory.set([0, 0], 12); // no log name: "access"
    const n = Buffer.from(memory.buffer).write(line, 14);
    return memory.subarray(0, 14 + n);
  };
  const times = [0n, 1n, 0x7fff_ffff_ffff_ffffn, -1n, -(2n ** 63n), 1_764_633_600_123_456_789n, 0xffff_ffffn, 0x1_0000_0000n];
  times.forEach((time, i) => t.same(tel.foreign.call({ adapter: 'a' }, 'wasm_mixer.access_log', put(time, `line ${i}`)), new Uint8Array([0])));
  put(0n, 'overwritten by the next request');
  t.same(keeping.lines(), times.map((_, i) => `line ${i}`), 'kept entries own their lines');
  t.same(keeping.entries.map((e) => e.timeNs), times, 'the request start, signed 64 bits, from its two halves');
  t.same(borrowing.lines(), times.map((_, i) => `line ${i}`), 'a sink that borrows copied each line during write()');
  t.ok(borrowed.every((l) => l.buffer === memory.buffer), 'and was handed views of the arguments, not copies');
  t.ok(keeping.entries.every((e) => e.line.buffer !== memory.buffer));
});

t.test('the built-in line sinks take borrowed entries; the OTLP sink gets a copy', async (t) => {
  const { StreamSink } = await import('../../host/src/log/line-sinks.js');
  const { OtlpLogSink } = await import('../../host/src/telemetry/otlp-logs.js');
  const { PassThrough } = await import('node:stream');
  t.equal(new StreamSink('s', new PassThrough(), { written() {}, dropped() {}, error() {} }).borrows, true, 'copies each line into its buffer (as the file sink, the same class)');
  t.notOk((OtlpLogSink.prototype as { borrows?: boolean }).borrows, 'keeps entries in its queue: the router copies');
});

t.test('set_properties: the values of a registered list set in one call, stored as proxy_set_property stores them', async (t) => {
  const { tel } = setup();
  const filterState = new Map<string, Uint8Array>();
  let stream: { filterState: Map<string, Uint8Array> } | null = { filterState };
  const caller = { adapter: 'a', stream: () => stream as never, facts: { name: 'a', rootId: '', vmId: '' } };
  const call = (name: string, args: Uint8Array) => tel.foreign.call(caller, name, args);
  const id = Buffer.from(call('wasm_mixer.property_set', pathList(['mixer\0principal', 'mixer\0jwt_payload', 'plain'])) as Uint8Array).readUInt32LE(0);
  const entry = (i: number, v: Buffer) => Buffer.concat([u32(i), u32(v.length), v]);
  const payload = Buffer.from(JSON.stringify({ sub: 'user-1', groups: ['a'.repeat(80)] }));
  const args = Buffer.concat([u32(id), entry(0, Buffer.from('svc')), entry(1, payload), entry(2, Buffer.alloc(0))]);
  t.equal(call('wasm_mixer.set_properties', args), Status.Ok);
  t.same([...filterState.keys()], ['mixer.principal', 'mixer.jwt_payload', 'plain'], 'under the dotted path, in the order given');
  t.same(Buffer.from(filterState.get('mixer.principal')!).toString(), 'svc');
  t.same(Buffer.from(filterState.get('mixer.jwt_payload')!), payload);
  const first = filterState.get('mixer.jwt_payload');
  filterState.clear();
  t.equal(call('wasm_mixer.set_properties', args), Status.Ok, 'the same bytes again');
  t.equal(filterState.get('mixer.jwt_payload'), first, 'an identical value is stored as the same bytes again (nobody writes into them)');
  args[4 + 8 + 3 + 8] ^= 1; // another payload
  t.equal(call('wasm_mixer.set_properties', args), Status.Ok);
  t.not(filterState.get('mixer.jwt_payload'), first);
  args[4 + 8] ^= 0x20; // the arguments are borrowed: what was stored is a copy
  t.same(Buffer.from(filterState.get('mixer.principal')!).toString(), 'svc');

  filterState.clear();
  t.equal(call('wasm_mixer.set_properties', Buffer.concat([u32(id), entry(0, Buffer.from('x')), u32(3)])), Status.BadArgument, 'truncated entry');
  t.equal(call('wasm_mixer.set_properties', Buffer.concat([u32(id), entry(7, Buffer.from('x'))])), Status.BadArgument, 'index out of the list');
  t.equal(call('wasm_mixer.set_properties', Buffer.concat([u32(id), entry(0, Buffer.from('x')), u32(1), u32(9), Buffer.from('ab')])), Status.BadArgument, 'value past the end');
  t.equal(filterState.size, 0, 'a malformed call sets nothing');
  t.equal(call('wasm_mixer.set_properties', Buffer.concat([u32(id + 5), entry(0, Buffer.from('x'))])), Status.NotFound, 'unknown list');
  stream = null;
  t.equal(call('wasm_mixer.set_properties', Buffer.concat([u32(id), entry(0, Buffer.from('x'))])), Status.Empty, 'no request here');
  t.equal(tel.foreign.call({ adapter: 'a' }, 'wasm_mixer.set_properties', Buffer.concat([u32(id), entry(0, Buffer.from('x'))])), Status.NotFound,
    'a caller without a request to write into: the guest falls back to proxy_set_property');
});
