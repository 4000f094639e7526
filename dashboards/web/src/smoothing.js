// TensorBoard's debiased exponential moving average (pure, no DOM).
//
//   last = last * w + (1 - w) * y            for each finite y, in order
//   smoothed = last / (1 - w ** count)       count = finite points seen so far
//
// A null, NaN or +-Inf point is a gap: it stays null and does not enter the average.
// A series whose finite values are all equal is returned as is (as TensorBoard does),
// so that float rounding does not draw a wobbly line for a constant.

export const DEFAULT_WEIGHT = 0.6;
export const MAX_WEIGHT = 0.99;

const finite = (v) => typeof v === 'number' && Number.isFinite(v);

export function clampWeight(w) {
  const n = Number(w);
  if (!Number.isFinite(n) || n <= 0) return 0;
  return Math.min(n, MAX_WEIGHT);
}

export function ema(ys, weight = DEFAULT_WEIGHT) {
  const w = clampWeight(weight);
  const n = ys.length;
  const out = new Array(n);
  let first = null;
  let constant = true;
  for (let i = 0; i < n; i++) {
    const y = ys[i];
    if (!finite(y)) continue;
    if (first === null) first = y;
    else if (y !== first) { constant = false; break; }
  }
  if (w === 0 || constant) {
    for (let i = 0; i < n; i++) out[i] = finite(ys[i]) ? ys[i] : null;
    return out;
  }
  let last = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const y = ys[i];
    if (!finite(y)) { out[i] = null; continue; }
    last = last * w + (1 - w) * y;
    count++;
    out[i] = last / (1 - w ** count);
  }
  return out;
}
