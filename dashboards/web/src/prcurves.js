// The PR CURVES tab: per tag, precision against recall of every displayed run in one chart (run
// colours as elsewhere), at the step a slider chooses (the last one at first; each run shows its
// curve at its last step at or before the slider's, from GET /api/pr_curves). Hovering shows,
// per run, the point nearest the cursor: threshold, precision, recall, TP/FP/TN/FN.
// Cards load when they come on screen (lazy.js). window.__runstream.prcurves.draws counts drawings.

import { counters } from './debug.js';
import { debounce, h } from './dom.js';
import { createLazy } from './lazy.js';
import { forgetTagInfo, getPrCurves, tagInfoFor } from './prcurvesapi.js';
import { curvePoints, fmtCount, nearestPoint, plotScale, stepIndex, unionSteps } from './prcurveslib.js';
import { tagLabel, tagMatcher } from './tags.js';

const HEIGHT = 280;
const PAD = { left: 40, right: 12, top: 10, bottom: 30 };
const TICKS = [0, 0.2, 0.4, 0.6, 0.8, 1];
const stats = (counters.prcurves = counters.prcurves || { draws: 0 });

export function createPrCurvesView(root, store) {
  let ctx = { runs: [], runIds: [], colors: new Map(), tags: {} };
  let cards = new Map();
  let info = {};
  let active = false;
  const grid = h('div', { class: 'chart-grid pr-grid' });
  const empty = h('div', { class: 'empty' });
  const scroller = h('div', { class: 'view-scroll' }, grid, empty);
  // the same tag filter as the Scalars tab's (the `tags` key of the URL)
  const tagFilter = h('input', {
    type: 'search',
    class: 'tag-filter',
    placeholder: 'Filter tags (regex)',
    value: store.get().tags,
    dataset: { testid: 'pr-tag-filter' },
    oninput: debounce(() => store.set({ tags: tagFilter.value }), 200),
  });
  root.append(h('div', { class: 'toolbar' }, tagFilter), scroller);
  const lazy = createLazy({ scroller, load });

  async function load(card) {
    if (card.controller) card.controller.abort();
    const controller = (card.controller = new AbortController());
    const runIds = ctx.runIds.filter((id) => ctx.runs.some((r) => r.run_id === id));
    if (!runIds.length) return;
    card.el.classList.add('is-loading');
    try {
      const resp = await getPrCurves(runIds, card.tag, card.atEnd ? null : card.step, { signal: controller.signal });
      if (controller.signal.aborted) return;
      card.series = (resp && resp.series) || [];
      card.steps = unionSteps(card.series);
      if (card.atEnd) card.step = card.steps.length ? card.steps[card.steps.length - 1] : null;
      show(card);
    } catch (e) {
      if (e.name !== 'AbortError') card.msg.textContent = `could not load: ${e.message}`;
    } finally {
      if (card.controller === controller) card.el.classList.remove('is-loading');
    }
  }

  function show(card) {
    const n = card.steps.length;
    card.slider.max = String(Math.max(0, n - 1));
    card.slider.value = String(stepIndex(card.steps, card.step));
    card.slider.disabled = n < 2;
    card.stepLabel.textContent = n ? `step ${card.step}${n > 1 ? ` · ${stepIndex(card.steps, card.step) + 1}/${n}` : ''}` : '';
    const names = new Map(ctx.runs.map((r) => [r.run_id, r.name || r.run_id]));
    card.lines = card.series.map((s) => ({
      runId: s.run_id,
      name: names.get(s.run_id) || s.run_id,
      color: ctx.colors.get(s.run_id) || '#444',
      step: s.step,
      points: curvePoints(s),
    }));
    card.legend.replaceChildren(
      ...card.lines.map((line) =>
        h(
          'span',
          { class: 'legend-item', title: `${line.runId}\ncurve of step ${line.step}` },
          h('i', { class: 'legend-swatch', style: { background: line.color } }),
          h('span', { class: 'legend-label' }, line.name),
          h('span', { class: 'legend-value' }, line.step === card.step ? '' : `step ${line.step}`),
        ),
      ),
    );
    card.msg.textContent = card.lines.length ? '' : 'no PR curve for the selected runs';
    draw(card);
  }

  function draw(card, hover = null) {
    const canvas = card.canvas;
    const width = Math.max(200, Math.round(card.plot.clientWidth || 400));
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(HEIGHT * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(HEIGHT * ratio);
      canvas.style.width = `${width}px`;
      canvas.style.height = `${HEIGHT}px`;
    }
    const g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, HEIGHT);
    const box = { left: PAD.left, top: PAD.top, width: width - PAD.left - PAD.right, height: HEIGHT - PAD.top - PAD.bottom };
    const scale = plotScale(box);
    card.scale = scale;
    card.box = box;
    // grid and axes
    g.font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    g.fillStyle = '#6b7280';
    g.strokeStyle = '#eef0f3';
    g.lineWidth = 1;
    for (const t of TICKS) {
      g.beginPath();
      g.moveTo(scale.x(t), box.top);
      g.lineTo(scale.x(t), box.top + box.height);
      g.moveTo(box.left, scale.y(t));
      g.lineTo(box.left + box.width, scale.y(t));
      g.stroke();
      g.textAlign = 'center';
      g.textBaseline = 'top';
      g.fillText(t.toFixed(1), scale.x(t), box.top + box.height + 4);
      g.textAlign = 'right';
      g.textBaseline = 'middle';
      g.fillText(t.toFixed(1), box.left - 5, scale.y(t));
    }
    g.textAlign = 'center';
    g.textBaseline = 'bottom';
    g.fillText('recall', box.left + box.width / 2, HEIGHT);
    g.save();
    g.translate(10, box.top + box.height / 2);
    g.rotate(-Math.PI / 2);
    g.textBaseline = 'middle';
    g.fillText('precision', 0, 0);
    g.restore();
    // one line per run
    let points = 0;
    for (const line of card.lines) {
      g.strokeStyle = line.color;
      g.lineWidth = 1.8;
      g.beginPath();
      line.points.forEach((p, i) => {
        const x = scale.x(p.recall);
        const y = scale.y(p.precision);
        if (i === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      });
      g.stroke();
      if (line.points.length === 1) {
        g.fillStyle = line.color;
        g.beginPath();
        g.arc(scale.x(line.points[0].recall), scale.y(line.points[0].precision), 3, 0, 2 * Math.PI);
        g.fill();
      }
      points += line.points.length;
    }
    // the hovered points
    if (hover) {
      for (const { line, point } of hover) {
        g.fillStyle = '#fff';
        g.strokeStyle = line.color;
        g.lineWidth = 2;
        g.beginPath();
        g.arc(scale.x(point.recall), scale.y(point.precision), 4, 0, 2 * Math.PI);
        g.fill();
        g.stroke();
      }
    }
    card.el.dataset.drawnRuns = String(card.lines.filter((l) => l.points.length).length);
    card.el.dataset.points = String(points);
    card.el.dataset.step = card.step === null ? '' : String(card.step);
    stats.draws++;
  }

  function onHover(card, event) {
    if (!card.scale || !card.lines) return;
    const rect = card.canvas.getBoundingClientRect();
    const px = event.clientX - rect.left;
    const py = event.clientY - rect.top;
    const hover = [];
    for (const line of card.lines) {
      const i = nearestPoint(line.points, card.scale, px, py);
      if (i >= 0) hover.push({ line, point: line.points[i] });
    }
    draw(card, hover);
    card.readout.replaceChildren(
      ...hover.map(({ line, point: p }) =>
        h(
          'tr',
          {},
          h('td', {}, h('i', { class: 'legend-swatch', style: { background: line.color } }), ' ', line.name),
          h('td', {}, p.threshold.toFixed(3)),
          h('td', {}, p.precision.toFixed(3)),
          h('td', {}, p.recall.toFixed(3)),
          h('td', {}, fmtCount(p.tp)),
          h('td', {}, fmtCount(p.fp)),
          h('td', {}, fmtCount(p.tn)),
          h('td', {}, fmtCount(p.fn)),
        ),
      ),
    );
    card.table.hidden = !hover.length;
  }

  function makeCard(tag, order) {
    const canvas = h('canvas', { class: 'pr-canvas', dataset: { testid: 'pr-canvas' } });
    const plot = h('div', { class: 'pr-plot' }, canvas);
    const msg = h('div', { class: 'chart-msg' }, 'loading…');
    const slider = h('input', { type: 'range', min: '0', max: '0', step: '1', value: '0', class: 'image-slider', dataset: { testid: 'pr-slider' } });
    const stepLabel = h('span', { class: 'image-label', dataset: { testid: 'pr-step' } });
    const legend = h('div', { class: 'chart-legend' });
    const readout = h('tbody', { dataset: { testid: 'pr-readout' } });
    const table = h(
      'table',
      { class: 'pr-readout', hidden: true },
      h('thead', {}, h('tr', {}, ...['run', 'threshold', 'precision', 'recall', 'TP', 'FP', 'TN', 'FN'].map((c) => h('th', {}, c)))),
      readout,
    );
    const title = h('span', { class: 'chart-tag' }, tag);
    const description = h('div', { class: 'tag-description' });
    const el = h(
      'div',
      { class: 'chart-card pr-card', dataset: { testid: 'pr-card', tag } },
      h('div', { class: 'chart-head' }, title),
      description,
      h('div', { class: 'chart-body pr-body' }, plot, msg),
      h('div', { class: 'pr-stepbar' }, slider, stepLabel),
      legend,
      table,
    );
    const card = { el, tag, order, canvas, plot, msg, slider, stepLabel, legend, readout, table, title, description };
    card.series = [];
    card.steps = [];
    card.lines = [];
    card.step = null;
    card.atEnd = true;
    const reload = debounce(() => lazy.invalidate(card), 120);
    slider.addEventListener('input', () => {
      const i = Number(slider.value);
      card.step = card.steps[i] ?? null;
      card.atEnd = i >= card.steps.length - 1;
      card.stepLabel.textContent = `step ${card.step} · ${i + 1}/${card.steps.length}`;
      reload();
    });
    canvas.addEventListener('mousemove', (e) => onHover(card, e));
    canvas.addEventListener('mouseleave', () => {
      table.hidden = true;
      draw(card);
    });
    return card;
  }

  function label(card) {
    const l = tagLabel(card.tag, info);
    card.title.textContent = l.text;
    card.title.title = l.title;
    card.description.textContent = l.description;
    card.description.hidden = !l.description;
  }

  function render() {
    const all = [...(ctx.tags.pr_curves || [])].sort();
    const tags = all.filter(tagMatcher(store.get().tags));
    empty.hidden = tags.length > 0 && ctx.runs.length > 0;
    empty.textContent = !ctx.runs.length
      ? 'Select runs in the table to see their PR curves.'
      : ctx.tags.error
        ? `Could not load the tags: ${ctx.tags.error}`
        : all.length
          ? `No PR curve tag matches "${store.get().tags}".`
          : 'The selected runs have logged no PR curves yet (add_pr_curve).';
    const next = new Map();
    tags.forEach((tag, order) => {
      let card = cards.get(tag);
      if (!card) {
        card = makeCard(tag, order);
        lazy.add(card);
      }
      card.order = order;
      label(card);
      next.set(tag, card);
    });
    for (const [tag, card] of cards) if (!next.has(tag)) lazy.remove(card);
    cards = next;
    grid.replaceChildren(...[...next.values()].map((c) => c.el));
    tagInfoFor(ctx.runIds).then((found) => {
      info = found;
      for (const card of cards.values()) label(card);
    });
  }

  const resize = new ResizeObserver(debounce(() => cards.forEach((card) => card.lines.length && draw(card)), 150));
  resize.observe(grid);
  store.subscribe((s, changed) => {
    if (document.activeElement !== tagFilter && tagFilter.value !== s.tags) tagFilter.value = s.tags;
    if (changed.has('tags') && active) render();
  });

  return {
    setContext(next) {
      const runsChanged = next.runIds.join(',') !== ctx.runIds.join(',');
      ctx = next;
      if (runsChanged) for (const card of cards.values()) lazy.invalidate(card);
      if (active) render();
    },
    show() {
      active = true;
      lazy.setActive(true);
      render();
      for (const card of cards.values()) lazy.invalidate(card);
    },
    hide() {
      active = false;
      lazy.setActive(false);
    },
    refresh() {
      forgetTagInfo();
      for (const card of cards.values()) lazy.invalidate(card);
    },
  };
}
