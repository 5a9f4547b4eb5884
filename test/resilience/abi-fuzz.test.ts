// ABI fuzzing: a generated guest calls every host function with arguments the
// test chooses at random (seeded, so a failure is reproducible), from inside a
// real request callback, through the real proxy. The host must answer each call
// with a status from the spec, never throw into the guest (that would crash the
// VM), never touch memory outside the guest, and keep serving.
import t from 'tap';
import { startDemoUpstream, startProxy } from '../../host/src/index.js';
import { PluginVm } from '../../host/src/plugin/plugin-vm.js';
import { captureLogs, request, wat } from './helpers.js';

// name, module, parameter types (i = i32, I = i64)
const SIGS: Array<[string, string, string]> = [
  ['proxy_log', 'env', 'iii'], ['proxy_get_log_level', 'env', 'i'], ['proxy_get_current_time_nanoseconds', 'env', 'i'],
  ['proxy_set_effective_context', 'env', 'i'], ['proxy_done', 'env', ''], ['proxy_continue_stream', 'env', 'i'],
  ['proxy_send_local_response', 'env', 'iiiiiiii'], ['proxy_get_header_map_size', 'env', 'ii'], ['proxy_get_header_map_pairs', 'env', 'iii'],
  ['proxy_set_header_map_pairs', 'env', 'iii'], ['proxy_get_header_map_value', 'env', 'iiiii'], ['proxy_add_header_map_value', 'env', 'iiiii'],
  ['proxy_replace_header_map_value', 'env', 'iiiii'], ['proxy_remove_header_map_value', 'env', 'iii'], ['proxy_get_buffer_bytes', 'env', 'iiiii'],
  ['proxy_get_buffer_status', 'env', 'iii'], ['proxy_set_buffer_bytes', 'env', 'iiiii'], ['proxy_get_property', 'env', 'iiii'],
  ['proxy_set_property', 'env', 'iiii'], ['proxy_get_shared_data', 'env', 'iiiii'], ['proxy_set_shared_data', 'env', 'iiiii'],
  ['proxy_register_shared_queue', 'env', 'iii'], ['proxy_resolve_shared_queue', 'env', 'iiiii'], ['proxy_enqueue_shared_queue', 'env', 'iii'],
  ['proxy_dequeue_shared_queue', 'env', 'iii'], ['proxy_define_metric', 'env', 'iiii'], ['proxy_increment_metric', 'env', 'iI'],
  ['proxy_record_metric', 'env', 'iI'], ['proxy_get_metric', 'env', 'ii'], ['proxy_http_call', 'env', 'iiiiiiiiii'],
  ['proxy_get_status', 'env', 'iii'], ['proxy_call_foreign_function', 'env', 'iiiiii'], ['proxy_grpc_send', 'env', 'iiii'],
  ['fd_write', 'wasi_snapshot_preview1', 'iiii'], ['clock_time_get', 'wasi_snapshot_preview1', 'iIi'], ['random_get', 'wasi_snapshot_preview1', 'ii'],
  ['environ_sizes_get', 'wasi_snapshot_preview1', 'ii'], ['environ_get', 'wasi_snapshot_preview1', 'ii'], ['args_sizes_get', 'wasi_snapshot_preview1', 'ii'],
  ['path_open', 'wasi_snapshot_preview1', 'iiiiiIIii'],
];
// Fuzzed pointers land in [0, 0x10000) or near the end of memory; writes through
// them reach at most 0x20000 (random_get caps at 64 KiB), so the script and the
// results live in page 3, out of their reach.
const SCRIPT = 0x30000; // count at SCRIPT, records from SCRIPT+8: fn u32, pad, 12 x i64
const REC = 8 + 12 * 8;
const RESULTS = 0x38000;
const MAX_CALLS = 256;

function fuzzModule(): string {
  const imports = SIGS.map(([n, m, p], k) => `(import "${m}" "${n}" (func $f${k} ${p ? `(param ${[...p].map((c) => (c === 'I' ? 'i64' : 'i32')).join(' ')})` : ''} (result i32)))`);
  const cases = SIGS.map(([, , p], k) => {
    const args = [...p].map((c, j) => (c === 'I' ? `(i64.load (i32.add (local.get $rec) (i32.const ${8 + j * 8})))` : `(i32.load (i32.add (local.get $rec) (i32.const ${8 + j * 8})))`));
    return `(if (i32.eq (local.get $fn) (i32.const ${k})) (then (local.set $r (call $f${k} ${args.join(' ')}))))`;
  });
  return `(module
  ${imports.join('\n  ')}
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const 0x1000))
  (func (export "proxy_abi_version_0_2_1"))
  ;; a bump allocator confined to 0x1000..0xF000 that returns 0 when full
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32) (local $p i32)
    (if (i32.gt_u (local.get $n) (i32.sub (i32.const 0xF000) (global.get $heap))) (then (return (i32.const 0))))
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $i i32) (local $n i32) (local $rec i32) (local $fn i32) (local $r i32)
    (global.set $heap (i32.const 0x1000))
    (local.set $n (i32.load (i32.const ${SCRIPT})))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $rec (i32.add (i32.const ${SCRIPT + 8}) (i32.mul (local.get $i) (i32.const ${REC}))))
      (local.set $fn (i32.load (local.get $rec)))
      (local.set $r (i32.const -1))
      ${cases.join('\n      ')}
      (i32.store (i32.add (i32.const ${RESULTS}) (i32.shl (local.get $i) (i32.const 2))) (local.get $r))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const 0)))`;
}

/** mulberry32: a tiny seeded PRNG. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const MEM_END = 4 * 65536;
function pick(rnd: () => number): bigint {
  const choices = [0, 1, 2, 7, 99, 0x10, 0x100, 0x1000, 0x2000, MEM_END - 4, MEM_END - 3, MEM_END, 0xfffffff0, 0x7fffffff, 0xffffffff, 65537];
  const r = rnd();
  if (r < 0.7) return BigInt(choices[Math.floor(rnd() * choices.length)]!);
  if (r < 0.9) return BigInt(Math.floor(rnd() * 0x10000));
  const v = Math.floor(rnd() * 0x100000000);
  return BigInt(v >= 0x20000 && v < MEM_END - 16 ? v + MEM_END : v);
}

const PROXY_STATUSES = new Set([0, 1, 2, 3, 4, 6, 7, 8, 10, 12]);
const WASI_ERRNOS = new Set([0, 8, 21, 28, 52, 58, 76]);

t.test('random arguments to every host function get spec statuses and never crash the VM or the host', async (t) => {
  const seed = Number(process.env.ABI_FUZZ_SEED ?? 20261125);
  const rnd = prng(seed);
  const up = await startDemoUpstream(0);
  const { logger, records } = captureLogs();
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }],
      plugins: [{ name: 'fuzz', url: 'fuzz.wasm', match: [{ paths: [{ prefix: '/fuzz' }] }] }],
    },
    { modules: { 'fuzz.wasm': await wat(fuzzModule(), 'fuzz.wat') }, logger },
  );
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const vm = proxy.host.plugins[0]!.adapter;
  // The fuzzer writes its script into the VM's memory: an in-process adapter.
  if (!(vm instanceof PluginVm)) throw new Error('expected an in-process PluginVm');
  const ROUNDS = 40;
  let calls = 0;
  const bad: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const n = 20 + Math.floor(rnd() * (MAX_CALLS - 20));
    const script = new DataView(new ArrayBuffer(8 + n * REC));
    script.setUint32(0, n, true);
    const chosen: number[] = [];
    for (let i = 0; i < n; i++) {
      // proxy_send_local_response and proxy_close_stream-like effects end the request early; keep them rare.
      let fn = Math.floor(rnd() * SIGS.length);
      if (SIGS[fn]![0] === 'proxy_send_local_response' && rnd() < 0.8) fn = 0;
      chosen.push(fn);
      script.setUint32(8 + i * REC, fn, true);
      for (let j = 0; j < 12; j++) script.setBigUint64(8 + i * REC + 8 + j * 8, pick(rnd), true);
    }
    t.ok(vm.memory.write(SCRIPT, new Uint8Array(script.buffer)), 'script written');
    const res = await request(proxy.port, `/fuzz/${round}`).catch((e: Error) => ({ status: -1, body: e.message, headers: {}, ms: 0 }));
    if (res.status === -1) bad.push(`round ${round}: request failed: ${res.body}`);
    calls += n;
    const results = new DataView(new Uint8Array(vm.memory.copy(RESULTS, n * 4)!).buffer);
    for (let i = 0; i < n; i++) {
      const [name, mod] = SIGS[chosen[i]!]!;
      const st = results.getInt32(i * 4, true);
      const ok = st === -1 ? false : mod === 'env' ? PROXY_STATUSES.has(st) : WASI_ERRNOS.has(st);
      if (!ok) bad.push(`round ${round} call ${i} ${name}: status ${st}`);
    }
  }
  t.same(bad.slice(0, 10), [], `${calls} fuzzed calls (seed ${seed}) all returned spec statuses`);
  t.equal(vm.crashes, 0, 'the VM never crashed: no host function threw into the guest');
  t.notOk(records.some((r) => r.code === 'VM_TRAP'), 'no trap logged');
  t.equal((await request(proxy.port, '/plain')).status, 200, 'the proxy still serves');
});
