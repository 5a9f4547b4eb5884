// Access-log sinks: batching, backpressure, bounded buffers with counted drops, file
// rotation, write errors, log-name routing, and the file sink behind the real proxy.
import { mkdtemp, readdir, readFile, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { LogLevel } from '../../host/src/abi/constants.js';
import { startProxy } from '../../host/src/index.js';
import { AccessLogRouter, type AccessLogEntry } from '../../host/src/log/access-log.js';
import { FileSink, StreamSink } from '../../host/src/log/line-sinks.js';
import { createLogger, type LogRecord } from '../../host/src/log/logger.js';
import { MetricsRegistry } from '../../host/src/metrics/registry.js';
import { buildOnce, request, startUpstream } from './helpers.js';

const entry = (line: string, logName = 'access'): AccessLogEntry => ({
  adapter: 'test',
  logName,
  level: LogLevel.Info,
  format: 'text',
  timeNs: 0n,
  line: Buffer.from(line),
});

function setup() {
  const metrics = new MetricsRegistry();
  const logs: LogRecord[] = [];
  const router = new AccessLogRouter(metrics, createLogger(LogLevel.Info, (r) => logs.push(r)));
  return { metrics, logs, router };
}

t.test('stream sink: one write per event-loop turn, in order', async (t) => {
  const { metrics, router } = setup();
  const writes: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk.toString());
      cb();
    },
  });
  const sink = new StreamSink('out', out, router.statsFor('out'));
  router.add(sink);
  for (let i = 0; i < 100; i++) t.ok(router.write(entry(`line ${i}`)) || true);
  t.equal(writes.length, 0, 'nothing is written synchronously');
  await router.flush();
  t.equal(writes.length, 1, 'one batched write');
  t.equal(writes[0], Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(''));
  t.equal(metrics.value('wasm_mixer_access_log_entries_total', { sink: 'out' }), 100);
  t.equal(metrics.value('wasm_mixer_access_log_dropped_total', { sink: 'out', reason: 'buffer_full' }), 0);
});

t.test('stream sink: a stuck destination never blocks; the buffer is bounded and drops are counted', async (t) => {
  const { metrics, router } = setup();
  let release: (() => void) | null = null;
  let written = 0;
  const stuck = new Writable({
    highWaterMark: 64,
    write(chunk: Buffer, _enc, cb) {
      written += chunk.toString().split('\n').length - 1;
      release = cb; // never called until the test says so
    },
  });
  const sink = new StreamSink('stuck', stuck, router.statsFor('stuck'), 10_000);
  router.add(sink);
  const line = 'x'.repeat(99); // 100 bytes with the newline
  const t0 = performance.now();
  let accepted = 0;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 100; i++) if (router.write(entry(line))) accepted++;
    await new Promise((r) => setImmediate(r));
  }
  const elapsed = performance.now() - t0;
  t.ok(elapsed < 500, `500 writes against a stuck pipe took ${elapsed.toFixed(1)} ms`);
  t.ok(sink.buffered <= 10_000, `buffer bounded (${sink.buffered} bytes)`);
  const dropped = metrics.value('wasm_mixer_access_log_dropped_total', { sink: 'stuck', reason: 'buffer_full' })!;
  t.equal(accepted + dropped, 500, 'every entry is either accepted or counted as dropped');
  t.ok(dropped >= 300, `most are dropped while stuck (${dropped})`);
  t.equal(metrics.value('wasm_mixer_access_log_entries_total', { sink: 'stuck' }), 0, 'nothing confirmed written yet');
  // unstick: everything accepted is eventually written
  const done = router.flush();
  const pump = setInterval(() => {
    const r = release;
    release = null;
    r?.();
  }, 1);
  await done;
  clearInterval(pump);
  t.equal(written, accepted);
  t.equal(metrics.value('wasm_mixer_access_log_entries_total', { sink: 'stuck' }), accepted);
  const text = (metrics.render());
  t.match(text, /wasm_mixer_access_log_buffered_bytes\{sink="stuck"\} 0/);
});

t.test('stream sink: write errors are counted and reported once in a while', async (t) => {
  const { metrics, logs, router } = setup();
  const broken = new Writable({
    write(_chunk, _enc, cb) {
      cb(new Error('EPIPE: broken pipe'));
    },
  });
  broken.on('error', () => {});
  router.add(new StreamSink('broken', broken, router.statsFor('broken')));
  router.write(entry('a'));
  router.write(entry('b'));
  await new Promise((r) => setTimeout(r, 20));
  t.equal(metrics.value('wasm_mixer_access_log_dropped_total', { sink: 'broken', reason: 'write_error' }), 2);
  t.equal(logs.filter((l) => l.code === 'ACCESS_LOG_SINK_ERROR').length, 1);
});

t.test('file sink: appends, rotates by size, keeps maxFiles', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-alog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { metrics, router } = setup();
  const path = join(dir, 'logs', 'access.log');
  const sink = new FileSink('file', { path, maxBytes: 2048, maxFiles: 2 }, router.statsFor('file'));
  router.add(sink);
  const line = (i: number) => `entry ${String(i).padStart(4, '0')} ${'y'.repeat(89)}`; // 100 bytes + newline
  for (let i = 0; i < 100; i++) {
    router.write(entry(line(i)));
    if (i % 10 === 9) await router.flush();
  }
  await router.flush();
  const files = (await readdir(join(dir, 'logs'))).sort();
  t.same(files, ['access.log', 'access.log.1', 'access.log.2'], 'the live file and two rotated ones');
  const all: string[] = [];
  for (const f of ['access.log.2', 'access.log.1', 'access.log']) {
    const body = await readFile(join(dir, 'logs', f), 'utf8');
    t.ok(Buffer.byteLength(body) <= 2048, `${f} is within maxBytes (${Buffer.byteLength(body)})`);
    t.ok(body.endsWith('\n'), `${f} ends on a whole line`);
    all.push(...body.split('\n').filter(Boolean));
  }
  const nums = all.map((l) => Number(l.slice(6, 10)));
  t.same(nums, nums.slice().sort((a, b) => a - b), 'oldest to newest across the files, no line split');
  t.equal(nums.at(-1), 99, 'the newest entry is in the live file');
  t.ok(all.every((l) => l.length === 100));
  t.ok(metrics.value('wasm_mixer_access_log_rotations_total', { sink: 'file' })! >= 4);
  t.equal(metrics.value('wasm_mixer_access_log_entries_total', { sink: 'file' }), 100);
  await router.close();
  t.notOk(router.write(entry('after close')));
  t.equal(metrics.value('wasm_mixer_access_log_dropped_total', { sink: 'file', reason: 'closed' }), 1);
});

t.test('file sink: a full batch is written at once, a partial one after the flush interval', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-alog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { metrics, router } = setup();
  const path = join(dir, 'access.log');
  const stats = router.statsFor('file');
  const writes: number[] = [];
  router.add(new FileSink('file', { path, batchBytes: 1000, flushIntervalMs: 300 }, { ...stats, written: (n) => (writes.push(n), stats.written(n)) }));
  const written = () => metrics.value('wasm_mixer_access_log_entries_total', { sink: 'file' });
  const line = 'x'.repeat(99); // 100 bytes with its newline
  for (let i = 0; i < 3; i++) router.write(entry(line));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(written(), 0, 'less than a batch waits');
  for (let i = 0; i < 7; i++) router.write(entry(line));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(written(), 10, 'a full batch is written without waiting for the interval');
  router.write(entry('late'));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(written(), 10);
  await new Promise((r) => setTimeout(r, 350));
  t.equal(written(), 11, 'the rest is written after the interval');
  t.equal((await readFile(path, 'utf8')).split('\n').length, 12);
  router.write(entry('flushed'));
  await router.flush();
  t.equal(written(), 12, 'flush() does not wait for the interval');
  // Entries that keep coming while a flush() is written go out in full batches afterwards,
  // not one small write per turn.
  writes.length = 0;
  let flushed: Promise<void> | null = null;
  for (let i = 0; i < 205; i++) {
    router.write(entry(line));
    if (i === 4) flushed = router.flush();
    await new Promise((r) => setImmediate(r));
  }
  await flushed;
  await new Promise((r) => setTimeout(r, 100));
  t.equal(writes[0], 5, 'flush() writes what was waiting then');
  // (on a slow machine the interval may also fire once during the loop and write what is waiting)
  t.ok(writes.slice(1).filter((n) => n < 10).length <= 1, `then full batches (${writes.join(' ')})`);
  await router.close();
});

t.test('file sink: lines across the 256 KiB chunks, and one longer than a chunk, land whole and in order', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-alog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { router } = setup();
  const path = join(dir, 'access.log');
  router.add(new FileSink('file', { path, bufferBytes: 8 << 20 }, router.statsFor('file')));
  const want: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const line = i === 1500 ? 'L'.repeat(300 * 1024) : `${i} ${'z'.repeat(i % 397)}`;
    want.push(line);
    if (!router.write(entry(line))) t.fail(`line ${i} refused`);
    if (i % 700 === 0) await router.flush();
  }
  await router.flush();
  t.same((await readFile(path, 'utf8')).split('\n'), [...want, ''], 'every line once, whole, in order');
  await router.close();
});

t.test('file sink: an unwritable path drops with write_error and recovers when it becomes writable', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-alog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { metrics, router } = setup();
  const path = join(dir, 'is-a-dir');
  await mkdir(path);
  router.add(new FileSink('bad', { path }, router.statsFor('bad')));
  router.write(entry('one'));
  await router.flush();
  t.equal(metrics.value('wasm_mixer_access_log_dropped_total', { sink: 'bad', reason: 'write_error' }), 1);
  await rm(path, { recursive: true });
  router.write(entry('two'));
  await router.flush();
  t.equal(await readFile(path, 'utf8'), 'two\n', 'reopened for the next batch');
  await router.close();
});

t.test('router: logNames route entries; an entry nobody takes reports false', async (t) => {
  const { router } = setup();
  const a: string[] = [];
  const b: string[] = [];
  const mk = (into: string[]) => new Writable({ write(c: Buffer, _e, cb) { into.push(c.toString()); cb(); } });
  router.add(new StreamSink('a', mk(a), router.statsFor('a')), ['audit']);
  router.add(new StreamSink('b', mk(b), router.statsFor('b')));
  t.ok(router.write(entry('for audit', 'audit')));
  t.ok(router.write(entry('plain', 'access')));
  await router.flush();
  t.same(a, ['for audit\n']);
  t.same(b, ['for audit\nplain\n']);
  const { router: only } = setup();
  only.add(new StreamSink('a', mk([]), only.statsFor('a')), ['audit']);
  t.notOk(only.write(entry('nobody', 'other')));
});

t.test('the real proxy with a file sink from the config: entries land in the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wm-alog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const wasm = await buildOnce('logging');
  const up = await startUpstream();
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      routes: [{ name: 'backend', upstream: `http://127.0.0.1:${up.port}` }],
      plugins: [
        { name: 'access', url: wasm, phase: 'STATS', pluginConfig: {} },
        { name: 'audit', url: wasm, phase: 'STATS', pluginConfig: { log_name: 'audit', format: 'text', text_format: '%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE%' } },
      ],
      accessLog: {
        sinks: [
          { type: 'file', name: 'main', path: 'access.log', logNames: ['access'] },
          { type: 'file', name: 'audit', path: 'audit/audit.log', logNames: ['audit'], maxBytes: 4096, maxFiles: 1 },
        ],
      },
    },
    { baseDir: dir, logger: createLogger(LogLevel.Warn, () => {}) },
  );
  for (let i = 0; i < 20; i++) await request(proxy.port, `/item/${i}`, { headers: { 'x-request-id': `f-${i}` } });
  await proxy.close(); // flushes the sinks
  await up.close();
  const main = (await readFile(join(dir, 'access.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(main.map((e) => e.request_id), Array.from({ length: 20 }, (_, i) => `f-${i}`), 'every entry, in order, once');
  const audit = (await readFile(join(dir, 'audit', 'audit.log'), 'utf8')).trim().split('\n');
  t.same(audit, Array.from({ length: 20 }, (_, i) => `GET /item/${i} 200`));
  t.equal(proxy.host.metrics.value('wasm_mixer_access_log_entries_total', { sink: 'main' }), 20);
  t.equal(proxy.host.metrics.value('wasm_mixer_access_log_entries_total', { sink: 'audit' }), 20);
});

t.test('the config is validated: a file sink needs a path', async (t) => {
  const { validateConfig } = await import('../../host/src/index.js');
  t.throws(() => validateConfig({ accessLog: { sinks: [{ type: 'file' }] } }), /path/);
  t.throws(() => validateConfig({ accessLog: { sinks: [{ type: 'kafka' }] } }), /type/);
  t.doesNotThrow(() => validateConfig({ accessLog: { sinks: [{ type: 'stdout', bufferBytes: 65536 }, { type: 'otlp', intervalMs: 500 }] }, otlp: { endpoint: 'http://127.0.0.1:4318' } }));
});
