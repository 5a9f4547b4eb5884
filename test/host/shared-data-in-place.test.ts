// proxy_set_shared_data writes a value of the size already stored into that value's own bytes
// (shared/shared-store.ts setEntryFrom): quota's token buckets are rewritten on every request.
// What a guest reads back, the CAS protocol, the bounds and the byte accounting must be exactly
// those of a fresh copy; a refused write must leave the stored bytes alone.
import t from 'tap';
import { SharedStore } from '../../host/src/shared/shared-store.js';

const fill = (bytes: number[]) => (dst: Uint8Array) => dst.set(bytes);

t.test('a same-size write reuses the stored bytes and behaves like a fresh copy', async (t) => {
  const store = new SharedStore({ maxKeysPerVm: 8, maxValueBytes: 16, maxQueueItems: 8 });
  const view = store.forVm('vm');
  t.ok(view.setFrom('bucket', 4, 0, fill([1, 2, 3, 4])), 'first write stored');
  const first = view.get('bucket')!;
  t.same([...first.value], [1, 2, 3, 4]);
  const usage = store.usage('vm').sharedDataBytes;

  t.ok(view.setFrom('bucket', 4, first.cas, fill([5, 6, 7, 8])), 'a write with the current cas is stored');
  const second = view.get('bucket')!;
  t.same([...second.value], [5, 6, 7, 8], 'the new bytes are read back');
  t.equal(second.value, first.value, 'the same buffer, rewritten in place');
  t.not(second.cas, first.cas, 'the cas moves on');
  t.equal(store.usage('vm').sharedDataBytes, usage, 'the accounting is unchanged');

  t.notOk(view.setFrom('bucket', 4, first.cas, fill([9, 9, 9, 9])), 'a stale cas is refused');
  t.same([...view.get('bucket')!.value], [5, 6, 7, 8], 'and leaves the stored bytes alone');
  t.equal(view.get('bucket')!.cas, second.cas);

  t.ok(view.setFrom('bucket', 6, 0, fill([1, 1, 1, 1, 1, 1])), 'a write of another size (cas 0: unconditional) is stored');
  t.same([...view.get('bucket')!.value], [1, 1, 1, 1, 1, 1]);
  t.same([...first.value], [5, 6, 7, 8], 'in a new buffer: the old one is not resized');
  t.equal(store.usage('vm').sharedDataBytes, usage + 2, 'two more bytes accounted');
});

t.test('a write past maxValueBytes is refused and counted, the stored bytes kept', async (t) => {
  const store = new SharedStore({ maxKeysPerVm: 8, maxValueBytes: 4, maxQueueItems: 8 });
  const view = store.forVm('vm');
  t.ok(view.setFrom('k', 4, 0, fill([1, 2, 3, 4])));
  t.notOk(view.setFrom('k', 5, 0, fill([1, 2, 3, 4, 5])), 'refused');
  t.same([...view.get('k')!.value], [1, 2, 3, 4]);
  t.equal(store.usage('vm').refusedWrites, 1);
});
