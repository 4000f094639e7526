import assert from 'node:assert/strict';
import { test } from 'node:test';
import { categories, fmtDuration, legendOrder, normaliseCoords, search } from '../src/projectorlib.js';

test('coordinates are split per axis and scaled into [-1, 1] with one factor', () => {
  const body = new Float32Array([0, 0, 10, 2, 4, 1]).buffer; // 3 rows x 2 dims
  const [x, y] = normaliseCoords(body, 3, 2);
  assert.deepEqual(Array.from(x).map((v) => +v.toFixed(3)), [-0.95, 0.95, -0.19]);
  assert.deepEqual(Array.from(y).map((v) => +v.toFixed(3)), [-0.19, 0.19, 0]);
  assert.throws(() => normaliseCoords(body, 2, 2), /expected 2 x 2/);
});

test('categories keep the most frequent values and group the rest', () => {
  const { codes, names } = categories(['a', 'b', 'a', 'c', 'a', 'b', null], 3);
  assert.deepEqual(names, ['a', 'b', 'other (2 values)']);
  assert.deepEqual(Array.from(codes), [0, 1, 0, 2, 0, 1, 2]);
  assert.deepEqual(categories([1, 2]).names, ['1', '2']);
});

test('search by substring or regular expression', () => {
  const labels = ['cat', 'Dog', 'catalog', '7'];
  assert.deepEqual(search(labels, 'CAT').indices, [0, 2]);
  assert.deepEqual(search(labels, '^d|^7$', { regex: true }).indices, [1, 3]);
  assert.match(search(labels, '(', { regex: true }).error, /not a regular expression/);
  assert.deepEqual(search(labels, '').indices, []);
});

test('durations', () => {
  assert.equal(fmtDuration(0.2), 'under a second');
  assert.equal(fmtDuration(42), '42 s');
  assert.equal(fmtDuration(150), '3 min');
});

test('the legend lists categories by name as people sort them, other last', () => {
  const names = ['class10', 'class2', 'b', 'other (3 values)'];
  assert.deepEqual(legendOrder(names).map((i) => names[i]), ['b', 'class2', 'class10', 'other (3 values)']);
  assert.deepEqual(legendOrder(['z', 'a']), [1, 0]);
  assert.deepEqual(legendOrder([]), []);
});
