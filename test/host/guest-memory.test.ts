// GuestMemory reads and writes guest bytes in place (no view per access): strings decoded
// and interned, copies, results written straight into memory, bytes charged to the work
// budget, and views rebuilt after memory.grow detached the old buffer.
import t from 'tap';
import { GuestMemory } from '../../host/src/vm/guest-memory.js';
import { HOST_BYTE_FUEL } from '../../host/src/limits.js';

function setup(pages = 1) {
  const memory = new WebAssembly.Memory({ initial: pages, maximum: 4 });
  const meter = { pending: 0 };
  const m = new GuestMemory(memory, meter);
  const put = (ptr: number, bytes: Uint8Array | string) => new Uint8Array(memory.buffer).set(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, ptr);
  return { memory, meter, m, put };
}

t.test('interned strings follow the bytes, never a stale slot', async (t) => {
  const { m, put } = setup();
  put(100, 'x-auth-tenant');
  const a = m.latin1(100, 13);
  t.equal(a, 'x-auth-tenant');
  t.equal(m.latin1(100, 13), a, 'the same string object on a hit');
  put(100, 'x-auth-tenanT');
  t.equal(m.latin1(100, 13), 'x-auth-tenanT', 'one changed byte is a different string');
  put(100, 'x-auth-tEnant');
  t.equal(m.latin1(100, 13), 'x-auth-tEnant', 'a byte the hash does not look at');
  // Many distinct strings of the same shape: every one reads back right (slots overwrite).
  for (let i = 0; i < 3000; i++) {
    const s = `h-${i.toString(36).padStart(4, '0')}-x`;
    put(200, s);
    if (m.latin1(200, s.length) !== s) t.fail(`read ${s} wrong`);
  }
  t.equal(m.latin1(0, 0), '', 'empty');
  put(300, new Uint8Array([0x63, 0xe9, 0xff]));
  t.equal(m.latin1(300, 3), 'c\u00e9\u00ff', 'latin1: one char per byte');
  t.equal(m.string(300, 3), 'c\ufffd\ufffd', 'string: UTF-8 (invalid bytes replaced)');
  put(350, new Uint8Array([0x61, 0xe9]));
  t.equal(m.latin1(350, 2), 'a\u00e9', 'interned as latin1');
  t.equal(m.string(350, 2), 'a\ufffd', 'the same bytes as UTF-8 are not served the latin1 string');
  t.equal(m.string(350, 1), 'a');
  t.equal(m.string(350, 1), 'a', 'an ASCII hit');
  put(400, Buffer.from('é-ü', 'utf8'));
  t.equal(m.string(400, Buffer.byteLength('é-ü')), 'é-ü', 'UTF-8');
  const long = 'a'.repeat(40) + 'Z';
  put(500, long);
  t.equal(m.latin1(500, long.length), long, 'longer than the interned size');
  t.equal(m.string(500, long.length), long);
});

t.test('two names in one intern set stay cached together; a third evicts the older, and all read back right', async (t) => {
  const { m, put } = setup();
  // Same length, and the same bytes where the hash looks (0, n/4, n/2, n-1-n/4, n-1): one set.
  const names = ['wasm_mixer.get_property_set', 'wasm_mixer.set_property_set', 'wasm_mixer.xet_property_set'];
  const decodes = { n: 0 };
  const toString = Buffer.prototype.toString;
  Buffer.prototype.toString = function (this: Buffer, ...args: Parameters<Buffer['toString']>) {
    decodes.n++;
    return toString.apply(this, args);
  };
  t.teardown(() => void (Buffer.prototype.toString = toString));
  const read = (i: number) => {
    put(600, names[i]!);
    return m.latin1(600, names[i]!.length);
  };
  for (let r = 0; r < 10; r++) {
    t.equal(read(0), names[0]);
    t.equal(read(1), names[1]);
  }
  t.equal(decodes.n, 2, 'two names alternating: each decoded once, then served from the cache');
  t.equal(read(2), names[2], 'a third name in the set');
  t.equal(read(1), names[1], 'the newer of the two stayed');
  t.equal(decodes.n, 3, 'only the third needed decoding');
  t.equal(read(0), names[0], 'the older one was evicted, and decodes right again');
  t.equal(decodes.n, 4);
});

t.test('bounds: out-of-range reads and writes are refused, u32 pointers wrap as unsigned', async (t) => {
  const { m, memory } = setup();
  const size = memory.buffer.byteLength;
  t.equal(m.latin1(size - 2, 3), null);
  t.equal(m.string(-1, 1), null, 'a negative i32 is a huge u32');
  t.equal(m.copy(size, 1), null);
  t.equal(m.equals(size - 1, 2, new Uint8Array(2)), false, 'equals() out of bounds is false');
  t.equal(m.view(size, 0)?.length, 0, 'an empty range at the end is in bounds');
  t.equal(m.writeLatin1(size - 1, 'ab'), false);
  t.equal(m.write(size - 1, new Uint8Array(2)), false);
  t.equal(m.resultInBounds(size - 4, 0), true);
  t.equal(m.resultInBounds(size - 3, 0), false);
  t.equal(m.setResult(0, size - 3, 1, 2), false, 'neither slot is written when one is out of bounds');
  t.equal(new DataView(memory.buffer).getUint32(0, true), 0);
  t.equal(m.fill(size - 4, 8, { write: () => t.fail('not called') }), false);
});

t.test('copies are independent of guest memory; writes land in place', async (t) => {
  const { m, memory, put } = setup();
  put(10, new Uint8Array([1, 2, 3]));
  const small = m.copy(10, 3)!;
  const big = m.copy(10, 200)!;
  put(10, new Uint8Array([9, 9, 9]));
  t.same([...small], [1, 2, 3], 'small copy');
  t.same([...big.subarray(0, 3)], [1, 2, 3], 'large copy');
  t.equal(big.length, 200);
  t.ok(m.writeLatin1(1000, 'hé'));
  t.ok(m.writeLatin1(2000, 'x'.repeat(100) + '\u00ff'));
  t.ok(m.write(3000, new Uint8Array(100).fill(7)));
  t.ok(m.setResult(4000, 4004, 0xdeadbeef, 5));
  const u8 = new Uint8Array(memory.buffer);
  t.same([...u8.subarray(1000, 1002)], [0x68, 0xe9], 'one byte per char');
  t.equal(u8[2100], 0xff);
  t.equal(u8[3099], 7);
  const dv = new DataView(memory.buffer);
  t.equal(dv.getUint32(4000, true), 0xdeadbeef);
  t.equal(dv.getUint32(4004, true), 5);
  t.ok(m.fill(5000, 8, { write: (dst, off) => dst.set([1, 2, 3, 4, 5, 6, 7, 8], off) }));
  t.same([...u8.subarray(5000, 5008)], [1, 2, 3, 4, 5, 6, 7, 8]);
});

t.test('equals() compares guest bytes in place', async (t) => {
  const { m, put } = setup();
  put(50, 'alice');
  t.ok(m.equals(50, 5, Buffer.from('alice')));
  t.notOk(m.equals(50, 5, Buffer.from('alicf')), 'last byte differs');
  t.notOk(m.equals(50, 4, Buffer.from('alice')), 'lengths differ');
  t.ok(m.equals(50, 0, new Uint8Array(0)), 'empty ranges are equal');
});

t.test('every byte moved or compared is charged', async (t) => {
  const { m, meter, put } = setup();
  put(0, 'abcdef');
  m.latin1(0, 6);
  m.string(0, 5);
  m.copy(0, 4);
  t.ok(m.equals(0, 3, new Uint8Array([0x61, 0x62, 0x63])), 'equals() compares in place');
  m.view(0, 2);
  m.writeLatin1(100, 'xy');
  m.write(200, new Uint8Array(7));
  m.fill(300, 8, { write() {} });
  t.equal(meter.pending, (6 + 5 + 4 + 3 + 2 + 2 + 7 + 8) * HOST_BYTE_FUEL);
});

t.test('after memory.grow the old buffer is detached and views are rebuilt', async (t) => {
  const { m, memory, put } = setup();
  const before = m.byteLength;
  memory.grow(1);
  t.equal(m.byteLength, before + 65536, 'the new size');
  put(before + 10, 'grown');
  t.equal(m.latin1(before + 10, 5), 'grown', 'bytes past the old end are readable');
  t.ok(m.writeLatin1(before + 100, 'ok'));
  t.equal(m.getU32(before + 200), 0);
});
