#!/usr/bin/env node
// Entry point of the `wasm-mixer` command; the code lives in host/src/cli (compiled to dist/).
import { main } from '../dist/host/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
