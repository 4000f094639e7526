// Run colours: a stable colour per run from a fixed palette (pure, no DOM).
//
// assignColors() gives the runs of a project palette slots in creation order (oldest first),
// so the first runs get the most distinct colours, runs on screen differ in colour (up to the
// palette's size), and a run keeps its colour as newer runs arrive: new runs only take the
// next slots. Ties (same creation time) break on the run id, so the result depends only on the
// set of runs, not on the order the server lists them in or on which runs are selected.

export const PALETTE = [
  // ten well separated hues first, then darker and lighter variants
  '#2f6fdf', '#e8590c', '#2b9348', '#d62839', '#7b4fd6', '#8a5a44', '#d6409f', '#0f9aa8', '#a68a00', '#5c677d',
  '#1d3e8a', '#f59f00', '#74b816', '#9c2f5d', '#4dabf7', '#ff8787', '#0b7a75', '#b197fc', '#5f3dc4', '#212529',
];

/** runs: [{run_id, created_at}] -> Map run_id -> colour. */
export function assignColors(runs) {
  const order = [...runs].sort(
    (a, b) => (a.created_at ?? 0) - (b.created_at ?? 0) || (a.run_id < b.run_id ? -1 : a.run_id > b.run_id ? 1 : 0),
  );
  const out = new Map();
  order.forEach((run, i) => out.set(run.run_id, PALETTE[i % PALETTE.length]));
  return out;
}

/** '#rrggbb' + alpha -> 'rgba(r,g,b,a)'. */
export function withAlpha(hex, alpha) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) return hex;
  const [r, g, b] = m.slice(1).map((x) => parseInt(x, 16));
  return `rgba(${r},${g},${b},${alpha})`;
}
