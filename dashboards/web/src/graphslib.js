// The Graphs tab's pure parts (tested under node): the scope tree of a graph document, what is drawn
// for a set of expanded scopes, search, and the comparison of two runs' graphs.
//
// A document is {nodes: [{name, scope, op, output_shape, attributes, parameters}], edges: [[from, to]],
// modules?: {scope: class}}. Scopes are module paths: ours are dotted ("layer1.0.conv1"), imported
// TensorBoard graphs use '/' ("VGG/Sequential[features]/Conv2d[0]"); a scope holding a '/' is split on
// '/', any other on '.'. Each scope is a box that opens on click, except where a box would mislead
// or say nothing: a scope with one node (a module that does one op), and a leaf module whose nodes
// do not feed each other (a ReLU module called at three places in a ResNet block: one box would
// join three separate ops and draw cycles). Their nodes are drawn in their place.

const sepOf = (scope) => (scope.includes('/') ? '/' : '.');

/** 'layer1.0.conv1' -> ['layer1', 'layer1.0', 'layer1.0.conv1'] (outermost first); '' -> []. */
export function scopePath(scope) {
  if (!scope) return [];
  const sep = sepOf(scope);
  const parts = scope.split(sep);
  return parts.map((_, i) => parts.slice(0, i + 1).join(sep));
}

/** A box's label: its last part, with its parent's when that part is only a number ("layer1.0"). */
export function scopeLabel(scope) {
  const sep = sepOf(scope);
  const parts = scope.split(sep);
  const last = parts[parts.length - 1];
  return /^\d+$/.test(last) && parts.length > 1 ? `${parts[parts.length - 2]}${sep}${last}` : last;
}

export const opLabel = (op) => String(op || '').split('::').pop();

/**
 * The scope tree: for every scope, its parent, child scopes, own nodes, node count and parameters
 * (its whole subtree); for every node, its scope path. `modules` names a scope's class when known.
 */
export function buildTree(doc) {
  const scopes = new Map();
  const ensure = (id, parent) => {
    let s = scopes.get(id);
    if (!s) {
      s = { id, parent, children: [], nodes: [], count: 0, internal: 0, parameters: 0, cls: (doc.modules && doc.modules[id]) || '' };
      scopes.set(id, s);
      if (parent !== null) scopes.get(parent).children.push(id);
    }
    return s;
  };
  ensure('', null);
  const paths = doc.nodes.map((node, i) => {
    const path = scopePath(node.scope || '');
    let parent = '';
    for (const id of path) {
      ensure(id, parent);
      parent = id;
    }
    scopes.get(parent).nodes.push(i);
    for (const id of ['', ...path]) {
      const s = scopes.get(id);
      s.count++;
      s.parameters += Number(node.parameters) || 0;
    }
    return path;
  });
  for (const [a, b] of doc.edges) {
    const pa = paths[a];
    const pb = paths[b];
    if (!pa || !pb) continue;
    for (let k = 0; k < pa.length && pa[k] === pb[k]; k++) scopes.get(pa[k]).internal++;
  }
  return { scopes, paths };
}

const boxed = (tree, id) => {
  const s = tree.scopes.get(id);
  return s.count > 1 && (s.children.length > 0 || s.internal > 0);
};

/** The outermost scope of node `i` that is a closed box, or null when the node itself is drawn. */
export function representative(tree, expanded, i) {
  for (const id of tree.paths[i]) if (boxed(tree, id) && !expanded.has(id)) return id;
  return null;
}

/** The innermost open box around node `i` (its cluster when drawn), '' at the top. */
function openParent(tree, path) {
  let parent = '';
  for (const id of path) if (boxed(tree, id)) parent = id;
  return parent;
}

/**
 * What to draw when the scopes in `expanded` are open: items (nodes and closed boxes, each with the
 * open box it sits in, `parent`, '' at the top), clusters (the open boxes that hold something) and
 * edges between items (merged; `count` is how many of the graph's edges each stands for).
 */
export function buildView(doc, tree, expanded) {
  const items = new Map();
  const itemOf = doc.nodes.map((node, i) => {
    const box = representative(tree, expanded, i);
    if (box !== null) {
      const key = `s:${box}`;
      if (!items.has(key)) {
        const s = tree.scopes.get(box);
        items.set(key, { key, kind: 'scope', scope: box, parent: openParent(tree, tree.paths[i].slice(0, tree.paths[i].indexOf(box))), count: s.count, cls: s.cls });
      }
      return key;
    }
    const key = `n:${i}`;
    items.set(key, { key, kind: 'node', index: i, parent: openParent(tree, tree.paths[i]) });
    return key;
  });
  const clusters = new Set();
  for (const item of items.values()) {
    for (let p = item.parent; p; p = parentBox(tree, p)) clusters.add(p);
  }
  const edges = new Map();
  for (const [a, b] of doc.edges) {
    const from = itemOf[a];
    const to = itemOf[b];
    if (from === undefined || to === undefined || from === to) continue;
    const key = `${from}>${to}`;
    const e = edges.get(key);
    if (e) e.count++;
    else edges.set(key, { from, to, count: 1 });
  }
  return { items: [...items.values()], clusters: [...clusters].map((id) => ({ key: `c:${id}`, scope: id, parent: parentBox(tree, id) })), edges: [...edges.values()] };
}

/** The innermost box (a scope with more than one node) around scope `id`, '' at the top. */
export function parentBox(tree, id) {
  for (let p = tree.scopes.get(id).parent; p; p = tree.scopes.get(p).parent) if (boxed(tree, p)) return p;
  return '';
}

/**
 * The scopes open at first: none, except that while the top holds a single box (an imported graph
 * whose every node sits under the model's name), that box is opened, so the first picture has parts.
 */
export function initialExpanded(doc, tree) {
  const expanded = new Set();
  for (let guard = 0; guard < 32; guard++) {
    const view = buildView(doc, tree, expanded);
    const boxes = view.items.filter((it) => it.kind === 'scope');
    if (boxes.length !== 1 || view.items.length - boxes.length > 2) break; // beside it, at most input and output
    expanded.add(boxes[0].scope);
  }
  return expanded;
}

/** `expanded` plus every scope around the given nodes, so that they are drawn. */
export function reveal(tree, expanded, indices) {
  const next = new Set(expanded);
  for (const i of indices) for (const id of tree.paths[i]) next.add(id);
  return next;
}

/** `expanded` without `scope` and the scopes inside it (closing a box closes what it holds). */
export function collapse(expanded, scope) {
  const sep = sepOf(scope);
  return new Set([...expanded].filter((id) => id !== scope && !id.startsWith(scope + sep)));
}

/** Indices of the nodes whose name or op holds `query` (case-insensitive); [] for an empty query. */
export function searchNodes(doc, query) {
  const q = String(query || '').trim().toLowerCase();
  if (!q) return [];
  const found = [];
  doc.nodes.forEach((node, i) => {
    if (String(node.name).toLowerCase().includes(q) || String(node.op).toLowerCase().includes(q)) found.push(i);
  });
  return found;
}

const FIELDS = ['op', 'output_shape', 'attributes', 'parameters', 'inputs'];

/** Each node's input names, sorted: how two graphs' wiring is compared (by name, not by index). */
function inputsByName(doc) {
  const inputs = doc.nodes.map(() => []);
  for (const [a, b] of doc.edges) if (doc.nodes[a] && inputs[b]) inputs[b].push(doc.nodes[a].name);
  return inputs.map((list) => list.sort());
}

/** JSON with object keys sorted, so that equal attributes compare equal whatever their order. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value === undefined ? null : value);
}

// The graph's own inputs and outputs are named after the tracer's value names ("output/123"), which
// shift when a layer is added: they are matched by their order instead.
const ENDS = new Set(['prim::Input', 'prim::Output']);

/** Each node's key for the comparison: its name, or its op and order for the graph's inputs and outputs. */
function matchKeys(doc) {
  const seen = new Map();
  return doc.nodes.map((n) => {
    if (!ENDS.has(n.op)) return n.name;
    const k = seen.get(n.op) || 0;
    seen.set(n.op, k + 1);
    return `${n.op}#${k}`;
  });
}

/**
 * Compare two graphs by node name (names are the scope and op, so two runs of one architecture agree):
 * {added: names only in `other`, removed: names only in `base`, changed: [{name, fields}]} where
 * fields are those that differ among op, output_shape, attributes, parameters and inputs.
 */
export function diffGraphs(base, other) {
  const index = (doc) => {
    const inputs = inputsByName(doc).map((names) => names.map((name) => keyOfName(doc, name)).sort());
    const keys = matchKeys(doc);
    return new Map(doc.nodes.map((n, i) => [keys[i], { ...n, inputs: inputs[i] }]));
  };
  const a = index(base);
  const b = index(other);
  const added = [...b].filter(([key]) => !a.has(key)).map(([, n]) => n.name);
  const removed = [...a].filter(([key]) => !b.has(key)).map(([, n]) => n.name);
  const changed = [];
  for (const [key, node] of b) {
    const old = a.get(key);
    if (!old) continue;
    const fields = FIELDS.filter((f) => canonical(old[f]) !== canonical(node[f]));
    if (fields.length) changed.push({ name: node.name, fields });
  }
  return { added, removed, changed };
}

const keyCache = new WeakMap();
/** The match key of the node called `name` in `doc` (see matchKeys). */
function keyOfName(doc, name) {
  let map = keyCache.get(doc);
  if (!map) {
    const keys = matchKeys(doc);
    map = new Map(doc.nodes.map((n, i) => [n.name, keys[i]]));
    keyCache.set(doc, map);
  }
  return map.get(name);
}
