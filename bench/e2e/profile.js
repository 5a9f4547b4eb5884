// Summarizes a V8 .cpuprofile (node --cpu-prof) by self time: top functions, and
// totals grouped by where the code lives: host JS (dist/host), wasm (adapter code),
// node internals (node:*, V8/native builtins), Buffer/typed-array allocation (by the
// allocating function's name), dependencies (node_modules), GC.
// Only samples inside [fromUs, toUs] (V8's monotonic clock, the same CLOCK_MONOTONIC as
// process.hrtime) are counted, so start-up and warm-up are left out.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const ALLOCATORS = /^(alloc|allocUnsafe|allocUnsafeSlow|allocate|createUnsafeBuffer|createPool|FastBuffer|fromString|fromStringFast|fromArrayLike|fromArrayBuffer|from|Uint8Array|ArrayBuffer|DataView|subarray|slice|concat)$/;

export function categoryOf(cf, root) {
  const url = cf.url ?? '';
  const fn = cf.functionName ?? '';
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'V8/native (program)';
  if (fn === '(root)') return 'root';
  // Buffer and typed-array construction, wherever it runs (node's buffer module or V8 builtins).
  if (ALLOCATORS.test(fn) && (url === '' || url.startsWith('node:') || url.startsWith('internal/'))) return 'allocation (Buffer, typed arrays)';
  if (url.startsWith('wasm://') || /^\$?func\d+$/.test(fn) || fn.startsWith('$')) return 'wasm (adapters)';
  if (url.includes('/dist/host/')) return 'host JS';
  if (url.includes('/node_modules/')) return 'dependencies (node_modules)';
  if (url.startsWith('node:') || url.startsWith('internal/')) return 'node internals (JS)';
  if (url === '') return 'node internals (native)';
  if (root && url.includes(root)) return 'bench scripts';
  return 'other';
}

function where(cf, root) {
  const url = (cf.url ?? '').replace(/^file:\/\//, '');
  if (url === '') return '';
  const short = url.startsWith('/') && root ? relative(root, url) : url;
  return `${short}:${(cf.lineNumber ?? 0) + 1}`;
}

export function summarize(file, { fromUs = -Infinity, toUs = Infinity, root = '', top = 25, requests = 0 } = {}) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  let t = p.startTime;
  let kept = 0;
  let first = null;
  let last = null;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i];
    const next = i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : 0;
    if (t < fromUs || t > toUs) continue;
    first ??= t;
    last = t;
    kept++;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + Math.max(0, next));
  }
  // Aggregate by function (same name + location), then by category.
  const fns = new Map();
  const cats = {};
  const hostFiles = {};
  let busy = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id).callFrame;
    const cat = categoryOf(cf, root);
    if (cat === 'idle') {
      idle += us;
      continue;
    }
    if (cat === 'root') continue;
    busy += us;
    cats[cat] = (cats[cat] ?? 0) + us;
    if (cat === 'host JS') {
      const file = where(cf, root).replace(/:\d+$/, '').replace(/^dist\/host\/src\//, '');
      hostFiles[file] = (hostFiles[file] ?? 0) + us;
    }
    const key = `${cf.functionName || '(anonymous)'}\u0000${where(cf, root)}`;
    const f = fns.get(key) ?? { function: cf.functionName || '(anonymous)', where: where(cf, root), category: cat, selfMs: 0 };
    f.selfMs += us / 1000;
    fns.set(key, f);
  }
  const pct = (us) => Math.round((us / busy) * 1000) / 10;
  const perReq = (us) => (requests ? Math.round((us / requests) * 10) / 10 : null);
  return {
    samples: kept,
    windowMs: first === null ? 0 : Math.round((last - first) / 1000),
    busyMs: Math.round(busy / 1000),
    requests,
    busyUsPerRequest: perReq(busy),
    idleMs: Math.round(idle / 1000),
    categories: Object.entries(cats)
      .sort((a, b) => b[1] - a[1])
      .map(([category, us]) => ({ category, selfMs: Math.round(us / 100) / 10, percent: pct(us), usPerRequest: perReq(us) })),
    hostJsByFile: Object.entries(hostFiles)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([file, us]) => ({ file, selfMs: Math.round(us / 100) / 10, percent: pct(us), usPerRequest: perReq(us) })),
    top: [...fns.values()]
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top)
      .map((f) => ({ ...f, selfMs: Math.round(f.selfMs * 10) / 10, percent: pct(f.selfMs * 1000), usPerRequest: perReq(f.selfMs * 1000) })),
  };
}
