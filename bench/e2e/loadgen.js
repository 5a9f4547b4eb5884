// Open-loop (constant-rate) HTTP/1.1 load generator, run in its own process by bench/run.js.
//
//   node bench/e2e/loadgen.js '{"port":8080,"rate":1000,"connections":16,"warmupMs":1000,"durationMs":5000,
//                               "requests":[{"head":"POST /api ... \r\n\r\n","body":"<base64>"}]}'
//
// Why not wrk or autocannon: wrk is closed loop (each connection sends its next request
// when the previous answer arrives, so a slow server is offered less load: coordinated
// omission); wrk2 (constant rate) is not packaged in Debian; autocannon's overallRate is
// constant-rate but records latency with 1 ms resolution, coarser than what we measure
// (the whole proxy hop is ~0.2 ms). This generator does what fortio does in Istio's
// benchmark (-qps 1000 -c 16): C keep-alive connections, each sending at rate/C per
// second on a fixed schedule (phases staggered), one request in flight per connection.
//
// Timing: process.hrtime.bigint() (ns) from the write of a request to the last byte of
// its response; every sample is kept (no histogram bucketing) and percentiles are exact.
// Each request also records how late it left against its schedule (timer lateness, or
// the connection still busy with the previous request) and the latency measured from the
// scheduled time (what wrk2 reports, corrected for coordinated omission). Raw sockets
// and pre-encoded requests keep the generator's own cost at a few µs per request; its
// floor is part of the direct-to-upstream baseline that the other scenarios are compared
// with, and its CPU time per request is reported.
//
// Output: "measure-start" when warm-up ends, "measure-end" when the window closes, then
// one JSON line with the results, on stdout.
import net from 'node:net';

const o = JSON.parse(process.argv[2]);
const { port, rate, connections: C } = o;
const warmupMs = o.warmupMs ?? 1000;
const durationMs = o.durationMs ?? 5000;
const reqBufs = o.requests.map((r) => Buffer.concat([Buffer.from(r.head, 'latin1'), Buffer.from(r.body ?? '', 'base64')]));
const kinds = o.requests.map((r) => r.kind ?? 'default');

const now = () => Number(process.hrtime.bigint());
const periodNs = (1e9 * C) / rate; // each connection sends every C/rate seconds
const T0 = now() + 50e6; // first request 50 ms from now, after the connections are up
const measureFrom = T0 + warmupMs * 1e6;
const measureTo = measureFrom + durationMs * 1e6;

// Every sample of the measured window (preallocated: no GC churn while measuring).
// A request is sampled when it is SENT inside the window; a response is counted (for the
// achieved rate and CPU per request) when it ARRIVES inside the window. A connection more
// than MAX_BEHIND_NS behind its schedule drops the missed slots (counted as skipped): an
// overloaded target then shows a lower achieved rate instead of an ever-growing backlog.
const MAX_BEHIND_NS = 1e9;
const cap = Math.ceil((rate * durationMs) / 1000 * 1.2) + 1000;
const lat = new Float64Array(cap); // ns, send -> last byte
const latSched = new Float64Array(cap); // ns, scheduled time -> last byte
const lag = new Float64Array(cap); // ns, scheduled -> sent
const kindOf = new Uint8Array(cap);
let n = 0;
let scheduledInWindow = 0;
let completedInWindow = 0;
let skipped = 0;
let errors = 0;
const statuses = {};
let started = false;
let ended = false;

function stop(err) {
  process.stderr.write(`loadgen: ${err}\n`);
  process.exit(1);
}

class Conn {
  constructor(i) {
    this.i = i;
    this.kind = i % reqBufs.length; // connections alternate between the request kinds
    this.next = T0 + (i * periodNs) / C; // staggered phases
    this.busy = false;
    this.due = 0;
    this.sent = 0;
    this.buf = null;
    this.need = -1; // bytes of the current response still expected after its head (-1: head not parsed)
    this.status = 0;
    this.sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
    this.sock.on('data', (d) => this.onData(d));
    this.sock.on('error', (e) => stop(`connection ${i}: ${e.message}`));
    this.sock.on('close', () => { if (!ended) stop(`connection ${i} closed by the server`); });
  }
  send(due) {
    this.busy = true;
    this.due = due;
    this.sent = now();
    this.sock.write(reqBufs[this.kind]);
  }
  onData(d) {
    this.buf = this.buf === null ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.need < 0) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = this.buf.toString('latin1', 0, end);
        this.status = Number(head.slice(9, 12));
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (m === null) stop(`response without content-length (chunked is not supported): ${head.split('\r\n')[0]}`);
        this.need = Number(m[1]);
        this.buf = this.buf.subarray(end + 4);
      }
      if (this.buf.length < this.need) return;
      this.buf = this.buf.length === this.need ? null : this.buf.subarray(this.need);
      this.need = -1;
      this.done();
      if (this.buf === null) return;
    }
  }
  done() {
    const t = now();
    this.busy = false;
    if (t >= measureFrom && t < measureTo) completedInWindow++;
    if (this.sent >= measureFrom && this.sent < measureTo && n < cap) {
      lat[n] = t - this.sent;
      latSched[n] = t - this.due;
      lag[n] = this.sent - this.due;
      kindOf[n] = this.kind;
      n++;
      statuses[this.status] = (statuses[this.status] ?? 0) + 1;
      if (this.status < 200 || this.status >= 300) errors++;
    }
    // Behind schedule: the next request is already due, send it now (its lag says so).
    if (this.next <= t && this.next < measureTo) this.fire(t);
  }
  fire(t) {
    while (t - this.next > MAX_BEHIND_NS) {
      this.next += periodNs;
      if (this.next >= measureFrom && this.next < measureTo) skipped++;
    }
    const due = this.next;
    this.next += periodNs;
    if (due >= measureFrom && due < measureTo) scheduledInWindow++;
    this.send(due);
  }
}

const conns = Array.from({ length: C }, (_, i) => new Conn(i));
await Promise.all(conns.map((c) => new Promise((r) => c.sock.once('connect', r))));

const cpu0 = process.cpuUsage();
let cpuWindow = null;
let cpuAtEnd = null;
function tick() {
  const t = now();
  if (!started && t >= measureFrom) {
    started = true;
    cpuWindow = process.cpuUsage();
    process.stdout.write('measure-start\n');
  }
  let next = Infinity;
  for (const c of conns) {
    if (!c.busy && c.next <= t && c.next < measureTo) c.fire(t);
    // A busy connection sends its next request from done(); only idle ones need the timer.
    if (!c.busy && c.next < next) next = c.next;
  }
  if (t >= measureTo) {
    if (!ended) {
      ended = true;
      cpuAtEnd = process.cpuUsage(cpuWindow);
      process.stdout.write('measure-end\n');
      finish();
    }
    return;
  }
  const waitMs = (Math.min(next, measureTo) - now()) / 1e6;
  if (next === Infinity) setTimeout(tick, 1); // every connection busy
  else if (waitMs <= 0.05) setImmediate(tick);
  else setTimeout(tick, Math.max(0, Math.floor(waitMs)));
}

function pct(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
function summary(arr, count) {
  const s = Float64Array.from(arr.subarray(0, count)).sort();
  const us = (x) => (x === null ? null : Math.round(x / 10) / 100);
  let sum = 0;
  for (let i = 0; i < count; i++) sum += s[i];
  return {
    count,
    min: us(s[0] ?? null),
    p50: us(pct(s, 50)),
    p75: us(pct(s, 75)),
    p90: us(pct(s, 90)),
    p99: us(pct(s, 99)),
    p999: us(pct(s, 99.9)),
    max: us(s[count - 1] ?? null),
    mean: count ? us(sum / count) : null,
  };
}

function finish() {
  // Answers to requests sent inside the window may still be on their way: wait a little.
  const deadline = now() + 2e9;
  const wait = () => {
    if (conns.some((c) => c.busy) && now() < deadline) return void setTimeout(wait, 5);
    const byKind = {};
    for (let k = 0; k < reqBufs.length; k++) {
      const sel = [];
      for (let i = 0; i < n; i++) if (kindOf[i] === k) sel.push(lat[i]);
      byKind[kinds[k]] = summary(Float64Array.from(sel), sel.length);
    }
    const out = {
      latencyUs: summary(lat, n),
      latencyFromScheduleUs: summary(latSched, n),
      sendLagUs: summary(lag, n),
      byKind,
      scheduled: scheduledInWindow + skipped,
      skipped,
      sampled: n,
      // Requests sent in the window still unanswered 2 s after it: missing from the samples (their latency is > 2 s).
      unanswered: conns.filter((c) => c.busy && c.sent >= measureFrom && c.sent < measureTo).length,
      completed: completedInWindow,
      achievedRps: Math.round((completedInWindow / durationMs) * 1000 * 10) / 10,
      errors,
      statuses,
      generatorCpuUsPerRequest: completedInWindow ? Math.round(((cpuAtEnd.user + cpuAtEnd.system) / completedInWindow) * 100) / 100 : null,
      generatorCpuTotalMs: Math.round((process.cpuUsage(cpu0).user + process.cpuUsage(cpu0).system) / 1000),
    };
    process.stdout.write(JSON.stringify(out) + '\n');
    for (const c of conns) c.sock.destroy();
    process.exit(0);
  };
  wait();
}

tick();
setTimeout(() => stop('did not finish in time'), warmupMs + durationMs + 30_000).unref();
