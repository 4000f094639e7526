// The HPARAMS tab's pure logic (no DOM; tested under node): the table from /api/hparams, sorting,
// per-column filters, axes of the parallel-coordinates view and the colour scale.
//
// A table is {runs: [{run_id, name, status, created_at}], columns: [{key, group, type, values, steps?,
// domain?}]}, each column one value per run. Rows are referred to by their index in `runs`.

/**
 * The server's columns -> a table, restricted to `only` (a Set of run ids) when given. Runs with no
 * value in any column (a SummaryWriter's own run beside its add_hparams children) are left out and
 * counted in `empty`.
 */
export function buildTable(resp, only = null) {
  const r = (resp && resp.runs) || { run_id: [] };
  const given = (resp && resp.columns) || [];
  const keep = [];
  let empty = 0;
  r.run_id.forEach((id, i) => {
    if (only && !only.has(id)) return;
    if (given.some((c) => c.values[i] !== null && c.values[i] !== undefined)) keep.push(i);
    else empty++;
  });
  const pick = (values) => keep.map((i) => (values ? values[i] ?? null : null));
  const runs = keep.map((i) => ({ run_id: r.run_id[i], name: r.name[i], status: r.status[i], created_at: r.created_at[i] }));
  const columns = given.map((c) => ({
    ...c,
    values: pick(c.values),
    ...(c.steps ? { steps: pick(c.steps) } : {}),
  }));
  return { runs, columns, empty, truncated: Boolean(resp && resp.truncated) };
}

/** What a column is called in headers and on axes: an hparam without its `hparams.` prefix. */
export const columnLabel = (c) => (c.group === 'hparam' && c.key.startsWith('hparams.') ? c.key.slice(8) : c.key);

/** Compare two cell values: numbers by value, text naturally ("lr2" < "lr10"), missing last. */
export function compareValues(x, y) {
  const nx = x === null || x === undefined || (typeof x === 'number' && Number.isNaN(x));
  const ny = y === null || y === undefined || (typeof y === 'number' && Number.isNaN(y));
  if (nx || ny) return nx === ny ? 0 : nx ? 1 : -1;
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  return String(x).localeCompare(String(y), undefined, { numeric: true });
}

/**
 * Row indices of `rows` sorted by column `key` (or 'name'), `dir` 1 ascending or -1 descending;
 * missing values stay last either way; ties keep their order.
 */
export function sortRows(table, rows, key, dir) {
  const col = table.columns.find((c) => c.key === key);
  const value = col ? (i) => col.values[i] : (i) => table.runs[i].name || table.runs[i].run_id;
  return [...rows].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    const missingX = x === null || x === undefined || Number.isNaN(x);
    const missingY = y === null || y === undefined || Number.isNaN(y);
    if (missingX || missingY) return compareValues(x, y);
    return compareValues(x, y) * dir;
  });
}

/**
 * A column's filter text -> a predicate over its values (null: no filter).
 * Numbers: `0.1..0.5` (inclusive range; either end may be left out), `>0.1`, `>=0.1`, `<1`, `<=1`,
 * `=3` or `3` (equal). Text and booleans: a case-insensitive substring; a leading `=` means equal.
 * A number filter that does not parse matches the value's text as a substring.
 */
export function parseFilter(text, type) {
  const t = String(text ?? '').trim();
  if (!t) return null;
  const asText = (v) => (v === null || v === undefined ? '' : String(v).toLowerCase());
  if (type === 'number') {
    const num = (s) => (s.trim() === '' ? null : Number(s));
    const range = /^(.*?)\.\.(.*)$/.exec(t);
    if (range) {
      const lo = num(range[1]);
      const hi = num(range[2]);
      if (!Number.isNaN(lo) && !Number.isNaN(hi))
        return (v) => typeof v === 'number' && !Number.isNaN(v) && (lo === null || v >= lo) && (hi === null || v <= hi);
    }
    const cmp = /^(>=|<=|>|<|=)?\s*(.+)$/.exec(t);
    const n = Number(cmp[2]);
    if (cmp[2] !== '' && !Number.isNaN(n)) {
      const op = cmp[1] || '=';
      const test = { '>': (v) => v > n, '>=': (v) => v >= n, '<': (v) => v < n, '<=': (v) => v <= n, '=': (v) => v === n }[op];
      return (v) => typeof v === 'number' && !Number.isNaN(v) && test(v);
    }
  }
  if (t.startsWith('=')) {
    const want = t.slice(1).trim().toLowerCase();
    return (v) => asText(v) === want;
  }
  const want = t.toLowerCase();
  return (v) => asText(v).includes(want);
}

/**
 * An axis of the parallel-coordinates view: pos(value) -> 0 (bottom) .. 1 (top), or null for a
 * missing value; ticks [{pos, label}]. Numbers are linear, or logarithmic when all are positive
 * and span two decades or more (learning rates); text and booleans are evenly spaced
 * categories, in their declared domain's order if any, else sorted.
 */
export function makeAxis(column, rows) {
  const values = rows.map((i) => column.values[i]);
  if (column.type === 'number') {
    const nums = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
    const lo = nums.length ? Math.min(...nums) : 0;
    const hi = nums.length ? Math.max(...nums) : 1;
    const log = lo > 0 && hi / lo >= 100;
    const f = log ? Math.log10 : (v) => v;
    let a = f(lo);
    let b = f(hi);
    if (a === b) {
      a -= 0.5;
      b += 0.5;
    }
    const pos = (v) => (typeof v === 'number' && Number.isFinite(v) ? (f(v) - a) / (b - a) : null);
    const ticks = log ? logTicks(lo, hi) : linearTicks(a, b);
    return { kind: log ? 'log' : 'linear', pos, ticks: ticks.map((v) => ({ pos: pos(v), label: fmtTick(v) })) };
  }
  const seen = [...new Set(values.filter((v) => v !== null && v !== undefined).map(String))];
  const domain = Array.isArray(column.domain) ? column.domain.map(String).filter((v) => seen.includes(v)) : [];
  const cats = [...domain, ...seen.filter((v) => !domain.includes(v)).sort((x, y) => compareValues(x, y))];
  const index = new Map(cats.map((c, i) => [c, i]));
  const pos = (v) => (v === null || v === undefined ? null : cats.length === 1 ? 0.5 : index.get(String(v)) / (cats.length - 1));
  const every = Math.max(1, Math.ceil(cats.length / 12)); // at most about a dozen labels
  return { kind: 'category', pos, ticks: cats.filter((_, i) => i % every === 0).map((c) => ({ pos: pos(c), label: c })) };
}

function linearTicks(a, b, count = 5) {
  const step0 = (b - a) / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
  const out = [];
  for (let v = Math.ceil(a / step) * step; v <= b + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function logTicks(lo, hi) {
  const out = [];
  for (let e = Math.ceil(Math.log10(lo) - 1e-9); e <= Math.floor(Math.log10(hi) + 1e-9); e++) out.push(10 ** e);
  return out;
}

/** A number as a short axis label: 0.001, 250, 1e-5, 2.5e6. */
export function fmtTick(v) {
  if (typeof v !== 'number') return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(a === 10 ** Math.round(Math.log10(a)) ? 0 : 1).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

/** A cell's text: numbers to 6 significant digits, booleans and text as they are, missing empty. */
export function fmtCell(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN';
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e6 || a < 1e-4) ? v.toExponential(4) : String(Number(v.toPrecision(6)));
  }
  return String(v);
}

/**
 * Which rows pass: every column filter (`filters`: key -> text) and every axis brush (`brushes`:
 * key -> [lo, hi] in axis positions 0..1, from makeAxis). A brushed axis drops missing values.
 */
export function passingRows(table, rows, filters, brushes, axes) {
  const tests = [];
  for (const [key, text] of Object.entries(filters || {})) {
    const col = table.columns.find((c) => c.key === key);
    const pred = col ? parseFilter(text, col.type) : key === 'name' ? parseFilter(text, 'string') : null;
    if (!pred) continue;
    tests.push(col ? (i) => pred(col.values[i]) : (i) => pred(table.runs[i].name || table.runs[i].run_id));
  }
  for (const [key, range] of Object.entries(brushes || {})) {
    const col = table.columns.find((c) => c.key === key);
    const axis = axes && axes.get(key);
    if (!col || !axis || !range) continue;
    const [lo, hi] = range[0] <= range[1] ? range : [range[1], range[0]];
    tests.push((i) => {
      const p = axis.pos(col.values[i]);
      return p !== null && p >= lo - 1e-9 && p <= hi + 1e-9;
    });
  }
  return rows.filter((i) => tests.every((t) => t(i)));
}

/**
 * The columns shown by default: all of them when there are at most `max`, else the hparams and
 * config keys that differ between runs (up to max - metrics) and the first few metrics.
 */
export function defaultColumns(table, max = 30, maxMetrics = 6) {
  const all = table.columns.map((c) => c.key);
  if (all.length <= max) return all;
  const metrics = table.columns.filter((c) => c.group === 'metric').slice(0, maxMetrics);
  const varying = table.columns.filter((c) => c.group !== 'metric' && new Set(c.values.map(String)).size > 1);
  return [...varying.slice(0, max - metrics.length), ...metrics].map((c) => c.key);
}

/** The axes drawn by default: the hparams (else config keys) that differ between runs, up to 10, then up to 3 metrics. */
export function defaultAxes(table, maxParams = 10, maxMetrics = 3) {
  const varies = (c) => new Set(c.values.map(String)).size > 1;
  const hp = table.columns.filter((c) => c.group === 'hparam' && varies(c));
  const params = (hp.length ? hp : table.columns.filter((c) => c.group === 'config' && varies(c))).slice(0, maxParams);
  const metrics = table.columns.filter((c) => c.group === 'metric').slice(0, maxMetrics);
  return [...params, ...metrics].map((c) => c.key);
}

// Viridis at 9 stops: readable on white from the low end, and ordered in lightness.
const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];

/** t in 0..1 -> a viridis colour ('#888' for a missing value). */
export function colorAt(t) {
  if (t === null || t === undefined || Number.isNaN(t)) return '#9aa0a6';
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const mix = (a, b, f) => Math.round(a + (b - a) * f);
  const [r1, g1, b1] = hex(VIRIDIS[i]);
  const [r2, g2, b2] = hex(VIRIDIS[i + 1]);
  const f = x - i;
  return `rgb(${mix(r1, r2, f)},${mix(g1, g2, f)},${mix(b1, b2, f)})`;
}

const hex = (s) => [1, 3, 5].map((k) => parseInt(s.slice(k, k + 2), 16));

/**
 * The query string of /api/hparams for a project and the runs panel's filter text, which /api/runs
 * reads the same way: `key=value` words are config conditions, the other words match name or id.
 */
export function hparamsQuery(project, filter = '') {
  const params = new URLSearchParams({ project });
  const words = [];
  for (const word of String(filter).trim().split(/\s+/)) {
    const m = /^([^=\s]+)=(.*)$/.exec(word);
    if (m) params.set(`config.${m[1]}`, m[2]);
    else if (word) words.push(word);
  }
  if (words.length) params.set('q', words.join(' '));
  return params.toString();
}
