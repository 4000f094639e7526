import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignColors, PALETTE, withAlpha } from '../src/colors.js';
import { fmtDuration, fmtNum } from '../src/format.js';
import { niceTicks, percentileColumns, rebin, valueRange } from '../src/histmath.js';
import { groupByPrefix, tagMatcher, tagPrefix } from '../src/tags.js';

test('tags group by the part before the first slash', () => {
  assert.equal(tagPrefix('train/loss/x'), 'train');
  assert.equal(tagPrefix('lr'), 'lr');
  assert.deepEqual(groupByPrefix(['val/loss', 'train/loss', 'lr', 'train/acc']), [
    ['lr', ['lr']],
    ['train', ['train/acc', 'train/loss']],
    ['val', ['val/loss']],
  ]);
});

test('the tag filter is a regex, or a substring when not a valid regex', () => {
  assert.equal(tagMatcher('^train/')('train/loss'), true);
  assert.equal(tagMatcher('^train/')('val/train/x'), false);
  assert.equal(tagMatcher('LOSS')('val/loss'), true);
  assert.equal(tagMatcher('loss(')('loss(x)'), true);
  assert.equal(tagMatcher('loss(')('loss'), false);
  assert.equal(tagMatcher('')('anything'), true);
});

test('colours: oldest run first, distinct, independent of list order', () => {
  const runs = [
    { run_id: 'c', created_at: 3 },
    { run_id: 'a', created_at: 1 },
    { run_id: 'b', created_at: 2 },
  ];
  const m = assignColors(runs);
  assert.equal(m.get('a'), PALETTE[0]);
  assert.equal(m.get('b'), PALETTE[1]);
  assert.equal(m.get('c'), PALETTE[2]);
  assert.deepEqual(assignColors([...runs].reverse()), m);
  // a newer run does not recolour the older ones
  const more = assignColors([...runs, { run_id: 'd', created_at: 4 }]);
  for (const id of ['a', 'b', 'c']) assert.equal(more.get(id), m.get(id));
  assert.equal(new Set(PALETTE).size, PALETTE.length);
  assert.equal(withAlpha('#ff8000', 0.5), 'rgba(255,128,0,0.5)');
});

test('rebin keeps the counts and spreads a bucket over the bins it covers', () => {
  const out = rebin([0, 1, 3], [4, 8], 0, 4, 4);
  assert.deepEqual([...out], [4, 4, 4, 0]);
  const total = rebin([-1, 0.3, 2.2], [10, 5], -1, 2.2, 7).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(total - 15) < 1e-9);
  assert.deepEqual(valueRange([{ bucket_limits: [-2, 0, 1] }, { bucket_limits: [-1, 3] }]), [-2, 3]);
  assert.equal(valueRange([]), null);
});

test('percentile columns for uPlot', () => {
  const cols = percentileColumns({ q: [0, 50, 100], steps: [0, 10], values: [[1, 2, 3], [null, 5, 6]] });
  assert.deepEqual(cols, [[0, 10], [1, null], [2, 5], [3, 6]]);
});

test('number and duration formats', () => {
  assert.equal(fmtNum(0.123456), '0.12346');
  assert.equal(fmtNum(3e-8), '3e-8');
  assert.equal(fmtNum(null), '–');
  assert.equal(fmtNum(NaN), 'NaN');
  assert.equal(fmtNum(1234), '1234');
  assert.equal(fmtDuration(42), '42s');
  assert.equal(fmtDuration(185), '3m05s');
  assert.equal(fmtDuration(7440), '2h04m');
  assert.deepEqual(niceTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
});
