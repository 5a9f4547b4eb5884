;; grpc-filter.wat: a Proxy-Wasm ABI v0.2.1 filter that calls gRPC services, written
;; from the spec (abi-versions/v0.2.1 "gRPC calls"), the way rate-limit shims do
;; (Kuadrant's wasm-shim calls Envoy's RLS). Messages are serialised by hand from
;; the published proto field numbers. Requests, by path:
;;
;;   /rls      proxy_grpc_call(cluster "rls", envoy.service.ratelimit.v3.RateLimitService,
;;             ShouldRateLimit, metadata [x-from-filter: 1], RateLimitRequest{domain:
;;             <plugin configuration, a plain string>, descriptors: [{entries: [{key:
;;             "x-api-key", value: <the request's x-api-key>}]}]}, timeout 5000 ms) and
;;             pauses. proxy_on_grpc_receive: overall_code OVER_LIMIT (bytes 08 02) ->
;;             local reply 429 "over limit" [x-rls: over]; otherwise request header
;;             x-rls: ok and proxy_continue_stream(HTTP_REQUEST).
;;   /slow     the same call to cluster "slow" with a 300 ms timeout.
;;   /big      the same call to cluster "big" (5000 ms).
;;   /health   proxy_grpc_stream(cluster "rls", grpc.health.v1.Health, Check), then
;;             proxy_grpc_send(empty HealthCheckRequest, end_stream) and pauses. The
;;             stream callbacks record what arrived; proxy_on_grpc_close adds request
;;             headers x-health-events (one letter per callback in order: i = initial
;;             metadata, m = message, t = trailing metadata, c = close),
;;             x-health-serving (1 when the message is 08 01, SERVING) and
;;             x-grpc-close (the status), then continues the request.
;;   /ungranted  proxy_grpc_call to cluster "nope" (not granted): request header
;;             x-grpc-call-status: <status>; continues.
;;   /cancel   opens a stream, cancels it twice: x-cancel: <first>,<second>; continues.
;;   /many     opens 1025 streams in one callback (the host allows 1024 per VM), then
;;             cancels those it got: x-many-ok: 1 when exactly 1024 opened,
;;             x-many-last: the status of the 1025th; continues.
;; proxy_on_grpc_close on a unary call (failure or deadline): local reply 503 with
;; x-grpc-close: <status> and the status message (proxy_get_status) as the body.
(module
  (import "env" "proxy_grpc_call" (func $grpc_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_stream" (func $grpc_stream (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_send" (func $grpc_send (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_cancel" (func $grpc_cancel (param i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer_bytes (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $send_local_response (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_effective_context (param i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue_stream (param i32) (result i32)))
  (import "env" "proxy_get_status" (func $get_status (param i32 i32 i32) (result i32)))

  (memory (export "memory") 2)
  ;; 0x10 RET_PTR, 0x14 RET_SIZE, 0x18 token, 0x1c status code, 0x20 digits
  ;; 0x1800 domain (config, 128), 0x2000 request message, 0x3000 token->ctx table, 0x3400 token->event letters (16 each)
  (data (i32.const 0x400) "rls")                                        ;; 3
  (data (i32.const 0x410) "slow")                                       ;; 4
  (data (i32.const 0x420) "nope")                                       ;; 4
  (data (i32.const 0x440) "envoy.service.ratelimit.v3.RateLimitService") ;; 43
  (data (i32.const 0x480) "ShouldRateLimit")                            ;; 15
  (data (i32.const 0x4c0) "grpc.health.v1.Health")                      ;; 21
  (data (i32.const 0x4e0) "Check")                                      ;; 5
  (data (i32.const 0x500) "x-api-key")                                  ;; 9
  (data (i32.const 0x520) ":path")                                      ;; 5
  (data (i32.const 0x540) "x-rls")                                      ;; 5
  (data (i32.const 0x550) "ok")                                         ;; 2
  (data (i32.const 0x560) "over")                                       ;; 4
  (data (i32.const 0x570) "over limit")                                 ;; 10
  (data (i32.const 0x580) "rate_limited")                               ;; 12
  (data (i32.const 0x5a0) "x-grpc-close")                               ;; 12
  (data (i32.const 0x5c0) "grpc_failed")                                ;; 11
  (data (i32.const 0x5e0) "x-health-events")                            ;; 15
  (data (i32.const 0x600) "x-health-serving")                           ;; 16
  (data (i32.const 0x620) "x-grpc-call-status")                         ;; 18
  (data (i32.const 0x640) "x-cancel")                                   ;; 8
  (data (i32.const 0x660) "/rls")                                       ;; 4
  (data (i32.const 0x670) "/slow")                                      ;; 5
  (data (i32.const 0x680) "/health")                                    ;; 7
  (data (i32.const 0x690) "/ungranted")                                 ;; 10
  (data (i32.const 0x6a0) "/cancel")                                    ;; 7
  (data (i32.const 0x6b0) "/many")                                      ;; 5
  (data (i32.const 0x6e0) "big")                                        ;; 3
  (data (i32.const 0x6f0) "/big")                                       ;; 4
  (data (i32.const 0x6c0) "x-many-ok")                                  ;; 9
  (data (i32.const 0x6d0) "x-many-last")                                ;; 11
  ;; pairs {x-from-filter: 1}: 4 + 8 + 14 + 2 = 28 bytes
  (data (i32.const 0x700) "\01\00\00\00" "\0d\00\00\00\01\00\00\00" "x-from-filter\00" "1\00")
  ;; pairs {x-rls: over}: 4 + 8 + 6 + 5 = 23 bytes
  (data (i32.const 0x740) "\01\00\00\00" "\05\00\00\00\04\00\00\00" "x-rls\00" "over\00")
  ;; empty pairs
  (data (i32.const 0x780) "\00\00\00\00")

  (global $heap (mut i32) (i32.const 0x8000))
  (global $dom_len (mut i32) (i32.const 0))
  (global $serving (mut i32) (i32.const 0))

  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.const 0x1e000)) (then (global.set $heap (i32.const 0x8000)) (return (i32.const 0))))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))

  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (if (call $get_buffer_bytes (i32.const 7) (i32.const 0) (local.get $size) (i32.const 0x10) (i32.const 0x14)) (then (return (i32.const 0))))
    (global.set $dom_len (i32.load (i32.const 0x14)))
    (if (i32.gt_u (global.get $dom_len) (i32.const 100)) (then (return (i32.const 0))))
    (memory.copy (i32.const 0x1800) (i32.load (i32.const 0x10)) (global.get $dom_len))
    (global.set $heap (i32.const 0x8000))
    (i32.const 1))

  (func $slot (param $token i32) (result i32) (i32.add (i32.const 0x3000) (i32.shl (i32.and (local.get $token) (i32.const 255)) (i32.const 2))))
  (func $events (param $token i32) (result i32) (i32.add (i32.const 0x3400) (i32.shl (i32.and (local.get $token) (i32.const 255)) (i32.const 4))))
  ;; Appends one letter to the token's event list (NUL-terminated, at most 15).
  (func $event (param $token i32) (param $letter i32)
    (local $p i32)
    (local.set $p (call $events (local.get $token)))
    (block $end (loop $l
      (br_if $end (i32.eqz (i32.load8_u (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $l)))
    (i32.store8 (local.get $p) (local.get $letter))
    (i32.store8 (i32.add (local.get $p) (i32.const 1)) (i32.const 0)))
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $end (loop $l
      (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $n))

  ;; Writes `v` (0..99) as decimal at 0x20; returns its length.
  (func $digits (param $v i32) (result i32)
    (if (i32.lt_u (local.get $v) (i32.const 10))
      (then (i32.store8 (i32.const 0x20) (i32.add (i32.const 48) (local.get $v))) (return (i32.const 1))))
    (i32.store8 (i32.const 0x20) (i32.add (i32.const 48) (i32.div_u (local.get $v) (i32.const 10))))
    (i32.store8 (i32.const 0x21) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
    (i32.const 2))

  ;; Whether the :path (at RET_PTR/RET_SIZE) equals the `n` bytes at `s`.
  (func $path_is (param $s i32) (param $n i32) (result i32)
    (local $i i32) (local $p i32)
    (if (i32.ne (i32.load (i32.const 0x14)) (local.get $n)) (then (return (i32.const 0))))
    (local.set $p (i32.load (i32.const 0x10)))
    (block $no (loop $l
      (br_if $no (i32.ge_u (local.get $i) (local.get $n)))
      (if (i32.ne (i32.load8_u (i32.add (local.get $p) (local.get $i))) (i32.load8_u (i32.add (local.get $s) (local.get $i))))
        (then (return (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.const 1))

  ;; Builds the RateLimitRequest at 0x2000 from the domain and the request's x-api-key; returns its size.
  (func $rls_request (result i32)
    (local $v i32) (local $vlen i32) (local $p i32)
    (if (call $get_header (i32.const 0) (i32.const 0x500) (i32.const 9) (i32.const 0x10) (i32.const 0x14))
      (then (i32.store (i32.const 0x14) (i32.const 0))))
    (local.set $v (i32.load (i32.const 0x10)))
    (local.set $vlen (i32.load (i32.const 0x14)))
    (if (i32.gt_u (local.get $vlen) (i32.const 100)) (then (local.set $vlen (i32.const 100))))
    (i32.store8 (i32.const 0x2000) (i32.const 0x0a))
    (i32.store8 (i32.const 0x2001) (global.get $dom_len))
    (memory.copy (i32.const 0x2002) (i32.const 0x1800) (global.get $dom_len))
    (local.set $p (i32.add (i32.const 0x2002) (global.get $dom_len)))
    (i32.store8 (local.get $p) (i32.const 0x12))
    (i32.store8 (i32.add (local.get $p) (i32.const 1)) (i32.add (i32.const 15) (local.get $vlen)))
    (i32.store8 (i32.add (local.get $p) (i32.const 2)) (i32.const 0x0a))
    (i32.store8 (i32.add (local.get $p) (i32.const 3)) (i32.add (i32.const 13) (local.get $vlen)))
    (i32.store8 (i32.add (local.get $p) (i32.const 4)) (i32.const 0x0a))
    (i32.store8 (i32.add (local.get $p) (i32.const 5)) (i32.const 9))
    (memory.copy (i32.add (local.get $p) (i32.const 6)) (i32.const 0x500) (i32.const 9))
    (i32.store8 (i32.add (local.get $p) (i32.const 15)) (i32.const 0x12))
    (i32.store8 (i32.add (local.get $p) (i32.const 16)) (local.get $vlen))
    (memory.copy (i32.add (local.get $p) (i32.const 17)) (local.get $v) (local.get $vlen))
    (i32.sub (i32.add (i32.add (local.get $p) (i32.const 17)) (local.get $vlen)) (i32.const 0x2000)))

  ;; A unary RLS call to `cluster` for stream `ctx`; returns the status.
  (func $call_rls (param $ctx i32) (param $cluster i32) (param $clen i32) (param $timeout i32) (result i32)
    (local $st i32) (local $n i32)
    (local.set $n (call $rls_request))
    (local.set $st (call $grpc_call (local.get $cluster) (local.get $clen) (i32.const 0x440) (i32.const 43) (i32.const 0x480) (i32.const 15)
      (i32.const 0x700) (i32.const 28) (i32.const 0x2000) (local.get $n) (local.get $timeout) (i32.const 0x18)))
    (if (i32.eqz (local.get $st))
      (then
        (i32.store (call $slot (i32.load (i32.const 0x18))) (local.get $ctx))
        (i32.store8 (call $events (i32.load (i32.const 0x18))) (i32.const 0))))
    (local.get $st))

  (func $add_req (param $k i32) (param $kl i32) (param $v i32) (param $vl i32)
    (drop (call $add_header (i32.const 0) (local.get $k) (local.get $kl) (local.get $v) (local.get $vl))))

  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (local $token i32) (local $a i32)
    (global.set $heap (i32.const 0x8000))
    (drop (call $get_header (i32.const 0) (i32.const 0x520) (i32.const 5) (i32.const 0x10) (i32.const 0x14)))
    (if (call $path_is (i32.const 0x660) (i32.const 4))
      (then
        (if (call $call_rls (local.get $ctx) (i32.const 0x400) (i32.const 3) (i32.const 5000)) (then (return (i32.const 0))))
        (return (i32.const 1))))
    (if (call $path_is (i32.const 0x670) (i32.const 5))
      (then (drop (call $call_rls (local.get $ctx) (i32.const 0x410) (i32.const 4) (i32.const 300))) (return (i32.const 1))))
    (if (call $path_is (i32.const 0x6f0) (i32.const 4))
      (then (drop (call $call_rls (local.get $ctx) (i32.const 0x6e0) (i32.const 3) (i32.const 5000))) (return (i32.const 1))))
    (if (call $path_is (i32.const 0x690) (i32.const 10))
      (then
        (call $add_req (i32.const 0x620) (i32.const 18) (i32.const 0x20)
          (call $digits (call $call_rls (local.get $ctx) (i32.const 0x420) (i32.const 4) (i32.const 1000))))
        (return (i32.const 0))))
    (if (call $path_is (i32.const 0x680) (i32.const 7))
      (then
        (if (call $grpc_stream (i32.const 0x400) (i32.const 3) (i32.const 0x4c0) (i32.const 21) (i32.const 0x4e0) (i32.const 5) (i32.const 0x780) (i32.const 4) (i32.const 0x18))
          (then (return (i32.const 0))))
        (local.set $token (i32.load (i32.const 0x18)))
        (i32.store (call $slot (local.get $token)) (local.get $ctx))
        (i32.store8 (call $events (local.get $token)) (i32.const 0))
        (drop (call $grpc_send (local.get $token) (i32.const 0x2000) (i32.const 0) (i32.const 1)))
        (return (i32.const 1))))
    (if (call $path_is (i32.const 0x6b0) (i32.const 5))
      (then
        (call $many)
        (return (i32.const 0))))
    (if (call $path_is (i32.const 0x6a0) (i32.const 7))
      (then
        (drop (call $grpc_stream (i32.const 0x400) (i32.const 3) (i32.const 0x4c0) (i32.const 21) (i32.const 0x4e0) (i32.const 5) (i32.const 0x780) (i32.const 4) (i32.const 0x18)))
        (local.set $token (i32.load (i32.const 0x18)))
        (local.set $a (call $grpc_cancel (local.get $token)))
        (i32.store8 (i32.const 0x30) (i32.add (i32.const 48) (local.get $a)))
        (i32.store8 (i32.const 0x31) (i32.const 44))
        (i32.store8 (i32.const 0x32) (i32.add (i32.const 48) (call $grpc_cancel (local.get $token))))
        (call $add_req (i32.const 0x640) (i32.const 8) (i32.const 0x30) (i32.const 3))
        (return (i32.const 0))))
    (i32.const 0))

  ;; /many: tokens are kept at 0x1e000 (1025 x 4 bytes) until they are cancelled.
  (func $many
    (local $i i32) (local $ok i32) (local $st i32)
    (block $end (loop $l
      (br_if $end (i32.ge_u (local.get $i) (i32.const 1025)))
      (local.set $st (call $grpc_stream (i32.const 0x400) (i32.const 3) (i32.const 0x4c0) (i32.const 21) (i32.const 0x4e0) (i32.const 5) (i32.const 0x780) (i32.const 4) (i32.const 0x18)))
      (if (i32.eqz (local.get $st))
        (then
          (i32.store (i32.add (i32.const 0x1e000) (i32.shl (local.get $ok) (i32.const 2))) (i32.load (i32.const 0x18)))
          (local.set $ok (i32.add (local.get $ok) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.set $i (i32.const 0))
    (block $end (loop $l
      (br_if $end (i32.ge_u (local.get $i) (local.get $ok)))
      (drop (call $grpc_cancel (i32.load (i32.add (i32.const 0x1e000) (i32.shl (local.get $i) (i32.const 2))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.store8 (i32.const 0x30) (i32.add (i32.const 48) (i32.eq (local.get $ok) (i32.const 1024))))
    (call $add_req (i32.const 0x6c0) (i32.const 9) (i32.const 0x30) (i32.const 1))
    (call $add_req (i32.const 0x6d0) (i32.const 11) (i32.const 0x20) (call $digits (local.get $st))))

  (func (export "proxy_on_grpc_receive_initial_metadata") (param $root i32) (param $token i32) (param $n i32)
    (call $event (local.get $token) (i32.const 105)))
  (func (export "proxy_on_grpc_receive_trailing_metadata") (param $root i32) (param $token i32) (param $n i32)
    (call $event (local.get $token) (i32.const 116)))

  (func (export "proxy_on_grpc_receive") (param $root i32) (param $token i32) (param $size i32)
    (local $m i32) (local $over i32)
    (call $event (local.get $token) (i32.const 109))
    (global.set $heap (i32.const 0x8000))
    (if (call $get_buffer_bytes (i32.const 5) (i32.const 0) (local.get $size) (i32.const 0x10) (i32.const 0x14)) (then (return)))
    (local.set $m (i32.load (i32.const 0x10)))
    (global.set $serving (i32.and (i32.ge_u (i32.load (i32.const 0x14)) (i32.const 2)) (i32.eq (i32.load16_u (local.get $m)) (i32.const 0x0108))))
    ;; a stream (its first event was its initial metadata) waits for close; a unary call decides now
    (if (i32.ne (i32.load8_u (call $events (local.get $token))) (i32.const 109)) (then (return)))
    (local.set $over (i32.and (i32.ge_u (i32.load (i32.const 0x14)) (i32.const 2)) (i32.eq (i32.load16_u (local.get $m)) (i32.const 0x0208))))
    (drop (call $set_effective_context (i32.load (call $slot (local.get $token)))))
    (if (local.get $over)
      (then
        (drop (call $send_local_response (i32.const 429) (i32.const 0x580) (i32.const 12) (i32.const 0x570) (i32.const 10) (i32.const 0x740) (i32.const 23) (i32.const -1)))
        (return)))
    (call $add_req (i32.const 0x540) (i32.const 5) (i32.const 0x550) (i32.const 2))
    (drop (call $continue_stream (i32.const 0))))

  (func (export "proxy_on_grpc_close") (param $root i32) (param $token i32) (param $status i32)
    (local $ev i32)
    (local.set $ev (call $events (local.get $token)))
    (call $event (local.get $token) (i32.const 99))
    (global.set $heap (i32.const 0x8000))
    (drop (call $set_effective_context (i32.load (call $slot (local.get $token)))))
    (if (i32.eq (i32.load8_u (local.get $ev)) (i32.const 99))
      (then
        ;; a unary call failed: 503 with the status and its message
        (drop (call $get_status (i32.const 0x1c) (i32.const 0x10) (i32.const 0x14)))
        (i32.store (i32.const 0x7c0) (i32.const 1))
        (i32.store (i32.const 0x7c4) (i32.const 12))
        (i32.store (i32.const 0x7c8) (call $digits (local.get $status)))
        (memory.copy (i32.const 0x7cc) (i32.const 0x5a0) (i32.const 12))
        (i32.store8 (i32.const 0x7d8) (i32.const 0))
        (memory.copy (i32.const 0x7d9) (i32.const 0x20) (i32.load (i32.const 0x7c8)))
        (i32.store8 (i32.add (i32.const 0x7d9) (i32.load (i32.const 0x7c8))) (i32.const 0))
        (drop (call $send_local_response (i32.const 503) (i32.const 0x5c0) (i32.const 11) (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14))
          (i32.const 0x7c0) (i32.add (i32.const 26) (i32.load (i32.const 0x7c8))) (i32.const -1)))
        (return)))
    (call $add_req (i32.const 0x5e0) (i32.const 15) (local.get $ev) (call $strlen (local.get $ev)))
    (i32.store8 (i32.const 0x30) (i32.add (i32.const 48) (global.get $serving)))
    (call $add_req (i32.const 0x600) (i32.const 16) (i32.const 0x30) (i32.const 1))
    (call $add_req (i32.const 0x5a0) (i32.const 12) (i32.const 0x20) (call $digits (local.get $status)))
    (drop (call $continue_stream (i32.const 0)))))
