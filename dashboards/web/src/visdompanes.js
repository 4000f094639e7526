// Drawing one Visdom window into a pane's body, as Visdom's own page draws it: Plotly documents
// with plotly.js, images with their history slider, HTML (text, svg, matplot, audio, video)
// sanitised into a shadow root, properties as a table, graphs as a circle of nodes.
//
// Loaded with the view's libraries (plotly.js, DOMPurify) by loadPanes(), only when the Visdom tab
// opens. draw(pane, win) updates the pane in place (Plotly.react keeps the user's zoom).

import DOMPurify from 'dompurify';
import { h } from './dom.js';
import { makeSanitizer, safeImageSrc } from './sanitize.js';
import { fixFigure, imageFrames, paneKind, plotlyBuildFor, selectedFrame } from './visdomlib.js';

const sanitize = makeSanitizer(DOMPurify);
// Two builds of plotly.js, each loaded on first need: the basic one (scatter, bar, pie: a quarter of the
// size, so a line pane draws about a second sooner on a slow machine) and the full one for the rest
// (heatmap, contour, surface, mesh3d, box, ...). Each pane remembers which one drew it.
let basicPlotly = null;
let fullPlotly = null;

function loadPlotly(build) {
  if (build === 'basic') return (basicPlotly ||= import('plotly.js-basic-dist-min').then((m) => m.default));
  return (fullPlotly ||= import('plotly.js-dist-min').then((m) => m.default));
}

function purgePlot(pane) {
  if (pane.plotly) pane.plotly.purge(pane.body);
  pane.plotly = null;
}

const PLOT_CONFIG = { displaylogo: false, responsive: false, modeBarButtonsToRemove: ['sendDataToCloud'] };

/** Draw `win` (one window of the read API) into `pane` ({body, note, width, height}); returns the points drawn. */
export async function draw(pane, win) {
  const kind = paneKind(win.type);
  if (pane.kind !== kind) {
    if (pane.kind === 'plot') purgePlot(pane);
    pane.body.replaceChildren();
    pane.body.className = `vd-body vd-${kind}`;
    pane.kind = kind;
    pane.state = {};
  }
  if (kind === 'plot') return drawPlot(pane, win.content);
  if (kind === 'image') drawImage(pane, win.content);
  else if (kind === 'html') drawHtml(pane, win.content);
  else if (kind === 'properties') drawProperties(pane, win.content);
  else if (kind === 'graph') drawGraph(pane, win.content);
  else pane.body.replaceChildren(h('div', { class: 'vd-other' }, `A "${win.type}" window: runstream stores it but does not draw this type yet.`));
  return 0;
}

/** Forget a pane's drawing (Plotly keeps listeners and WebGL contexts otherwise). */
export function release(pane) {
  if (pane.kind === 'plot') purgePlot(pane);
}

async function drawPlot(pane, content) {
  const { data, layout } = fixFigure(content);
  let points = 0;
  let shown = 0;
  for (const trace of data) {
    const n = Array.isArray(trace.x) ? trace.x.length : Array.isArray(trace.y) ? trace.y.length : 0;
    shown += n;
    points += Number.isFinite(trace.points) ? trace.points : n;
  }
  pane.note.textContent = points > shown ? `${points.toLocaleString('en-US')} points, ${shown.toLocaleString('en-US')} drawn (M4)` : '';
  const full = {
    ...layout,
    width: pane.width,
    height: pane.height,
    autosize: false,
    uirevision: 'keep', // appends redraw without losing the user's zoom, as Visdom keeps it
  };
  const plotly = await loadPlotly(plotlyBuildFor(data));
  if (pane.plotly && pane.plotly !== plotly) purgePlot(pane); // a trace of another build came in
  pane.plotly = plotly;
  await plotly.react(pane.body, data, full, PLOT_CONFIG);
  return shown;
}

function drawImage(pane, content) {
  const frames = imageFrames(content);
  const st = pane.state;
  if (!st.img) {
    st.img = h('img', { class: 'vd-img', dataset: { testid: 'visdom-image' }, decoding: 'async' });
    st.frame = h('div', { class: 'vd-img-frame' }, st.img);
    st.slider = h('input', { type: 'range', min: '0', max: '0', step: '1', value: '0', class: 'image-slider', dataset: { testid: 'visdom-image-slider' } });
    st.caption = h('div', { class: 'image-label' });
    st.index = -1;
    // scaled up small images stay sharp, as pixels (digits, masks), not blurred
    st.img.addEventListener('load', () => st.img.classList.toggle('pixelated', pane.width >= 2 * st.img.naturalWidth));
    st.slider.addEventListener('input', () => {
      st.index = Number(st.slider.value);
      showFrame(st);
    });
    pane.body.replaceChildren(st.frame, st.slider, st.caption);
  }
  st.frame.style.height = `${pane.height}px`;
  // first the client's choice; then, while the slider sits at the end, follow new images
  const first = st.index < 0;
  const atEnd = !first && st.index >= st.frames.length - 1;
  st.frames = frames;
  st.index = first ? selectedFrame(content, frames.length) : atEnd ? frames.length - 1 : Math.min(st.index, frames.length - 1);
  showFrame(st);
}

function showFrame(st) {
  const n = st.frames.length;
  st.slider.max = String(Math.max(0, n - 1));
  st.slider.value = String(Math.max(0, st.index));
  st.slider.hidden = n < 2; // Visdom shows the slider for a history only
  if (!n) {
    st.img.removeAttribute('src');
    st.caption.textContent = 'no image';
    return;
  }
  const f = st.frames[st.index];
  const src = safeImageSrc(f.src);
  if (st.img.getAttribute('src') !== src) st.img.src = src;
  st.img.alt = f.caption || 'image';
  st.caption.textContent = [f.caption, n > 1 ? `${st.index + 1}/${n}` : ''].filter(Boolean).join(' · ');
}

function drawHtml(pane, content) {
  const html = content && typeof content === 'object' ? content.html : content;
  const st = pane.state;
  if (!st.root) {
    const host = h('div', { class: 'vd-html', dataset: { testid: 'visdom-text' } });
    st.root = host.attachShadow({ mode: 'open' });
    pane.body.replaceChildren(host);
  }
  if (st.html === html) return;
  st.html = html;
  const style = document.createElement('style');
  style.textContent = ':host{display:block;font:13px/1.45 system-ui,sans-serif;color:#1f2430;overflow-wrap:anywhere}img,svg,video{max-width:100%;height:auto}';
  const wrap = h('div', { class: 'vd-content' }); // innerText of the host does not reach into its shadow root
  wrap.append(sanitize.fragment(html));
  st.root.replaceChildren(style, wrap);
}

function drawProperties(pane, content) {
  const rows = Array.isArray(content) ? content : [];
  const cell = (p) => (p && p.type === 'checkbox' ? (p.value ? '✓' : '✗') : p && p.type === 'select' && Array.isArray(p.values) ? String(p.values[p.value] ?? p.value) : String(p && p.value !== undefined ? p.value : ''));
  pane.body.replaceChildren(
    h(
      'table',
      { class: 'vd-props' },
      h('tbody', {}, rows.map((p) => h('tr', {}, h('th', {}, String((p && p.name) ?? '')), h('td', {}, cell(p))))),
    ),
  );
}

const SVG = 'http://www.w3.org/2000/svg';
const svg = (tag, attrs, text) => {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
};

function drawGraph(pane, content) {
  const nodes = Array.isArray(content && content.nodes) ? content.nodes : [];
  const edges = Array.isArray(content && content.edges) ? content.edges : [];
  const w = pane.width;
  const hgt = pane.height;
  const r = Math.max(10, Math.min(w, hgt) / 2 - 30);
  const at = new Map();
  nodes.forEach((n, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, nodes.length) - Math.PI / 2;
    at.set(n && n.name !== undefined ? n.name : i, [w / 2 + r * Math.cos(a), hgt / 2 + r * Math.sin(a), n]);
  });
  const root = svg('svg', { width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}` });
  for (const e of edges) {
    const a = at.get(e && e.source);
    const b = at.get(e && e.target);
    if (a && b) root.append(svg('line', { x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: '#9aa3af' }));
  }
  for (const [name, [x, y, n]] of at) {
    root.append(svg('circle', { cx: x, cy: y, r: 6, fill: '#2f6fdf' }));
    root.append(svg('text', { x: x + 8, y: y + 4, 'font-size': 11 }, String((n && n.label) ?? name)));
  }
  pane.body.replaceChildren(root);
}
