// One scalar chart: a uPlot of one tag with every displayed run overlaid, its legend,
// drag-to-zoom (which asks the server again for the zoomed range) and double-click reset.
//
// Per run: the raw series (faint) and the smoothed one (full colour) when smoothing > 0, and
// optionally its min-max envelope (band_x/band_min/band_max) as a faint band. With a group-by
// key: per group one mean line and a min-max (or mean ± std) band across its runs.

import uPlot from 'uplot';
import { alignTables } from './align.js';
import { withAlpha } from './colors.js';
import { h } from './dom.js';
import { fmtDateTime, fmtDuration, fmtNum, fmtStep } from './format.js';
import { groupLines, lineColors } from './group.js';
import { ema } from './smoothing.js';

export const CHART_HEIGHT = 200;
const AXIS_FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const AXIS = {
  stroke: '#6b7280',
  font: AXIS_FONT,
  grid: { stroke: '#eef0f3', width: 1 },
  ticks: { stroke: '#e2e5ea', width: 1, size: 4 },
};

// tick spacings for relative time: round seconds, minutes, hours, days
const DURATION_INCRS = [
  0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
  10800, 21600, 43200, 86400, 172800, 604800, 1209600, 2592000,
];

export function fmtX(kind, v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '';
  if (kind === 'wall') return fmtDateTime(v) + `:${String(Math.floor(v % 60)).padStart(2, '0')}`;
  if (kind === 'relative') return fmtDuration(v);
  return `step ${Math.round(v).toLocaleString('en-US')}`;
}

/** Index of the point of xs (ascending) nearest to x. */
function nearest(xs, x) {
  let lo = 0;
  let hi = xs.length - 1;
  if (hi < 0) return -1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) return lo - 1;
  return lo;
}

/** Wall-time ticks on one line: "HH:MM:SS" within a day, "MM-DD HH:MM" over longer spans. */
function wallTicks(u, splits) {
  const span = u.scales.x.max - u.scales.x.min;
  const pad = (n) => String(n).padStart(2, '0');
  return splits.map((v) => {
    if (v === null) return '';
    const d = new Date(v * 1000);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (span > 86400) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
    return span > 600 ? hm : `${hm}:${pad(d.getSeconds())}`;
  });
}

const lastFinite = (ys) => {
  for (let i = ys.length - 1; i >= 0; i--) if (ys[i] !== null && Number.isFinite(ys[i])) return i;
  return -1;
};

export class ScalarChart {
  /**
   * tag: the tag; onZoom(chart): the zoom changed (the view refetches this chart).
   */
  constructor(tag, { onZoom }) {
    this.tag = tag;
    this.onZoom = onZoom;
    this.zoom = null; // [min, max] or null
    this.resp = null; // last /api/scalars or /api/scalar_groups answer
    this.fetchedKey = null;
    this.fetchWidth = 0;
    this.drawnSig = null;
    this.shapeSig = null;
    this.visible = false;
    this.loading = false;
    this.u = null;
    this.items = [];

    this.titleEl = h('span', { class: 'chart-tag', title: tag }, tag);
    this.noteEl = h('span', { class: 'chart-note' });
    this.resetBtn = h(
      'button',
      { class: 'link chart-reset', hidden: true, title: 'Reset zoom (or double-click the chart)', onclick: () => this.resetZoom() },
      'reset zoom',
    );
    this.plotEl = h('div', { class: 'chart-plot' });
    this.msgEl = h('div', { class: 'chart-msg' }, 'loading…');
    this.legendEl = h('div', { class: 'chart-legend', dataset: { testid: 'chart-legend' } });
    this.xLabelEl = h('span', { class: 'legend-x' });
    this.el = h(
      'div',
      { class: 'chart-card', dataset: { testid: 'chart', tag } },
      h('div', { class: 'chart-head' }, this.titleEl, this.noteEl, this.resetBtn),
      h('div', { class: 'chart-body' }, this.plotEl, this.msgEl),
      this.legendEl,
    );
    this.el.__chart = this;
  }

  width() {
    return Math.max(120, Math.round(this.plotEl.clientWidth || this.el.clientWidth || 400));
  }

  setLoading(on) {
    this.loading = on;
    this.el.classList.toggle('is-loading', on);
  }

  showMessage(text) {
    this.msgEl.textContent = text;
    this.msgEl.hidden = !text;
  }

  resetZoom() {
    if (!this.zoom) return;
    this.zoom = null;
    this.resetBtn.hidden = true;
    this.onZoom(this);
  }

  setZoom(min, max) {
    if (!(max > min)) return;
    this.zoom = [min, max];
    this.resetBtn.hidden = false;
    if (this.u) this.u.setScale('x', { min, max });
    this.onZoom(this);
  }

  /**
   * Draw this.resp with the view options {runs, colors, smoothing, logy, envelope, band, x}:
   * per run (an /api/scalars answer) or per group (an /api/scalar_groups answer).
   */
  draw(o) {
    const resp = this.resp;
    if (!resp) return false;
    const grouped = Array.isArray(resp.groups);
    const byRun = new Map();
    for (const s of resp.series || []) if (s.x && s.x.length) byRun.set(s.run_id, s);
    const runs = o.runs.filter((r) => byRun.has(r.run_id));
    const w = o.smoothing;
    const clean = o.logy ? (ys) => ys.map((v) => (v !== null && v > 0 ? v : null)) : (ys) => ys;
    const tables = [];
    const series = [{}];
    const bands = [];
    const items = [];
    let col = 1;
    const add = (style) => {
      series.push(style);
      return col++;
    };
    // raw lines behind the smoothed ones: fainter the more of them there are
    const rawAlpha = Math.max(0.07, Math.min(0.3, 0.55 / Math.sqrt(grouped ? 1 : Math.max(1, runs.length))));
    const raw = (color) => ({ stroke: withAlpha(color, rawAlpha), width: 1, points: { show: false } });
    // a series of one point has no line: show it as a dot
    const main = (color, label, n = 2) => ({ label, stroke: color, width: 1.6, points: { show: n === 1, size: 5, fill: color } });
    const edge = () => ({ stroke: 'transparent', width: 0, points: { show: false } });

    if (!grouped) {
      for (const r of runs) {
        const s = byRun.get(r.run_id);
        const color = o.colors.get(r.run_id) || '#444';
        const item = { label: r.name || r.run_id, title: r.run_id, color, x: s.x, raw: s.y, y: s.y, idxs: [] };
        if (o.envelope && s.band_x && s.band_x.length) {
          tables.push({ x: s.band_x, ys: [clean(s.band_max), clean(s.band_min)] });
          const hi = add(edge());
          const lo = add(edge());
          bands.push({ series: [hi, lo], fill: withAlpha(color, 0.12) });
          item.idxs.push(hi, lo);
        }
        if (w > 0) {
          item.y = ema(s.y, w);
          tables.push({ x: s.x, ys: [clean(s.y), clean(item.y)] });
          item.idxs.push(add(raw(color)), add(main(color, item.label, s.x.length)));
        } else {
          tables.push({ x: s.x, ys: [clean(s.y)] });
          item.idxs.push(add(main(color, item.label, s.x.length)));
        }
        items.push(item);
      }
    } else {
      // the server's aggregate of each group (/api/scalar_groups); drawn as the answer says,
      // also while a request for another key is on its way
      const key = resp.group_by;
      const lines = groupLines(resp.groups, { smoothing: w, band: o.band });
      const gcolors = lineColors(o.runs, key, lines);
      const names = new Map(o.runs.map((r) => [r.run_id, r.name || r.run_id]));
      for (const line of lines) {
        const n = line.runs.length;
        const color = gcolors.get(line.label);
        const item = {
          label: `${key}=${line.label}`,
          title: `${n} run${n === 1 ? '' : 's'}: ${line.runs.map((id) => names.get(id) || id).join(', ')}`,
          suffix: ` (${n})`,
          color,
          x: line.x,
          raw: line.raw,
          y: line.y,
          idxs: [],
        };
        if (n > 1) {
          tables.push({ x: line.x, ys: [clean(line.hi), clean(line.lo)] });
          const hi = add(edge());
          const lo = add(edge());
          bands.push({ series: [hi, lo], fill: withAlpha(color, 0.16) });
          item.idxs.push(hi, lo);
        }
        if (w > 0) {
          tables.push({ x: line.x, ys: [clean(line.raw)] });
          item.idxs.push(add(raw(color)));
        }
        tables.push({ x: line.x, ys: [clean(line.y)] });
        item.idxs.push(add(main(color, item.label, line.x.length)));
        items.push(item);
      }
    }

    this.items = items;
    this.kind = o.x;
    if (!items.length) {
      this.destroyPlot();
      this.renderLegend();
      this.showMessage(o.runs.length ? 'no data for the selected runs' : 'no runs selected');
      return false;
    }
    this.showMessage('');
    const aligned = alignTables(tables);
    const data = [aligned.x, ...aligned.ys];
    const shape = JSON.stringify([o.x, o.logy, series.map((s) => [s.stroke, s.width, s.points && s.points.show]), bands]);
    const width = this.width();
    if (this.u && shape === this.shapeSig) {
      if (this.u.width !== width) this.u.setSize({ width, height: CHART_HEIGHT });
      this.u.setData(data);
    } else {
      this.destroyPlot();
      this.u = new uPlot(this.options(o, series, bands, width), data, this.plotEl);
      this.shapeSig = shape;
      this.u.over.addEventListener('dblclick', () => this.resetZoom());
    }
    this.renderLegend();
    this.updateLegend();
    const exact = grouped || (resp.series || []).every((s) => s.exact !== false);
    const points = (resp.series || []).reduce((a, s) => a + (s.count || 0), 0);
    this.noteEl.textContent = exact ? '' : 'M4';
    this.noteEl.title = exact ? '' : `downsampled for ${this.fetchWidth}px: per pixel column the first, last, min and max of ${points.toLocaleString('en-US')} points`;
    return true;
  }

  options(o, series, bands, width) {
    const fmt = o.x === 'wall' ? null : o.x === 'relative' ? fmtDuration : fmtStep;
    const xValues = fmt ? (u, splits) => splits.map((v) => (v === null ? '' : fmt(v))) : wallTicks;
    return {
      width,
      height: CHART_HEIGHT,
      padding: [10, 12, 0, 2],
      legend: { show: false },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        bind: { dblclick: () => null },
        // hover is shared by the charts with the same x axis; a drag zooms only its own chart
        sync: {
          key: `runstream-${o.x}`,
          setSeries: false,
          filters: { pub: (type) => type !== 'mousedown' && type !== 'mouseup' && type !== 'dblclick' },
        },
        points: { size: 5, width: 1 },
        focus: { prox: 24 },
      },
      focus: { alpha: 0.35 },
      scales: {
        x: {
          time: o.x === 'wall',
          range: (u, min, max) => {
            if (this.zoom) return this.zoom;
            if (min === null || max === null) return [0, 1];
            return min === max ? [min - 1, max + 1] : [min, max];
          },
        },
        y: o.logy ? { distr: 3, log: 10 } : { auto: true },
      },
      axes: [
        { ...AXIS, size: 30, space: 64, values: xValues, incrs: o.x === 'relative' ? DURATION_INCRS : undefined },
        { ...AXIS, size: 54, values: (u, splits) => splits.map((v) => (v === null ? '' : fmtNum(v))) },
      ],
      series,
      bands,
      hooks: {
        setSelect: [(u) => this.onSelect(u)],
        setCursor: [() => this.updateLegend()],
      },
    };
  }

  onSelect(u) {
    const sel = u.select;
    if (sel.width < 4) return;
    let min = u.posToVal(sel.left, 'x');
    let max = u.posToVal(sel.left + sel.width, 'x');
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    if (this.kind === 'step') {
      min = Math.floor(min);
      max = Math.ceil(max);
    }
    this.setZoom(min, max);
  }

  renderLegend() {
    this.legendEl.replaceChildren(this.xLabelEl);
    for (const item of this.items) {
      item.valueEl = h('span', { class: 'legend-value' });
      item.rawEl = h('span', { class: 'legend-raw', title: 'raw value' });
      item.el = h(
        'span',
        {
          class: 'legend-item',
          title: `${item.title}\nvalue: smoothed (raw)\nclick: hide/show`,
          onclick: () => this.toggleItem(item),
        },
        h('i', { class: 'legend-swatch', style: { background: item.color } }),
        h('span', { class: 'legend-label' }, item.label + (item.suffix || '')),
        item.valueEl,
        item.rawEl,
      );
      this.legendEl.append(item.el);
    }
  }

  toggleItem(item) {
    item.hidden = !item.hidden;
    item.el.classList.toggle('off', item.hidden);
    if (this.u) for (const i of item.idxs) this.u.setSeries(i, { show: !item.hidden }, false);
  }

  /** Values at the cursor's x (each run's nearest point), or the last values when not hovering. */
  updateLegend() {
    const u = this.u;
    const idx = u ? u.cursor.idx : null;
    const hovering = idx !== null && idx !== undefined && u.cursor.left >= 0;
    const x = hovering ? u.data[0][idx] : null;
    this.xLabelEl.textContent = hovering ? fmtX(this.kind, x) : '';
    this.xLabelEl.hidden = !hovering;
    for (const item of this.items) {
      const j = hovering ? nearest(item.x, x) : lastFinite(item.y);
      const v = j >= 0 ? item.y[j] : null;
      const r = j >= 0 ? item.raw[j] : null;
      const showRaw = item.raw !== item.y && r !== null && r !== undefined && v !== r;
      item.valueEl.textContent = v === null || v === undefined ? '–' : fmtNum(v);
      item.rawEl.textContent = showRaw ? fmtNum(r) : '';
    }
  }

  destroyPlot() {
    if (this.u) {
      this.u.destroy();
      this.u = null;
      this.shapeSig = null;
    }
  }

  destroy() {
    this.destroyPlot();
    this.el.remove();
  }
}
