// Package entry for `export * from "wasm-mixer/sdk/exports"` (AssemblyScript):
// the Proxy-Wasm ABI v0.2.1 callbacks and allocator every adapter module exports.
export * from "./assembly/abi/exports";
