// Join several x-sorted tables onto one shared x array, as uPlot wants its data (pure, no DOM).
//
// Each table is {x: [...], ys: [[...], ...]} with x ascending. The result is
// {x: union of all x, ys: [aligned y arrays, in table order]}. Where a table has no point at
// an x the aligned value is undefined (uPlot draws straight across it); a null stays null
// (uPlot breaks the line there: a real gap, e.g. a NaN that was logged).

export function isSorted(xs) {
  for (let i = 1; i < xs.length; i++) if (xs[i] < xs[i - 1]) return false;
  return true;
}

/** Sort a table by x, when needed (keeps the pairing of x and every y column). */
export function sortTable(table) {
  if (isSorted(table.x)) return table;
  const order = table.x.map((_, i) => i).sort((a, b) => table.x[a] - table.x[b]);
  return { x: order.map((i) => table.x[i]), ys: table.ys.map((ys) => order.map((i) => ys[i])) };
}

export function unionX(xsList) {
  let total = 0;
  for (const xs of xsList) total += xs.length;
  const all = new Float64Array(total);
  let k = 0;
  for (const xs of xsList) for (let i = 0; i < xs.length; i++) all[k++] = xs[i];
  all.sort();
  const out = [];
  for (let i = 0; i < total; i++) {
    const v = all[i];
    if (Number.isNaN(v)) continue;
    if (out.length === 0 || out[out.length - 1] !== v) out.push(v);
  }
  return out;
}

export function alignTables(tables) {
  const sorted = tables.map(sortTable);
  const x = unionX(sorted.map((t) => t.x));
  const n = x.length;
  const ys = [];
  for (const t of sorted) {
    // index of each of the table's x in the union (both ascending: one merge pass)
    const idx = new Int32Array(t.x.length);
    let j = 0;
    for (let i = 0; i < t.x.length; i++) {
      const v = t.x[i];
      while (j < n && x[j] < v) j++;
      idx[i] = j < n && x[j] === v ? j : -1;
    }
    for (const col of t.ys) {
      const out = new Array(n).fill(undefined);
      for (let i = 0; i < col.length; i++) {
        if (idx[i] < 0) continue;
        const v = col[i];
        out[idx[i]] = typeof v === 'number' && Number.isFinite(v) ? v : null;
      }
      ys.push(out);
    }
  }
  return { x, ys };
}
