// An adapter cannot split the HTTP message: header names must be tokens and values
// must not contain CR, LF or NUL; such writes return BAD_ARGUMENT and change nothing.
import t from 'tap';
import wabtInit from 'wabt';
import { AdapterHarness } from '../../host/testing/index.js';

const WAT = `(module
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "x-bad")
  (data (i32.const 110) "a\\0d\\0aset-cookie: evil=1")
  (data (i32.const 140) "bad name")
  (data (i32.const 150) "ok")
  (data (i32.const 160) "x-status")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $a i32) (local $b i32)
    (local.set $a (call $add (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 110) (i32.const 23)))
    (local.set $b (call $replace (i32.const 0) (i32.const 140) (i32.const 8) (i32.const 150) (i32.const 2)))
    ;; x-status: <a><b> as two digits
    (i32.store8 (i32.const 200) (i32.add (i32.const 48) (local.get $a)))
    (i32.store8 (i32.const 201) (i32.add (i32.const 48) (local.get $b)))
    (drop (call $add (i32.const 0) (i32.const 160) (i32.const 8) (i32.const 200) (i32.const 2)))
    (i32.const 0)))`;

t.test('CR/LF in a header value and a non-token name are refused with BAD_ARGUMENT', async (t) => {
  const wabt = await wabtInit();
  const m = wabt.parseWat('v.wat', WAT);
  const wasm = new Uint8Array(m.toBinary({}).buffer);
  m.destroy();
  const h = await AdapterHarness.create([{ wasm, name: 'v' }]);
  t.teardown(() => h.close());
  const r = await h.run({ path: '/' });
  t.equal(r.upstream?.headers['x-status'], '22', 'both writes returned BAD_ARGUMENT (2)');
  t.notOk('x-bad' in (r.upstream?.headers ?? {}), 'nothing was added');
  t.notOk('set-cookie' in (r.upstream?.headers ?? {}), 'no header was smuggled');
});
