import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregate, binMeans, commonGrid, groupRuns, groupValue, valuesAt } from '../src/group.js';

test('runs are grouped by a config value, in first-seen order', () => {
  const runs = [
    { run_id: 'a', config: { opt: 'adam', lr: 0.1 } },
    { run_id: 'b', config: { opt: 'sgd', lr: 0.1 } },
    { run_id: 'c', config: { opt: 'adam', lr: 0.2 } },
    { run_id: 'd', config: {} },
  ];
  assert.deepEqual([...groupRuns(runs, 'opt')], [['adam', ['a', 'c']], ['sgd', ['b']], ['(none)', ['d']]]);
  assert.deepEqual([...groupRuns(runs, 'lr').keys()], ['0.1', '0.2', '(none)']);
  assert.equal(groupValue({ k: [1, 2] }, 'k'), '[1,2]');
  assert.equal(groupValue({ k: false }, 'k'), 'false');
});

test('the common grid is the union of x values, or an even grid when too many', () => {
  assert.deepEqual(commonGrid([[0, 2, 4], [1, 2, 3]]), [0, 1, 2, 3, 4]);
  const g = commonGrid([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], 5);
  assert.deepEqual(g, [0, 2.5, 5, 7.5, 10]);
});

test('values at grid points: exact, interpolated, outside, next to a gap', () => {
  const xs = [0, 2, 4, 6];
  const ys = [0, 10, null, 30];
  assert.deepEqual(valuesAt(xs, ys, [-1, 0, 1, 2, 3, 4, 5, 6, 7]), [undefined, 0, 5, 10, undefined, undefined, undefined, 30, undefined]);
});

test('aggregate: mean, min, max, std on the common grid', () => {
  const a = { x: [0, 1, 2], y: [1, 2, 3] };
  const b = { x: [0, 1, 2], y: [3, 4, 9] };
  const r = aggregate([a, b]);
  assert.deepEqual(r.x, [0, 1, 2]);
  assert.deepEqual(r.mean, [2, 3, 6]);
  assert.deepEqual(r.min, [1, 2, 3]);
  assert.deepEqual(r.max, [3, 4, 9]);
  assert.deepEqual(r.std, [1, 1, 3]);
  assert.deepEqual(r.count, [2, 2, 2]);
});

test('aggregate: runs of different lengths and x values', () => {
  // a covers 0..4, b covers 2..6 at other x values (interpolated)
  const a = { x: [0, 2, 4], y: [0, 2, 4] };
  const b = { x: [3, 6], y: [30, 60] };
  const r = aggregate([a, b]);
  assert.deepEqual(r.x, [0, 2, 3, 4, 6]);
  assert.deepEqual(r.count, [1, 1, 2, 2, 1]);
  assert.deepEqual(r.mean, [0, 2, (3 + 30) / 2, (4 + 40) / 2, 60]);
  assert.deepEqual(r.min, [0, 2, 3, 4, 60]);
  assert.deepEqual(r.max, [0, 2, 30, 40, 60]);
  assert.equal(r.std[0], 0);
  assert.equal(r.std[2], 13.5);
});

test('aggregate: a gap leaves only the other runs, or null', () => {
  const a = { x: [0, 1, 2], y: [1, null, 3] };
  const b = { x: [0, 1, 2], y: [3, 5, null] };
  const r = aggregate([a, b]);
  assert.deepEqual(r.mean, [2, 5, 3]);
  assert.deepEqual(r.count, [2, 1, 1]);
  const c = aggregate([{ x: [0, 1], y: [null, null] }]);
  assert.deepEqual(c.mean, [null, null]);
  assert.deepEqual(c.min, [null, null]);
  assert.deepEqual(c.std, [null, null]);
});

test('aggregate: std is stable for large, close values', () => {
  const r = aggregate([
    { x: [0], y: [1e9 + 1] },
    { x: [0], y: [1e9 + 3] },
  ]);
  assert.equal(r.mean[0], 1e9 + 2);
  assert.equal(r.std[0], 1);
});

test('aggregate of nothing', () => {
  assert.deepEqual(aggregate([]), { x: [], mean: [], min: [], max: [], std: [], count: [] });
});

test('bin means: one point per bin, gaps kept, empty bins left out', () => {
  const r = binMeans([0, 1, 2, 3, 8, 9], [1, 3, null, null, 10, 20], 0, 10, 5);
  // bins [0,2) [2,4) [4,6) [6,8) [8,10]
  assert.deepEqual(r, { x: [0.5, 3, 8.5], y: [2, null, 15] });
});

test('aggregate of long zigzag series uses bin means (a downsampled series does not make a noisy mean)', () => {
  const x = Array.from({ length: 1000 }, (_, i) => i);
  const a = { x, y: x.map((i) => (i % 2 ? 1 : -1)) }; // zigzag around 0
  const b = { x, y: x.map(() => 2) };
  const r = aggregate([a, b], { maxPoints: 100 });
  assert.equal(r.x.length, 100);
  assert.ok(Math.abs(r.x[0] - 4.995) < 1e-9);
  for (const v of r.mean) assert.ok(Math.abs(v - 1) < 1e-9, `mean ${v}`);
});
