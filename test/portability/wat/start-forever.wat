;; start-forever.wat: a v0.2.1 module whose wasm start function never returns.
;; Under the default limits it must be refused at load (the start budget runs
;; out) — and `wasm-mixer check` must say so instead of "ok".
(module
  (memory (export "memory") 1)
  (func $start (loop $l (br $l)))
  (start $start)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024)))
