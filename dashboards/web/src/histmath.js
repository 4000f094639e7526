// Histogram arithmetic for the offset view (pure, no DOM).

const finite = (v) => typeof v === 'number' && Number.isFinite(v);

/** The value range [lo, hi] over the bucket edges of all histograms. */
export function valueRange(histograms) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const hst of histograms) {
    const e = hst.bucket_limits || [];
    if (e.length < 2) continue;
    if (finite(e[0]) && e[0] < lo) lo = e[0];
    if (finite(e[e.length - 1]) && e[e.length - 1] > hi) hi = e[e.length - 1];
  }
  if (!(hi >= lo)) return null;
  if (hi === lo) return [lo - 0.5, hi + 0.5];
  return [lo, hi];
}

/**
 * Spread the counts of buckets (edges: one more than counts) over `bins` equal bins on
 * [lo, hi], assuming values are uniform within a bucket. Returns the counts per bin
 * (the total is kept, for the part of the buckets inside [lo, hi]).
 */
export function rebin(edges, counts, lo, hi, bins) {
  const out = new Float64Array(bins);
  const width = (hi - lo) / bins;
  if (!(width > 0)) return out;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (!finite(c) || c <= 0) continue;
    const a = edges[i];
    const b = edges[i + 1];
    if (!(b > a)) {
      // a zero-width bucket: all of it in one bin
      const k = Math.min(bins - 1, Math.max(0, Math.floor((a - lo) / width)));
      if (a >= lo && a <= hi) out[k] += c;
      continue;
    }
    const first = Math.max(0, Math.floor((a - lo) / width));
    const last = Math.min(bins - 1, Math.floor((b - lo) / width));
    for (let k = first; k <= last; k++) {
      const binLo = lo + k * width;
      const overlap = Math.min(b, binLo + width) - Math.max(a, binLo);
      if (overlap > 0) out[k] += (c * overlap) / (b - a);
    }
  }
  return out;
}

/** Percentile series for uPlot: {q, steps, values[step][q]} -> [steps, q0[], q1[], ...]. */
export function percentileColumns(p) {
  const cols = [p.steps.slice()];
  for (let j = 0; j < p.q.length; j++) cols.push(p.values.map((row) => (row && finite(row[j]) ? row[j] : null)));
  return cols;
}

/** About `count` round tick values within [lo, hi]. */
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo) || !finite(lo) || !finite(hi)) return finite(lo) ? [lo] : [];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Blend a '#rrggbb' colour with white: t = 0 the colour, t = 1 white. */
export function tint(hex, t) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) return hex;
  const c = m.slice(1).map((x) => Math.round(parseInt(x, 16) + (255 - parseInt(x, 16)) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
