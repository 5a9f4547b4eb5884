// Turns the runner's raw results into summaries (medians, spreads, ratios against the
// baseline measured in the same repetition, noise flags), a Markdown report and SVG charts.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { median } from '../core/stats.js';
import { r, stat } from './stats.js';
import { groupedBars, linePanels, stackedBars } from './svg.js';

const PCTS = ['p50', 'p90', 'p99', 'max'];
// Figures whose runs differ by more than this share of their median are flagged.
const LIMIT = { latency: 0.3, cpu: 0.2, rps: 0.2 };
const OTHER_LOAD_CORES = 0.25;

const MiB = (kib) => (kib === null || kib === undefined ? null : r(kib / 1024, 1));
const get = (o, path) => path.split('.').reduce((a, k) => (a === null || a === undefined ? a : a[k]), o);

function summarizeOpen(block, baseline = 'direct') {
  const out = {};
  const base = block.runs[baseline] ?? [];
  for (const [id, runs] of Object.entries(block.runs)) {
    const s = { latency: {}, added: {}, ratio: {}, cpu: {}, rss: {}, remote: null };
    for (const p of PCTS) {
      s.latency[p] = stat(runs.map((x) => x.latencyUs[p]), LIMIT.latency);
      const pairs = runs.map((x) => [x, base.find((b) => b.rep === x.rep)]).filter(([, b]) => b);
      s.added[p] = stat(pairs.map(([x, b]) => x.latencyUs[p] - b.latencyUs[p]), LIMIT.latency, 50);
      s.ratio[p] = stat(pairs.map(([x, b]) => x.latencyUs[p] / b.latencyUs[p]), LIMIT.latency);
    }
    for (const k of ['proxy', 'server', 'upstream', 'loadgen']) {
      if (runs.some((x) => x.processes[k])) s.cpu[k] = stat(runs.map((x) => x.processes[k]?.cpuUsPerRequest ?? null), LIMIT.cpu);
    }
    s.cpu.total = stat(runs.map((x) => (x.processes.proxy?.cpuUsPerRequest ?? 0) + (x.processes.server?.cpuUsPerRequest ?? 0) || null), LIMIT.cpu);
    for (const k of ['proxy', 'server']) {
      if (runs.some((x) => x.processes[k])) s.rss[k] = { rssMiB: MiB(median(runs.map((x) => x.processes[k].rssKiB))), peakMiB: MiB(Math.max(...runs.map((x) => x.processes[k].peakRssKiB))) };
    }
    if (runs.some((x) => x.remote && x.remote.checkCalls + x.remote.cacheHits + x.remote.cacheMisses > 0)) {
      const sum = (k) => runs.reduce((a, x) => a + (x.remote?.[k] ?? 0), 0);
      const reqs = sum('responses');
      s.remote = {
        cacheHitRatio: sum('cacheHits') + sum('cacheMisses') > 0 ? r(sum('cacheHits') / (sum('cacheHits') + sum('cacheMisses')), 4) : null,
        checkCallsPerRequest: reqs ? r(sum('checkCalls') / reqs, 3) : null,
        reportCallsPerRequest: reqs ? r(sum('reportCalls') / reqs, 3) : null,
        reportsDropped: sum('reportsDropped'),
        reportEntries: sum('reportEntries'),
        failedCalls: sum('failedCalls'),
        quotaLocalGrants: sum('quotaLocalGrants'),
      };
    }
    s.errors = runs.reduce((a, x) => a + (x.errors ?? 0), 0);
    s.achievedRps = stat(runs.map((x) => x.achievedRps), LIMIT.rps);
    s.sendLagP99Us = stat(runs.map((x) => x.sendLagUs?.p99 ?? null), 10);
    s.otherProgramsCores = { median: r(median(runs.map((x) => x.window.otherProgramsCores)), 2), max: r(Math.max(...runs.map((x) => x.window.otherProgramsCores)), 2) };
    s.byKindP50 = {};
    for (const k of Object.keys(runs[0]?.byKind ?? {})) s.byKindP50[k] = stat(runs.map((x) => x.byKind[k]?.p50 ?? null), LIMIT.latency);
    out[id] = s;
  }
  return out;
}

function summarizeClosed(block) {
  const out = {};
  for (const [id, runs] of Object.entries(block.runs)) {
    const s = { rps: stat(runs.map((x) => x.rps), LIMIT.rps), latency: {}, cpu: {} };
    for (const p of ['p50', 'p90', 'p99', 'max']) s.latency[p] = stat(runs.map((x) => x.latencyUs[p]), LIMIT.latency);
    for (const k of ['proxy', 'server', 'upstream', 'wrk']) if (runs.some((x) => x.processes[k])) s.cpu[k] = stat(runs.map((x) => x.processes[k]?.cpuUsPerRequest ?? null), LIMIT.cpu);
    s.cpu.total = stat(runs.map((x) => (x.processes.proxy?.cpuUsPerRequest ?? 0) + (x.processes.server?.cpuUsPerRequest ?? 0) || null), LIMIT.cpu);
    s.non2xx = runs.reduce((a, x) => a + x.non2xx, 0);
    s.socketErrors = runs.reduce((a, x) => a + x.socketErrors, 0);
    s.reportsDropped = runs.reduce((a, x) => a + (x.remote?.reportsDropped ?? 0), 0);
    s.reportEntries = runs.reduce((a, x) => a + (x.remote?.reportEntries ?? 0), 0);
    s.cacheHitRatio = (() => {
      const h = runs.reduce((a, x) => a + (x.remote?.cacheHits ?? 0), 0);
      const m = runs.reduce((a, x) => a + (x.remote?.cacheMisses ?? 0), 0);
      return h + m ? r(h / (h + m), 4) : null;
    })();
    s.otherProgramsCores = { median: r(median(runs.map((x) => x.window.otherProgramsCores)), 2), max: r(Math.max(...runs.map((x) => x.window.otherProgramsCores)), 2) };
    out[id] = s;
  }
  return out;
}

// ---- formatting -------------------------------------------------------------------------------------------
const NOISY = '†';
const fmtUs = (v) => (v === null || v === undefined ? '–' : Math.abs(v) >= 10_000 ? `${r(v / 1000, 1)} ms` : Math.abs(v) >= 1000 ? `${r(v / 1000, 2)} ms` : `${Math.round(v)} µs`);
const signed = (v, f) => (v === null || v === undefined ? '–' : `${v >= 0 ? '+' : '−'}${f(Math.abs(v))}`);
const cell = (s, f = fmtUs, withSpread = true) => {
  if (!s || s.median === null) return '–';
  const sp = withSpread && s.n > 1 ? ` <sub>${f(s.min)}–${f(s.max)}</sub>` : '';
  return `${f(s.median)}${s.noisy ? NOISY : ''}${sp}`;
};
const addedCell = (s) => {
  if (!s || s.median === null) return '–';
  const f = (v) => signed(v, fmtUs);
  return `${f(s.median)}${s.noisy ? NOISY : ''} <sub>${f(s.min)}…${f(s.max)}</sub>`;
};
const num = (v, d = 1) => (v === null || v === undefined ? '–' : String(r(v, d)));
const numCell = (s, d = 1) => (!s || s.median === null ? '–' : `${num(s.median, d)}${s.noisy ? NOISY : ''} <sub>${num(s.min, d)}–${num(s.max, d)}</sub>`);
const pct = (v) => (v === null || v === undefined ? '–' : `${r(v * 100, 1)} %`);

export async function writeReport(results, dir, base) {
  const labels = Object.fromEntries(results.scenarios.map((s) => [s.id, s.label]));
  const flags = [];
  for (const [k, block] of Object.entries(results.openLoop)) {
    block.summary = summarizeOpen(block);
    for (const [id, s] of Object.entries(block.summary)) {
      if (s.errors) flags.push(`open loop ${k}, ${labels[id]}: ${s.errors} responses were not 2xx`);
      if (s.achievedRps.median !== null && s.achievedRps.median < 0.97 * block.rate) flags.push(`open loop ${k}, ${labels[id]}: the target could not keep ${block.rate} req/s (median ${s.achievedRps.median}); its latencies include queueing`);
      if (s.sendLagP99Us.median > 2000) flags.push(`open loop ${k}, ${labels[id]}: requests left up to ${fmtUs(s.sendLagP99Us.median)} late (p99 send lag): the connection was still busy or the generator was starved`);
      if (s.remote?.reportsDropped) flags.push(`open loop ${k}, ${labels[id]}: ${s.remote.reportsDropped} reports dropped by the proxy (at most 8 Report calls in flight): the adapter server did less telemetry work than requests made`);
      if (s.otherProgramsCores.max > OTHER_LOAD_CORES) flags.push(`open loop ${k}, ${labels[id]}: other programs on the machine used up to ${s.otherProgramsCores.max} cores during its runs`);
    }
  }
  for (const [k, block] of Object.entries(results.closedLoop)) {
    block.summary = summarizeClosed(block);
    for (const [id, s] of Object.entries(block.summary)) {
      if (s.non2xx || s.socketErrors) flags.push(`closed loop ${k}, ${labels[id]}: ${s.non2xx} non-2xx responses, ${s.socketErrors} socket errors`);
      if (s.reportsDropped) flags.push(`closed loop ${k}, ${labels[id]}: ${s.reportsDropped} of ${s.reportsDropped + s.reportEntries} report entries dropped by the proxy (Report backlog): saturation throughput is flattered by telemetry that was never processed`);
      if (s.otherProgramsCores.max > OTHER_LOAD_CORES) flags.push(`closed loop ${k}, ${labels[id]}: other programs used up to ${s.otherProgramsCores.max} cores`);
    }
  }
  if (results.chain) {
    results.chain.summary = summarizeOpen(results.chain);
    for (const [id, s] of Object.entries(results.chain.summary)) {
      if (s.remote?.reportsDropped) flags.push(`chain sweep, ${id}: ${s.remote.reportsDropped} reports dropped`);
      if (s.errors) flags.push(`chain sweep, ${id}: ${s.errors} non-2xx`);
    }
  }
  for (const [mode, by] of Object.entries(results.micro?.summary ?? {})) {
    for (const [name, s] of Object.entries(by)) {
      if (s.reportsDropped) flags.push(`micro tier, ${mode}, ${name}: ${s.reportsDropped} reports dropped by the client (Report backlog): the server CPU per request leaves that telemetry work out`);
      if (s.errors) flags.push(`micro tier, ${mode}, ${name}: ${s.errors} requests failed (${s.lastError})`);
    }
  }
  for (const f of results.failures ?? []) flags.push(`FAILED and left out: ${f.what}: ${f.error.split('\n')[0]}`);
  results.flags = flags;

  const files = [];
  const md = markdown(results, base, labels);
  await writeFile(join(dir, `${base}.md`), md);
  files.push(`${base}.md`);
  for (const [name, svg] of Object.entries(charts(results, labels))) {
    await writeFile(join(dir, `${base}-${name}.svg`), svg);
    files.push(`${base}-${name}.svg`);
  }
  await writeFile(join(dir, `${base}.json`), JSON.stringify(results, null, 1) + '\n');
  files.push(`${base}.json`);
  return files;
}

function otherLoad(res) {
  const xs = [];
  for (const b of [...Object.values(res.openLoop), ...Object.values(res.closedLoop), ...(res.chain ? [res.chain] : [])]) {
    for (const runs of Object.values(b.runs)) for (const x of runs) xs.push(x.window.otherProgramsCores);
  }
  return xs.length ? `${r(median(xs), 2)} / ${r(Math.max(...xs), 2)}` : '–';
}

function markdown(res, base, labels) {
  const L = [];
  const m = res.machine;
  const head = Object.keys(res.openLoop)[0];
  const open = res.openLoop[head];
  L.push(`# wasm-mixer benchmark — ${res.profile} profile`);
  L.push('');
  L.push(`Command: \`${res.command}\` (after \`npm ci && npm run system-deps && npm run build\`), ${res.date}, ${Math.round(res.durationS / 60)} min.`);
  L.push(`Machine: ${m.cpus} × ${m.model}, ${m.memGiB} GiB, ${m.os ?? ''} (kernel ${m.kernel}), Node ${m.node} (V8 ${m.v8}), ${m.wrk}. Load average at start ${m.loadAvgAtStart.join(' / ')}, at end ${m.loadAvgAtEnd?.join(' / ')}; other programs used ${m.otherProgramsCoresBeforeStart} cores just before the start, and ${otherLoad(res)} during the measured runs (median / max, cores).`);
  if (res.git) L.push(`Code: commit ${res.git.commit.slice(0, 12)}${res.git.uncommittedChanges.length ? ` plus uncommitted changes in the shared working tree (${res.git.uncommittedChanges.join('; ')})` : ''}.`);
  if (res.settings.nice) L.push(`All benchmark processes ran at nice ${res.settings.nice} (\`--nice\`), ahead of other programs on the machine.`);
  L.push(`Everything (load generator, proxy, adapter server, upstream) shares these ${m.cpus} cores over loopback. ${res.settings.reps} repetitions of every run, scenarios interleaved (rotated order each repetition); cells show the median and, small, the range over the repetitions. ${NOISY} marks a figure whose repetitions differ by more than 30 % (latency) / 20 % (CPU, throughput) of its median: too noisy to trust on its own. Raw figures of every run: [${base}.json](${base}.json).`);
  L.push('');
  L.push('## Headline');
  L.push('');
  const sat = Object.values(res.closedLoop).at(-1);
  L.push(`| scenario | added latency p50 / p90 / p99 at ${open.rate} req/s | CPU per request, proxy + adapter server | × proxy without adapters | req/s at saturation${sat ? ` (${sat.connections} conns)` : ''} | check-cache hits |`);
  L.push('|---|---|---|---|---|---|');
  const p0 = open.summary.proxy?.cpu.total.median;
  for (const [id, s] of Object.entries(open.summary)) {
    const added = id === 'direct' ? `baseline: ${['p50', 'p90', 'p99'].map((p) => fmtUs(s.latency[p].median)).join(' / ')}` : ['p50', 'p90', 'p99'].map((p) => `${signed(s.added[p].median, fmtUs)}${s.added[p].noisy ? NOISY : ''}`).join(' / ');
    const over = s.achievedRps.median !== null && s.achievedRps.median < 0.97 * open.rate ? ` (overloaded: ${num(s.achievedRps.median, 0)} req/s answered)` : '';
    const cpu = id === 'direct' ? '–' : `${fmtUs(s.cpu.total.median)}${s.cpu.total.noisy ? NOISY : ''}${s.cpu.server ? ` (${fmtUs(s.cpu.proxy.median)} + ${fmtUs(s.cpu.server.median)})` : ''}`;
    const x = id === 'direct' || !p0 ? '–' : `×${r(s.cpu.total.median / p0, 2)}`;
    const rps = sat ? `${num(sat.summary[id].rps.median, 0)}${sat.summary[id].rps.noisy ? NOISY : ''}` : '–';
    L.push(`| ${labels[id]} | ${added}${over} | ${cpu} | ${x} | ${rps} | ${s.remote?.cacheHitRatio != null ? pct(s.remote.cacheHitRatio) : '–'} |`);
  }
  L.push('');
  L.push(`## Latency at a constant ${open.rate} req/s (open loop, ${open.connections} connections, 1 KiB POST, 1 KiB response)`);
  L.push('');
  L.push(`Istio's setting (fortio -qps ${open.rate} -c ${open.connections}, 1 KiB payloads). Latency of each request from its write to the last byte of its answer (µs timer, every sample kept); \"added\" = scenario − upstream direct in the same repetition.`);
  L.push('');
  L.push('| scenario | p50 | p90 | p99 | max | added p50 | added p90 | added p99 | added max |');
  L.push('|---|---|---|---|---|---|---|---|---|');
  for (const [id, s] of Object.entries(open.summary)) {
    L.push(`| ${labels[id]} | ${PCTS.map((p) => cell(s.latency[p])).join(' | ')} | ${id === 'direct' ? 'baseline | | |' : PCTS.map((p) => addedCell(s.added[p])).join(' | ')} |`);
  }
  L.push('');
  L.push(`Max is a single sample per run: indicative only. By credential (p50): ${Object.entries(open.summary).filter(([id]) => id !== 'direct').map(([id, s]) => `${labels[id]}: ${Object.entries(s.byKindP50).map(([k, v]) => `${k} ${fmtUs(v.median)}`).join(', ')}`).join('; ')}.`);
  L.push('');
  L.push(`## Cost per request at ${open.rate} req/s`);
  L.push('');
  L.push('CPU time (user + system, from `/proc/<pid>/stat`) of each process during the measured window, divided by the requests answered. vCPU = cores busy at this rate (compare Istio\'s "vCPU per 1000 rps").');
  L.push('');
  L.push('| scenario | proxy CPU/req | adapter server CPU/req | proxy + server | × proxy without adapters | vCPU at 1000 req/s | upstream CPU/req | RSS proxy / server (MiB) | check-cache hits | Check / Report calls per request | reports dropped |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|');
  const baseTotal = open.summary.proxy?.cpu.total.median;
  for (const [id, s] of Object.entries(open.summary)) {
    if (id === 'direct') {
      L.push(`| ${labels[id]} | – | – | – | – | – | ${cell(s.cpu.upstream)} | – | – | – | – |`);
      continue;
    }
    const tot = s.cpu.total;
    const rem = s.remote;
    L.push(
      `| ${labels[id]} | ${cell(s.cpu.proxy)} | ${cell(s.cpu.server)} | ${cell(tot)} | ${baseTotal ? `×${r(tot.median / baseTotal, 2)}` : '–'} | ${tot.median === null ? '–' : r((tot.median * open.rate) / 1e6, 2)} | ${cell(s.cpu.upstream)} | ${s.rss.proxy?.rssMiB ?? '–'} / ${s.rss.server?.rssMiB ?? '–'} | ${rem ? pct(rem.cacheHitRatio) : '–'} | ${rem ? `${rem.checkCallsPerRequest} / ${rem.reportCallsPerRequest}` : '–'} | ${rem ? rem.reportsDropped : '–'} |`,
    );
  }
  L.push('');
  L.push(`Load generator CPU: ${Object.entries(open.summary).map(([id, s]) => `${labels[id]} ${fmtUs(s.cpu.loadgen?.median)}`).join(', ')} per request (part of every scenario, cancelled by the baseline).`);
  for (const [k, b] of Object.entries(res.openLoop).slice(1)) {
    L.push('');
    L.push(`### ${b.connections} connections at ${b.rate} req/s`);
    L.push('');
    L.push('| scenario | p50 | p90 | p99 | added p50 | added p90 | added p99 | proxy + server CPU/req |');
    L.push('|---|---|---|---|---|---|---|---|');
    for (const [id, s] of Object.entries(b.summary)) L.push(`| ${labels[id]} | ${['p50', 'p90', 'p99'].map((p) => cell(s.latency[p])).join(' | ')} | ${id === 'direct' ? ' | |' : ['p50', 'p90', 'p99'].map((p) => addedCell(s.added[p])).join(' | ')} | ${cell(s.cpu.total)} |`);
    void k;
  }
  if (Object.keys(res.closedLoop).length) {
    L.push('');
    L.push('## Throughput at saturation (closed loop, wrk -t1)');
    L.push('');
    const cs = Object.values(res.closedLoop);
    L.push(`| scenario | ${cs.map((b) => `req/s, ${b.connections} conn${b.connections > 1 ? 's' : ''}`).join(' | ')} | ${cs.map((b) => `p50 / p99, ${b.connections}`).join(' | ')} |`);
    L.push(`|---|${cs.map(() => '---').join('|')}|${cs.map(() => '---').join('|')}|`);
    for (const id of Object.keys(cs[0].summary)) {
      L.push(`| ${labels[id]} | ${cs.map((b) => numCell(b.summary[id].rps, 0)).join(' | ')} | ${cs.map((b) => `${fmtUs(b.summary[id].latency.p50.median)} / ${fmtUs(b.summary[id].latency.p99.median)}${b.summary[id].latency.p99.noisy ? NOISY : ''}`).join(' | ')} |`);
    }
    L.push('');
    const last = cs[cs.length - 1];
    L.push(`CPU per request at saturation (${last.connections} connections): ${Object.entries(last.summary).filter(([id]) => id !== 'direct').map(([id, s]) => `${labels[id]} ${fmtUs(s.cpu.total.median)}${s.cpu.server ? ` (server ${fmtUs(s.cpu.server.median)})` : ''}`).join('; ')}. wrk itself: ${fmtUs(last.summary.direct?.cpu.wrk?.median)}/request.`);
    const drops = Object.entries(last.summary).filter(([, s]) => s.reportsDropped);
    if (drops.length) L.push(`Reports dropped by the proxy at ${last.connections} connections: ${drops.map(([id, s]) => `${labels[id]} ${s.reportsDropped} of ${s.reportsDropped + s.reportEntries} (${pct(s.reportsDropped / (s.reportsDropped + s.reportEntries))})`).join('; ')}.`);
  }
  if (res.chain) {
    L.push('');
    L.push(`## Cost vs number of adapters (${open.rate} req/s, 16 connections)`);
    L.push('');
    L.push('1 = auth; 2 = + quota; 4 = + logging, prometheus; 8 = + a second auth, quota and logging, and header-check. Added p50 over upstream direct in the same repetition.');
    L.push('');
    const modes = res.chain.modes;
    L.push(`| adapters | ${modes.map((m) => `${m}: CPU/req (proxy + server)`).join(' | ')} | ${modes.map((m) => `${m}: added p50 / p99`).join(' | ')} |`);
    L.push(`|---|${modes.map(() => '---').join('|')}|${modes.map(() => '---').join('|')}|`);
    for (const n of res.chain.sizes) {
      const ids = modes.map((m) => (n === 0 ? 'proxy' : n === 4 ? m : `${m}-${n}`));
      const cs = ids.map((id) => res.chain.summary[id]);
      L.push(`| ${n} | ${cs.map((s) => cell(s?.cpu.total)).join(' | ')} | ${cs.map((s) => (s ? `${signed(s.added.p50.median, fmtUs)}${s.added.p50.noisy ? NOISY : ''} / ${signed(s.added.p99.median, fmtUs)}${s.added.p99.noisy ? NOISY : ''}` : '–')).join(' | ')} |`);
    }
  }
  if (res.micro) {
    L.push('');
    L.push('## Micro tier: the chain alone, no HTTP');
    L.push('');
    L.push('The four adapters driven through WasmHost as the proxy drives them (request headers, response headers, log phase) in one process; remote variants talk gRPC to an adapter server in another process. "bare Check" is one gRPC Check that runs no adapter: the transport floor. CPU = this process + adapter server, per request.');
    L.push('');
    L.push('| mode | variant | wall p50 | wall p99 | req/s | CPU/req (client + server) | cache hits | reports dropped |');
    L.push('|---|---|---|---|---|---|---|---|');
    for (const [mode, by] of Object.entries(res.micro.summary)) {
      for (const [name, s] of Object.entries(by)) {
        L.push(`| ${mode} | ${name} | ${fmtUs(s.wallUsP50.median)} | ${fmtUs(s.wallUsP99.median)} | ${num(s.perSecond.median, 0)} | ${fmtUs(s.totalCpuUs.median)} (${fmtUs(s.clientCpuUs.median)} + ${fmtUs(s.serverCpuUs.median)}) | ${s.cacheHitRatio === null ? '–' : pct(s.cacheHitRatio)} | ${s.reportsDropped} |`);
      }
    }
  }
  if (res.adapters) {
    const a = res.adapters;
    L.push('');
    L.push('## In-process adapters: CPU per request, per adapter and per layer');
    L.push('');
    L.push(`\`${a.command} --profile\`: one API-key request's lifecycle through WasmHost, sequentially; medians of interleaved runs, each against the host with no adapter in the same run. Metered chain ÷ unmetered: ×${a.meteringCost}. Start-up of the four: ${a.startup.chain4LoadMs} ms (load + compile + configure), RSS +${a.startup.chain4RssAddedMiB} MiB.`);
    L.push('');
    L.push('| variant | CPU/req | over no-adapter host |');
    L.push('|---|---|---|');
    for (const x of a.rows) L.push(`| ${x.variant} | ${x.cpuUsPerRequest} µs | ${x.overBaselineUs} µs |`);
    if (a.layers) {
      const cols = [...new Set(Object.values(a.layers).flatMap((l) => l.categories.map((c) => c.category)))];
      L.push('');
      L.push('By layer (a profiled pass; the sampler inflates absolute values, compare shares): µs per request (share of busy time).');
      L.push('');
      L.push(`| variant | busy | ${cols.join(' | ')} |`);
      L.push(`|---|---|${cols.map(() => '---').join('|')}|`);
      for (const [n, l] of Object.entries(a.layers)) {
        const cell = (c) => {
          const x = l.categories.find((k) => k.category === c);
          return x ? `${x.usPerRequest} (${x.percent} %)` : '–';
        };
        L.push(`| ${n} | ${l.busyUsPerRequest} | ${cols.map(cell).join(' | ')} |`);
      }
    }
  }
  if (res.cpuProfiles) {
    for (const [mode, p] of Object.entries(res.cpuProfiles)) {
      for (const [who, sum] of [['proxy', p.proxy], ['adapter server', p.server]]) {
        if (!sum) continue;
        L.push('');
        L.push(`## CPU profile: ${mode === 'inproc' ? 'in-process proxy (4 adapters)' : mode === 'none' ? 'proxy without adapters' : `naive out-of-process: ${who}`}`);
        L.push('');
        L.push(`\`node --cpu-prof --cpu-prof-interval 250\`, ${p.rate ?? open.rate} req/s for ${sum.windowMs} ms (${sum.samples} samples, warm-up excluded); ${sum.busyMs} ms busy, ${sum.idleMs} ms idle. Self time by where the code lives: share, and µs per request (${sum.busyUsPerRequest ?? '–'} µs in all; the profiler's own overhead inflates these absolute values, compare them with each other, not with the CPU table):`);
        L.push('');
        L.push(`| ${sum.categories.map((c) => c.category).join(' | ')} |`);
        L.push(`|${sum.categories.map(() => '---').join('|')}|`);
        L.push(`| ${sum.categories.map((c) => `${c.percent} % (${c.usPerRequest ?? '–'} µs)`).join(' | ')} |`);
        if (sum.hostJsByFile?.length) {
          L.push('');
          L.push(`Host JS by file: ${sum.hostJsByFile.map((f) => `${f.file} ${f.percent} % (${f.usPerRequest ?? '–'} µs)`).join(', ')}.`);
        }
        L.push('');
        L.push('| self % | function | where | group |');
        L.push('|---|---|---|---|');
        for (const f of sum.top.slice(0, 15)) L.push(`| ${f.percent} | \`${f.function}\` | ${f.where || '(native)'} | ${f.category} |`);
      }
    }
  }
  L.push('');
  L.push('## Charts');
  L.push('');
  L.push(`![latency](${base}-latency.svg)`);
  L.push('');
  L.push(`![cpu](${base}-cpu.svg)`);
  if (res.chain) {
    L.push('');
    L.push(`![chain](${base}-chain.svg)`);
  }
  if (Object.keys(res.closedLoop).length) {
    L.push('');
    L.push(`![throughput](${base}-throughput.svg)`);
  }
  L.push('');
  L.push('## Flags (what not to trust blindly)');
  L.push('');
  if (res.flags.length === 0) L.push('None.');
  for (const f of res.flags) L.push(`- ${f}`);
  L.push('');
  return L.join('\n');
}

const SHORT = { direct: 'upstream direct', proxy: 'proxy, no adapters', inproc: 'in-process', naive: 'remote, naive', prod: 'remote, cache+batch+prefetch' };
const MODE_NAME = { inproc: 'in-process', naive: 'remote, naive', prod: 'remote, cache+batch+prefetch' };

function charts(res, labels) {
  const out = {};
  const k = Object.keys(res.openLoop)[0];
  const open = res.openLoop[k];
  const ids = Object.keys(open.summary);
  const short = (id) => SHORT[id].replace(', ', ',\n').replace('cache+batch+prefetch', 'cache+batch\n+prefetch');
  out.latency = groupedBars(
    ids.map((id) => ({
      label: short(id),
      values: ['p50', 'p90', 'p99', 'max'].map((p) => {
        const s = open.summary[id].latency[p];
        return { v: s.median, lo: s.min, hi: s.max, note: s.noisy ? NOISY : undefined };
      }),
    })),
    { title: `Latency at ${open.rate} req/s, ${open.connections} connections, 1 KiB (open loop)`, subtitle: `median of ${res.settings.reps} runs, whiskers = min–max; ${NOISY} = runs differ > 30 %; log scale`, series: ['p50', 'p90', 'p99', 'max'], yLabel: 'latency', unit: 'us', log: true },
  );
  const cpuIds = ids.filter((id) => id !== 'direct');
  out.cpu = stackedBars(
    cpuIds.map((id) => {
      const s = open.summary[id];
      return { label: short(id), parts: [s.cpu.proxy?.median ?? 0, s.cpu.server?.median ?? 0], lo: s.cpu.total.min, hi: s.cpu.total.max, note: `${Math.round(s.cpu.total.median)} µs${s.cpu.total.noisy ? NOISY : ''}` };
    }),
    { title: `CPU time per request at ${open.rate} req/s`, subtitle: `user+system from /proc, median of ${res.settings.reps} runs; whiskers = min–max of the total`, series: ['proxy', 'adapter server'], yLabel: 'CPU µs per request' },
  );
  if (res.chain) {
    const modes = res.chain.modes;
    const pt = (m, n, f) => {
      const s = res.chain.summary[n === 0 ? 'proxy' : n === 4 ? m : `${m}-${n}`];
      if (!s) return null;
      const v = f(s);
      return { x: n, y: v.median, lo: v.min, hi: v.max };
    };
    out.chain = linePanels(
      [
        { title: 'CPU per request (proxy + adapter server)', yLabel: 'CPU µs per request', series: modes.map((m) => ({ name: MODE_NAME[m], points: res.chain.sizes.map((n) => pt(m, n, (s) => s.cpu.total)).filter(Boolean) })) },
        { title: 'Added latency p50 over direct', yLabel: 'added p50', unit: 'us', series: modes.map((m) => ({ name: MODE_NAME[m], points: res.chain.sizes.map((n) => pt(m, n, (s) => s.added.p50)).filter(Boolean) })) },
      ],
      { title: `Cost vs number of adapters in the chain (${open.rate} req/s, 16 connections)`, subtitle: `median of ${res.settings.reps} runs, bars = min–max` },
    );
  }
  const cs = Object.values(res.closedLoop);
  if (cs.length) {
    out.throughput = linePanels(
      [
        {
          title: 'Throughput at saturation (wrk, closed loop)',
          xLabel: 'connections (log scale)',
          yLabel: 'requests per second (log scale)',
          xLog: true,
          yLog: true,
          series: Object.keys(cs[0].summary).map((id) => ({ name: SHORT[id], points: cs.map((b) => ({ x: b.connections, y: b.summary[id].rps.median, lo: b.summary[id].rps.min, hi: b.summary[id].rps.max })) })),
        },
        {
          title: 'p50 latency at saturation',
          xLabel: 'connections (log scale)',
          yLabel: 'p50 (log scale)',
          xLog: true,
          yLog: true,
          unit: 'us',
          series: Object.keys(cs[0].summary).map((id) => ({ name: SHORT[id], points: cs.map((b) => ({ x: b.connections, y: b.summary[id].latency.p50.median })) })),
        },
      ],
      { title: 'Closed loop across concurrency', subtitle: `median of ${res.settings.reps} runs` },
    );
  }
  void get;
  return out;
}

// Re-renders the Markdown and charts from a results JSON (e.g. after editing this file):
//   node bench/e2e/report.js bench/results/bench-quick.json
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  const { readFile } = await import('node:fs/promises');
  const { dirname, basename } = await import('node:path');
  const file = process.argv[2];
  const res = JSON.parse(await readFile(file, 'utf8'));
  console.log((await writeReport(res, dirname(file), basename(file, '.json'))).join(', '));
}
