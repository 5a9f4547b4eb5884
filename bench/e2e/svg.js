// Minimal SVG charts (no dependency): grouped bars with whiskers (linear or log axis),
// stacked bars, and line charts. Plain text output, readable on GitHub.
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#9c755f'];
const FONT = 'font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"';

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
const fmt = (v) => (v >= 10_000 ? `${Math.round(v / 1000)}k` : v >= 1000 ? `${(v / 1000).toFixed(1).replace(/\.0$/, '')}k` : v >= 10 ? String(Math.round(v)) : String(Math.round(v * 10) / 10));
const fmtUs = (v) => (v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)} ms` : `${Math.round(v)} µs`);

function frame(width, height, title, subtitle, body) {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">${esc(title)}</text>
${subtitle ? `<text x="${width / 2}" y="40" text-anchor="middle" font-size="11" fill="#555">${esc(subtitle)}</text>` : ''}
${body}
</svg>
`;
}

function legend(x, y, names) {
  return names
    .map((n, i) => `<rect x="${x}" y="${y + i * 16}" width="11" height="11" fill="${COLORS[i % COLORS.length]}"/><text x="${x + 16}" y="${y + 10 + i * 16}">${esc(n)}</text>`)
    .join('\n');
}

/**
 * Grouped bars. groups: [{ label, values: [{ v, lo, hi, note }] }] (one value per series).
 * opts: { title, subtitle, series: [names], yLabel, log: bool, unit: 'us'|'' }
 */
export function groupedBars(groups, opts) {
  const W = Math.max(720, 120 + groups.length * (opts.series.length * 22 + 40));
  const H = 420;
  const L = 70, R = 120, T = 56, B = 80;
  const pw = W - L - R, ph = H - T - B;
  const all = groups.flatMap((g) => g.values.flatMap((v) => [v.v, v.hi ?? v.v])).filter((x) => x > 0);
  const log = opts.log ?? false;
  const lo = log ? 10 ** Math.floor(Math.log10(Math.min(...all))) : 0;
  const hi = log ? 10 ** Math.ceil(Math.log10(Math.max(...all))) : niceMax(Math.max(...all));
  const y = (v) => (log ? T + ph - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * ph : T + ph - (v / hi) * ph);
  let s = '';
  const ticks = log ? Array.from({ length: Math.round(Math.log10(hi / lo)) + 1 }, (_, i) => lo * 10 ** i) : Array.from({ length: 6 }, (_, i) => (hi * i) / 5);
  for (const t of ticks) {
    s += `<line x1="${L}" x2="${L + pw}" y1="${y(t)}" y2="${y(t)}" stroke="#e3e3e3"/><text x="${L - 6}" y="${y(t) + 4}" text-anchor="end" fill="#444">${esc(opts.unit === 'us' ? fmtUs(t) : fmt(t))}</text>\n`;
  }
  const gw = pw / groups.length;
  const bw = Math.min(24, (gw - 16) / opts.series.length);
  groups.forEach((g, gi) => {
    const x0 = L + gi * gw + (gw - bw * opts.series.length) / 2;
    g.values.forEach((v, si) => {
      if (v === null || !(v.v > 0)) return;
      const x = x0 + si * bw;
      s += `<rect x="${x.toFixed(1)}" y="${y(v.v).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(T + ph - y(v.v)).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${g.label} ${opts.series[si]}: ${opts.unit === 'us' ? fmtUs(v.v) : fmt(v.v)}${v.lo !== undefined ? ` (runs ${fmt(v.lo)}–${fmt(v.hi)})` : ''}`)}</title></rect>\n`;
      if (v.lo !== undefined && v.hi !== undefined && v.hi > v.lo) {
        const cx = x + (bw - 2) / 2;
        s += `<line x1="${cx}" x2="${cx}" y1="${y(v.hi)}" y2="${y(Math.max(v.lo, log ? lo : 0))}" stroke="#222" stroke-width="1"/><line x1="${cx - 3}" x2="${cx + 3}" y1="${y(v.hi)}" y2="${y(v.hi)}" stroke="#222"/><line x1="${cx - 3}" x2="${cx + 3}" y1="${y(Math.max(v.lo, log ? lo : 0))}" y2="${y(Math.max(v.lo, log ? lo : 0))}" stroke="#222"/>\n`;
      }
      if (v.note) s += `<text x="${x + bw / 2}" y="${y(v.hi ?? v.v) - 5}" text-anchor="middle" font-size="10" fill="#a00">${esc(v.note)}</text>\n`;
    });
    const lines = String(g.label).split('\n');
    lines.forEach((ln, li) => {
      s += `<text x="${L + gi * gw + gw / 2}" y="${T + ph + 16 + li * 13}" text-anchor="middle" font-size="11">${esc(ln)}</text>\n`;
    });
  });
  s += `<line x1="${L}" x2="${L}" y1="${T}" y2="${T + ph}" stroke="#888"/><line x1="${L}" x2="${L + pw}" y1="${T + ph}" y2="${T + ph}" stroke="#888"/>\n`;
  s += `<text transform="translate(16 ${T + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">${esc(opts.yLabel ?? '')}</text>\n`;
  s += legend(L + pw + 16, T + 4, opts.series);
  return frame(W, H, opts.title, opts.subtitle, s);
}

/** Stacked bars. groups: [{ label, parts: [v per series], total, lo, hi }]. */
export function stackedBars(groups, opts) {
  const W = Math.max(720, 140 + groups.length * 90);
  const H = 420;
  const L = 70, R = 190, T = 56, B = 80;
  const pw = W - L - R, ph = H - T - B;
  const hi = niceMax(Math.max(...groups.map((g) => Math.max(g.hi ?? 0, g.parts.reduce((a, b) => a + (b ?? 0), 0)))));
  const y = (v) => T + ph - (v / hi) * ph;
  let s = '';
  for (let i = 0; i <= 5; i++) {
    const t = (hi * i) / 5;
    s += `<line x1="${L}" x2="${L + pw}" y1="${y(t)}" y2="${y(t)}" stroke="#e3e3e3"/><text x="${L - 6}" y="${y(t) + 4}" text-anchor="end" fill="#444">${esc(fmt(t))}</text>\n`;
  }
  const gw = pw / groups.length;
  const bw = Math.min(48, gw - 20);
  groups.forEach((g, gi) => {
    const x = L + gi * gw + (gw - bw) / 2;
    let acc = 0;
    g.parts.forEach((v, si) => {
      if (!(v > 0)) return;
      s += `<rect x="${x}" y="${y(acc + v)}" width="${bw}" height="${y(acc) - y(acc + v)}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${g.label} ${opts.series[si]}: ${fmt(v)}`)}</title></rect>\n`;
      acc += v;
    });
    if (g.lo !== undefined && g.hi !== undefined && g.hi > g.lo) {
      const cx = x + bw / 2;
      s += `<line x1="${cx}" x2="${cx}" y1="${y(g.hi)}" y2="${y(g.lo)}" stroke="#222"/><line x1="${cx - 4}" x2="${cx + 4}" y1="${y(g.hi)}" y2="${y(g.hi)}" stroke="#222"/><line x1="${cx - 4}" x2="${cx + 4}" y1="${y(g.lo)}" y2="${y(g.lo)}" stroke="#222"/>\n`;
    }
    s += `<text x="${x + bw / 2}" y="${y(Math.max(acc, g.hi ?? 0)) - 6}" text-anchor="middle" font-size="11" font-weight="600">${esc(g.note ?? fmt(acc))}</text>\n`;
    String(g.label).split('\n').forEach((ln, li) => {
      s += `<text x="${x + bw / 2}" y="${T + ph + 16 + li * 13}" text-anchor="middle" font-size="11">${esc(ln)}</text>\n`;
    });
  });
  s += `<line x1="${L}" x2="${L}" y1="${T}" y2="${T + ph}" stroke="#888"/><line x1="${L}" x2="${L + pw}" y1="${T + ph}" y2="${T + ph}" stroke="#888"/>\n`;
  s += `<text transform="translate(16 ${T + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">${esc(opts.yLabel ?? '')}</text>\n`;
  s += legend(L + pw + 16, T + 4, opts.series);
  return frame(W, H, opts.title, opts.subtitle, s);
}

/**
 * Line charts side by side. panels: [{ title, yLabel, series: [{ name, points: [{ x, y, lo, hi }] }] }].
 */
export function linePanels(panels, opts) {
  const PW = 420, PH = 300;
  const L = 64, T = 70, gap = 70, R = 230;
  const W = L + panels.length * PW + (panels.length - 1) * gap + R;
  const H = T + PH + 60;
  let s = '';
  const names = [];
  panels.forEach((p, pi) => {
    const ox = L + pi * (PW + gap);
    const xs = [...new Set(p.series.flatMap((se) => se.points.map((q) => q.x)))].sort((a, b) => a - b);
    const xmax = Math.max(...xs, 1);
    const xmin = Math.min(...xs);
    const vals = p.series.flatMap((se) => se.points.flatMap((q) => [q.y, q.hi]).filter((v) => v > 0));
    const ylo = p.yLog ? 10 ** Math.floor(Math.log10(Math.min(...vals))) : 0;
    const ymax = p.yLog ? 10 ** Math.ceil(Math.log10(Math.max(...vals))) : niceMax(Math.max(...vals));
    const X = p.xLog ? (v) => ox + ((Math.log2(v) - Math.log2(xmin)) / Math.max(1e-9, Math.log2(xmax) - Math.log2(xmin))) * PW : (v) => ox + (v / xmax) * PW;
    const Y = p.yLog
      ? (v) => T + PH - ((Math.log10(Math.max(v, ylo)) - Math.log10(ylo)) / (Math.log10(ymax) - Math.log10(ylo))) * PH
      : (v) => T + PH - (v / ymax) * PH;
    s += `<text x="${ox + PW / 2}" y="${T - 12}" text-anchor="middle" font-size="13" font-weight="600">${esc(p.title)}</text>\n`;
    const ticks = p.yLog ? Array.from({ length: Math.round(Math.log10(ymax / ylo)) + 1 }, (_, i) => ylo * 10 ** i) : Array.from({ length: 6 }, (_, i) => (ymax * i) / 5);
    for (const t of ticks) {
      s += `<line x1="${ox}" x2="${ox + PW}" y1="${Y(t)}" y2="${Y(t)}" stroke="#e3e3e3"/><text x="${ox - 6}" y="${Y(t) + 4}" text-anchor="end" fill="#444">${esc(p.unit === 'us' ? fmtUs(t) : fmt(t))}</text>\n`;
    }
    for (const x of xs) s += `<line x1="${X(x)}" x2="${X(x)}" y1="${T + PH}" y2="${T + PH + 4}" stroke="#888"/><text x="${X(x)}" y="${T + PH + 17}" text-anchor="middle">${x}</text>\n`;
    s += `<text x="${ox + PW / 2}" y="${T + PH + 36}" text-anchor="middle" fill="#333">${esc(p.xLabel ?? 'adapters in the chain')}</text>\n`;
    s += `<text transform="translate(${ox - 50} ${T + PH / 2}) rotate(-90)" text-anchor="middle" fill="#333">${esc(p.yLabel ?? '')}</text>\n`;
    s += `<line x1="${ox}" x2="${ox}" y1="${T}" y2="${T + PH}" stroke="#888"/><line x1="${ox}" x2="${ox + PW}" y1="${T + PH}" y2="${T + PH}" stroke="#888"/>\n`;
    p.series.forEach((se, si) => {
      if (pi === 0) names.push(se.name);
      const c = COLORS[si % COLORS.length];
      const pts = se.points.filter((q) => q.y !== null && q.y !== undefined && (!p.yLog || q.y > 0));
      s += `<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((q) => `${X(q.x).toFixed(1)},${Y(q.y).toFixed(1)}`).join(' ')}"/>\n`;
      for (const q of pts) {
        s += `<circle cx="${X(q.x)}" cy="${Y(q.y)}" r="3.5" fill="${c}"><title>${esc(`${se.name}, ${q.x}: ${p.unit === 'us' ? fmtUs(q.y) : fmt(q.y)}${q.lo !== undefined ? ` (runs ${fmt(q.lo)}–${fmt(q.hi)})` : ''}`)}</title></circle>\n`;
        if (q.lo !== undefined && q.hi !== undefined && q.hi > q.lo) s += `<line x1="${X(q.x)}" x2="${X(q.x)}" y1="${Y(q.hi)}" y2="${Y(Math.max(p.yLog ? ylo : 0, q.lo))}" stroke="${c}" stroke-opacity="0.5"/>\n`;
      }
    });
  });
  s += legend(W - R + 16, T + 4, names);
  return frame(W, H, opts.title, opts.subtitle, s);
}
