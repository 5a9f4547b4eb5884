// Statistics over repetitions: median, min–max spread, relative spread, and the rule
// that marks a figure as too noisy to trust.
import { median } from '../core/stats.js';

export const r = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

/** { median, min, max, relSpread, n, noisy } of the non-null values; limit = largest (max-min)/|median| still trusted. */
export function stat(xs, limit = 0.3, absFloor = 0) {
  const v = xs.filter((x) => x !== null && x !== undefined && Number.isFinite(x));
  if (v.length === 0) return { median: null, min: null, max: null, relSpread: null, n: 0, noisy: true };
  const m = median(v);
  const min = Math.min(...v);
  const max = Math.max(...v);
  const rel = m === 0 ? (max === min ? 0 : Infinity) : (max - min) / Math.abs(m);
  // A tiny median (an added latency near zero) makes any spread look huge: below absFloor judge the absolute spread.
  const noisy = v.length < 3 || (Math.abs(m) < absFloor ? max - min > absFloor : rel > limit);
  return { median: r(m, 2), min: r(min, 2), max: r(max, 2), relSpread: r(rel, 3), n: v.length, noisy };
}

/** Parses Prometheus text exposition into { 'name{labels}': value }. */
export function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

/** Sum of every series of a family whose label text contains `labelPart`. */
export function family(m, name, labelPart = '') {
  let s = 0;
  for (const [k, v] of Object.entries(m)) {
    const brace = k.indexOf('{');
    const n = brace < 0 ? k : k.slice(0, brace);
    if (n === name && (labelPart === '' || k.includes(labelPart))) s += v;
  }
  return s;
}

/** What the proxy's /metrics say happened between two scrapes (remote-mode counters). */
export function remoteDelta(before, after) {
  if (!before || !after) return null;
  const d = (name, lp = '') => family(after, name, lp) - family(before, name, lp);
  const hits = d('wasm_mixer_remote_check_cache_hits_total');
  const misses = d('wasm_mixer_remote_check_cache_misses_total');
  const responses = d('wasm_mixer_proxy_responses_total');
  return {
    responses,
    non200: responses - d('wasm_mixer_proxy_responses_total', 'code="200"'),
    cacheHits: hits,
    cacheMisses: misses,
    cacheHitRatio: hits + misses > 0 ? r(hits / (hits + misses), 4) : null,
    checkCalls: d('wasm_mixer_remote_calls_total', 'method="Check"'),
    reportCalls: d('wasm_mixer_remote_calls_total', 'method="Report"'),
    reportEntries: d('wasm_mixer_remote_report_entries_total'),
    reportsDropped: d('wasm_mixer_remote_report_dropped_total'),
    quotaLocalGrants: d('wasm_mixer_remote_quota_local_grants_total'),
    failedCalls: d('wasm_mixer_remote_calls_total') - d('wasm_mixer_remote_calls_total', 'code="OK"'),
  };
}
