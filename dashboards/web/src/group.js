// Grouping runs by a config value and aggregating their series (pure, no DOM).
//
// aggregate() puts several series {x, y} on one common x grid and returns, per grid point,
// the mean, min, max, population std and count of the series that cover that point.
// A series covers a grid point when the point lies within its x range; its value there is
// its own point, or the linear interpolation of its two neighbours. A gap (null/NaN) next to
// the grid point means that series does not contribute there.

const finite = (v) => typeof v === 'number' && Number.isFinite(v);

/** The label of a run's value for `key` ("(none)" when the run has no such key). */
export function groupValue(config, key) {
  const v = config == null ? undefined : config[key];
  if (v === undefined || v === null) return '(none)';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Map group label -> run ids, groups in first-seen order of `runs`. */
export function groupRuns(runs, key) {
  const groups = new Map();
  for (const run of runs) {
    const label = groupValue(run.config, key);
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label).push(run.run_id);
  }
  return groups;
}

/**
 * The common grid: the sorted distinct x values of all series when there are at most
 * `maxPoints` of them, else `maxPoints` evenly spaced values over the overall x range.
 */
export function commonGrid(xsList, maxPoints = 2000) {
  const seen = new Set();
  let lo = Infinity;
  let hi = -Infinity;
  for (const xs of xsList) {
    for (const x of xs) {
      if (!finite(x)) continue;
      seen.add(x);
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  if (seen.size <= maxPoints) return Array.from(seen).sort((a, b) => a - b);
  const grid = new Array(maxPoints);
  const step = (hi - lo) / (maxPoints - 1);
  for (let i = 0; i < maxPoints; i++) grid[i] = lo + i * step;
  grid[maxPoints - 1] = hi;
  return grid;
}

/**
 * The values of the series (xs ascending) at each grid x (ascending): a number, or
 * undefined outside the series' range or next to a gap.
 */
export function valuesAt(xs, ys, grid) {
  const out = new Array(grid.length).fill(undefined);
  const n = xs.length;
  let j = 0;
  for (let g = 0; g < grid.length; g++) {
    const gx = grid[g];
    if (n === 0 || gx < xs[0] || gx > xs[n - 1]) continue;
    while (j < n - 1 && xs[j + 1] <= gx) j++;
    // now xs[j] <= gx and (j == n-1 or gx < xs[j+1])
    if (xs[j] === gx) {
      if (finite(ys[j])) out[g] = ys[j];
      continue;
    }
    const y0 = ys[j];
    const y1 = ys[j + 1];
    if (!finite(y0) || !finite(y1)) continue;
    const t = (gx - xs[j]) / (xs[j + 1] - xs[j]);
    out[g] = y0 + t * (y1 - y0);
  }
  return out;
}

/**
 * One point per bin for a series (xs ascending): the mean x and mean y of its finite points in
 * each of `bins` equal bins over [lo, hi]. A bin holding only gaps is a gap (null); a bin with no
 * point is left out (the series is interpolated across it). Downsampled series (M4 keeps the
 * first, last, min and max of each pixel column) zigzag; their bin means do not.
 */
export function binMeans(xs, ys, lo, hi, bins) {
  const width = (hi - lo) / bins;
  const outX = [];
  const outY = [];
  let bin = -1;
  let sx = 0;
  let sy = 0;
  let n = 0;
  let gaps = 0;
  const flush = () => {
    if (bin < 0) return;
    if (n > 0) {
      outX.push(sx / n);
      outY.push(sy / n);
    } else if (gaps > 0) {
      outX.push(lo + (bin + 0.5) * width);
      outY.push(null);
    }
  };
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (!finite(x)) continue;
    const b = width > 0 ? Math.min(bins - 1, Math.max(0, Math.floor((x - lo) / width))) : 0;
    if (b !== bin) {
      flush();
      bin = b;
      sx = sy = n = gaps = 0;
    }
    if (finite(ys[i])) {
      sx += x;
      sy += ys[i];
      n++;
    } else gaps++;
  }
  flush();
  return { x: outX, y: outY };
}

/**
 * Aggregate series [{x, y}] -> {x, mean, min, max, std, count}; null where no series covers.
 * Up to `maxPoints` distinct x values: on those x values exactly. More: each series is first
 * reduced to its bin means over `maxPoints` bins, and the grid is the bin centres.
 */
export function aggregate(seriesList, { maxPoints = 2000 } = {}) {
  let grid = commonGrid(seriesList.map((s) => s.x), maxPoints);
  let list = seriesList;
  if (grid.length === maxPoints && maxPoints > 1) {
    const lo = grid[0];
    const hi = grid[maxPoints - 1];
    const w = (hi - lo) / maxPoints;
    grid = Array.from({ length: maxPoints }, (_, i) => lo + (i + 0.5) * w);
    list = seriesList.map((s) => binMeans(s.x, s.y, lo, hi, maxPoints));
  }
  const m = grid.length;
  // Welford's running mean and sum of squared deviations: stable for large, close values.
  const mu = new Float64Array(m);
  const m2 = new Float64Array(m);
  const count = new Array(m).fill(0);
  const min = new Array(m).fill(null);
  const max = new Array(m).fill(null);
  for (const s of list) {
    const vals = valuesAt(s.x, s.y, grid);
    for (let g = 0; g < m; g++) {
      const v = vals[g];
      if (v === undefined) continue;
      const c = ++count[g];
      const d = v - mu[g];
      mu[g] += d / c;
      m2[g] += d * (v - mu[g]);
      if (min[g] === null || v < min[g]) min[g] = v;
      if (max[g] === null || v > max[g]) max[g] = v;
    }
  }
  const mean = new Array(m);
  const std = new Array(m);
  for (let g = 0; g < m; g++) {
    const c = count[g];
    mean[g] = c === 0 ? null : mu[g];
    std[g] = c === 0 ? null : Math.sqrt(Math.max(0, m2[g] / c));
  }
  return { x: grid, mean, min, max, std, count };
}
