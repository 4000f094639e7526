import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PALETTE } from '../src/colors.js';
import { compareLabels, groupColors, groupLines, groupRuns, groupValue, lineColors } from '../src/group.js';
import { ema } from '../src/smoothing.js';

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
  assert.equal(groupValue({ k: { a: 1 } }, 'k'), '{"a":1}');
  assert.equal(groupValue({ k: false }, 'k'), 'false');
  assert.equal(groupValue({ k: null }, 'k'), '(none)');
  assert.equal(groupValue(null, 'k'), '(none)');
});

test('labels sort numbers by value first, then text with numbers in it', () => {
  const labels = ['sgd', '0.01', '(none)', '1e-3', 'adam2', 'adam10', '2', ' '];
  assert.deepEqual(labels.sort(compareLabels), ['1e-3', '0.01', '2', ' ', '(none)', 'adam2', 'adam10', 'sgd']);
});

test('a group has the same colour on every chart, also where other groups have no data', () => {
  const runs = [
    { run_id: 'a', config: { lr: 0.3 } },
    { run_id: 'b', config: { lr: 0.1 } },
    { run_id: 'c', config: { lr: 0.2 } },
  ];
  const colors = groupColors(runs, 'lr');
  assert.deepEqual([...colors], [['0.1', PALETTE[0]], ['0.2', PALETTE[1]], ['0.3', PALETTE[2]]]);
  // a label only the server knows still gets a colour, and does not move the others
  const more = groupColors(runs, 'lr', ['0.3', '0.9']);
  assert.equal(more.get('0.1'), PALETTE[0]);
  assert.equal(more.get('0.3'), PALETTE[2]);
  assert.equal(more.get('0.9'), PALETTE[3]);
});

test('a line has the colour of its runs\' group, also where the server writes the label otherwise', () => {
  const runs = [
    { run_id: 'a', config: { lr: 1e-5 } },
    { run_id: 'b', config: { lr: 1e-3 } },
    { run_id: 'c', config: { lr: 1e-5 } },
  ];
  const own = groupColors(runs, 'lr'); // '0.00001', '0.001'
  const lines = [
    { label: '0.001', runs: ['b'] },
    { label: '1e-05', runs: ['a', 'c'] }, // Python's str(1e-05)
    { label: 'other', runs: ['z'] }, // no run of ours: its own label
  ];
  const colors = lineColors(runs, 'lr', lines);
  assert.equal(colors.get('1e-05'), own.get('0.00001'));
  assert.equal(colors.get('0.001'), own.get('0.001'));
  assert.equal(colors.get('other'), PALETTE[2]);
});

// an /api/scalar_groups group as the server sends it
const group = (label, runs, x, mean, std, min, max) => ({ label, runs, x, mean, std, min, max, count: mean.map((m) => (m === null ? 0 : runs.length)) });

test('group lines: the mean, and a min-max or mean ± std band; sorted by label', () => {
  const groups = [
    group('0.2', ['c'], [0, 1], [5, 6], [0, 0], [5, 6], [5, 6]),
    group('0.1', ['a', 'b'], [0, 1, 2], [2, 3, 6], [1, 1, 3], [1, 2, 3], [3, 4, 9]),
  ];
  const [a, c] = groupLines(groups, { band: 'minmax' });
  assert.equal(a.label, '0.1');
  assert.deepEqual(a.runs, ['a', 'b']);
  assert.deepEqual(a.x, [0, 1, 2]);
  assert.deepEqual(a.y, [2, 3, 6]);
  assert.deepEqual(a.raw, [2, 3, 6]);
  assert.deepEqual([a.lo, a.hi], [[1, 2, 3], [3, 4, 9]]);
  assert.equal(c.label, '0.2');
  const [s] = groupLines(groups, { band: 'std' });
  assert.deepEqual([s.lo, s.hi], [[1, 2, 3], [3, 4, 9]]);
});

test('group lines: smoothing applies to the mean and to the band, the raw mean is kept', () => {
  const mean = [1, 5, 2, 8, 3];
  const g = group('x', ['a', 'b'], [0, 1, 2, 3, 4], mean, [1, 1, 1, 1, 1], [0, 4, 1, 7, 2], [2, 6, 3, 9, 4]);
  const [line] = groupLines([g], { smoothing: 0.6, band: 'minmax' });
  assert.deepEqual(line.raw, mean);
  assert.deepEqual(line.y, ema(mean, 0.6));
  assert.deepEqual(line.lo, ema(g.min, 0.6));
  assert.deepEqual(line.hi, ema(g.max, 0.6));
  const [sd] = groupLines([g], { smoothing: 0.6, band: 'std' });
  for (let i = 0; i < mean.length; i++) {
    assert.ok(Math.abs(sd.hi[i] - (sd.y[i] + 1)) < 1e-12);
    assert.ok(Math.abs(sd.lo[i] - (sd.y[i] - 1)) < 1e-12);
  }
});

test('group lines: a null is a gap in the line and the band; groups without a number are left out', () => {
  const groups = [
    group('a', ['r1', 'r2'], [0, 1, 2], [1, null, 3], [0.5, null, 0.5], [0.5, null, 2.5], [1.5, null, 3.5]),
    group('b', ['r3'], [0, 1], [null, null], [null, null], [null, null], [null, null]),
    group('c', ['r4'], [], [], [], [], []),
  ];
  const lines = groupLines(groups, { smoothing: 0.5, band: 'std' });
  assert.deepEqual(lines.map((l) => l.label), ['a']);
  const [a] = lines;
  assert.equal(a.y[1], null);
  assert.equal(a.hi[1], null);
  assert.equal(a.lo[1], null);
  assert.deepEqual(a.y, ema([1, null, 3], 0.5));
  // a std the server could not give (null) next to a mean: no band there, the line stays
  const [b] = groupLines([group('b', ['r1', 'r2'], [0, 1], [1, 2], [null, 0], [1, 2], [1, 2])], { band: 'std' });
  assert.deepEqual(b.y, [1, 2]);
  assert.deepEqual([b.lo, b.hi], [[null, 2], [null, 2]]);
});

test('group lines of nothing', () => {
  assert.deepEqual(groupLines([]), []);
  assert.deepEqual(groupLines(undefined), []);
});
