;; The issue-2 benchmark adapter without an SDK: reads two headers and three properties
;; and adds a header, with a bump allocator reset per request. Its own work is a few
;; dozen instructions, so timing it measures the host's cost of the ABI calls.
(module
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  ;; 0x10 ret ptr, 0x14 ret size
  (data (i32.const 256) "user-agent")        ;; 10
  (data (i32.const 272) "x-request-id")      ;; 12
  (data (i32.const 288) "request\00method")  ;; 14
  (data (i32.const 304) "source\00address")  ;; 14
  (data (i32.const 320) "request\00path")    ;; 12
  (data (i32.const 336) "x-attrs")           ;; 7
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (i32.and (i32.add (local.get $size) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32)
    (global.set $heap (i32.const 4096)))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (local $total i32)
    (drop (call $get_header (i32.const 0) (i32.const 256) (i32.const 10) (i32.const 16) (i32.const 20)))
    (local.set $total (i32.add (local.get $total) (i32.load (i32.const 20))))
    (drop (call $get_header (i32.const 0) (i32.const 272) (i32.const 12) (i32.const 16) (i32.const 20)))
    (local.set $total (i32.add (local.get $total) (i32.load (i32.const 20))))
    (drop (call $get_property (i32.const 288) (i32.const 14) (i32.const 16) (i32.const 20)))
    (local.set $total (i32.add (local.get $total) (i32.load (i32.const 20))))
    (drop (call $get_property (i32.const 304) (i32.const 14) (i32.const 16) (i32.const 20)))
    (local.set $total (i32.add (local.get $total) (i32.load (i32.const 20))))
    (drop (call $get_property (i32.const 320) (i32.const 12) (i32.const 16) (i32.const 20)))
    (local.set $total (i32.add (local.get $total) (i32.load (i32.const 20))))
    ;; value: one ASCII digit of the total, enough to prove the reads happened
    (i32.store8 (i32.const 352) (i32.add (i32.const 48) (i32.rem_u (local.get $total) (i32.const 10))))
    (drop (call $add_header (i32.const 0) (i32.const 336) (i32.const 7) (i32.const 352) (i32.const 1)))
    (i32.const 0))
)
