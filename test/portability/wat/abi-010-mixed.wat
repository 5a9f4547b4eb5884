;; abi-010-mixed.wat: a 0.1.0 module that imports 0.2's proxy_continue_stream,
;; which proxy-wasm-cpp-host does not link for 0.1.0 modules: refused at load.
(module
  (import "env" "proxy_continue_stream" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_1_0"))
  (func (export "malloc") (param i32) (result i32) (i32.const 1024)))
