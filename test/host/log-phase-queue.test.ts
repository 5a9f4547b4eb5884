// The proxy's batched log phase (chain/log-phase-queue.ts): requests that end in one
// event-loop turn get proxy_on_log after it, adapter by adapter, each request still in
// chain order; the queue is bounded and close() runs it.
import t from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import { WasmHost } from '../../host/src/host.js';
import { MAX_QUEUED_LOG_PHASES } from '../../host/src/limits.js';
import type { LogRecord } from '../../host/src/log/logger.js';
import { createLogger } from '../../host/src/log/logger.js';
import { compileWatText } from '../fixtures/guests/index.js';

// A guest whose proxy_on_log logs "log" (at info) and nothing else.
const LOGS_ON_LOG = `(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "log")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_log") (param i32) (drop (call $log (i32.const 2) (i32.const 16) (i32.const 3)))))`;

async function twoAdapters(t: { teardown(fn: () => unknown): void }) {
  const wasm = await compileWatText(LOGS_ON_LOG, 'logs-on-log.wat');
  const records: LogRecord[] = [];
  const host = await WasmHost.create(
    { plugins: [{ name: 'a', url: 'a.wasm' }, { name: 'b', url: 'b.wasm' }], logLevel: 'info' },
    { modules: { 'a.wasm': wasm, 'b.wasm': wasm }, logger: createLogger(LogLevel.Info, (r) => records.push(r)) },
  );
  t.teardown(() => host.close());
  const onLog = () => records.filter((r) => r.message === 'log').map((r) => r.source);
  const stream = () => host.newStream({ method: 'GET', path: '/', authority: 'svc.local', headers: [] });
  return { host, onLog, stream };
}

t.test('requests that end in one turn are logged after it, adapter by adapter', async (t) => {
  const { host, onLog, stream } = await twoAdapters(t);
  const streams = [stream(), stream(), stream()];
  for (const s of streams) host.logPhase.add(s);
  t.same(onLog(), [], 'no proxy_on_log during the turn the requests ended in');
  t.ok(streams.every((s) => s.stream.info.endMono > 0n), 'each request ends (its end time is taken) when it is added');
  const ends = streams.map((s) => s.stream.info.endMono);
  await new Promise(setImmediate);
  t.same(onLog(), ['a', 'a', 'a', 'b', 'b', 'b'], 'adapter a logs all three, then adapter b: each request still sees a before b');
  t.same(streams.map((s) => s.stream.info.endMono), ends, 'the end time is the one taken when the request ended, not when it was logged');
  t.equal(host.logPhase.size, 0);
  host.logPhase.add(streams[0]!);
  await new Promise(setImmediate);
  t.equal(onLog().length, 6, 'a request already ended is not logged twice');
});

t.test('finish() still runs the log phase at once, in chain order', async (t) => {
  const { onLog, stream } = await twoAdapters(t);
  stream().finish();
  stream().finish();
  t.same(onLog(), ['a', 'b', 'a', 'b']);
});

t.test(`at most ${MAX_QUEUED_LOG_PHASES} requests wait: the one that reaches the bound runs them all`, async (t) => {
  const { host, onLog, stream } = await twoAdapters(t);
  for (let i = 0; i < MAX_QUEUED_LOG_PHASES - 1; i++) host.logPhase.add(stream());
  t.equal(host.logPhase.size, MAX_QUEUED_LOG_PHASES - 1);
  t.equal(onLog().length, 0, 'one below the bound: still waiting');
  host.logPhase.add(stream());
  t.equal(host.logPhase.size, 0, 'at the bound: the queue ran at once');
  t.equal(onLog().length, 2 * MAX_QUEUED_LOG_PHASES, 'every request logged by both adapters');
  await new Promise(setImmediate);
  t.equal(onLog().length, 2 * MAX_QUEUED_LOG_PHASES, 'and nothing again at the end of the turn');
});

t.test('close() runs the log phase of the requests still queued', async (t) => {
  const { host, onLog, stream } = await twoAdapters(t);
  host.logPhase.add(stream());
  await host.close();
  t.same(onLog(), ['a', 'b'], 'logged before the adapters stopped');
});
