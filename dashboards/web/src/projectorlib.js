// The Projector tab's pure parts (tested under node): coordinates from the server's float32 body,
// normalised for drawing; categories of a metadata column for colours; search by label or regex.

export const MAX_CATEGORIES = 20; // colours for the most frequent values; the rest share one grey

/** The float32 body (rows x dims, row after row) -> one Float32Array per axis, scaled into [-1, 1]
 * with the same factor on every axis (so distances keep their proportions), centred on 0. */
export function normaliseCoords(buffer, rows, dims) {
  const flat = new Float32Array(buffer);
  if (flat.length !== rows * dims) throw new Error(`expected ${rows} x ${dims} coordinates, got ${flat.length} numbers`);
  const axes = [];
  let half = 0;
  const centres = [];
  for (let d = 0; d < dims; d++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = d; i < flat.length; i += dims) {
      const v = flat[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    centres.push(rows ? (lo + hi) / 2 : 0);
    half = Math.max(half, rows ? (hi - lo) / 2 : 0);
  }
  const scale = half > 0 ? 0.95 / half : 1;
  for (let d = 0; d < dims; d++) {
    const axis = new Float32Array(rows);
    const c = centres[d];
    for (let r = 0, i = d; r < rows; r++, i += dims) axis[r] = (flat[i] - c) * scale;
    axes.push(axis);
  }
  return axes;
}

/** A metadata column -> {codes: Int32Array (category per point), names: [value per category]}: the
 * MAX_CATEGORIES - 1 most frequent values get their own category, the rest category `names.length - 1`
 * ("other") when there are more. */
export function categories(values, max = MAX_CATEGORIES) {
  const counts = new Map();
  for (const v of values) {
    const key = String(v ?? '');
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k]) => k);
  const kept = ranked.length > max ? ranked.slice(0, max - 1) : ranked;
  const index = new Map(kept.map((k, i) => [k, i]));
  const other = kept.length;
  const names = ranked.length > max ? [...kept, `other (${ranked.length - kept.length} values)`] : kept;
  const codes = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const c = index.get(String(values[i] ?? ''));
    codes[i] = c === undefined ? other : c;
  }
  return { codes, names };
}

/** The legend's order of `names` (from `categories`): by name as people sort them (class2 before class10),
 * the "other" category last; returns indices into `names`, whose colours stay as they are. */
export function legendOrder(names) {
  const other = names.length && names[names.length - 1].startsWith('other (') ? names.length - 1 : -1;
  const order = names.map((_, i) => i).filter((i) => i !== other);
  order.sort((a, b) => names[a].localeCompare(names[b], 'en', { numeric: true }));
  return other === -1 ? order : [...order, other];
}

/** The points whose label matches `query`: a regular expression when `regex` (an invalid one -> error),
 * else a case-insensitive substring. -> {indices, error} */
export function search(labels, query, { regex = false } = {}) {
  if (!query) return { indices: [], error: null };
  let test;
  if (regex) {
    let re;
    try {
      re = new RegExp(query, 'i');
    } catch (e) {
      return { indices: [], error: `not a regular expression: ${e.message}` };
    }
    test = (s) => re.test(s);
  } else {
    const needle = query.toLowerCase();
    test = (s) => s.toLowerCase().includes(needle);
  }
  const indices = [];
  for (let i = 0; i < labels.length; i++) if (test(String(labels[i] ?? ''))) indices.push(i);
  return { indices, error: null };
}

/** "about 2 min" for an estimate in seconds. */
export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds)) return '';
  if (seconds < 1) return 'under a second';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  return `${Math.round(seconds / 60)} min`;
}
