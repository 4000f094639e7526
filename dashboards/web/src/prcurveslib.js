// The PR CURVES tab's pure parts (no DOM): a run's curve as points, the steps of several runs
// on one slider, the point nearest the cursor, and the chart's pixel mapping.

/** One /api/pr_curves series -> the points of its curve, [{recall, precision, threshold, tp, fp, tn, fn}],
 * leaving out thresholds where nothing is predicted positive (TP + FP = 0): precision is 0/0 there
 * (NaN, or the 0 tensorboardX stores), and drawing it would pull every curve down to the origin. */
export function curvePoints(series) {
  const out = [];
  const n = (series.thresholds || []).length;
  for (let i = 0; i < n; i++) {
    const recall = series.recall[i];
    const precision = series.precision[i];
    if (!Number.isFinite(recall) || !Number.isFinite(precision)) continue;
    if (series.true_positives[i] + series.false_positives[i] === 0) continue;
    out.push({
      recall,
      precision,
      threshold: series.thresholds[i],
      tp: series.true_positives[i],
      fp: series.false_positives[i],
      tn: series.true_negatives[i],
      fn: series.false_negatives[i],
    });
  }
  return out;
}

/** The steps of every series, together, ascending and without repeats (the slider's stops). */
export function unionSteps(series) {
  const all = new Set();
  for (const s of series) for (const step of s.steps || []) all.add(step);
  return [...all].sort((a, b) => a - b);
}

/** The slider's index for `step` in `steps`: the last stop at or before it (0 when none is); the end for null. */
export function stepIndex(steps, step) {
  if (!steps.length) return 0;
  if (step === null || step === undefined) return steps.length - 1;
  let index = 0;
  for (let i = 0; i < steps.length; i++) if (steps[i] <= step) index = i;
  return index;
}

/** The chart's mapping of recall (x) and precision (y), both 0..1, into a plot box {left, top, width, height}. */
export function plotScale(box) {
  return {
    x: (recall) => box.left + recall * box.width,
    y: (precision) => box.top + (1 - precision) * box.height,
  };
}

/** The index of the point of `points` nearest (in pixels) to (px, py) under `scale`; -1 for none. */
export function nearestPoint(points, scale, px, py) {
  let best = -1;
  let bestDist = Infinity;
  points.forEach((p, i) => {
    const d = (scale.x(p.recall) - px) ** 2 + (scale.y(p.precision) - py) ** 2;
    if (d < bestDist) {
      bestDist = d;
      best = i;
    }
  });
  return best;
}

/** A count as the readout shows it: whole numbers plainly, others with 3 significant digits. */
export function fmtCount(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toPrecision(3);
}
