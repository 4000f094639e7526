import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  buildTree,
  buildView,
  collapse,
  diffGraphs,
  initialExpanded,
  reveal,
  scopeLabel,
  scopePath,
  searchNodes,
} from '../src/graphslib.js';

const node = (name, scope, op, extra = {}) => ({ name, scope, op, output_shape: [1], attributes: {}, parameters: 0, ...extra });

// A small ResNet-like document in our form: dotted module paths, a block with two convs and an add.
const ours = {
  nodes: [
    node('input/x', '', 'prim::Input'), // 0
    node('conv1/_convolution', 'conv1', 'aten::_convolution', { parameters: 10 }), // 1
    node('layer1.0.conv1/_convolution', 'layer1.0.conv1', 'aten::_convolution', { parameters: 20 }), // 2
    node('layer1.0.relu/relu_', 'layer1.0.relu', 'aten::relu_'), // 3
    node('layer1.0.relu/relu__1', 'layer1.0.relu', 'aten::relu_'), // 4
    node('layer1.0/add', 'layer1.0', 'aten::add'), // 5
    node('fc/linear', 'fc', 'aten::linear', { parameters: 5 }), // 6
    node('output/y', '', 'prim::Output'), // 7
  ],
  edges: [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [1, 5], [5, 6], [6, 7]],
  modules: { '': 'Net', conv1: 'Conv2d', layer1: 'Sequential', 'layer1.0': 'Bottleneck', 'layer1.0.relu': 'ReLU' },
};

const keys = (view) => view.items.map((it) => it.key).sort();

test('scope paths split dotted module paths and TensorBoard slash scopes', () => {
  assert.deepEqual(scopePath('layer1.0.conv1'), ['layer1', 'layer1.0', 'layer1.0.conv1']);
  assert.deepEqual(scopePath('Net/Sequential[features]/Conv2d[0]'), ['Net', 'Net/Sequential[features]', 'Net/Sequential[features]/Conv2d[0]']);
  assert.deepEqual(scopePath('b/input.3'), ['b', 'b/input.3']); // a '/' scope is never split on '.'
  assert.deepEqual(scopePath(''), []);
  assert.equal(scopeLabel('layer1.0'), 'layer1.0');
  assert.equal(scopeLabel('layer1.0.conv1'), 'conv1');
  assert.equal(scopeLabel('Net/Sequential[features]'), 'Sequential[features]');
});

test('the tree counts nodes and parameters over each scope', () => {
  const tree = buildTree(ours);
  assert.equal(tree.scopes.get('').count, 8);
  assert.equal(tree.scopes.get('layer1').count, 4);
  assert.equal(tree.scopes.get('layer1').parameters, 20);
  assert.deepEqual(tree.scopes.get('layer1.0').children, ['layer1.0.conv1', 'layer1.0.relu']);
  assert.equal(tree.scopes.get('layer1.0').cls, 'Bottleneck');
});

test('collapsed at the top: multi-node scopes are boxes, single-node scopes show their node', () => {
  const tree = buildTree(ours);
  const view = buildView(ours, tree, new Set());
  assert.deepEqual(keys(view), ['n:0', 'n:1', 'n:6', 'n:7', 's:layer1']);
  assert.deepEqual(view.clusters, []);
  const edges = view.edges.map((e) => `${e.from}>${e.to}:${e.count}`).sort();
  // conv1 feeds layer1 twice (into the conv and into the add): one drawn edge standing for two
  assert.deepEqual(edges, ['n:0>n:1:1', 'n:1>s:layer1:2', 'n:6>n:7:1', 's:layer1>n:6:1']);
});

test('expanding opens one level; the opened scopes become clusters around their items', () => {
  const tree = buildTree(ours);
  const one = buildView(ours, tree, new Set(['layer1']));
  // layer1 has a single child scope (layer1.0) with 4 nodes: still a box, inside layer1's cluster
  assert.deepEqual(keys(one), ['n:0', 'n:1', 'n:6', 'n:7', 's:layer1.0']);
  assert.deepEqual(one.clusters, [{ key: 'c:layer1', scope: 'layer1', parent: '' }]);
  assert.equal(one.items.find((it) => it.key === 's:layer1.0').parent, 'layer1');
  const two = buildView(ours, tree, new Set(['layer1', 'layer1.0', 'layer1.0.relu']));
  assert.deepEqual(keys(two), ['n:0', 'n:1', 'n:2', 'n:3', 'n:4', 'n:5', 'n:6', 'n:7']);
  assert.equal(two.items.find((it) => it.key === 'n:3').parent, 'layer1.0.relu');
  assert.equal(two.items.find((it) => it.key === 'n:2').parent, 'layer1.0'); // conv1 alone is no box
  assert.deepEqual(two.clusters.map((c) => `${c.scope}<${c.parent}`).sort(), ['layer1.0.relu<layer1.0', 'layer1.0<layer1', 'layer1<']);
});

test('a leaf module called at separate places is no box: its ops are drawn apart', () => {
  const reused = structuredClone(ours);
  reused.edges = reused.edges.filter(([a, b]) => !(a === 3 && b === 4)); // the two relu calls no longer chained
  reused.edges.push([3, 5], [1, 4]); // each call fed from elsewhere
  const tree = buildTree(reused);
  assert.equal(tree.scopes.get('layer1.0.relu').internal, 0);
  const view = buildView(reused, tree, new Set(['layer1', 'layer1.0']));
  assert.deepEqual(keys(view), ['n:0', 'n:1', 'n:2', 'n:3', 'n:4', 'n:5', 'n:6', 'n:7']);
  assert.equal(view.items.find((it) => it.key === 'n:3').parent, 'layer1.0');
});

test('collapsing a scope closes the scopes inside it; reveal opens the scopes around nodes', () => {
  const tree = buildTree(ours);
  assert.deepEqual([...collapse(new Set(['layer1', 'layer1.0', 'layer10', 'fc']), 'layer1')].sort(), ['fc', 'layer10']);
  assert.deepEqual([...reveal(tree, new Set(), [3])].sort(), ['layer1', 'layer1.0', 'layer1.0.relu']);
});

test('an imported graph under one model scope opens until the top shows its parts', () => {
  const tb = {
    nodes: [
      node('input/x', 'input', 'IO Node'),
      node('Net/Sequential[features]/Conv2d[0]/input.1', 'Net/Sequential[features]/Conv2d[0]', 'aten::_convolution'),
      node('Net/Sequential[features]/ReLU[1]/input.2', 'Net/Sequential[features]/ReLU[1]', 'aten::relu'),
      node('Net/Linear[fc]/onnx::Gemm', 'Net/Linear[fc]', 'aten::linear'),
      node('Net/Linear[fc]/out', 'Net/Linear[fc]', 'aten::t'),
    ],
    edges: [[0, 1], [1, 2], [2, 3], [3, 4]],
  };
  const tree = buildTree(tb);
  const expanded = initialExpanded(tb, tree);
  assert.deepEqual([...expanded], ['Net']);
  assert.deepEqual(keys(buildView(tb, tree, expanded)), ['n:0', 's:Net/Linear[fc]', 's:Net/Sequential[features]']);
  assert.deepEqual([...initialExpanded(ours, buildTree(ours))], []); // several parts at the top already
});

test('search matches names and ops, case-insensitively', () => {
  assert.deepEqual(searchNodes(ours, 'RELU'), [3, 4]);
  assert.deepEqual(searchNodes(ours, 'layer1.0'), [2, 3, 4, 5]);
  assert.deepEqual(searchNodes(ours, 'convolution'), [1, 2]);
  assert.deepEqual(searchNodes(ours, '  '), []);
});

test('the diff names added, removed and changed nodes and what changed', () => {
  const other = structuredClone(ours);
  other.nodes[2].output_shape = [2]; // a wider conv
  other.nodes[2].attributes = { stride: [2, 2] };
  other.nodes[6].parameters = 50;
  other.nodes.splice(4, 1, node('layer1.0/dropout', 'layer1.0', 'aten::dropout')); // relu__1 replaced
  const diff = diffGraphs(ours, other);
  assert.deepEqual(diff.added, ['layer1.0/dropout']);
  assert.deepEqual(diff.removed, ['layer1.0.relu/relu__1']);
  assert.deepEqual(diff.changed, [
    { name: 'layer1.0.conv1/_convolution', fields: ['output_shape', 'attributes'] },
    { name: 'layer1.0/add', fields: ['inputs'] }, // its input is now the dropout
    { name: 'fc/linear', fields: ['parameters'] },
  ]);
  assert.deepEqual(diffGraphs(ours, structuredClone(ours)), { added: [], removed: [], changed: [] });
  // the graph's output is named after a tracer value that shifts with the graph: matched by order
  const renamed = structuredClone(ours);
  renamed.nodes[7].name = 'output/y.2';
  renamed.nodes[0].name = 'input/x.9';
  assert.deepEqual(diffGraphs(ours, renamed), { added: [], removed: [], changed: [] });
  const reordered = structuredClone(ours);
  reordered.nodes[1].attributes = { b: 1, a: 2 };
  const base = structuredClone(ours);
  base.nodes[1].attributes = { a: 2, b: 1 };
  assert.deepEqual(diffGraphs(base, reordered).changed, []);
});
