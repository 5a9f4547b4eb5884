// Small statistics helpers shared by the core benchmarks.
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
export const spread = (xs) => [Math.min(...xs), Math.max(...xs)];
export const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
