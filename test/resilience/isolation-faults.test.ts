// Issue 11's fault table, through the real proxy on real sockets: each hostile
// module kind runs with default limits while the test measures how long the
// event loop was blocked (perf_hooks.monitorEventLoopDelay: the proxy runs in
// this process) and how much the process grew, and checks that other requests
// are answered meanwhile. The documented bound for one callback is about 200 ms
// (docs/operating.md "Limits"); on a loaded 2-core CI machine the assertions
// allow stallBound(). Measured numbers: bench/isolation/faults.js.
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import { startProxy, type MixerConfig, type PluginConfig } from '../../host/src/index.js';
import { compileGuest } from '../fixtures/guests/index.js';
import { captureLogs, fixture, metric, request, sleep, upstreamHeaders, wat } from './helpers.js';
import { echoUpstream } from './helpers.js';

/**
 * The documented per-callback bound is 200 ms. Allowed here: 3x that, times how
 * oversubscribed the machine is right now (load average per core, up to 8x): a
 * stall is wall time, and on a machine running 20 processes per core even an
 * empty callback waits for the CPU. Without the fixes the faults stall for seconds
 * to minutes (or kill the process), far past any of these bounds.
 */
function stallBound(): number {
  return Math.round(600 * Math.min(8, Math.max(1, os.loadavg()[0]! / os.cpus().length)));
}
const MB = 1024 * 1024;

const hostile = fixture('isolation-faults', { reference_types: true });

async function proxyWith(t: Test, plugin: PluginConfig & { wasm: Uint8Array }, extra: Partial<MixerConfig> = {}) {
  const up = await echoUpstream();
  const { logger, records } = captureLogs();
  const { wasm, ...p } = plugin;
  const proxy = await startProxy(
    {
      listen: { port: 0 },
      admin: { port: 0 },
      routes: [{ name: 'r', upstream: `http://127.0.0.1:${up.port}` }],
      plugins: [{ ...p, match: [{ paths: ['/grow', '/fill', '/time', '/shared', '/fdwrite', '/logs', '/trap', '/ok', '/tick'].map((prefix) => ({ prefix })) }] }],
      ...extra,
    },
    { modules: { [p.url]: wasm }, logger },
  );
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const admin = async (path: string) => request(proxy.adminPort!, path);
  const adapters = async () => JSON.parse((await admin('/adapters')).body) as Array<Record<string, any>>;
  return { proxy, records, admin, adapters, port: proxy.port };
}

interface Probe<T> {
  result: T;
  /** The longest the event loop was blocked, ms. */
  stallMs: number;
  /** RSS growth and high-water over the fault, MiB. */
  rssGrowthMb: number;
  /** Bystander requests (another route) answered while the fault ran. */
  bystanders: number[];
}

/** Runs `fault` while sampling event-loop delay and RSS, with a bystander request every 20 ms on a route without the adapter. */
async function probe<T>(port: number, fault: () => Promise<T>): Promise<Probe<T>> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  // A timer-drift probe as well: the histogram may not have sampled yet when a short fault blocks the loop.
  let drift = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    drift = Math.max(drift, now - last - 5);
    last = now;
  }, 5);
  const rss0 = process.memoryUsage().rss;
  let rssMax = rss0;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 20);
  const bystanders: Array<Promise<number>> = [];
  let running = true;
  const bystand = (async () => {
    while (running) {
      bystanders.push(request(port, '/bystander').then((r) => r.status, () => 0));
      await sleep(20);
    }
  })();
  h.enable();
  try {
    const result = await fault();
    return { result, stallMs: 0, rssGrowthMb: 0, bystanders: [] } as Probe<T> & { result: T };
  } finally {
    h.disable();
    running = false;
    await bystand;
    clearInterval(sampler);
    clearInterval(ticker);
    drift = Math.max(drift, performance.now() - last - 5);
    rssMax = Math.max(rssMax, process.memoryUsage().rss);
    lastProbe = { stallMs: Math.max(h.max / 1e6, drift), rssGrowthMb: (rssMax - rss0) / MB, bystanders: await Promise.all(bystanders) };
  }
}
let lastProbe: Omit<Probe<unknown>, 'result'> = { stallMs: 0, rssGrowthMb: 0, bystanders: [] };
async function measured<T>(port: number, fault: () => Promise<T>): Promise<Probe<T>> {
  const { result } = await probe(port, fault);
  return { result, ...lastProbe };
}

function checkAlive(t: Test, p: Omit<Probe<unknown>, 'result'>, what: string, maxRssMb: number): void {
  const bound = stallBound();
  t.ok(p.stallMs < bound, `${what}: the event loop was blocked at most ${p.stallMs.toFixed(0)} ms (< ${bound})`);
  t.ok(p.rssGrowthMb < maxRssMb, `${what}: RSS grew ${p.rssGrowthMb.toFixed(0)} MiB (< ${maxRssMb})`);
  t.ok(p.bystanders.length > 0 && p.bystanders.every((s) => s === 200), `${what}: ${p.bystanders.length} other requests answered 200 meanwhile`);
}

t.test('table.grow by 10,000,000, forty times: every grow past the table cap returns -1; the process does not grow', async (t) => {
  const { port, adapters } = await proxyWith(t, { name: 'hostile', url: 'h.wasm', wasm: await hostile });
  const p = await measured(port, () => request(port, '/grow'));
  t.equal(p.result.status, 200, 'the request goes on: table.grow failing is not a crash');
  t.equal(upstreamHeaders(p.result)['x-grow-refused'], '40', 'all 40 grows returned -1');
  checkAlive(t, p, 'table.grow', 100);
  t.equal((await adapters())[0]!.maxTableElements, 100_000, '/adapters shows the table cap');
});

t.test('memory.fill over 64 MiB in a loop: charged by length, cut off by the work budget', async (t) => {
  const { port, records } = await proxyWith(t, { name: 'hostile', url: 'h.wasm', wasm: await hostile });
  const p = await measured(port, () => request(port, '/fill', { timeoutMs: 30_000 }));
  t.equal(p.result.status, 503, 'the looping request fails closed');
  t.ok(records.some((r) => r.code === 'VM_BUDGET_EXCEEDED'), 'as VM_BUDGET_EXCEEDED');
  checkAlive(t, p, 'memory.fill', 200);
  t.equal((await request(port, '/ok')).status, 200, 'a fresh VM serves the next request');
});

t.test('a loop calling proxy_get_current_time_nanoseconds: host calls are charged, the work budget ends it', async (t) => {
  const { port, records } = await proxyWith(t, { name: 'hostile', url: 'h.wasm', wasm: await hostile });
  const p = await measured(port, () => request(port, '/time', { timeoutMs: 30_000 }));
  t.equal(p.result.status, 503);
  t.ok(records.some((r) => r.code === 'VM_BUDGET_EXCEEDED'), 'as VM_BUDGET_EXCEEDED');
  checkAlive(t, p, 'host-call loop', 100);
});

t.test('50 x 1 MiB proxy_set_shared_data under new keys, 20 requests: bounded per vm_id and accounted on /adapters and /metrics', async (t) => {
  const { port, adapters, admin } = await proxyWith(t, { name: 'hostile', url: 'h.wasm', wasm: await hostile });
  const p = await measured(port, async () => {
    let stored = 0;
    for (let i = 0; i < 20; i++) {
      const r = await request(port, '/shared');
      if (r.status !== 200) throw new Error(`status ${r.status}`);
      stored += Number(upstreamHeaders(r)['x-shared-ok']);
    }
    return stored;
  });
  t.ok(p.result >= 30 && p.result <= 32, `${p.result} MiB values stored (32 MiB default per vm_id), the rest refused`);
  checkAlive(t, p, 'shared data', 250);
  const hm = (await adapters())[0]!.hostMemory;
  t.ok(hm.sharedDataBytes <= 32 * MB && hm.sharedDataBytes > 30 * MB, `/adapters hostMemory.sharedDataBytes ${hm.sharedDataBytes}`);
  t.equal(hm.sharedDataKeys, p.result);
  t.equal(hm.refusedWrites, 1000 - p.result);
  t.equal(hm.sharedDataLimitBytes, 32 * MB);
  const m = (await admin('/metrics')).body;
  t.equal(metric(m, 'wasm_mixer_vm_host_memory_bytes', { adapter: 'hostile', kind: 'shared_data' }), hm.sharedDataBytes, 'and on /metrics');
  t.ok((metric(m, 'wasm_mixer_vm_host_memory_limit_bytes', { adapter: 'hostile' }) ?? 0) >= 32 * MB);
});

t.test('limits.maxSharedDataMb lowers the shared-data bound', async (t) => {
  const { port, adapters } = await proxyWith(t, { name: 'hostile', url: 'h.wasm', wasm: await hostile, limits: { maxSharedDataMb: 4 } });
  const r = await request(port, '/shared');
  t.equal(upstreamHeaders(r)['x-shared-ok'], '3', '3 x 1 MiB (plus keys and overhead) fit in 4 MiB');
  t.equal((await adapters())[0]!.hostMemory.sharedDataLimitBytes, 4 * MB);
});

t.test('fd_write with 2,000 iovecs over the same 64 KiB: refused (EINVAL); 1,000 iovecs: only 64 KiB is taken', async (t) => {
  const { port, records } = await proxyWith(t, { name: 'hostile', url: 'h.wasm', wasm: await hostile });
  const p = await measured(port, async () => [await request(port, '/fdwrite'), await request(port, '/fdwrite1000')]);
  const [over, many] = p.result;
  t.same([upstreamHeaders(over!)['x-fd-errno'], upstreamHeaders(over!)['x-fd-written']], ['28', '0'], 'over IOV_MAX: EINVAL, nothing written');
  t.same([upstreamHeaders(many!)['x-fd-errno'], upstreamHeaders(many!)['x-fd-written']], ['0', String(1000 * 65536)], 'reported as written, so libc does not retry');
  const lines = records.filter((r) => r.source === 'hostile' && r.message.startsWith('xxxx'));
  t.equal(lines.length, 1, 'one log line');
  t.ok(lines[0]!.message.length <= 16 * 1024 + 64, `cut to ${lines[0]!.message.length} characters (16 KiB line bound)`);
  checkAlive(t, p, 'fd_write', 100);
});

t.test('1,000 proxy_log calls of 64 KiB in one callback: 100 lines kept, each cut to 16 KiB; the drop is counted', async (t) => {
  const { port, records, admin } = await proxyWith(t, { name: 'hostile', url: 'h.wasm', wasm: await hostile });
  const p = await measured(port, () => request(port, '/logs'));
  t.equal(p.result.status, 200);
  const lines = records.filter((r) => r.source === 'hostile' && r.message.startsWith('yyyy'));
  t.equal(lines.length, 16, 'the 256 KiB per-callback byte bound: 16 lines of 16 KiB');
  t.ok(lines.every((l) => l.message.length <= 16 * 1024 + 64), 'each line cut to 16 KiB');
  t.ok(records.some((r) => r.code === 'VM_HOST_LIMIT' && /dropped/.test(r.message)), 'one warning says lines were dropped');
  t.equal(metric((await admin('/metrics')).body, 'wasm_mixer_adapter_log_dropped_total', { adapter: 'hostile' }), 984);
  checkAlive(t, p, 'proxy_log flood', 100);
});

t.test('proxy_set_tick_period_milliseconds(0xFFFFFFFF) is clamped (no TimeoutOverflowWarning, no 1 ms ticks); 1 ms is raised to 10 ms', async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const { port, records } = await proxyWith(t, { name: 'ticker', url: 't.wasm', wasm: await fixture('tick-overflow') }, {});
  const ticks = () => records.filter((r) => r.source === 'ticker' && r.message === 'tick').length;
  await sleep(300);
  t.equal(ticks(), 0, 'no tick within 300 ms (the period is about 24.8 days)');
  t.notOk(warnings.includes('TimeoutOverflowWarning'), 'no TimeoutOverflowWarning');
  await request(port, '/tick');
  const before = ticks();
  await sleep(500);
  const n = ticks() - before;
  t.ok(n > 5 && n <= 60, `${n} ticks in 500 ms after asking for 1 ms (at most one per 10 ms)`);
});

t.test('an adapter trapping on 1 request in 50 under steady load (FAIL_CLOSE, default restart policy): >= 99 % of the others succeed', async (t) => {
  const { port, adapters, records } = await proxyWith(t, { name: 'trap', url: 'trap.wasm', wasm: await compileGuest('trap') });
  const total = 1000;
  let next = 0;
  const statuses: Array<{ trap: boolean; status: number }> = [];
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const trap = i % 50 === 49;
      const r = await request(port, trap ? '/trap' : `/ok/${i}`).catch(() => ({ status: 0 }));
      statuses.push({ trap, status: r.status });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  h.disable();
  const traps = statuses.filter((s) => s.trap);
  const others = statuses.filter((s) => !s.trap);
  const ok = others.filter((s) => s.status === 200).length;
  t.equal(traps.length, 20);
  t.ok(traps.every((s) => s.status === 503), 'each trapping request fails alone (503)');
  t.ok(ok / others.length >= 0.99, `${ok} of ${others.length} other requests succeeded (${((100 * ok) / others.length).toFixed(1)} %)`);
  const [a] = await adapters();
  t.equal(a!.crashes, 20);
  t.match(a!.restart, { state: 'running' }, 'not crash-looping: it crashes on 2 % of requests');
  t.notOk(records.some((r) => r.level === 'critical'), 'no crash-loop alarm');
  t.ok(h.max / 1e6 < stallBound(), `restarts block the loop at most ${(h.max / 1e6).toFixed(0)} ms (< ${stallBound()})`);
});

t.test('every bulk operation is charged by its length: loops of memory.copy/init and table.fill/copy end at the budget', async (t) => {
  const ops: Record<string, string> = {
    'memory.copy': '(memory.copy (i32.const 0) (i32.const 0x10000) (i32.const 0x10000))',
    'memory.init': '(memory.init $d (i32.const 0) (i32.const 0) (i32.const 0x10000))',
    'table.fill': '(table.fill $t (i32.const 0) (ref.null func) (i32.const 60000))',
    'table.copy': '(table.copy $t $t (i32.const 0) (i32.const 1) (i32.const 60000))',
  };
  for (const [op, code] of Object.entries(ops)) {
    const wasm = await wat(
      `(module
        (memory (export "memory") 2)
        (table $t 60001 funcref)
        (data $d "${'a'.repeat(0x10000)}")
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 0x100))
        (func (export "proxy_on_context_create") (param i32 i32))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (loop $forever ${code} (br $forever))
          (i32.const 0)))`,
      `${op}.wat`,
      { reference_types: true },
    );
    const { port, records } = await proxyWith(t, { name: 'bulk', url: `${op}.wasm`, wasm });
    await request(port, '/bystander'); // warm up the proxy's own code paths
    const r = await request(port, '/ok', { timeoutMs: 20_000 });
    t.equal(r.status, 503, `${op}: the loop is cut off`);
    t.ok(records.some((l) => l.code === 'VM_BUDGET_EXCEEDED'), `${op}: by the default work budget`);
    t.ok(r.ms < stallBound(), `${op}: answered in ${r.ms.toFixed(0)} ms (< ${stallBound()})`);
  }
});

/** Bytes as a WAT data string. */
const watBytes = (b: Uint8Array) => [...b].map((x) => `\\${x.toString(16).padStart(2, '0')}`).join('');
function pairs(list: Array<[string, string]>): Uint8Array {
  const head = Buffer.alloc(4 + list.length * 8);
  head.writeUInt32LE(list.length, 0);
  list.forEach(([k, v], i) => {
    head.writeUInt32LE(Buffer.byteLength(k), 4 + i * 8);
    head.writeUInt32LE(Buffer.byteLength(v), 8 + i * 8);
  });
  return Buffer.concat([head, ...list.map(([k, v]) => Buffer.from(`${k}\0${v}\0`))]);
}

t.test('HTTP call-out responses count against the VM bound: 8 concurrent 12 MiB responses never hold more than 32 MiB', async (t) => {
  const big = Buffer.alloc(12 * MB, 0x62);
  const http = await import('node:http');
  // Each response sends its first half at once and the rest when all eight are under way,
  // so the proxy would hold 8 x 6 MiB before any completes.
  const waiting: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-length': big.length });
    res.write(big.subarray(0, big.length / 2));
    waiting.push(() => res.end(big.subarray(big.length / 2)));
    if (waiting.length === 8) for (const finish of waiting.splice(0)) setTimeout(finish, 200);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  const headers = pairs([[':method', 'GET'], [':path', '/big'], [':authority', 'big']]);
  const wasm = await wat(`(module
    (import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 0x100) "big")
    (data (i32.const 0x140) "callout-ok")
    (data (i32.const 0x150) "callout-failed")
    (data (i32.const 0x200) "${watBytes(headers)}")
    (func (export "proxy_abi_version_0_2_1"))
    (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 0x1000))
    (func (export "proxy_on_context_create") (param i32 i32))
    (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (local $i i32)
      (loop $again
        (drop (call $call (i32.const 0x100) (i32.const 3) (i32.const 0x200) (i32.const ${headers.length})
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 10000) (i32.const 0x20)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $again (i32.lt_u (local.get $i) (i32.const 8))))
      (i32.const 0))
    (func (export "proxy_on_http_call_response") (param i32 i32 i32) (param $body i32) (param i32)
      (if (i32.eq (local.get $body) (i32.const ${12 * MB}))
        (then (drop (call $log (i32.const 2) (i32.const 0x140) (i32.const 10))))
        (else (drop (call $log (i32.const 2) (i32.const 0x150) (i32.const 14)))))))`, 'callouts.wat');
  const { port, records, adapters, admin } = await proxyWith(
    t,
    { name: 'caller', url: 'c.wasm', wasm, clusters: ['big'] },
    { clusters: { big: { url: `http://127.0.0.1:${(server.address() as { port: number }).port}` } } },
  );
  t.equal((await request(port, '/ok')).status, 200);
  const done = () => records.filter((r) => r.source === 'caller' && r.message.startsWith('callout-'));
  for (let i = 0; i < 300 && done().length < 8; i++) await sleep(50);
  const ok = done().filter((r) => r.message === 'callout-ok').length;
  t.equal(done().length, 8, `all 8 call-outs answered (${ok} with their body, ${8 - ok} aborted at the bound)`);
  t.ok(ok < 8, 'not all 96 MiB were held at once: the call-outs past the bound were aborted');
  const hm = (await adapters())[0]!.hostMemory;
  t.ok(hm.calloutBytesHighWater <= 32 * MB, `at most ${hm.calloutBytesHighWater} bytes of call-outs in flight (32 MiB bound)`);
  t.equal(hm.calloutBytes, 0, 'released when the call-outs ended');
  t.equal(hm.pendingCallouts, 0);
  t.ok((metric((await admin('/metrics')).body, 'wasm_mixer_adapter_host_limit_total', { adapter: 'caller', kind: 'callout_response' }) ?? 0) >= 1, 'counted');
});
