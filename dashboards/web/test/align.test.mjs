import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alignTables, unionX } from '../src/align.js';

test('union of x values, sorted and distinct', () => {
  assert.deepEqual(unionX([[3, 1], [2, 3], []]), [1, 2, 3]);
});

test('tables are joined on x: missing points undefined, gaps null', () => {
  const r = alignTables([
    { x: [0, 2, 4], ys: [[1, null, 3], [10, 20, 30]] },
    { x: [1, 2], ys: [[7, NaN]] },
  ]);
  assert.deepEqual(r.x, [0, 1, 2, 4]);
  assert.deepEqual(r.ys, [
    [1, undefined, null, 3],
    [10, undefined, 20, 30],
    [undefined, 7, null, undefined],
  ]);
});

test('an unsorted table is sorted with its values', () => {
  const r = alignTables([{ x: [2, 0, 1], ys: [[20, 0, 10]] }]);
  assert.deepEqual(r.x, [0, 1, 2]);
  assert.deepEqual(r.ys, [[0, 10, 20]]);
});
