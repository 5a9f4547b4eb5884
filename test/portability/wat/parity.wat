;; parity.wat: a Proxy-Wasm ABI v0.2.1 HTTP filter written from the spec
;; (proxy-wasm/spec abi-versions/v0.2.1), shaped like the AssemblyScript SDKs'
;; builds that trip hosts up. What it exercises:
;;
;;   * A wasm start section (as every AssemblyScript build but ours has): $start
;;     loops 20000 times and sets $started; proxy_on_vm_start returns $started, so
;;     a host that skips or traps in the start function fails the load.
;;   * Root ids: proxy_on_configure reads the properties plugin_root_id and
;;     plugin_name; every request gets the request header
;;     `x-root-<plugin_name>: <plugin_root_id>` (an empty root id gives an empty value).
;;   * Local replies (path prefixes):
;;       /deny       proxy_send_local_response(451, "denied", "nope", [x-local: 1])
;;       /te         proxy_send_local_response(200, "te", "hello", [transfer-encoding:
;;                   chunked, content-length: 999, keep-alive: timeout=5, x-local: te]),
;;                   framing and hop-by-hop headers copied from a call-out's answer
;;       /body-deny  in proxy_on_request_body: proxy_send_local_response(413, ...)
;;   * proxy_on_request_body is exported and does not change the body (Continue),
;;     except for /grow requests: at end of stream it appends "X" (a length change
;;     after the first bytes went upstream under the client's Content-Length).
;;   * proxy_on_response_headers replaces `x-filter-response: seen` — also on its
;;     own local replies, as Envoy runs a filter's encoder callbacks on them.
;;   * It imports env.emscripten_notify_memory_growth and env.pthread_equal, which
;;     proxy-wasm-cpp-host provides to every module (Emscripten builds import them).
(module
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $send_local_response (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buffer_bytes (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "emscripten_notify_memory_growth" (func $notify_growth (param i32)))
  (import "env" "pthread_equal" (func $pthread_equal (param i32 i32) (result i32)))

  (memory (export "memory") 2)

  ;; 0x10 RET_PTR, 0x14 RET_SIZE; 0x1800 root id (64), 0x1900 "x-root-" + plugin name (128)
  (data (i32.const 0x400) "plugin_root_id")        ;; 14
  (data (i32.const 0x440) "plugin_name")           ;; 11
  (data (i32.const 0x480) ":path")                 ;; 5
  (data (i32.const 0x4c0) "/deny")                 ;; 5
  (data (i32.const 0x500) "/te")                   ;; 3
  (data (i32.const 0x540) "/body-deny")            ;; 10
  (data (i32.const 0x580) "denied")                ;; 6
  (data (i32.const 0x5c0) "nope")                  ;; 4
  (data (i32.const 0x600) "x-filter-response")     ;; 17
  (data (i32.const 0x640) "seen")                  ;; 4
  (data (i32.const 0x680) "hello")                 ;; 5
  (data (i32.const 0x6c0) "too_big")               ;; 7
  (data (i32.const 0x700) "no body here")          ;; 12
  (data (i32.const 0x780) "/grow")                 ;; 5
  (data (i32.const 0x7c0) "X")                     ;; 1
  ;; pairs {x-local: 1} = 4 + 8 + 8 + 2 = 22 bytes
  (data (i32.const 0x800) "\01\00\00\00" "\07\00\00\00\01\00\00\00" "x-local\00" "1\00")
  ;; pairs {transfer-encoding: chunked, content-length: 999, keep-alive: timeout=5, x-local: te}
  ;; = 4 + 32 + (17+1+7+1) + (14+1+3+1) + (10+1+9+1) + (7+1+2+1) = 113 bytes
  (data (i32.const 0x900)
    "\04\00\00\00"
    "\11\00\00\00\07\00\00\00" "\0e\00\00\00\03\00\00\00" "\0a\00\00\00\09\00\00\00" "\07\00\00\00\02\00\00\00"
    "transfer-encoding\00" "chunked\00" "content-length\00" "999\00" "keep-alive\00" "timeout=5\00" "x-local\00" "te\00")
  (data (i32.const 0x1900) "x-root-")              ;; 7

  (global $started (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 0x4000))
  (global $rid_len (mut i32) (i32.const 0))
  (global $key_len (mut i32) (i32.const 7))
  (global $deny_body_ctx (mut i32) (i32.const 0))
  (global $grow_ctx (mut i32) (i32.const 0))

  (func $start
    (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 20000))))
    ;; cpp-host's pthread_equal compares its arguments
    (global.set $started (call $pthread_equal (i32.const 7) (i32.const 7))))
  (start $start)

  (func (export "proxy_abi_version_0_2_1"))

  (func $alloc (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.const 0x20000)) (then (global.set $heap (i32.const 0x4000)) (return (i32.const 0))))
    (local.get $p))

  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (global.get $started))
  (func (export "proxy_on_context_create") (param i32 i32))

  ;; Copies property `name` to `dst` (at most `max` bytes); returns its length.
  (func $prop (param $name i32) (param $len i32) (param $dst i32) (param $max i32) (result i32)
    (local $n i32)
    (if (call $get_property (local.get $name) (local.get $len) (i32.const 0x10) (i32.const 0x14)) (then (return (i32.const 0))))
    (local.set $n (i32.load (i32.const 0x14)))
    (if (i32.gt_u (local.get $n) (local.get $max)) (then (local.set $n (local.get $max))))
    (memory.copy (local.get $dst) (i32.load (i32.const 0x10)) (local.get $n))
    (local.get $n))

  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (global.set $rid_len (call $prop (i32.const 0x400) (i32.const 14) (i32.const 0x1800) (i32.const 64)))
    (global.set $key_len (i32.add (i32.const 7) (call $prop (i32.const 0x440) (i32.const 11) (i32.const 0x1907) (i32.const 100))))
    (global.set $heap (i32.const 0x4000))
    (i32.const 1))

  ;; Whether the :path value (at RET_PTR/RET_SIZE) starts with the `n` bytes at `pfx`.
  (func $path_starts (param $pfx i32) (param $n i32) (result i32)
    (local $p i32) (local $i i32)
    (if (i32.lt_u (i32.load (i32.const 0x14)) (local.get $n)) (then (return (i32.const 0))))
    (local.set $p (i32.load (i32.const 0x10)))
    (block $no
      (loop $l
        (br_if $no (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $p) (local.get $i))) (i32.load8_u (i32.add (local.get $pfx) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (i32.const 1))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (global.set $heap (i32.const 0x4000))
    (drop (call $add_header (i32.const 0) (i32.const 0x1900) (global.get $key_len) (i32.const 0x1800) (global.get $rid_len)))
    (drop (call $get_header (i32.const 0) (i32.const 0x480) (i32.const 5) (i32.const 0x10) (i32.const 0x14)))
    (if (call $path_starts (i32.const 0x540) (i32.const 10))
      (then (global.set $deny_body_ctx (local.get $ctx)) (return (i32.const 0))))
    (if (call $path_starts (i32.const 0x780) (i32.const 5))
      (then (global.set $grow_ctx (local.get $ctx)) (return (i32.const 0))))
    (if (call $path_starts (i32.const 0x4c0) (i32.const 5))
      (then
        (drop (call $send_local_response (i32.const 451) (i32.const 0x580) (i32.const 6) (i32.const 0x5c0) (i32.const 4) (i32.const 0x800) (i32.const 22) (i32.const -1)))
        (return (i32.const 1))))
    (if (call $path_starts (i32.const 0x500) (i32.const 3))
      (then
        (drop (call $send_local_response (i32.const 200) (i32.const 0x500) (i32.const 3) (i32.const 0x680) (i32.const 5) (i32.const 0x900) (i32.const 113) (i32.const -1)))
        (return (i32.const 1))))
    (i32.const 0))

  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (i32.eq (local.get $ctx) (global.get $deny_body_ctx))
      (then
        (drop (call $send_local_response (i32.const 413) (i32.const 0x6c0) (i32.const 7) (i32.const 0x700) (i32.const 12) (i32.const 0) (i32.const 0) (i32.const -1)))
        (return (i32.const 1))))
    (if (i32.and (i32.eq (local.get $ctx) (global.get $grow_ctx)) (local.get $eos))
      (then (drop (call $set_buffer_bytes (i32.const 0) (local.get $size) (i32.const 0) (i32.const 0x7c0) (i32.const 1)))))
    (i32.const 0))

  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $replace_header (i32.const 2) (i32.const 0x600) (i32.const 17) (i32.const 0x640) (i32.const 4)))
    (i32.const 0))

  ;; Emscripten's growth hook is never needed here; calling it proves it links.
  (func (export "grow_hook") (call $notify_growth (i32.const 0))))
