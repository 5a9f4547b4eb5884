// The proxy runs the request-headers phase of the requests that arrive in one event-loop turn
// together, adapter by adapter (proxy/batched-phases.ts, HostStream.requestHeadersAll). What
// must hold: each stream sees the same callbacks, in chain order, as with requestHeaders(); a
// stream an adapter answers leaves the batch at that adapter; and through the real proxy,
// pipelined requests that arrive together are each answered as before, in order.
import { connect } from 'node:net';
import t from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import { HostStream } from '../../host/src/chain/chain.js';
import { WasmHost } from '../../host/src/host.js';
import { createLogger, type LogRecord } from '../../host/src/log/logger.js';
import { startProxy } from '../../host/src/index.js';
import { compileWatText } from '../fixtures/guests/index.js';

/**
 * A filter whose proxy_on_request_headers logs "<letter><context id mod 10>" at info; with
 * `denies`, a request carrying an x-deny header then gets a local 403 (and StopIteration).
 */
function filter(letter: string, denies: boolean) {
  return compileWatText(`(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $send (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "${letter}")
  (data (i32.const 16) "x-deny")
  (data (i32.const 32) "denied")
  (data (i32.const 48) "\\00\\00\\00\\00")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (i32.store8 (i32.const 1) (i32.add (i32.const 48) (i32.rem_u (local.get $ctx) (i32.const 10))))
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 2)))
    ${denies ? `(if (i32.eqz (call $header (i32.const 0) (i32.const 16) (i32.const 6) (i32.const 64) (i32.const 68)))
      (then
        (drop (call $send (i32.const 403) (i32.const 32) (i32.const 6) (i32.const 32) (i32.const 6) (i32.const 48) (i32.const 4) (i32.const -1)))
        (return (i32.const 1))))` : ''}
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32)))`);
}

const lines = (records: LogRecord[]) => records.map((r) => r.message).filter((m) => /^[AB]\d$/.test(m));

t.test('requestHeadersAll runs each adapter for every stream still going, and gives each stream its own decision', async (t) => {
  const records: LogRecord[] = [];
  const host = await WasmHost.create(
    { plugins: [{ name: 'a', url: 'a' }, { name: 'b', url: 'b' }], logLevel: 'info' },
    { modules: { a: await filter('A', true), b: await filter('B', false) }, logger: createLogger(LogLevel.Info, (r) => records.push(r)) },
  );
  t.teardown(() => host.close());
  const streams = [[], [['x-deny', '1']], []].map((headers) => host.newStream({ method: 'GET', path: '/', authority: 'x', headers: headers as Array<[string, string]> }));
  const decisions = HostStream.requestHeadersAll(streams, [true, true, true]);
  t.same(decisions.map((d) => (d instanceof Promise ? 'promise' : d.action)), ['continue', 'respond', 'continue'], 'each stream its own decision');
  const d1 = decisions[1]!;
  t.equal(!(d1 instanceof Promise) && d1.action === 'respond' ? d1.reply.status : 0, 403, "adapter a's local reply");
  const seen = lines(records);
  t.same(seen.map((l) => l[0]), ['A', 'A', 'A', 'B', 'B'], 'adapter by adapter; the answered stream never reaches b');
  // Each stream's two contexts get consecutive ids (a's, then b's), so b's ids follow a's.
  const id = (k: number) => Number(seen[k]![1]);
  t.same([id(3), id(4)], [(id(0) + 1) % 10, (id(2) + 1) % 10], `b took the first and the third stream, in the order given (${seen.join(' ')})`);
  for (const s of streams) s.finish();
});

t.test('through the proxy: pipelined requests arriving together run adapter by adapter and are answered in order', async (t) => {
  const records: LogRecord[] = [];
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [], plugins: [{ name: 'a', url: 'a' }, { name: 'b', url: 'b' }], logLevel: 'info' },
    { modules: { a: await filter('A', true), b: await filter('B', false) }, logger: createLogger(LogLevel.Info, (r) => records.push(r)) },
  );
  t.teardown(() => proxy.close());
  const req = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(proxy.port, '127.0.0.1');
    let text = '';
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if ((text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length === 3) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', reject);
    // one write: the server parses all three in one turn
    socket.write(req('/one') + req('/two', 'x-deny: 1\r\n') + req('/three', 'Connection: close\r\n'));
  });
  t.same([...answer.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), ['404', '403', '404'], 'no route, the adapter\'s 403, no route: in request order');
  t.same(lines(records).map((l) => l[0]), ['A', 'A', 'A', 'B', 'B'], 'a for the three requests, then b for the two it let through');
});
