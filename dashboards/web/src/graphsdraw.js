// The Graphs tab's drawing: a layered layout of what graphslib.buildView says to draw (dagre, top to
// bottom, open scopes as compound clusters) and its SVG. Imported only when the tab first draws, so
// dagre stays out of app.js.

import { Graph, layout as dagreLayout } from '@dagrejs/dagre';

const SVG = 'http://www.w3.org/2000/svg';
const CHAR = 7; // px per character of the 12px labels: sizes nodes without measuring text
const NODE_H = 28;
const BOX_H = 40;

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

const text = (x, y, content, cls) => {
  const t = svg('text', { x, y, class: cls });
  t.textContent = content;
  return t;
};

/**
 * Positions for the view: labels(item) -> [title, subtitle]. Returns {items: Map key -> {x, y,
 * width, height}, clusters: Map key -> {...}, edges: [{from, to, count, points}], width, height}.
 */
export function layout(view, labels) {
  const g = new Graph({ compound: true, multigraph: false });
  // compound graphs get half of ranksep between a cluster's top and its first row: room for its label
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 52, edgesep: 12, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const c of view.clusters) g.setNode(c.key, {});
  for (const c of view.clusters) if (c.parent) g.setParent(c.key, `c:${c.parent}`);
  for (const item of view.items) {
    const [title, sub] = labels(item);
    const width = Math.max(64, CHAR * Math.max(title.length, sub ? sub.length * 0.85 : 0) + 20);
    g.setNode(item.key, { width, height: sub ? BOX_H : NODE_H });
    if (item.parent) g.setParent(item.key, `c:${item.parent}`);
  }
  for (const e of view.edges) g.setEdge(e.from, e.to);
  dagreLayout(g);
  const items = new Map(view.items.map((it) => [it.key, g.node(it.key)]));
  const clusters = new Map(view.clusters.map((c) => [c.key, g.node(c.key)]));
  const edges = view.edges.map((e) => ({ ...e, points: g.edge(e.from, e.to).points }));
  const { width, height } = g.graph();
  return { items, clusters, edges, width, height };
}

/**
 * The SVG content (one <g>) for a laid-out view. Every drawn element carries data-key (the item's
 * or cluster's key) for the clicks and highlights the view adds; `classes(key)` adds classes.
 */
export function render(view, placed, labels, classes, titles) {
  const root = svg('g', { class: 'gr-root' });
  const depth = new Map(view.clusters.map((c) => [c.key, 0]));
  for (const c of view.clusters) for (let p = c.parent; p; p = view.clusters.find((x) => x.scope === p)?.parent) depth.set(c.key, depth.get(c.key) + 1);
  const clusters = [...view.clusters].sort((a, b) => depth.get(a.key) - depth.get(b.key)); // outer ones below
  const heads = [];
  for (const c of clusters) {
    const p = placed.clusters.get(c.key);
    if (!p) continue;
    const [title] = labels({ kind: 'cluster', scope: c.scope });
    const x = p.x - p.width / 2;
    const y = p.y - p.height / 2;
    root.append(
      svg('g', { class: `gr-cluster ${classes(c.key)}`, 'data-key': c.key, 'data-testid': 'graph-cluster' },
        svg('rect', { x, y, width: p.width, height: p.height, rx: 6 }),
        svg('title', {}, titles(c.key))),
    );
    // the label goes on top of the edges (one may pass under it), in a head that closes the box
    const label = `▾ ${title}`;
    heads.push(
      svg('g', { class: 'gr-cluster-head', 'data-key': c.key },
        svg('rect', { x: x + 4, y: y + 3, width: label.length * 6.5 + 8, height: 16, rx: 3 }),
        text(x + 8, y + 15, label, 'gr-cluster-label'),
        svg('title', {}, titles(c.key))),
    );
  }
  const edges = svg('g', { class: 'gr-edges' });
  for (const e of placed.edges) {
    const d = e.points.map((pt, i) => `${i ? 'L' : 'M'}${pt.x.toFixed(1)},${pt.y.toFixed(1)}`).join('');
    edges.append(svg('path', { d, class: `gr-edge${e.count > 1 ? ' gr-edge-multi' : ''}`, 'marker-end': 'url(#gr-arrow)' }));
  }
  root.append(edges, ...heads);
  for (const item of view.items) {
    const p = placed.items.get(item.key);
    const [title, sub] = labels(item);
    const x = p.x - p.width / 2;
    const y = p.y - p.height / 2;
    const kind = item.kind === 'scope' ? 'gr-box' : 'gr-node';
    root.append(
      svg('g', { class: `${kind} ${classes(item.key)}`, 'data-key': item.key, 'data-testid': item.kind === 'scope' ? 'graph-box' : 'graph-node' },
        svg('rect', { x, y, width: p.width, height: p.height, rx: item.kind === 'scope' ? 6 : 12 }),
        text(p.x, sub ? p.y - 3 : p.y + 4, title, 'gr-title'),
        sub ? text(p.x, p.y + 13, sub, 'gr-sub') : null,
        svg('title', {}, titles(item.key))),
    );
  }
  return root;
}

/** The <defs> with the arrow head the edges end in. */
export function defs() {
  return svg('defs', {},
    svg('marker', { id: 'gr-arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      svg('path', { d: 'M0,0L10,5L0,10z', class: 'gr-arrow' })));
}

export { svg };
