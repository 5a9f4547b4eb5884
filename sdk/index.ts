// Package entry for `import { ... } from "wasm-mixer/sdk"` (AssemblyScript).
export * from "./assembly/index";
