// Units of the out-of-process mode, without sockets: attribute encoding, header
// operations, the check cache, report batching and quota pools.

import t from 'tap';
import type { HeaderPair } from '../../host/src/abi/pairs.js';
import { HttpStream } from '../../host/src/stream/http-stream.js';
import { bagFromStream, decodeBag, encodeBag, globalDictionary, newStreamFromBag, WordDecoder, WordEncoder } from '../../host/src/oop/attributes.js';
import { ReportBatcher, type ReportItem } from '../../host/src/oop/batcher.js';
import { CheckCache, refValue } from '../../host/src/oop/cache.js';
import { applyHeaderOps, diffHeaders } from '../../host/src/oop/header-ops.js';
import { decodeOutcome, EMPTY_OUTCOME, encodeOutcome, type Outcome } from '../../host/src/oop/outcome.js';
import { loadProtos } from '../../host/src/oop/protos.js';
import { QuotaPools } from '../../host/src/oop/quota.js';

function stream(headers: HeaderPair[] = [], info: ConstructorParameters<typeof HttpStream>[1] = {}): HttpStream {
  return new HttpStream([[':method', 'GET'], [':path', '/a?b=1'], [':authority', 'example.com'], [':scheme', 'http'], ...headers], info);
}

t.test('attribute bags survive the compact encoding and the wire', async (t) => {
  const s = stream([['user-agent', 'curl/8'], ['x-user', 'ann'], ['x-user', 'bob'], ['accept', '*/*']], {
    sourceAddress: '10.0.0.7',
    sourcePort: 51234,
    startTimeNs: 1_700_000_000_123_456_789n,
    protocol: 'HTTP/1.1',
    routeName: 'api',
    tls: true,
  });
  s.filterState.set('mixer.principal', Buffer.from('svc-a'));
  s.responseHeaders = [[':status', '200'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2']];
  s.info.responseCode = 200;
  s.info.endMono = s.info.startMono + 1_500_000n;
  const bag = bagFromStream(s, 'report');
  const enc = new WordEncoder();
  const pb = encodeBag(bag, enc);
  pb.words = enc.words;
  t.ok(enc.words.length < 16, `repeated strings are sent once, common ones from the global dictionary (${enc.words.length} message words)`);
  t.notOk(enc.words.includes('x-user') || enc.words.includes('GET') || enc.words.includes(':path'), 'dictionary words do not travel');

  // Through protobuf, as the server receives it.
  const def = loadProtos().definition['wasm_mixer.v1.CompressedAttributes'] as unknown as { serialize: (o: unknown) => Buffer; deserialize: (b: Buffer) => unknown };
  const wire = def.serialize(pb);
  const back = decodeBag(def.deserialize(wire) as typeof pb, new WordDecoder(pb.words, globalDictionary().length));
  const s2 = newStreamFromBag(back);
  t.same(s2.requestHeaders, s.requestHeaders, 'header list, order and repeats kept');
  t.equal(s2.info.sourceAddress, '10.0.0.7');
  t.equal(s2.info.sourcePort, 51234);
  t.equal(s2.info.startTimeNs, 1_700_000_000_123_456_789n, 'nanosecond timestamp kept');
  t.equal(s2.info.tls, true);
  t.equal(s2.info.routeName, 'api');
  t.same(Buffer.from(s2.filterState.get('mixer.principal')!).toString(), 'svc-a');
  t.same(back.get('response.headers')?.v, s.responseHeaders);
  t.equal(back.get('request.duration')?.v, 1_500_000n);
  t.ok(wire.length < 250, `a typical bag is small on the wire (${wire.length} bytes)`);

  t.throws(() => new WordDecoder([], globalDictionary().length + 1), /knows/, 'a longer global dictionary than the server knows is refused');
  t.throws(() => new WordDecoder(['a'], 3).word(-2), /outside the message dictionary/);
  t.throws(() => new WordDecoder([], 3).word(5), /outside the global dictionary/);
  const small = new WordEncoder(3);
  t.ok(small.index(globalDictionary()[5]!) < 0, 'words beyond the agreed global count go in the message dictionary');
});

t.test('header operations reproduce any change exactly', async (t) => {
  const cases: Array<[HeaderPair[], (h: HeaderPair[]) => void]> = [
    [[['a', '1'], ['b', '2']], (h) => h.push(['c', '3'])],
    [[['a', '1'], ['b', '2']], (h) => h.push(['a', '9'])],
    [[['a', '1'], ['b', '2'], ['c', '3']], (h) => void h.splice(1, 1)],
    [[['a', '1'], ['b', '2'], ['c', '3']], (h) => {
      h.splice(0, 1);
      h.push(['a', '1']);
    }], // replaced with the same value: moved to the end
    [[[':path', '/x'], ['b', '2'], ['b', '3']], (h) => {
      h.splice(0, 1);
      h.push([':path', '/y']);
      h.push(['z', '1']);
    }],
    [[['a', '1'], ['b', '2']], (h) => h.reverse()],
    [[['a', '1'], ['a', '2'], ['b', '3']], (h) => {
      h.length = 0;
      h.push(['b', '3'], ['a', '2'], ['x', 'y'], ['a', '1']);
    }],
  ];
  for (const [before, change] of cases) {
    const after = before.map(([k, v]) => [k, v] as HeaderPair);
    change(after);
    const ops = diffHeaders(before, after);
    const copy = before.map(([k, v]) => [k, v] as HeaderPair);
    applyHeaderOps(copy, ops);
    t.same(copy, after, `${JSON.stringify(before)} -> ${JSON.stringify(after)} with ${ops.length} op(s)`);
  }
  t.same(diffHeaders([['a', '1']], [['a', '1']]), [], 'no change, no operations');
  t.same(diffHeaders([['a', '1']], [['a', '1'], ['b', '2']]), [{ op: 2, name: 'b', value: '2' }], 'an added header is one APPEND');

  // Random lists and random host-style edits.
  let seed = 42;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const names = ['a', 'b', 'c', ':path', 'x-y'];
  let ok = 0;
  for (let i = 0; i < 500; i++) {
    const before: HeaderPair[] = Array.from({ length: rnd(6) }, () => [names[rnd(5)]!, String(rnd(3))]);
    const after = before.map(([k, v]) => [k, v] as HeaderPair);
    for (let j = rnd(4); j > 0; j--) {
      const k = names[rnd(5)]!;
      const v = String(rnd(3));
      const what = rnd(3);
      const without = after.filter(([n]) => n !== k);
      if (what === 0) after.push([k, v]);
      else {
        after.length = 0;
        after.push(...without);
        if (what === 1) after.push([k, v]);
      }
    }
    const copy = before.map(([k, v]) => [k, v] as HeaderPair);
    applyHeaderOps(copy, diffHeaders(before, after));
    if (JSON.stringify(copy) === JSON.stringify(after)) ok++;
  }
  t.equal(ok, 500, 'every random edit sequence is reproduced');
});

t.test('outcomes survive the wire', async (t) => {
  const o: Outcome = {
    ...EMPTY_OUTCOME,
    reply: { status: 429, headers: [['retry-after', '3'], ['x-a', '1'], ['x-a', '2']], body: Buffer.from('slow down'), adapter: 'quota', details: 'over', grpcStatus: -1 },
    requestOps: [{ op: 0, name: 'x-user', value: 'ann' }],
    responseOps: [{ op: 2, name: 'x-rl', value: '5' }],
    dynamicState: [['mixer.principal', Buffer.from('ann')]],
    effects: [{ metric: { adapter: 'quota', name: 'q_total{a="b"}', type: 0, op: 0, value: 1 } }],
    validDurationMs: 1500,
    validUseCount: 7,
    refs: [{ name: 'request.headers', key: 'x-user', present: true }, { name: 'source.ip', present: false }],
  };
  const def = loadProtos().definition['wasm_mixer.v1.CheckResponse'] as unknown as { serialize: (o: unknown) => Buffer; deserialize: (b: Buffer) => unknown };
  const back = decodeOutcome((def.deserialize(def.serialize({ precondition: encodeOutcome(o) })) as { precondition: never }).precondition, globalDictionary().length);
  t.equal(back.reply?.status, 429);
  t.same(back.reply?.headers, o.reply!.headers);
  t.equal(Buffer.from(back.reply!.body).toString(), 'slow down');
  t.equal(back.reply?.adapter, 'quota');
  t.equal(back.code, 8, 'a 429 is RESOURCE_EXHAUSTED');
  t.same(back.requestOps, o.requestOps);
  t.same(back.responseOps, o.responseOps);
  t.equal(back.validDurationMs, 1500);
  t.equal(back.validUseCount, 7);
  t.same(back.refs, o.refs);
  t.same(back.effects[0]?.metric?.name, 'q_total{a="b"}');
  t.equal(Buffer.from(back.dynamicState[0]![1]).toString(), 'ann');
});

t.test('check cache: shapes, validity duration, use count, LRU', async (t) => {
  let now = 1000;
  const cache = new CheckCache(3, 64, () => now);
  const out = (refs: Outcome['refs'], uses = 2, ms = 100): Outcome => ({ ...EMPTY_OUTCOME, refs, validDurationMs: ms, validUseCount: uses });
  const ann = stream([['x-user', 'ann']]);
  const bob = stream([['x-user', 'bob']]);
  const none = stream();
  const o = out([{ name: 'request.headers', key: 'x-user', present: true }]);
  t.equal(cache.lookup('g', ann), null, 'empty cache misses');
  cache.insert('g', ann, o);
  t.equal(cache.lookup('g', ann), o, 'same value of the referenced header: hit');
  t.equal(cache.lookup('g', bob), null, 'another value: miss');
  t.equal(cache.lookup('g', none), null, 'header absent: miss');
  t.equal(cache.lookup('other', ann), null, 'another chain segment: miss');
  t.equal(cache.lookup('g', ann), o, 'second use');
  t.equal(cache.lookup('g', ann), null, 'use count spent');
  cache.insert('g', ann, o);
  now += 101;
  t.equal(cache.lookup('g', ann), null, 'validity duration passed');
  t.equal(refValue(ann, { name: 'request.headers', key: ':path' }), '/a?b=1');
  t.equal(cache.insert('g', ann, out([], 0)), false, 'zero use count: not cached');
  const absent = out([{ name: 'request.headers', key: 'x-user', present: false }]);
  cache.insert('g', none, absent);
  t.equal(cache.lookup('g', none), absent, 'absence is a value too');
  t.equal(cache.lookup('g', ann), null);
  for (const u of ['c', 'd', 'e', 'f']) cache.insert('g', stream([['x-user', u]]), out([{ name: 'request.headers', key: 'x-user', present: true }], 5, 1000));
  t.equal(cache.size, 3, 'bounded by maxEntries');
  t.ok(cache.stats.evictions >= 2, 'oldest entries evicted');
});

t.test('report batching: by count, by time, off, bounded', async (t) => {
  const sent: number[] = [];
  const item = { bag: new Map(), adapters: ['a'], sessionId: '', replay: [] } as ReportItem;
  const b = new ReportBatcher({ enabled: true, maxEntries: 3, maxDelayMs: 40, maxPending: 5 }, async (items) => void sent.push(items.length));
  for (let i = 0; i < 7; i++) b.add(item);
  t.same(sent, [3, 3], 'two full batches went at once');
  await new Promise((r) => setTimeout(r, 80));
  t.same(sent, [3, 3, 1], 'the rest went after maxDelayMs');
  const off: number[] = [];
  const nb = new ReportBatcher({ enabled: false, maxEntries: 3, maxDelayMs: 40, maxPending: 5 }, async (items) => void off.push(items.length));
  nb.add(item);
  nb.add(item);
  t.same(off, [1, 1], 'batching off: one Report per request');
  let dropped = 0;
  const slow = new ReportBatcher({ enabled: true, maxEntries: 100, maxDelayMs: 10_000, maxPending: 5 }, async () => {}, (n) => (dropped += n));
  for (let i = 0; i < 8; i++) slow.add(item);
  t.equal(dropped, 3, 'beyond maxPending, entries are dropped and counted');
  await slow.flush();
  slow.close();
});

t.test('quota pools: local grants, prefetch threshold, close-wait, expiry', async (t) => {
  let now = 0;
  const pools = new QuotaPools({ minPrefetch: 4, predictWindowMs: 1000, closeWaitMs: 500, maxPools: 10 }, () => now);
  const s = stream([['x-api-key', 'k1']]);
  const first = pools.decide(s);
  t.equal(first.kind, 'call', 'no pool yet: call');
  const refs = [{ name: 'request.headers', key: 'x-api-key', present: true }];
  const pool = pools.poolFor(s, refs);
  const allow = { ...EMPTY_OUTCOME, refs };
  pools.granted(pool, 4, 4, 1000, allow, null);
  for (let i = 0; i < 4; i++) t.equal(pools.decide(s).kind, 'grant', `unit ${i + 1} used locally`);
  t.ok(pools.wantsPrefetch(pool, 4), 'below half of desired: prefetch wanted');
  t.equal(pools.decide(s).kind, 'call', 'empty: call');
  t.equal(pools.decide(stream([['x-api-key', 'k2']])).kind, 'call', 'another key has its own pool');
  const deny = { ...EMPTY_OUTCOME, reply: { status: 429, headers: [], body: new Uint8Array(0), adapter: 'q', details: '', grpcStatus: -1 } };
  pools.granted(pool, 4, 0, 1000, null, deny);
  t.equal(pools.decide(s).kind, 'deny', 'refused: denied locally during close-wait');
  t.notOk(pools.wantsPrefetch(pool, 4), 'no prefetch during close-wait');
  now += 501;
  t.equal(pools.decide(s).kind, 'call', 'after close-wait: call again');
  pools.granted(pool, 2, 2, 100, allow, null);
  t.equal(pools.decide(s).kind, 'grant');
  now += 101;
  t.equal(pools.decide(s).kind, 'call', 'granted units expire');
});
