// The Graphs tab: a model graph logged with add_graph (or imported from TensorBoard) of one of the
// shown runs, chosen by run, tag and step, laid out in layers. Module scopes start as closed boxes
// (a ResNet-50 opens as a dozen parts); a click opens a box, a click on an open box's label closes
// it, a click on a node shows its op, shapes, attributes and parameters. Search by name or op (Enter
// opens the boxes around the matches), zoom with the wheel, pan by dragging, and compare with
// another run's graph: nodes added, removed and changed.
//
// dagre comes with graphsdraw.js, imported only when the tab opens. window.__runstream.graphs has
// the figures the benchmark and tests read (drawnAt: performance.now() when a graph was drawn).

import { showError } from './banner.js';
import { counters } from './debug.js';
import { debounce, h } from './dom.js';
import {
  buildTree,
  buildView,
  collapse,
  diffGraphs,
  initialExpanded,
  opLabel,
  representative,
  reveal,
  scopeLabel,
  searchNodes,
} from './graphslib.js';

const MAX_REVEAL = 50; // Enter opens the boxes around at most this many matches
const MAX_ZOOM_OUT = 2.5; // graph px per screen px at the first fit: below, text is unreadable
let drawModule = null;
const loadDraw = () => (drawModule ||= import('./graphsdraw.js'));

async function getJson(path, params) {
  const url = `${path}?${new URLSearchParams(params)}`;
  const reply = await fetch(url, { headers: { accept: 'application/json' } });
  const body = await reply.json().catch(() => null);
  if (!reply.ok) {
    const err = new Error((body && body.error) || `${reply.status} ${reply.statusText}`);
    err.status = reply.status;
    err.route = `GET ${path}`;
    throw err;
  }
  return body;
}

const shape = (s) => (Array.isArray(s) ? s.join('×') : '');
const plural = (n, word) => `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;

export function createGraphsView(root) {
  const runSelect = h('select', { dataset: { testid: 'graph-run' }, 'aria-label': 'Run' });
  const graphSelect = h('select', { dataset: { testid: 'graph-choice' }, 'aria-label': 'Tag and step' });
  const compareSelect = h('select', { dataset: { testid: 'graph-compare' }, 'aria-label': 'Compare with' });
  const searchInput = h('input', { type: 'search', placeholder: 'search name or op (Enter: show)', dataset: { testid: 'graph-search' } });
  const matchInfo = h('span', { class: 'muted small', dataset: { testid: 'graph-matches' } });
  const fitButton = h('button', { type: 'button', title: 'Fit the graph in view', dataset: { testid: 'graph-fit' } }, 'Fit');
  const closeButton = h('button', { type: 'button', title: 'Close every box' }, 'Collapse all');
  const status = h('div', { class: 'gr-status muted small', dataset: { testid: 'graph-status' } });
  const canvas = h('div', { class: 'gr-canvas', dataset: { testid: 'graph-canvas' } });
  const details = h('div', { class: 'gr-details small', dataset: { testid: 'graph-details' } });
  const diffBox = h('div', { class: 'gr-diff small', dataset: { testid: 'graph-diff' } });
  root.append(
    h('div', { class: 'vd-controls gr-controls' },
      h('label', {}, 'Run ', runSelect), h('label', {}, 'Graph ', graphSelect), h('label', {}, 'Compare with ', compareSelect),
      searchInput, matchInfo, fitButton, closeButton),
    status,
    h('div', { class: 'gr-body' }, canvas, h('div', { class: 'gr-side' }, details, diffBox)),
  );

  const dbg = (counters.graphs = { drawnAt: null, firstDrawMs: null, draws: 0, items: 0, nodes: 0, layoutMs: null, run: null });
  let active = false;
  let ctxRuns = [];
  let listedFor = null; // the run ids the lists were loaded for
  let listed = []; // [{run, graphs: [{tag, step, rank, nodes, edges, parameters}]}]
  let current = null; // {run, graph, doc, tree}
  let expanded = new Set();
  let selected = null; // a drawn key
  let matches = [];
  let diff = null; // {other: label, added: Set, removed: [], changed: Map name -> fields}
  let placed = null;
  let svgEl = null;
  let vb = null; // the viewBox {x, y, w, h}
  let chosenAt = null;
  let listToken = 0;
  let docToken = 0;

  const runName = (id) => {
    const r = ctxRuns.find((x) => x.run_id === id);
    return (r && r.name) || id;
  };
  const graphKey = (g) => `${g.tag}|${g.step}|${g.rank}`;
  const graphLabel = (g) => `${g.tag} · step ${g.step}${g.rank ? ` · rank ${g.rank}` : ''} (${plural(g.nodes, 'node')})`;

  async function loadLists() {
    const ids = ctxRuns.map((r) => r.run_id);
    listedFor = ids.join(',');
    const token = ++listToken;
    const found = await Promise.all(
      ids.map((id) =>
        getJson('/api/graphs', { run: id })
          .then((r) => ({ run: id, graphs: r.graphs || [] }))
          .catch((e) => {
            if (e.status !== 404) showError(e);
            return { run: id, graphs: [] };
          }),
      ),
    );
    if (token !== listToken) return;
    listed = found.filter((x) => x.graphs.length);
    const keep = runSelect.value;
    runSelect.replaceChildren(...listed.map((x) => h('option', { value: x.run }, runName(x.run))));
    compareSelect.replaceChildren(
      h('option', { value: '' }, '(none)'),
      ...listed.flatMap((x) => x.graphs.map((g) => h('option', { value: `${x.run}|${graphKey(g)}` }, `${runName(x.run)} · ${graphLabel(g)}`))),
    );
    if (diff) compareSelect.value = diff.value;
    if (!listed.length) {
      status.textContent = ids.length
        ? 'None of the shown runs has a graph: log one with SummaryWriter.add_graph(model, input) or Run.log_graph.'
        : 'No runs shown: pick runs on the left.';
      return;
    }
    runSelect.value = listed.some((x) => x.run === keep) ? keep : listed[0].run;
    if (!current || current.run !== runSelect.value) fillGraphs();
    else fillGraphs({ reopen: false }); // the same graph stays; a new step joins the list
  }

  function fillGraphs({ reopen = true } = {}) {
    const entry = listed.find((x) => x.run === runSelect.value);
    if (!entry) return;
    const keep = graphSelect.value;
    graphSelect.replaceChildren(...entry.graphs.map((g) => h('option', { value: graphKey(g) }, graphLabel(g))));
    if (!reopen && entry.graphs.some((g) => graphKey(g) === keep)) {
      graphSelect.value = keep;
      return;
    }
    const last = entry.graphs[entry.graphs.length - 1];
    graphSelect.value = graphKey(last);
    openGraph();
  }

  async function fetchDoc(run, key) {
    const [tag, step, rank] = key.split('|');
    return getJson('/api/graph', { run, tag, step, rank });
  }

  async function openGraph() {
    const run = runSelect.value;
    const key = graphSelect.value;
    if (!run || !key) return;
    chosenAt = performance.now();
    const token = ++docToken;
    status.textContent = `Opening the graph of ${runName(run)}…`;
    let doc;
    try {
      [doc] = await Promise.all([fetchDoc(run, key), loadDraw()]);
    } catch (e) {
      showError(e);
      status.textContent = `could not open the graph: ${e.message}`;
      return;
    }
    if (token !== docToken) return;
    const tree = buildTree(doc);
    current = { run, key, doc, tree };
    expanded = initialExpanded(doc, tree);
    selected = null;
    vb = null;
    details.replaceChildren(h('div', { class: 'muted' }, 'Click a node for its details, a box to open it.'));
    matches = searchNodes(doc, searchInput.value);
    showMatches();
    if (diff) await compare();
    const params = tree.scopes.get('').parameters || doc.parameters || 0;
    status.textContent = `${plural(doc.nodes.length, 'node')}, ${plural(doc.edges.length, 'edge')}, ${plural(Number(doc.parameters ?? params), 'parameter')}`;
    draw();
  }

  const labels = (item) => {
    if (item.kind === 'node') {
      const node = current.doc.nodes[item.index];
      return [opLabel(node.op), shape(node.output_shape)];
    }
    const s = current.tree.scopes.get(item.scope);
    if (item.kind === 'cluster') return [scopeLabel(item.scope), s.cls];
    return [scopeLabel(item.scope), `${s.cls ? `${s.cls} · ` : ''}${plural(s.count, 'node')}`];
  };

  const itemKey = (i) => {
    const box = representative(current.tree, expanded, i);
    return box === null ? `n:${i}` : `s:${box}`;
  };

  function classesFor() {
    const marks = new Map();
    const mark = (key, cls) => marks.set(key, `${marks.get(key) || ''} ${cls}`);
    for (const i of matches) mark(itemKey(i), 'gr-match');
    if (diff) {
      current.doc.nodes.forEach((node, i) => {
        const cls = diff.added.has(node.name) ? 'gr-added' : diff.changed.has(node.name) ? 'gr-changed' : null;
        if (cls) mark(itemKey(i), itemKey(i).startsWith('s:') ? 'gr-has-diff' : cls);
      });
    }
    if (selected) mark(selected, 'gr-selected');
    return (key) => marks.get(key) || '';
  }

  function titles(key) {
    const [kind, rest] = [key.slice(0, 1), key.slice(2)];
    if (kind === 'n') {
      const node = current.doc.nodes[Number(rest)];
      return `${node.name}\n${node.op}${node.output_shape ? `\n${shape(node.output_shape)}` : ''}`;
    }
    const s = current.tree.scopes.get(rest);
    return `${rest}${s.cls ? ` (${s.cls})` : ''}\n${plural(s.count, 'node')}, ${plural(s.parameters, 'parameter')}\n${kind === 's' ? 'click to open' : 'click the label to close'}`;
  }

  /** Lay out and draw; `anchor` (a scope) keeps that scope where it was on screen. */
  function draw(anchor = null) {
    if (!current || !drawModule) return;
    loadDraw().then((lib) => {
      const before = anchor && placed && placed.items.get(`s:${anchor}`);
      const t0 = performance.now();
      const view = buildView(current.doc, current.tree, expanded);
      placed = lib.layout(view, labels);
      dbg.layoutMs = performance.now() - t0;
      const g = lib.render(view, placed, labels, classesFor(), titles);
      if (!svgEl) {
        svgEl = lib.svg('svg', { class: 'gr-svg', preserveAspectRatio: 'xMinYMin meet' });
        canvas.replaceChildren(svgEl);
        attachZoom();
      }
      svgEl.replaceChildren(lib.defs(), g);
      const after = anchor && (placed.clusters.get(`c:${anchor}`) || placed.items.get(`s:${anchor}`));
      if (!vb) fit();
      else if (before && after) {
        vb = { ...vb, x: vb.x + (after.x - before.x), y: vb.y + (after.y - after.height / 2 - (before.y - before.height / 2)) };
        applyViewBox();
      }
      dbg.items = view.items.length;
      dbg.nodes = current.doc.nodes.length;
      requestAnimationFrame(() => {
        dbg.draws++;
        dbg.drawnAt = performance.now();
        dbg.run = current.run;
        if (chosenAt !== null) {
          dbg.firstDrawMs = dbg.drawnAt - chosenAt;
          chosenAt = null;
        }
      });
    });
  }

  // ---- zoom and pan: the SVG's viewBox, kept at the canvas's aspect ratio
  const scale = () => vb.w / Math.max(1, canvas.clientWidth);

  function applyViewBox() {
    svgEl.setAttribute('viewBox', `${vb.x} ${vb.y} ${vb.w} ${vb.h}`);
  }

  function fit() {
    if (!placed || !svgEl) return;
    const cw = Math.max(1, canvas.clientWidth);
    const ch = Math.max(1, canvas.clientHeight);
    const s = Math.min(MAX_ZOOM_OUT, Math.max(1, placed.width / cw, placed.height / ch));
    const w = cw * s;
    const hgt = ch * s;
    // centred when it fits; a graph too tall to read whole starts at its top
    vb = { x: (placed.width - w) / 2, y: placed.height > hgt ? 0 : (placed.height - hgt) / 2, w, h: hgt };
    applyViewBox();
  }

  function centreOn(key) {
    const p = placed && placed.items.get(key);
    if (!p || !vb) return;
    vb = { ...vb, x: p.x - vb.w / 2, y: p.y - vb.h / 2 };
    applyViewBox();
  }

  let drag = null;
  function attachZoom() {
    svgEl.addEventListener('wheel', (e) => {
      if (!vb) return;
      e.preventDefault();
      const rect = svgEl.getBoundingClientRect();
      const f = Math.exp(Math.max(-100, Math.min(100, e.deltaY)) * 0.002);
      const s = scale();
      if ((f > 1 && s > 50) || (f < 1 && s < 0.1)) return;
      const px = vb.x + (e.clientX - rect.left) * s;
      const py = vb.y + (e.clientY - rect.top) * s;
      vb = { x: px - (px - vb.x) * f, y: py - (py - vb.y) * f, w: vb.w * f, h: vb.h * f };
      applyViewBox();
    }, { passive: false });
    svgEl.addEventListener('pointerdown', (e) => {
      if (!vb || e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, vb, moved: false, id: e.pointerId };
    });
    svgEl.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) svgEl.setPointerCapture(drag.id);
      drag.moved = true;
      const s = scale();
      vb = { ...drag.vb, x: drag.vb.x - dx * s, y: drag.vb.y - dy * s };
      applyViewBox();
    });
    const end = () => {
      if (drag && drag.moved) svgEl.__dragged = true; // the click that ends a drag is not a click
      drag = null;
    };
    svgEl.addEventListener('pointerup', end);
    svgEl.addEventListener('pointercancel', end);
    svgEl.addEventListener('click', (e) => {
      if (svgEl.__dragged) {
        svgEl.__dragged = false;
        return;
      }
      const hit = e.target.closest('[data-key]');
      if (hit) onClick(hit.dataset.key, e.target);
    });
  }

  function onClick(key, target) {
    const scope = key.slice(2);
    if (key.startsWith('s:')) {
      expanded = new Set(expanded).add(scope);
      select(`c:${scope}`, false);
      draw(scope);
    } else if (key.startsWith('c:') && target.closest('.gr-cluster-head')) {
      expanded = collapse(expanded, scope);
      select(`s:${scope}`, false);
      draw(scope);
    } else select(key);
  }

  // ---- details
  function select(key, redraw = true) {
    selected = key;
    showDetails(key);
    if (redraw) draw();
  }

  const row = (name, value) => h('tr', {}, h('th', {}, name), h('td', {}, value));

  function nodeLink(i) {
    const node = current.doc.nodes[i];
    return h('button', { type: 'button', class: 'link gr-link', onclick: () => showNode(i) }, node.name);
  }

  function showNode(i) {
    expanded = reveal(current.tree, expanded, [i]);
    selected = `n:${i}`;
    showDetails(selected);
    draw();
    requestAnimationFrame(() => setTimeout(() => centreOn(`n:${i}`), 0));
  }

  function showDetails(key) {
    if (!key) return;
    const kind = key.slice(0, 1);
    const rest = key.slice(2);
    if (kind === 'n') {
      const i = Number(rest);
      const node = current.doc.nodes[i];
      const inputs = current.doc.edges.filter((e) => e[1] === i).map((e) => e[0]);
      const outputs = current.doc.edges.filter((e) => e[0] === i).map((e) => e[1]);
      const attrs = Object.entries(node.attributes || {});
      const changed = diff && diff.changed.get(node.name);
      details.replaceChildren(
        h('div', { class: 'gr-details-title', dataset: { testid: 'graph-node-name' } }, node.name),
        h('table', { class: 'gr-table' },
          row('op', node.op),
          row('scope', `${node.scope || '(model)'}${current.tree.scopes.get(node.scope || '')?.cls ? ` (${current.tree.scopes.get(node.scope || '').cls})` : ''}`),
          row('output shape', node.output_shape ? shape(node.output_shape) : '—'),
          row('parameters', (Number(node.parameters) || 0).toLocaleString('en-US')),
          diff ? row('vs compared', diff.added.has(node.name) ? 'added' : changed ? `changed: ${changed.join(', ')}` : 'same') : null),
        h('div', { class: 'gr-details-sub' }, `attributes (${attrs.length})`),
        attrs.length ? h('table', { class: 'gr-table gr-attrs' }, attrs.map(([k, v]) => row(k, JSON.stringify(v)))) : h('div', { class: 'muted' }, 'none'),
        h('div', { class: 'gr-details-sub' }, `inputs (${inputs.length})`), h('div', { class: 'gr-links' }, inputs.map(nodeLink)),
        h('div', { class: 'gr-details-sub' }, `outputs (${outputs.length})`), h('div', { class: 'gr-links' }, outputs.map(nodeLink)),
      );
      return;
    }
    const s = current.tree.scopes.get(rest);
    if (!s) return;
    details.replaceChildren(
      h('div', { class: 'gr-details-title' }, rest),
      h('table', { class: 'gr-table' }, row('module', s.cls || '—'), row('nodes', s.count.toLocaleString('en-US')), row('parameters', s.parameters.toLocaleString('en-US'))),
      h('div', { class: 'muted' }, kind === 's' ? 'Closed: click the box to open it.' : 'Open: click its label to close it.'),
    );
  }

  // ---- search
  function showMatches() {
    matchInfo.textContent = searchInput.value.trim() ? plural(matches.length, 'match').replace('matchs', 'matches') : '';
    matchInfo.dataset.count = String(matches.length);
  }
  const onSearch = debounce(() => {
    if (!current) return;
    matches = searchNodes(current.doc, searchInput.value);
    showMatches();
    draw();
  }, 150);
  searchInput.addEventListener('input', onSearch);
  searchInput.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || !current) return;
    onSearch.cancel();
    matches = searchNodes(current.doc, searchInput.value);
    showMatches();
    if (matches.length) {
      expanded = reveal(current.tree, expanded, matches.slice(0, MAX_REVEAL));
      showNode(matches[0]);
    } else draw();
  });

  // ---- compare
  async function compare() {
    const value = compareSelect.value;
    if (!value || !current) {
      diff = null;
      diffBox.replaceChildren();
      return;
    }
    const [run, ...rest] = value.split('|');
    let other;
    try {
      other = await fetchDoc(run, rest.join('|'));
    } catch (e) {
      showError(e);
      return;
    }
    const d = diffGraphs(other, current.doc);
    diff = { value, added: new Set(d.added), removed: d.removed, changed: new Map(d.changed.map((c) => [c.name, c.fields])) };
    const index = new Map(current.doc.nodes.map((n, i) => [n.name, i]));
    const list = (title, names, cls, link) =>
      h('div', { class: `gr-diff-group ${cls}` },
        h('div', { class: 'gr-details-sub' }, `${title} (${names.length})`),
        h('ul', {}, names.slice(0, 200).map((n) => h('li', {}, link ? h('button', { type: 'button', class: 'link gr-link', onclick: () => showNode(index.get(n)) }, n) : n))));
    diffBox.replaceChildren(
      h('div', { class: 'gr-details-title', dataset: { testid: 'graph-diff-summary' } },
        `vs ${runName(run)}: +${d.added.length} added, −${d.removed.length} removed, ~${d.changed.length} changed`),
      list('added here', d.added, 'gr-added', true),
      list('changed', d.changed.map((c) => c.name), 'gr-changed', true),
      list('removed (only in the compared graph)', d.removed, 'gr-removed', false),
    );
  }

  runSelect.addEventListener('change', () => fillGraphs());
  graphSelect.addEventListener('change', openGraph);
  compareSelect.addEventListener('change', async () => {
    await compare();
    if (selected) showDetails(selected);
    draw();
  });
  fitButton.addEventListener('click', fit);
  closeButton.addEventListener('click', () => {
    if (!current) return;
    expanded = initialExpanded(current.doc, current.tree);
    vb = null;
    draw();
  });

  const view = {
    setContext(ctx) {
      ctxRuns = ctx.runs || [];
      if (active && ctxRuns.map((r) => r.run_id).join(',') !== listedFor) loadLists();
    },
    show() {
      active = true;
      loadDraw();
      if (ctxRuns.map((r) => r.run_id).join(',') !== listedFor) loadLists();
    },
    hide() {
      active = false;
    },
    refresh() {
      listedFor = null; // new data: a run may have a new graph; listed again when shown
      if (active) loadLists();
    },
    /** For tests and the benchmark: open the node named `name` as a click on it would. */
    selectNode(name) {
      const i = current ? current.doc.nodes.findIndex((n) => n.name === name) : -1;
      if (i >= 0) showNode(i);
      return i >= 0;
    },
  };
  dbg.selectNode = view.selectNode;
  /** For the benchmark: open every box (the whole graph laid out and drawn). */
  dbg.expandAll = () => {
    if (!current) return;
    expanded = new Set(current.tree.scopes.keys());
    draw();
  };
  return view;
}
