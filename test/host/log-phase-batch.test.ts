// The proxy runs the log phases of the requests that ended in one event-loop turn together,
// adapter by adapter (proxy/batched-phases.ts, HostStream.finishAll). What must hold: every stream's
// adapters still run proxy_on_done, proxy_on_log and proxy_on_delete in chain order; each
// stream's log phase runs once (finish() and finishAll() are idempotent together); and through
// the real proxy every request is logged, including those pending when the proxy closes.
import t from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import { HostStream } from '../../host/src/chain/chain.js';
import { WasmHost } from '../../host/src/host.js';
import { createLogger, type LogRecord } from '../../host/src/log/logger.js';
import { startProxy } from '../../host/src/index.js';
import { compileWatText } from '../fixtures/guests/index.js';
import { buildOnce, MemorySink, request } from '../telemetry/helpers.js';

/** A filter whose proxy_on_log logs "<its letter><the context id>" at info. */
function logger(letter: string) {
  return compileWatText(`(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "${letter}")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param $ctx i32)
    (i32.store8 (i32.const 1) (i32.add (i32.const 48) (i32.rem_u (local.get $ctx) (i32.const 10))))
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 2))))
  (func (export "proxy_on_delete") (param i32)))`);
}

t.test('finishAll runs each adapter for every stream, each stream seeing its adapters in chain order, once', async (t) => {
  const records: LogRecord[] = [];
  const host = await WasmHost.create(
    { plugins: [{ name: 'a', url: 'a' }, { name: 'b', url: 'b' }], logLevel: 'info' },
    { modules: { a: await logger('A'), b: await logger('B') }, logger: createLogger(LogLevel.Info, (r) => records.push(r)) },
  );
  t.teardown(() => host.close());
  const streams = [0, 1, 2].map(() => host.newStream({ method: 'GET', path: '/', authority: 'x', headers: [] }));
  for (const s of streams) s.requestHeaders(true);
  const lines = () => records.map((r) => r.message).filter((m) => /^[AB]\d$/.test(m));

  streams[1]!.finish(); // one stream finished on its own first
  const before = lines();
  t.equal(before.length, 2, 'finish() of one stream: its two adapters');
  t.ok(before[0]!.startsWith('A') && before[1]!.startsWith('B'), 'in chain order');
  HostStream.finishAll([streams[0]!, streams[1]!, streams[2]!, streams[0]!]);
  const after = lines().slice(2);
  t.equal(after.length, 4, 'the other two streams, once each (the finished one and the duplicate are skipped)');
  t.same(after.map((l) => l[0]), ['A', 'A', 'B', 'B'], 'adapter by adapter');
  // Context ids are each VM's own, given in creation order: each adapter's two lines in increasing id order are streams 0 then 2.
  const ids = after.map((l) => Number(l[1]));
  t.ok(ids[0]! < ids[1]! && ids[2]! < ids[3]!, `each adapter took the streams in the order given (${after.join(' ')})`);
  const n = records.length;
  for (const s of streams) s.finish();
  t.equal(records.length, n, 'finish() after finishAll() does nothing');
});

t.test('through the proxy: concurrent requests are each logged once, and a close right after still logs them', async (t) => {
  const logging = await buildOnce('logging');
  const sink = new MemorySink();
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [], plugins: [{ name: 'access', url: logging, pluginConfig: {} }] },
    { accessLogSinks: [sink], logger: createLogger(LogLevel.Error, () => {}) },
  );
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => request(proxy.port, `/n/${i}`)));
  t.same(answers.map((a) => a.status), Array(20).fill(404), 'every request answered (no route: 404)');
  await proxy.close();
  const paths = sink.entries.map((e) => JSON.parse(Buffer.from(e.line).toString('utf8')).path as string).sort();
  t.same(paths, Array.from({ length: 20 }, (_, i) => `/n/${i}`).sort(), 'one access-log entry per request');
});
