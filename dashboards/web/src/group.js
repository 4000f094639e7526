// Grouping runs by a config value (pure, no DOM).
//
// The server aggregates a group's series (/api/scalar_groups: per x column the mean, std, min,
// max and count across the group's runs); groupLines() turns its answer into what a chart
// draws: per group the mean, smoothed, and the band the user picked. The server names a group
// as groupValue() does here; the legend shows the server's label.

import { assignColors } from './colors.js';
import { ema } from './smoothing.js';

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

/** Group labels in order: numbers by value, then text (numeric-aware). */
export function compareLabels(a, b) {
  const x = Number(a);
  const y = Number(b);
  const nx = a.trim() !== '' && Number.isFinite(x);
  const ny = b.trim() !== '' && Number.isFinite(y);
  if (nx && ny) return x - y;
  if (nx !== ny) return nx ? -1 : 1;
  return a.localeCompare(b, undefined, { numeric: true });
}

/**
 * Label -> colour for the groups of `runs` by `key`, plus any `extra` labels. Colours go by
 * label order over all the runs on screen, so a group has the same colour on every chart, also
 * on a chart where another group has no data.
 */
export function groupColors(runs, key, extra = []) {
  const labels = [...new Set([...groupRuns(runs, key).keys(), ...extra])].sort(compareLabels);
  return assignColors(labels.map((label, i) => ({ run_id: label, created_at: i })));
}

/**
 * Label -> colour for the `lines` of a chart (groupLines()), by the label that their runs give
 * here: the same as the server's, except where Python and JavaScript write a number or JSON
 * differently (1e-05 and 0.00001); a group still has the colour it has on other charts.
 */
export function lineColors(runs, key, lines) {
  const byId = new Map(runs.map((r) => [r.run_id, r]));
  const ownLabel = (line) => {
    const run = line.runs.map((id) => byId.get(id)).find(Boolean);
    return run ? groupValue(run.config, key) : line.label;
  };
  const colors = groupColors(runs, key, lines.map(ownLabel));
  return new Map(lines.map((line) => [line.label, colors.get(ownLabel(line))]));
}

const finite = (v) => typeof v === 'number' && Number.isFinite(v);

/**
 * The lines of one chart from the `groups` of an /api/scalar_groups answer, sorted by label:
 * per group with at least one number, {label, runs, x, raw, y, hi, lo} where raw is the mean,
 * y the mean smoothed with `smoothing` (as a run's line is), and hi/lo the band's edges:
 * max/min (band 'minmax') or mean ± std (band 'std'), smoothed alike, so that the band stays
 * around the line it belongs to. A null is a gap in every one of them.
 */
export function groupLines(groups, { smoothing = 0, band = 'minmax' } = {}) {
  const smooth = (ys) => (smoothing > 0 ? ema(ys, smoothing) : ys.map((v) => (finite(v) ? v : null)));
  const out = [];
  for (const g of groups || []) {
    const x = g.x || [];
    const mean = g.mean || [];
    if (!x.length || !mean.some(finite)) continue;
    const y = smooth(mean);
    let hi;
    let lo;
    if (band === 'std') {
      const sd = smooth((g.std || []).map((s, i) => (finite(mean[i]) ? s : null)));
      hi = y.map((m, i) => (finite(m) && finite(sd[i]) ? m + sd[i] : null));
      lo = y.map((m, i) => (finite(m) && finite(sd[i]) ? m - sd[i] : null));
    } else {
      hi = smooth(g.max || []);
      lo = smooth(g.min || []);
    }
    out.push({ label: String(g.label), runs: g.runs || [], x, raw: mean, y, hi, lo });
  }
  return out.sort((a, b) => compareLabels(a.label, b.label));
}
