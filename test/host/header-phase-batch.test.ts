// The proxy runs the request-headers phase of the requests that arrive in one event-loop turn,
// and the response-headers phase of the responses that arrive in one turn, together, adapter by
// adapter (proxy/batched-phases.ts, HostStream.requestHeadersAll / responseHeadersAll). What
// must hold: each stream sees the same callbacks, in chain order (reverse for responses), as
// one at a time; a stream an adapter answers leaves the batch at that adapter; through the real
// proxy, pipelined requests that arrive together are each answered as before, in order; and a
// response body that arrives while its header phase waits reaches the client whole, also past
// the bytes the proxy holds meanwhile (EARLY_RESPONSE_BODY_BYTES).
import { connect } from 'node:net';
import t from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import { HostStream } from '../../host/src/chain/chain.js';
import { WasmHost } from '../../host/src/host.js';
import { createLogger, type LogRecord } from '../../host/src/log/logger.js';
import { startProxy } from '../../host/src/index.js';
import { compileWatText } from '../fixtures/guests/index.js';
import { startUpstream } from '../telemetry/helpers.js';
import { EARLY_RESPONSE_BODY_BYTES } from '../../host/src/limits.js';

/**
 * A filter whose proxy_on_request_headers logs "<letter><context id mod 10>" at info, and
 * proxy_on_response_headers the same with the letter in lower case; with
 * `denies`, a request carrying an x-deny header then gets a local 403 (and StopIteration).
 */
function filter(letter: string, denies: boolean) {
  return compileWatText(`(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $send (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "${letter}")
  (data (i32.const 8) "${letter.toLowerCase()}")
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
  (func (export "proxy_on_response_headers") (param $ctx i32) (param i32 i32) (result i32)
    (i32.store8 (i32.const 9) (i32.add (i32.const 48) (i32.rem_u (local.get $ctx) (i32.const 10))))
    (drop (call $log (i32.const 2) (i32.const 8) (i32.const 2)))
    (i32.const 0))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32)))`);
}

const lines = (records: LogRecord[]) => records.map((r) => r.message).filter((m) => /^[AB]\d$/.test(m));
const responseLines = (records: LogRecord[]) => records.map((r) => r.message).filter((m) => /^[ab]\d$/.test(m));

/** A host with filters a (denying x-deny requests when `aDenies`) and b, in that order, and the records they log. */
async function twoFilters(t: { teardown(fn: () => unknown): void }, aDenies: boolean) {
  const records: LogRecord[] = [];
  const host = await WasmHost.create(
    { plugins: [{ name: 'a', url: 'a' }, { name: 'b', url: 'b' }], logLevel: 'info' },
    { modules: { a: await filter('A', aDenies), b: await filter('B', false) }, logger: createLogger(LogLevel.Info, (r) => records.push(r)) },
  );
  t.teardown(() => host.close());
  return { host, records };
}

t.test('requestHeadersAll runs each adapter for every stream still going, and gives each stream its own decision', async (t) => {
  const { host, records } = await twoFilters(t, true);
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

t.test('responseHeadersAll runs the adapters in reverse chain order, each for every stream', async (t) => {
  const { host, records } = await twoFilters(t, false);
  const streams = [0, 1, 2].map(() => host.newStream({ method: 'GET', path: '/', authority: 'x', headers: [] }));
  HostStream.requestHeadersAll(streams, [true, true, true]);
  const decisions = HostStream.responseHeadersAll(streams, [200, 404, 200], [[['x-a', '1']], [], []], [false, true, false]);
  t.same(decisions.map((d) => (d instanceof Promise ? 'promise' : d.action)), ['continue', 'continue', 'continue']);
  t.same(responseLines(records).map((l) => l[0]), ['b', 'b', 'b', 'a', 'a', 'a'], 'b (the last adapter) first, for every stream; then a');
  t.same(streams.map((s) => s.stream.info.responseCode), [200, 404, 200], "each stream's own status");
  t.same(streams[0]!.stream.responseHeaders, [[':status', '200'], ['x-a', '1']], "and its own headers");
  for (const s of streams) s.finish();
});

t.test('through the proxy: a response body that arrives while its header phase waits reaches the client whole', async (t) => {
  const upstream = await startUpstream();
  const records: LogRecord[] = [];
  const proxy = await startProxy(
    { listen: { port: 0 }, routes: [{ name: 'default', upstream: `http://127.0.0.1:${upstream.port}` }], plugins: [{ name: 'a', url: 'a' }], logLevel: 'info' },
    { modules: { a: await filter('A', false) }, logger: createLogger(LogLevel.Info, (r) => records.push(r)) },
  );
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const get = (path: string) =>
    new Promise<{ status: number; bytes: number }>((resolve, reject) => {
      const socket = connect(proxy.port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (d) => chunks.push(d));
      socket.on('end', () => {
        const all = Buffer.concat(chunks);
        const head = all.subarray(0, all.indexOf('\r\n\r\n') + 4).toString('latin1');
        resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), bytes: all.length - head.length });
      });
      socket.on('error', reject);
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    });
  for (const n of [0, 10, EARLY_RESPONSE_BODY_BYTES + 1, 4 * EARLY_RESPONSE_BODY_BYTES]) {
    const r = await get(`/bytes/${n}`);
    t.same(r, { status: 200, bytes: n }, `${n} bytes of body, all relayed`);
  }
  t.same([lines(records).length, responseLines(records).length], [4, 4], "the adapter's request and response callbacks ran for each request");
});
