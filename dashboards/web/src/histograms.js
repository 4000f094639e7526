// The Histograms tab: per histogram tag and displayed run, an "offset" view (a ridgeline of
// the histograms over steps on a canvas: later steps lower and in front) and a "distribution"
// view (percentile bands over steps, from the API's `percentiles`, drawn with uPlot bands).

import uPlot from 'uplot';
import { getHistograms, isAbort } from './api.js';
import { withAlpha } from './colors.js';
import { h } from './dom.js';
import { fmtNum, fmtStep } from './format.js';
import { niceTicks, percentileColumns, rebin, tint, valueRange } from './histmath.js';
import { createLazy } from './lazy.js';

const OFFSET_HEIGHT = 190;
const DIST_HEIGHT = 150;
const LIMIT = 50;

export function createHistogramsView(root) {
  let ctx = { runs: [], runIds: [], colors: new Map(), tags: { histograms: [] } };
  let cards = new Map(); // tag \n run_id -> card
  const grid = h('div', { class: 'hist-groups' });
  const empty = h('div', { class: 'empty' });
  const scroller = h('div', { class: 'view-scroll' }, grid, empty);
  root.append(h('div', { class: 'toolbar' }, h('span', { class: 'muted small' }, `Offset: the last ${LIMIT} histograms (evenly spread over the steps), later steps lower. Distribution: percentiles 0, 7, 16, 31, 50, 69, 84, 93, 100 over steps.`)), scroller);
  const lazy = createLazy({ scroller, load });
  let active = false;

  async function load(card) {
    if (card.controller) card.controller.abort();
    const controller = (card.controller = new AbortController());
    card.el.classList.add('is-loading');
    try {
      const resp = await getHistograms(card.run.run_id, card.tag, LIMIT, { signal: controller.signal });
      card.data = resp;
      draw(card);
    } catch (e) {
      if (!isAbort(e)) card.msg.textContent = `could not load: ${e.message}`;
    } finally {
      card.el.classList.remove('is-loading');
    }
  }

  function draw(card) {
    const resp = card.data;
    const hists = (resp && resp.histograms) || [];
    card.msg.textContent = resp === null ? `no ${card.tag} in this run` : hists.length ? '' : 'no histograms yet';
    card.msg.hidden = !card.msg.textContent;
    card.body.hidden = !hists.length;
    if (!hists.length) return;
    card.hists = hists;
    drawOffset(card);
    drawDistribution(card, resp.percentiles);
  }

  function drawOffset(card) {
    const canvas = card.canvas;
    const hists = card.hists;
    const color = card.color;
    const W = canvas.clientWidth || 400;
    const H = OFFSET_HEIGHT;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, H);
    const range = valueRange(hists);
    if (!range) return;
    const [lo, hi] = range;
    const pad = { l: 10, r: 58, t: 8, b: 20 };
    const pw = W - pad.l - pad.r;
    const ph = H - pad.t - pad.b;
    const bins = Math.max(10, Math.min(120, Math.floor(pw / 4)));
    const rows = hists.map((hst) => rebin(hst.bucket_limits, hst.bucket_counts, lo, hi, bins));
    let max = 0;
    for (const r of rows) for (const v of r) if (v > max) max = v;
    const n = hists.length;
    const ridge = n > 1 ? ph * 0.5 : ph * 0.9;
    const gap = n > 1 ? (ph - ridge) / (n - 1) : 0;
    const base = (i) => pad.t + ridge + i * gap;
    card.geom = { pad, pw, ph, lo, hi, ridge, gap, n, bins, rows };
    // axis ticks
    g.font = '10px system-ui, sans-serif';
    g.fillStyle = '#6b7280';
    g.strokeStyle = '#eef0f3';
    g.lineWidth = 1;
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (const t of niceTicks(lo, hi, Math.max(2, Math.floor(pw / 80)))) {
      const x = pad.l + ((t - lo) / (hi - lo)) * pw;
      g.beginPath();
      g.moveTo(x + 0.5, pad.t);
      g.lineTo(x + 0.5, H - pad.b);
      g.stroke();
      g.fillText(fmtNum(t), x, H - pad.b + 4);
    }
    // ridges: earliest first (top, behind), later ones lower and in front
    const labelEvery = Math.max(1, Math.ceil(n / 7));
    g.textAlign = 'left';
    g.textBaseline = 'middle';
    for (let i = 0; i < n; i++) {
      const y0 = base(i);
      const t = n > 1 ? i / (n - 1) : 1;
      g.beginPath();
      g.moveTo(pad.l, y0);
      for (let k = 0; k < bins; k++) {
        const x = pad.l + ((k + 0.5) / bins) * pw;
        g.lineTo(x, y0 - (max > 0 ? (rows[i][k] / max) * ridge : 0));
      }
      g.lineTo(pad.l + pw, y0);
      g.closePath();
      g.fillStyle = tint(color, 0.92 - 0.5 * t);
      g.fill();
      g.strokeStyle = withAlpha(color, 0.35 + 0.6 * t);
      g.lineWidth = 1;
      g.stroke();
      if (i % labelEvery === 0 || i === n - 1) {
        g.fillStyle = '#6b7280';
        g.fillText(`${hists[i].step}`, pad.l + pw + 6, y0);
      }
    }
    g.textAlign = 'left';
    g.fillText('step', pad.l + pw + 6, pad.t + 4);
  }

  function onOffsetHover(card, e) {
    const gm = card.geom;
    if (!gm) return;
    const rect = card.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    if (x < gm.pad.l || x > gm.pad.l + gm.pw) {
      card.hover.textContent = '';
      return;
    }
    const i = gm.n > 1 ? Math.min(gm.n - 1, Math.max(0, Math.round((y - gm.pad.t - gm.ridge) / gm.gap))) : 0;
    const k = Math.min(gm.bins - 1, Math.floor(((x - gm.pad.l) / gm.pw) * gm.bins));
    const w = (gm.hi - gm.lo) / gm.bins;
    const hst = card.hists[i];
    card.hover.textContent = `step ${hst.step} · [${fmtNum(gm.lo + k * w)}, ${fmtNum(gm.lo + (k + 1) * w)}) ≈ ${fmtNum(gm.rows[i][k])} of ${fmtNum(hst.count)}`;
  }

  function drawDistribution(card, p) {
    if (card.u) {
      card.u.destroy();
      card.u = null;
    }
    if (!p || !p.steps || !p.steps.length) {
      card.dist.replaceChildren(h('div', { class: 'chart-msg' }, 'no percentiles'));
      return;
    }
    card.dist.replaceChildren();
    const data = percentileColumns(p);
    const nq = p.q.length;
    const mid = Math.floor(nq / 2);
    const series = [{}];
    for (let j = 0; j < nq; j++) {
      series.push({
        label: `p${fmtNum(p.q[j])}`,
        stroke: j === mid ? card.color : withAlpha(card.color, 0.35),
        width: j === mid ? 1.6 : j === 0 || j === nq - 1 ? 0.5 : 0,
        points: { show: false },
      });
    }
    const bands = [];
    for (let j = 0; j < mid; j++) bands.push({ series: [nq - j, j + 1], fill: withAlpha(card.color, 0.1 + 0.06 * j) });
    const AX = { stroke: '#6b7280', font: '10px system-ui, sans-serif', grid: { stroke: '#eef0f3', width: 1 }, ticks: { stroke: '#e2e5ea', width: 1, size: 3 } };
    const width = Math.max(160, card.dist.clientWidth || 400);
    card.u = new uPlot(
      {
        width,
        height: DIST_HEIGHT,
        padding: [8, 10, 0, 0],
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { show: false } },
        scales: { x: { time: false } },
        axes: [
          { ...AX, size: 28, space: 60, values: (u, s) => s.map((v) => (v === null ? '' : fmtStep(v))) },
          { ...AX, size: 50, values: (u, s) => s.map((v) => (v === null ? '' : fmtNum(v))) },
        ],
        series,
        bands,
        hooks: {
          setCursor: [
            (u) => {
              const i = u.cursor.idx;
              if (i === null || i === undefined) {
                card.hover.textContent = '';
                return;
              }
              const row = p.values[i] || [];
              card.hover.textContent = `step ${p.steps[i]} · median ${fmtNum(row[mid])} · 16–84%: ${fmtNum(row[2])} … ${fmtNum(row[nq - 3])} · min ${fmtNum(row[0])} · max ${fmtNum(row[nq - 1])}`;
            },
          ],
        },
      },
      data,
      card.dist,
    );
  }

  function makeCard(tag, run, order) {
    const canvas = h('canvas', { class: 'hist-canvas', style: { height: `${OFFSET_HEIGHT}px` } });
    const offset = h('div', { class: 'hist-offset', dataset: { testid: 'histogram-offset', tag, runId: run.run_id } }, h('div', { class: 'hist-label' }, 'offset'), canvas);
    const dist = h('div', { class: 'hist-dist-plot' });
    const distribution = h('div', { class: 'hist-distribution', dataset: { testid: 'histogram-distribution', tag, runId: run.run_id } }, h('div', { class: 'hist-label' }, 'distribution'), dist);
    const hover = h('div', { class: 'hist-hover' });
    const msg = h('div', { class: 'chart-msg' }, 'loading…');
    const body = h('div', { class: 'hist-body' }, offset, distribution);
    const color = ctx.colors.get(run.run_id) || '#444';
    const el = h(
      'div',
      { class: 'hist-card', dataset: { testid: 'histogram', tag, runId: run.run_id } },
      h('div', { class: 'chart-head' }, h('i', { class: 'legend-swatch', style: { background: color } }), h('span', { class: 'chart-tag' }, run.name || run.run_id), h('span', { class: 'chart-note' }, tag)),
      msg,
      body,
      hover,
    );
    const card = { el, tag, run, order, canvas, dist, hover, msg, body, color, data: undefined, u: null };
    canvas.addEventListener('mousemove', (e) => onOffsetHover(card, e));
    canvas.addEventListener('mouseleave', () => (hover.textContent = ''));
    return card;
  }

  function render() {
    const tags = [...(ctx.tags.histograms || [])].sort();
    empty.hidden = tags.length > 0 && ctx.runs.length > 0;
    empty.textContent = !ctx.runs.length
      ? 'Select runs in the table to see their histograms.'
      : ctx.tags.error
        ? `Could not load the tags: ${ctx.tags.error}`
        : 'The selected runs have logged no histograms yet.';
    const next = new Map();
    const sections = [];
    let order = 0;
    for (const tag of tags) {
      const body = h('div', { class: 'hist-grid' });
      for (const run of ctx.runs) {
        const key = `${tag}\n${run.run_id}`;
        let card = cards.get(key);
        const color = ctx.colors.get(run.run_id) || '#444';
        if (card && card.color !== color) {
          lazy.remove(card);
          card = null;
        }
        if (!card) {
          card = makeCard(tag, run, order);
          lazy.add(card);
        }
        card.order = order++;
        next.set(key, card);
        body.append(card.el);
      }
      sections.push(h('section', { class: 'tag-group' }, h('div', { class: 'group-head static' }, h('span', { class: 'group-name' }, tag)), body));
    }
    for (const [key, card] of cards) {
      if (!next.has(key)) {
        lazy.remove(card);
        if (card.u) card.u.destroy();
      }
    }
    cards = next;
    grid.replaceChildren(...sections);
  }

  return {
    setContext(next) {
      ctx = next;
      if (active) render();
    },
    show() {
      active = true;
      lazy.setActive(true);
      render();
    },
    hide() {
      active = false;
      lazy.setActive(false);
    },
    refresh() {
      for (const card of cards.values()) lazy.invalidate(card);
    },
  };
}
