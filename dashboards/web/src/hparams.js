// The HPARAMS tab: runs by hyperparameters and final metrics, after TensorBoard's HParams tab and W&B's
// parallel coordinates. One request (GET /api/hparams) brings every run of the project that the runs
// panel's filter lists, as columns; with runs ticked in the panel, only those are shown (without a
// choice, all of them: a sweep's hundreds of runs, where the charts stop at 20).
//
// - a table, sortable by any column (click its header), with a filter box per column (numbers:
//   `0.1..0.5`, `>0.1`, `<=3`; text: a substring, `=x` for equal); the Columns button chooses which
//   columns the table shows and which are axes;
// - parallel coordinates on a canvas: one axis per chosen column (log when a positive number column
//   spans two decades or more), a line per run coloured by a metric; drag along an axis to brush
//   a range (runs outside it turn grey and leave the table), click the axis to clear it;
// - a scatter of a metric against a hyperparameter, hover for the run.
// Canvas, not plotly.js: 2-D lines over hundreds of runs draw in a few milliseconds, with no 4 MB load.
//
// window.__runstream.hparams: drawnAt (performance.now() once the first frame drawn with data is out),
// draws, rows (the
// table's runs), shown (those passing the filters), columns, axisX (the axes' x in the canvas), fetchMs
// and renderMs (the last /api/hparams call, and building and drawing its answer).

import { showError } from './banner.js';
import { counters } from './debug.js';
import { debounce, h } from './dom.js';
import {
  buildTable,
  colorAt,
  columnLabel,
  defaultAxes,
  defaultColumns,
  fmtCell,
  hparamsQuery,
  makeAxis,
  passingRows,
  sortRows,
} from './hparamslib.js';

const MAX_TABLE_ROWS = 2000; // rows drawn in the table (all of them are in the plots)
const FIRST_ROWS = 60; // drawn at once; the others right after (more than a screenful)
const PC_HEIGHT = 320;
const SC_SIZE = 320;
const GREY = 'rgba(160,166,174,0.28)';

async function getJson(path, params, signal) {
  const reply = await fetch(`${path}?${params}`, { headers: { accept: 'application/json' }, signal });
  const body = await reply.json().catch(() => null);
  if (!reply.ok) {
    const err = new Error((body && body.error) || `${reply.status} ${reply.statusText}`);
    err.status = reply.status;
    err.route = `GET ${path}`;
    throw err;
  }
  return body;
}

/** A canvas sized for the device's pixels; draw in CSS pixels. */
function fitCanvas(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  return g;
}

function fitText(g, text, width) {
  if (g.measureText(text).width <= width) return text;
  let s = text;
  while (s.length > 1 && g.measureText(`${s}…`).width > width) s = s.slice(0, -1);
  return `${s}…`;
}

export function createHparamsView(root, store) {
  const dbg = (counters.hparams = { drawnAt: null, draws: 0, rows: 0, shown: 0, columns: 0 });
  const summary = h('span', { class: 'muted small', dataset: { testid: 'hp-summary' } });
  const colorSelect = h('select', { dataset: { testid: 'hp-color' }, 'aria-label': 'Colour by' });
  const xSelect = h('select', { dataset: { testid: 'hp-scatter-x' }, 'aria-label': 'Scatter x' });
  const ySelect = h('select', { dataset: { testid: 'hp-scatter-y' }, 'aria-label': 'Scatter y' });
  const columnsButton = h('button', { type: 'button', dataset: { testid: 'hp-columns' } }, 'Columns');
  const clearButton = h('button', { type: 'button', dataset: { testid: 'hp-clear' }, title: 'Clear every filter and brush' }, 'Clear filters');
  const chooser = h('div', { class: 'hp-chooser', hidden: true, dataset: { testid: 'hp-chooser' } });
  const pcCanvas = h('canvas', { class: 'hp-pc', dataset: { testid: 'hp-parcoords' } });
  const scCanvas = h('canvas', { class: 'hp-sc', dataset: { testid: 'hp-scatter' } });
  const tip = h('div', { class: 'hp-tip', hidden: true });
  const pcBox = h('div', { class: 'hp-pc-box' }, pcCanvas);
  const scBox = h('div', { class: 'hp-sc-box' }, scCanvas, tip);
  const thead = h('thead');
  const tbody = h('tbody');
  const table = h('table', { class: 'hp-table', dataset: { testid: 'hp-table' } }, thead, tbody);
  const more = h('div', { class: 'muted small hp-more' });
  const empty = h('div', { class: 'empty', hidden: true });
  const plots = h('div', { class: 'hp-plots' }, pcBox, scBox);
  root.append(
    h('div', { class: 'vd-controls hp-controls' },
      summary,
      h('label', {}, 'Colour by ', colorSelect),
      h('label', {}, 'Scatter ', xSelect, ' → ', ySelect),
      columnsButton, clearButton),
    chooser,
    h('div', { class: 'view-scroll hp-scroll' }, empty, plots, h('div', { class: 'hp-table-wrap' }, table, more)),
  );

  let active = false;
  let fetchedFor = null; // project and filter text of the data we hold
  let loadingFor = null; // ... and of the request on its way
  let controller = null;
  let resp = null;
  let t = { runs: [], columns: [] }; // the table (runs chosen)
  let all = []; // every row index
  let passing = [];
  let axes = new Map(); // key -> makeAxis over every row
  let sort = { key: null, dir: -1 };
  let filters = {};
  let brushes = {};
  let visible = null; // Set of table column keys (null: the defaults)
  let axisKeys = null; // axis column keys, in order (null: the defaults)
  let colorKey = null;
  let scatter = { x: null, y: null };
  let highlight = null; // a row index hovered in the table
  let pcLayout = null; // {xs: [...], top, bottom, keys}
  let drag = null;
  let tableGeneration = 0; // a newer table stops the chunks of an older one

  const col = (key) => t.columns.find((c) => c.key === key);
  const runColor = (i) => {
    const c = colorKey && col(colorKey);
    const a = c && axes.get(colorKey);
    return c && a ? colorAt(a.pos(c.values[i])) : '#2f6fdf';
  };

  // ---- data

  async function load({ force = false } = {}) {
    const { project, q } = store.get();
    if (!project) {
      resp = null;
      fetchedFor = null;
      rebuild();
      return;
    }
    const key = `${project}\n${q}`;
    if (key === loadingFor && !force) return; // already on its way (a context change while it loads)
    if (controller) controller.abort();
    const mine = (controller = new AbortController());
    loadingFor = key;
    try {
      const started = performance.now();
      const answer = await getJson('/api/hparams', hparamsQuery(project, q), mine.signal);
      if (mine.signal.aborted) return;
      dbg.fetchMs = performance.now() - started;
      resp = answer;
      fetchedFor = key;
      const building = performance.now();
      rebuild();
      dbg.renderMs = performance.now() - building;
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      showError(e);
    } finally {
      if (controller === mine) loadingFor = null;
    }
  }

  /** The table of the chosen runs; keeps the user's choices of columns, sort and filters where they still apply. */
  function rebuild() {
    const explicit = store.get().runs;
    t = buildTable(resp, Array.isArray(explicit) ? new Set(explicit) : null);
    all = t.runs.map((_, i) => i);
    axes = new Map(t.columns.map((c) => [c.key, makeAxis(c, all)]));
    const keys = new Set(t.columns.map((c) => c.key));
    if (visible) visible = new Set([...visible].filter((k) => keys.has(k)));
    if (!visible || !visible.size) visible = new Set(defaultColumns(t));
    axisKeys = (axisKeys || []).filter((k) => keys.has(k));
    if (!axisKeys.length) axisKeys = defaultAxes(t);
    const metrics = t.columns.filter((c) => c.group === 'metric');
    const params = t.columns.filter((c) => c.group !== 'metric');
    if (!keys.has(colorKey)) colorKey = metrics[0] ? metrics[0].key : null;
    if (!keys.has(scatter.y)) scatter.y = metrics[0] ? metrics[0].key : null;
    if (!keys.has(scatter.x)) scatter.x = (axisKeys.map(col).find((c) => c && c.group !== 'metric') || params[0] || {}).key || null;
    for (const k of Object.keys(brushes)) if (!keys.has(k)) delete brushes[k];
    if (sort.key && sort.key !== 'name' && !keys.has(sort.key)) sort = { key: null, dir: -1 };
    fillSelects();
    render();
  }

  function fillSelects() {
    const options = (sel, cols, chosen, none) => {
      sel.replaceChildren(
        ...(none ? [h('option', { value: '' }, none)] : []),
        ...cols.map((c) => h('option', { value: c.key, selected: c.key === chosen }, `${columnLabel(c)}${c.group === 'metric' ? '' : ` (${c.group})`}`)),
      );
      sel.value = chosen || '';
    };
    const metrics = t.columns.filter((c) => c.group === 'metric');
    options(colorSelect, metrics, colorKey, metrics.length ? null : '(no metric)');
    options(xSelect, t.columns, scatter.x, '(none)');
    options(ySelect, t.columns, scatter.y, '(none)');
  }

  // ---- drawing

  function render() {
    const { project } = store.get();
    const none = !project ? 'Choose a project.' : !resp ? 'Loading…' : !t.runs.length ? 'No runs to show: none is listed, or none of the ticked runs.' : !t.columns.length ? 'These runs have no hyperparameters, config keys or scalars yet.' : '';
    empty.textContent = none;
    empty.hidden = !none;
    plots.hidden = Boolean(none);
    table.hidden = Boolean(none);
    passing = passingRows(t, all, filters, brushes, axes);
    const explicit = Array.isArray(store.get().runs);
    summary.textContent = none
      ? ''
      : `${passing.length} of ${t.runs.length} ${explicit ? 'ticked' : 'listed'} run${t.runs.length === 1 ? '' : 's'}${t.truncated ? ' (the newest 10,000)' : ''} · ${t.columns.length} columns${t.empty ? ` · ${t.empty} without any value not shown` : ''}`;
    dbg.rows = t.runs.length;
    dbg.shown = passing.length;
    dbg.columns = t.columns.length;
    if (none) {
      thead.replaceChildren();
      tbody.replaceChildren();
      more.textContent = '';
      return;
    }
    const t0 = performance.now();
    drawParcoords(); // first: reading the box's width then lays out a page without the big table
    drawScatter();
    const t1 = performance.now();
    drawTable();
    dbg.plotsMs = t1 - t0;
    dbg.tableMs = performance.now() - t1;
    dbg.draws++;
    // drawn when the frame holding it has been produced: after the next frame's layout and paint
    if (dbg.drawnAt === null) requestAnimationFrame(() => setTimeout(() => (dbg.drawnAt ??= performance.now()), 0));
  }

  function drawTable() {
    const shown = t.columns.filter((c) => visible.has(c.key));
    const header = (key, label, title, cls) => {
      const on = sort.key === key;
      return h(
        'th',
        { class: `${cls}${on ? ' sorted' : ''}`, title, dataset: { key, testid: 'hp-th' }, onclick: () => setSort(key) },
        label,
        on ? h('span', { class: 'sort-arrow' }, sort.dir > 0 ? '▲' : '▼') : null,
      );
    };
    const filterCell = (key, type) =>
      h('th', { class: 'hp-filter' }, h('input', {
        type: 'search',
        value: filters[key] || '',
        placeholder: type === 'number' ? 'a..b, >x' : 'filter',
        title: type === 'number' ? 'a..b (range), >x, >=x, <x, <=x, =x' : 'a substring; =text for equal',
        dataset: { key, testid: 'hp-filter' },
        oninput: (e) => setFilter(key, e.target.value),
      }));
    thead.replaceChildren(
      h('tr', {},
        h('th', { class: 'hp-swatch' }),
        header('name', 'Run', 'Sort by run name', 'hp-name'),
        ...shown.map((c) => header(c.key, columnLabel(c), `${c.key} (${c.group})`, `hp-g-${c.group}${c.type === 'number' ? ' num' : ''}`))),
      h('tr', {}, h('th', { class: 'hp-swatch' }), filterCell('name', 'string'), ...shown.map((c) => filterCell(c.key, c.type))),
    );
    const order = sort.key ? sortRows(t, passing, sort.key, sort.dir) : passing;
    // Plain DOM calls, not h(): this builds tens of thousands of cells (text only: values are untrusted).
    // The first rows now, the others in chunks after the frame that shows them: a screenful appears
    // without waiting for the layout of hundreds of rows below it.
    const generation = ++tableGeneration;
    const todo = order.slice(0, MAX_TABLE_ROWS);
    tbody.replaceChildren(rowsOf(todo.slice(0, FIRST_ROWS), shown));
    const rest = (from) => {
      if (generation !== tableGeneration || from >= todo.length) return;
      tbody.appendChild(rowsOf(todo.slice(from, from + 400), shown));
      setTimeout(() => rest(from + 400), 0);
    };
    if (todo.length > FIRST_ROWS) requestAnimationFrame(() => setTimeout(() => rest(FIRST_ROWS), 0));
    more.textContent = order.length > MAX_TABLE_ROWS ? `The table shows the first ${MAX_TABLE_ROWS} of ${order.length} runs; sort or filter to see others.` : '';
  }

  function rowsOf(indices, shown) {
    const body = document.createDocumentFragment();
    for (const i of indices) {
      const run = t.runs[i];
      const tr = document.createElement('tr');
      tr.dataset.testid = 'hp-row';
      tr.dataset.runId = run.run_id;
      tr.dataset.row = String(i);
      const swatch = tr.appendChild(document.createElement('td'));
      swatch.className = 'hp-swatch';
      swatch.appendChild(document.createElement('span')).className = 'swatch';
      swatch.firstChild.style.background = runColor(i);
      const name = tr.appendChild(document.createElement('td'));
      name.className = 'hp-name';
      name.title = `${run.name}\n${run.run_id}\n${run.status}`;
      name.textContent = run.name || run.run_id;
      for (const c of shown) {
        const v = c.values[i];
        const td = tr.appendChild(document.createElement('td'));
        if (typeof v === 'number') td.className = 'num';
        if (c.steps && c.steps[i] !== null) td.title = `step ${c.steps[i]}`;
        td.textContent = fmtCell(v);
      }
      body.appendChild(tr);
    }
    return body;
  }

  function drawParcoords() {
    const keys = axisKeys.filter((k) => col(k));
    const width = Math.max(360, pcBox.clientWidth || 800);
    const g = fitCanvas(pcCanvas, width, PC_HEIGHT);
    const left = 56;
    const right = 70;
    const top = 34;
    const bottom = PC_HEIGHT - 40;
    const missingY = PC_HEIGHT - 16;
    const xs = keys.map((_, j) => (keys.length === 1 ? width / 2 : left + (j * (width - left - right)) / (keys.length - 1)));
    pcLayout = { xs, top, bottom, keys };
    dbg.axisX = xs;
    if (!keys.length) {
      g.fillStyle = '#6b7280';
      g.font = '13px system-ui, sans-serif';
      g.fillText('Choose axes with the Columns button.', 16, 24);
      return;
    }
    const columns = keys.map(col);
    const axisOf = keys.map((k) => axes.get(k));
    const yOf = (p) => (p === null ? missingY : bottom - p * (bottom - top));
    const line = (i) => {
      g.beginPath();
      for (let j = 0; j < keys.length; j++) {
        const y = yOf(axisOf[j].pos(columns[j].values[i]));
        if (j === 0) g.moveTo(xs[j], y);
        else g.lineTo(xs[j], y);
      }
      g.stroke();
    };
    const inside = new Set(passing);
    g.lineWidth = 1;
    g.strokeStyle = GREY;
    for (const i of all) if (!inside.has(i)) line(i);
    g.lineWidth = 1.3;
    g.globalAlpha = passing.length > 200 ? 0.55 : 0.85;
    for (const i of passing) {
      g.strokeStyle = runColor(i);
      line(i);
    }
    g.globalAlpha = 1;
    if (highlight !== null && highlight < t.runs.length) {
      g.lineWidth = 3.5;
      g.strokeStyle = '#1f2430';
      line(highlight);
    }
    // axes, ticks, brushes, labels
    g.font = '11px system-ui, sans-serif';
    const spacing = keys.length > 1 ? xs[1] - xs[0] : width;
    keys.forEach((key, j) => {
      const x = xs[j];
      const brush = brushes[key];
      if (brush) {
        const [lo, hi] = brush[0] <= brush[1] ? brush : [brush[1], brush[0]];
        g.fillStyle = 'rgba(47,111,223,0.18)';
        g.strokeStyle = 'rgba(47,111,223,0.9)';
        g.fillRect(x - 8, yOf(hi), 16, yOf(lo) - yOf(hi));
        g.strokeRect(x - 8, yOf(hi), 16, yOf(lo) - yOf(hi));
      }
      g.strokeStyle = '#4b5563';
      g.lineWidth = 1;
      g.beginPath();
      g.moveTo(x, top);
      g.lineTo(x, bottom);
      g.stroke();
      g.fillStyle = '#4b5563';
      g.textAlign = 'right';
      g.textBaseline = 'middle';
      g.strokeStyle = 'rgba(255,255,255,0.85)'; // a halo: labels stay readable over the lines
      g.lineWidth = 3;
      g.lineJoin = 'round';
      for (const tick of axisOf[j].ticks) {
        const y = yOf(tick.pos);
        const label = fitText(g, tick.label, Math.max(24, spacing - 14));
        g.fillRect(x - 3, y, 3, 1);
        g.strokeText(label, x - 5, y);
        g.fillText(label, x - 5, y);
      }
      g.textAlign = 'center';
      g.textBaseline = 'alphabetic';
      g.fillStyle = columns[j].group === 'metric' ? '#9c2f5d' : '#1f2430';
      g.font = 'bold 11px system-ui, sans-serif';
      g.fillText(fitText(g, columnLabel(columns[j]), Math.max(30, spacing - 6)), x, top - 12);
      g.font = '11px system-ui, sans-serif';
    });
    g.fillStyle = '#9aa0a6';
    g.textAlign = 'left';
    g.fillText('missing', 4, missingY + 4);
  }

  function drawScatter() {
    const g = fitCanvas(scCanvas, SC_SIZE, SC_SIZE);
    const cx = col(scatter.x);
    const cy = col(scatter.y);
    if (!cx || !cy) {
      g.fillStyle = '#6b7280';
      g.font = '13px system-ui, sans-serif';
      g.fillText('Choose the scatter’s x and y above.', 12, 24);
      return;
    }
    const ax = axes.get(cx.key);
    const ay = axes.get(cy.key);
    const L = 52;
    const R = SC_SIZE - 12;
    const T = 12;
    const B = SC_SIZE - 40;
    const inset = 8; // points at the ends of a range stay clear of the frame
    const px = (p) => L + inset + p * (R - L - 2 * inset);
    const py = (p) => B - inset - p * (B - T - 2 * inset);
    g.strokeStyle = '#d1d5db';
    g.strokeRect(L, T, R - L, B - T);
    g.font = '10px system-ui, sans-serif';
    g.fillStyle = '#4b5563';
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (const tick of ax.ticks) g.fillText(fitText(g, tick.label, 60), px(tick.pos), B + 4);
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const tick of ay.ticks) g.fillText(fitText(g, tick.label, L - 6), L - 4, py(tick.pos));
    g.font = 'bold 11px system-ui, sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'bottom';
    g.fillText(fitText(g, `${columnLabel(cx)}${ax.kind === 'log' ? ' (log)' : ''}`, R - L), (L + R) / 2, SC_SIZE - 4);
    g.save();
    g.translate(12, (T + B) / 2);
    g.rotate(-Math.PI / 2);
    g.textBaseline = 'top';
    g.fillText(fitText(g, `${columnLabel(cy)}${ay.kind === 'log' ? ' (log)' : ''}`, B - T), 0, -8);
    g.restore();
    const inside = new Set(passing);
    const dots = [];
    for (const i of all) {
      const p = ax.pos(cx.values[i]);
      const q = ay.pos(cy.values[i]);
      if (p === null || q === null) continue;
      dots.push({ i, x: px(p), y: py(q), on: inside.has(i) });
    }
    for (const d of [...dots.filter((d) => !d.on), ...dots.filter((d) => d.on)]) {
      g.beginPath();
      g.arc(d.x, d.y, d.i === highlight ? 5.5 : 3.5, 0, 2 * Math.PI);
      g.fillStyle = d.on ? runColor(d.i) : GREY;
      g.fill();
      if (d.i === highlight) {
        g.strokeStyle = '#1f2430';
        g.lineWidth = 2;
        g.stroke();
      }
    }
    scCanvas.__dots = dots;
  }

  // ---- interaction

  function setSort(key) {
    sort = { key, dir: sort.key === key ? -sort.dir : 1 };
    drawTable();
  }

  const refilter = debounce(() => render(), 150);
  function setFilter(key, text) {
    if (text.trim()) filters[key] = text;
    else delete filters[key];
    refilter();
  }

  function axisAt(x) {
    if (!pcLayout) return -1;
    let best = -1;
    pcLayout.xs.forEach((ax, j) => {
      if (Math.abs(ax - x) <= 14 && (best < 0 || Math.abs(ax - x) < Math.abs(pcLayout.xs[best] - x))) best = j;
    });
    return best;
  }
  const posAt = (y) => Math.min(1, Math.max(0, (pcLayout.bottom - y) / (pcLayout.bottom - pcLayout.top)));
  const local = (e, el) => {
    const r = el.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };

  pcCanvas.addEventListener('mousedown', (e) => {
    const [x, y] = local(e, pcCanvas);
    const j = axisAt(x);
    if (j < 0) return;
    e.preventDefault();
    drag = { key: pcLayout.keys[j], y0: y, start: posAt(y), moved: false };
  });
  window.addEventListener('mousemove', (e) => {
    if (drag) {
      const [, y] = local(e, pcCanvas);
      if (Math.abs(y - drag.y0) > 3) drag.moved = true;
      if (drag.moved) {
        brushes[drag.key] = [drag.start, posAt(y)];
        render();
      }
      return;
    }
    if (active && e.target === pcCanvas) pcCanvas.style.cursor = axisAt(local(e, pcCanvas)[0]) >= 0 ? 'ns-resize' : 'default';
  });
  window.addEventListener('mouseup', () => {
    if (!drag) return;
    if (!drag.moved) delete brushes[drag.key]; // a click on an axis clears its brush
    drag = null;
    render();
  });

  scCanvas.addEventListener('mousemove', (e) => {
    const [x, y] = local(e, scCanvas);
    let best = null;
    for (const d of scCanvas.__dots || []) {
      const dist = Math.hypot(d.x - x, d.y - y);
      if (dist <= 8 && (!best || dist < best.dist)) best = { ...d, dist };
    }
    if (!best) {
      tip.hidden = true;
      return;
    }
    const run = t.runs[best.i];
    tip.hidden = false;
    tip.textContent = `${run.name || run.run_id}\n${columnLabel(col(scatter.x))} = ${fmtCell(col(scatter.x).values[best.i])}\n${columnLabel(col(scatter.y))} = ${fmtCell(col(scatter.y).values[best.i])}`;
    tip.style.left = `${Math.min(x + 12, SC_SIZE - 160)}px`;
    tip.style.top = `${y + 12}px`;
  });
  scCanvas.addEventListener('mouseleave', () => {
    tip.hidden = true;
  });

  tbody.addEventListener('mouseover', (e) => {
    const row = e.target.closest('tr[data-row]');
    const i = row ? Number(row.dataset.row) : null;
    if (i === highlight) return;
    highlight = i;
    drawParcoords();
    drawScatter();
  });
  tbody.addEventListener('mouseleave', () => {
    highlight = null;
    drawParcoords();
    drawScatter();
  });

  colorSelect.addEventListener('change', () => {
    colorKey = colorSelect.value || null;
    render();
  });
  xSelect.addEventListener('change', () => {
    scatter.x = xSelect.value || null;
    drawScatter();
  });
  ySelect.addEventListener('change', () => {
    scatter.y = ySelect.value || null;
    drawScatter();
  });
  clearButton.addEventListener('click', () => {
    filters = {};
    brushes = {};
    render();
  });
  columnsButton.addEventListener('click', () => {
    chooser.hidden = !chooser.hidden;
    if (!chooser.hidden) fillChooser();
  });

  function fillChooser() {
    const box = (key, on, change, testid) =>
      h('input', { type: 'checkbox', checked: on, title: testid === 'hp-choose-table' ? 'in the table' : 'as an axis', dataset: { key, testid }, onchange: (e) => change(e.target.checked) });
    const setAll = (group, which, on) => {
      for (const c of t.columns.filter((c) => group === null || c.group === group)) {
        if (which === 'table') on ? visible.add(c.key) : visible.delete(c.key);
        else if (on && !axisKeys.includes(c.key)) axisKeys.push(c.key);
        else if (!on) axisKeys = axisKeys.filter((k) => k !== c.key);
      }
      fillChooser();
      render();
    };
    const groups = [['hparam', 'Hyperparameters'], ['config', 'Config'], ['metric', 'Metrics (last value by step)']];
    chooser.replaceChildren(
      h('div', { class: 'hp-chooser-head' },
        h('span', {}, 'Each column: first box, in the table; second box, an axis of the parallel coordinates. '),
        h('button', { class: 'link', onclick: () => setAll(null, 'table', true) }, 'all in table'), ' · ',
        h('button', { class: 'link', onclick: () => setAll(null, 'table', false) }, 'none'), ' · ',
        h('button', { class: 'link', onclick: () => setAll(null, 'axis', false) }, 'no axes')),
      ...groups
        .filter(([g]) => t.columns.some((c) => c.group === g))
        .map(([g, title]) =>
          h('div', { class: 'hp-chooser-group' },
            h('div', { class: 'hp-chooser-title' }, title),
            ...t.columns
              .filter((c) => c.group === g)
              .map((c) =>
                h('div', { class: 'hp-chooser-item', title: c.key },
                  box(c.key, visible.has(c.key), (on) => {
                    on ? visible.add(c.key) : visible.delete(c.key);
                    drawTable();
                  }, 'hp-choose-table'),
                  box(c.key, axisKeys.includes(c.key), (on) => {
                    axisKeys = on ? [...axisKeys, c.key] : axisKeys.filter((k) => k !== c.key);
                    drawParcoords();
                  }, 'hp-choose-axis'),
                  h('span', {}, columnLabel(c)),
                ),
              ),
          ),
        ),
    );
  }

  const onResize = debounce(() => {
    if (active && resp) {
      drawParcoords();
    }
  }, 150);
  window.addEventListener('resize', onResize);

  store.subscribe((s, changed) => {
    if (!active) return;
    if (changed.has('project') || changed.has('q')) load();
    else if (changed.has('runs')) rebuild();
  });

  return {
    setContext() {
      // the runs come from the project and filter (store), fetched here; the selection is read at rebuild
      if (!active) return;
      const { project, q } = store.get();
      if (`${project}\n${q}` !== fetchedFor) load();
    },
    show() {
      active = true;
      const { project, q } = store.get();
      if (`${project}\n${q}` !== fetchedFor) load();
      else rebuild();
    },
    hide() {
      active = false;
      if (drag) drag = null;
    },
    refresh() {
      if (active) load({ force: true });
      else fetchedFor = null; // fetched again when shown
    },
  };
}
