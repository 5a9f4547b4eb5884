// The V8 flags the host sets for adapter modules (host/src/vm/v8-flags.ts): set once,
// before the first module is compiled, unless the command line sets them.
import t from 'tap';
import { compileModule } from '../../host/src/vm/module.js';
import { appliedWasmFlags, applyWasmFlags, WASM_TIERING_BUDGET, wasmFlagsFor } from '../../host/src/vm/v8-flags.js';
import { compileGuest } from '../fixtures/guests/index.js';

t.test('a budget on the command line or in NODE_OPTIONS wins', async (t) => {
  t.equal(wasmFlagsFor([]), `--wasm-tiering-budget=${WASM_TIERING_BUDGET}`);
  t.equal(wasmFlagsFor(['--expose-gc'], '--max-old-space-size=100'), `--wasm-tiering-budget=${WASM_TIERING_BUDGET}`);
  t.equal(wasmFlagsFor(['--wasm-tiering-budget=1800000']), '');
  t.equal(wasmFlagsFor(['--wasm_tiering_budget', '5']), '');
  t.equal(wasmFlagsFor([], '--expose-gc --wasm-tiering-budget=1'), '');
});

t.test('compiling a module applies them, once', async (t) => {
  const expected = wasmFlagsFor(process.execArgv, process.env.NODE_OPTIONS);
  compileModule(await compileGuest('spec-filter'), 'spec.wasm');
  t.equal(appliedWasmFlags(), expected, 'set by the first compile');
  t.equal(applyWasmFlags(), expected, 'a second call returns the same and sets nothing new');
});
