;; abi-010.wat: a filter for Proxy-Wasm ABI v0.1.0, written from the spec
;; (proxy-wasm/spec abi-versions/v0.1.0), as the Go SDK's and Istio's 0.1.0 builds
;; behave. What it exercises:
;;   * proxy_get_configuration: in proxy_on_vm_start (the VM configuration) and in
;;     proxy_on_configure (the plugin configuration, copied for later);
;;   * header callbacks with two parameters (no end_of_stream);
;;   * proxy_get_header_map_value for a missing key: OK with an empty value in 0.1.0;
;;   * proxy_continue_request: /pause requests are paused in on_request_headers and
;;     resumed from proxy_on_tick (through proxy_set_effective_context);
;;   * proxy_clear_route_cache returns OK;
;;   * the done/log/delete order: proxy_on_done returns true, then proxy_on_log, then
;;     proxy_on_delete, each logged ("v010 done|log|delete").
;; Request headers added: x-v010-config (the plugin configuration), x-v010-vm (the VM
;; configuration), x-v010-absent (the status of the missing-key lookup), x-v010-route
;; (the status of proxy_clear_route_cache). Response header: x-v010-response: 1.
(module
  (import "env" "proxy_get_configuration" (func $get_configuration (param i32 i32) (result i32)))
  (import "env" "proxy_continue_request" (func $continue_request (result i32)))
  (import "env" "proxy_clear_route_cache" (func $clear_route_cache (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_effective_context (param i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))

  (memory (export "memory") 2)
  ;; 0x10 RET_PTR, 0x14 RET_SIZE, 0x20 a status digit; 0x1800 plugin config (256), 0x1a00 vm config (256)
  (data (i32.const 0x400) "x-absent")          ;; 8
  (data (i32.const 0x440) "x-v010-absent")     ;; 13
  (data (i32.const 0x480) "x-v010-config")     ;; 13
  (data (i32.const 0x4c0) "x-v010-response")   ;; 15
  (data (i32.const 0x500) "1")                 ;; 1
  (data (i32.const 0x540) ":path")             ;; 5
  (data (i32.const 0x580) "/pause")            ;; 6
  (data (i32.const 0x5c0) "v010 done")         ;; 9
  (data (i32.const 0x600) "v010 log")          ;; 8
  (data (i32.const 0x640) "v010 delete")       ;; 11
  (data (i32.const 0x680) "x-v010-vm")         ;; 9
  (data (i32.const 0x6c0) "x-v010-route")      ;; 12

  (global $heap (mut i32) (i32.const 0x4000))
  (global $cfg_len (mut i32) (i32.const 0))
  (global $vm_len (mut i32) (i32.const 0))
  (global $paused (mut i32) (i32.const 0))

  (func (export "proxy_abi_version_0_1_0"))

  (func (export "malloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.const 0x20000)) (then (global.set $heap (i32.const 0x4000)) (return (i32.const 0))))
    (local.get $p))

  ;; proxy_get_configuration into `dst` (at most 256 bytes); returns the length.
  (func $config (param $dst i32) (result i32)
    (local $n i32)
    (i32.store (i32.const 0x14) (i32.const 0))
    (if (call $get_configuration (i32.const 0x10) (i32.const 0x14)) (then (return (i32.const 0))))
    (local.set $n (i32.load (i32.const 0x14)))
    (if (i32.gt_u (local.get $n) (i32.const 256)) (then (local.set $n (i32.const 256))))
    (memory.copy (local.get $dst) (i32.load (i32.const 0x10)) (local.get $n))
    (global.set $heap (i32.const 0x4000))
    (local.get $n))

  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (global.set $vm_len (call $config (i32.const 0x1a00)))
    (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (global.set $cfg_len (call $config (i32.const 0x1800)))
    (i32.const 1))

  (func $add_status (param $key i32) (param $len i32) (param $status i32)
    (i32.store8 (i32.const 0x20) (i32.add (i32.const 48) (local.get $status)))
    (drop (call $add_header (i32.const 0) (local.get $key) (local.get $len) (i32.const 0x20) (i32.const 1))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (result i32)
    (local $st i32)
    (global.set $heap (i32.const 0x4000))
    (i32.store (i32.const 0x14) (i32.const 99))
    (local.set $st (call $get_header (i32.const 0) (i32.const 0x400) (i32.const 8) (i32.const 0x10) (i32.const 0x14)))
    ;; OK with an empty value: status 0 and size 0; anything else shows as its status (or 9 for a non-empty value)
    (if (i32.and (i32.eqz (local.get $st)) (i32.ne (i32.load (i32.const 0x14)) (i32.const 0))) (then (local.set $st (i32.const 9))))
    (call $add_status (i32.const 0x440) (i32.const 13) (local.get $st))
    (call $add_status (i32.const 0x6c0) (i32.const 12) (call $clear_route_cache))
    (drop (call $add_header (i32.const 0) (i32.const 0x480) (i32.const 13) (i32.const 0x1800) (global.get $cfg_len)))
    (drop (call $add_header (i32.const 0) (i32.const 0x680) (i32.const 9) (i32.const 0x1a00) (global.get $vm_len)))
    (drop (call $get_header (i32.const 0) (i32.const 0x540) (i32.const 5) (i32.const 0x10) (i32.const 0x14)))
    (if (i32.and (i32.eq (i32.load (i32.const 0x14)) (i32.const 6))
                 (i32.eq (i32.load (i32.load (i32.const 0x10))) (i32.load (i32.const 0x580))))
      (then
        (global.set $paused (local.get $ctx))
        (drop (call $set_tick (i32.const 10)))
        (return (i32.const 1))))
    (i32.const 0))

  (func (export "proxy_on_tick") (param $root i32)
    (if (global.get $paused)
      (then
        (drop (call $set_effective_context (global.get $paused)))
        (drop (call $continue_request))
        (global.set $paused (i32.const 0))
        (drop (call $set_tick (i32.const 0))))))

  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (result i32)
    (drop (call $replace_header (i32.const 2) (i32.const 0x4c0) (i32.const 15) (i32.const 0x500) (i32.const 1)))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32)
    (drop (call $log (i32.const 2) (i32.const 0x5c0) (i32.const 9)))
    (i32.const 1))
  (func (export "proxy_on_log") (param i32)
    (drop (call $log (i32.const 2) (i32.const 0x600) (i32.const 8))))
  (func (export "proxy_on_delete") (param i32)
    (drop (call $log (i32.const 2) (i32.const 0x640) (i32.const 11)))))
