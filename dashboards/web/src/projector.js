// The Projector tab: an embedding (run, tag, step) projected by the server (PCA at once; t-SNE and
// UMAP as background jobs with progress and cancel) and drawn whole in WebGL, 2-D or 3-D; colour and
// label by a metadata column, search by label or regex, click a point for its nearest neighbours
// (computed by the server over the full vectors), label images on hover and selection.
//
// The drawing libraries (regl-scatterplot, three.js) come with projectordraw.js, imported only when
// the tab first draws. window.__runstream.projector has the figures the benchmark and tests read.

import { showError } from './banner.js';
import { PALETTE } from './colors.js';
import { counters } from './debug.js';
import { h } from './dom.js';
import { categories, fmtDuration, legendOrder, normaliseCoords, search } from './projectorlib.js';

const POLL_MS = 400;
const OTHER_COLOR = '#b8bec6';
let drawModule = null;
const loadDraw = () => (drawModule ||= import('./projectordraw.js'));

async function api(path, { method = 'GET', body, binary = false } = {}) {
  const reply = await fetch(path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : undefined,
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!reply.ok) {
    let message = `${reply.status} ${reply.statusText}`;
    try {
      message = (await reply.json()).error || message;
    } catch {
      // not JSON: keep the status line
    }
    const err = new Error(message);
    err.status = reply.status;
    err.route = path.split('?')[0];
    throw err;
  }
  return binary ? reply : reply.json();
}

const q = (params) => new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();

export function createProjectorView(root) {
  const el = (tag, attrs, ...kids) => h(tag, attrs, ...kids);
  const embeddingSelect = el('select', { dataset: { testid: 'projector-embedding' }, 'aria-label': 'Embedding' });
  const methodSelect = el('select', { dataset: { testid: 'projector-method' }, 'aria-label': 'Projection' },
    el('option', { value: 'pca' }, 'PCA'), el('option', { value: 'tsne' }, 't-SNE'), el('option', { value: 'umap' }, 'UMAP'));
  const dimsSelect = el('select', { dataset: { testid: 'projector-dims' }, 'aria-label': 'Dimensions' },
    el('option', { value: '2' }, '2-D'), el('option', { value: '3' }, '3-D'));
  const runButton = el('button', { type: 'button', dataset: { testid: 'projector-run' } }, 'Project');
  const cancelButton = el('button', { type: 'button', dataset: { testid: 'projector-cancel' }, hidden: true }, 'Cancel');
  const colorSelect = el('select', { dataset: { testid: 'projector-color' }, 'aria-label': 'Colour by' });
  const labelSelect = el('select', { dataset: { testid: 'projector-label' }, 'aria-label': 'Label by' });
  const searchInput = el('input', { type: 'search', placeholder: 'search labels', dataset: { testid: 'projector-search' } });
  const regexBox = el('input', { type: 'checkbox', 'aria-label': 'regular expression' });
  const metricSelect = el('select', { 'aria-label': 'Distance' }, el('option', { value: 'cosine' }, 'cosine'), el('option', { value: 'euclidean' }, 'euclidean'));
  const status = el('div', { class: 'pj-status muted small', dataset: { testid: 'projector-status' } });
  const legend = el('div', { class: 'pj-legend small' });
  const canvasBox = el('div', { class: 'pj-canvas', dataset: { testid: 'projector-canvas' } });
  const tooltip = el('div', { class: 'pj-tooltip', hidden: true });
  const details = el('div', { class: 'pj-details small', dataset: { testid: 'projector-details' } });
  root.append(
    el('div', { class: 'controls pj-controls' },
      el('label', {}, 'Embedding ', embeddingSelect), el('label', {}, 'Projection ', methodSelect), dimsSelect, runButton, cancelButton,
      el('label', {}, 'Colour by ', colorSelect), el('label', {}, 'Label by ', labelSelect),
      searchInput, el('label', { class: 'small' }, regexBox, ' regex'), el('label', {}, 'Neighbours by ', metricSelect)),
    status,
    el('div', { class: 'pj-body' }, el('div', { class: 'pj-plot' }, canvasBox, tooltip), el('div', { class: 'pj-side' }, legend, details)),
  );

  const dbg = (counters.projector = { chosenAt: null, firstDrawMs: null, drawMs: null, points: 0, neighboursMs: null, jobs: 0 });
  let active = false;
  let listed = [];
  let current = null; // {run_id, tag, step, rows, dims, columns, has_images, values}
  let job = null;
  let drawing = null;
  let axes = null;
  let selected = null;
  let firstDrawPending = false;

  const which = () => current && { run: current.run_id, tag: current.tag, step: current.step };
  const labelOf = (i) => {
    const col = labelSelect.value;
    const v = current && col ? current.values[col]?.[i] : undefined;
    return v === undefined || v === null ? `#${i}` : String(v);
  };

  async function loadList() {
    try {
      listed = (await api('/api/projector/embeddings')).embeddings || [];
    } catch (e) {
      showError(e);
      return;
    }
    const keep = embeddingSelect.value;
    embeddingSelect.replaceChildren(
      ...listed.map((e, i) =>
        el('option', { value: String(i), title: e.run_id }, `${e.name || e.run_id} · ${e.tag} · step ${e.step} (${e.rows} × ${e.dims ?? '?'}${e.complete ? '' : ', arriving'})`)),
    );
    if (!listed.length) {
      status.textContent = 'No embeddings yet: log one with Run.log_embedding or SummaryWriter.add_embedding.';
      return;
    }
    if (keep && Number(keep) < listed.length) embeddingSelect.value = keep;
    if (!current) choose();
  }

  async function choose() {
    const e = listed[Number(embeddingSelect.value)];
    if (!e) return;
    if (job) cancel();
    dbg.chosenAt = performance.now();
    firstDrawPending = true;
    status.textContent = `Opening ${e.tag} (${e.rows} points)…`;
    try {
      current = await api(`/api/projector/embedding?${q({ run: e.run_id, tag: e.tag, step: e.step })}`);
    } catch (err) {
      showError(err);
      status.textContent = err.message;
      return;
    }
    const columns = current.columns || [];
    const opts = () => [el('option', { value: '' }, '(none)'), ...columns.map((c) => el('option', { value: c }, c))];
    colorSelect.replaceChildren(...opts());
    labelSelect.replaceChildren(...opts());
    colorSelect.value = labelSelect.value = columns.includes('label') ? 'label' : columns[0] || '';
    selected = null;
    details.replaceChildren();
    project();
  }

  async function project() {
    if (!current) return;
    const method = methodSelect.value;
    const dims = Number(dimsSelect.value);
    const body = { ...which(), method, dims: method === 'pca' ? 3 : dims };
    try {
      job = await api('/api/projector/projections', { method: 'POST', body });
    } catch (e) {
      showError(e);
      status.textContent = e.message;
      return;
    }
    dbg.jobs++;
    cancelButton.hidden = job.state === 'done';
    follow(job.job);
  }

  async function follow(id) {
    while (job && job.job === id) {
      showJob(job);
      if (job.state === 'done') break;
      if (job.state === 'failed' || job.state === 'cancelled') {
        cancelButton.hidden = true;
        return;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (!job || job.job !== id) return;
      try {
        job = await api(`/api/projector/projections/${id}`);
      } catch (e) {
        showError(e);
        return;
      }
    }
    if (!job || job.job !== id) return;
    cancelButton.hidden = true;
    const reply = await api(`/api/projector/projections/${id}/coords`, { binary: true });
    const rows = Number(reply.headers.get('X-Rows'));
    const dims = Number(reply.headers.get('X-Dims'));
    const all = normaliseCoords(await reply.arrayBuffer(), rows, dims);
    axes = all.slice(0, Number(dimsSelect.value));
    await draw();
  }

  function showJob(j) {
    const names = { pca: 'PCA', tsne: 't-SNE', umap: 'UMAP' };
    const name = names[j.method] || j.method;
    if (j.state === 'done') {
      const v = j.variance_explained;
      const variance = v ? ` · variance explained ${v.map((x) => `${(100 * x).toFixed(1)}%`).join(', ')} (total ${(100 * v.slice(0, Number(dimsSelect.value)).reduce((a, b) => a + b, 0)).toFixed(1)}% shown)` : '';
      status.textContent = `${name} of ${j.rows} points${j.message === 'cached' ? ' (cached)' : ` in ${j.elapsed_seconds.toFixed(1)} s`}${variance}`;
    } else if (j.state === 'failed') status.textContent = `${name} failed: ${j.error}`;
    else if (j.state === 'cancelled') status.textContent = `${name} cancelled`;
    else status.textContent = `${name} of ${j.rows} points: ${j.message} · ${Math.round(100 * j.progress)}% · ${j.elapsed_seconds.toFixed(0)} s of about ${fmtDuration(j.estimate_seconds)}`;
  }

  async function cancel() {
    const id = job && job.job;
    if (!id) return;
    try {
      job = await api(`/api/projector/projections/${id}`, { method: 'DELETE' });
      showJob(job);
    } catch (e) {
      showError(e);
    }
    cancelButton.hidden = true;
  }

  function colouring() {
    const col = colorSelect.value;
    const n = axes ? axes[0].length : 0;
    if (!col || !current) return { codes: new Int32Array(n), names: [], palette: [PALETTE[0]] };
    const { codes, names } = categories(current.values[col] || []);
    const palette = names.map((name, i) => (name.startsWith('other (') && i === names.length - 1 ? OTHER_COLOR : PALETTE[i % PALETTE.length]));
    return { codes, names, palette: palette.length ? palette : [PALETTE[0]] };
  }

  function showLegend({ names, palette }) {
    legend.replaceChildren(...legendOrder(names).map((i) => el('div', { class: 'pj-key' }, el('span', { class: 'pj-swatch', style: { background: palette[i] } }), names[i])));
  }

  async function draw() {
    const started = performance.now();
    const colours = colouring();
    const { createDrawing } = await loadDraw();
    if (drawing) drawing.destroy();
    drawing = createDrawing(canvasBox, { axes, codes: colours.codes, palette: colours.palette, onHover: hover, onSelect: select });
    await drawing.drawn;
    await new Promise((r) => requestAnimationFrame(() => r()));
    dbg.drawMs = performance.now() - started;
    dbg.points = axes[0].length;
    if (firstDrawPending && dbg.chosenAt !== null) {
      dbg.firstDrawMs = performance.now() - dbg.chosenAt;
      firstDrawPending = false;
    }
    showLegend(colours);
    if (selected !== null) select(selected);
  }

  function imageUrl(i) {
    return `/api/projector/image?${q({ ...which(), idx: i })}`;
  }

  function hover(i) {
    if (i === null || !current) {
      tooltip.hidden = true;
      return;
    }
    tooltip.replaceChildren(el('div', {}, labelOf(i)), current.has_images ? el('img', { src: imageUrl(i), alt: '' }) : null);
    tooltip.hidden = false;
  }

  async function select(i) {
    if (!current) return;
    selected = i;
    details.replaceChildren(el('h4', {}, `Point ${i}: ${labelOf(i)}`), current.has_images ? el('img', { class: 'pj-thumb', src: imageUrl(i), alt: '' }) : null,
      el('div', { class: 'muted' }, 'nearest neighbours…'));
    const started = performance.now();
    let near;
    try {
      near = await api(`/api/projector/neighbours?${q({ ...which(), index: i, k: 10, metric: metricSelect.value })}`);
    } catch (e) {
      showError(e);
      return;
    }
    dbg.neighboursMs = performance.now() - started;
    if (selected !== i) return;
    if (drawing) drawing.select([i, ...near.indices]);
    details.replaceChildren(
      el('h4', {}, `Point ${i}: ${labelOf(i)}`),
      current.has_images ? el('img', { class: 'pj-thumb', src: imageUrl(i), alt: '' }) : null,
      el('div', { class: 'muted' }, `10 nearest by ${near.metric} distance over ${current.dims} dimensions`),
      el('ol', { class: 'pj-neighbours', dataset: { testid: 'projector-neighbours' } },
        near.indices.map((j, k) => el('li', {},
          el('a', { href: '#', onclick: (ev) => { ev.preventDefault(); select(j); } }, labelOf(j)),
          el('span', { class: 'muted' }, ` #${j} · ${near.distances[k].toFixed(4)}`)))),
    );
  }

  function runSearch() {
    if (!current || !drawing) return;
    const labels = current.values[labelSelect.value] || [];
    const { indices, error } = search(labels, searchInput.value.trim(), { regex: regexBox.checked });
    searchInput.setCustomValidity(error || '');
    searchInput.title = error || `${indices.length} matching points`;
    drawing.select(indices);
    status.dataset.matches = String(indices.length);
  }

  dbg.selectPoint = (i) => select(i); // for browser tests: a click needs a point's pixel position
  embeddingSelect.addEventListener('change', choose);
  runButton.addEventListener('click', project);
  cancelButton.addEventListener('click', cancel);
  dimsSelect.addEventListener('change', project);
  colorSelect.addEventListener('change', () => {
    if (!drawing) return;
    const colours = colouring();
    drawing.recolor(colours.codes, colours.palette);
    showLegend(colours);
  });
  labelSelect.addEventListener('change', () => selected !== null && select(selected));
  searchInput.addEventListener('input', runSearch);
  regexBox.addEventListener('change', runSearch);
  canvasBox.addEventListener('mousemove', (e) => {
    const r = canvasBox.getBoundingClientRect();
    tooltip.style.left = `${e.clientX - r.left + 14}px`;
    tooltip.style.top = `${e.clientY - r.top + 14}px`;
  });

  return {
    show() {
      active = true;
      if (!listed.length) loadList();
    },
    hide() {
      active = false;
    },
    refresh() {
      if (active && !current) loadList();
    },
    setContext() {},
  };
}
