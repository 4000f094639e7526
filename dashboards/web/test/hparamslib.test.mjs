import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  buildTable,
  colorAt,
  columnLabel,
  compareValues,
  defaultAxes,
  defaultColumns,
  fmtCell,
  hparamsQuery,
  makeAxis,
  parseFilter,
  passingRows,
  sortRows,
} from '../src/hparamslib.js';

// What /api/hparams answers for three runs.
const resp = {
  runs: { run_id: ['a', 'b', 'c'], name: ['run-a', 'run-b', 'run-c'], status: ['finished', 'finished', 'running'], created_at: [3, 2, 1] },
  columns: [
    { key: 'hparams.lr', group: 'hparam', type: 'number', values: [0.1, 0.0001, null] },
    { key: 'hparams.opt', group: 'hparam', type: 'string', values: ['sgd', 'adam', 'sgd'], domain: ['sgd', 'adam'] },
    { key: 'seed', group: 'config', type: 'number', values: [1, 1, 1] },
    { key: 'loss', group: 'metric', type: 'number', values: [0.5, 0.25, NaN], steps: [9, 9, 3] },
  ],
  truncated: false,
};

test('buildTable keeps the chosen runs and their values in step', () => {
  const t = buildTable(resp, new Set(['c', 'a']));
  assert.deepEqual(t.runs.map((r) => r.run_id), ['a', 'c']);
  assert.deepEqual(t.columns[0].values, [0.1, null]);
  assert.deepEqual(t.columns[3].steps, [9, 3]);
  assert.equal(buildTable(resp).runs.length, 3);
  assert.deepEqual(buildTable(null).runs, []);
  const withEmpty = { ...resp, runs: { ...resp.runs, run_id: ['a', 'b', 'c'] }, columns: resp.columns.map((c) => ({ ...c, values: [c.values[0], null, c.values[2]] })) };
  const t2 = buildTable(withEmpty);
  assert.deepEqual(t2.runs.map((r) => r.run_id), ['a', 'c']);
  assert.equal(t2.empty, 1);
});

test('labels drop the hparams prefix only', () => {
  assert.equal(columnLabel(resp.columns[0]), 'lr');
  assert.equal(columnLabel({ key: 'hparams.x', group: 'config' }), 'hparams.x');
  assert.equal(columnLabel(resp.columns[3]), 'loss');
});

test('sorting: numbers by value, text naturally, missing last in both directions', () => {
  const t = buildTable(resp);
  assert.deepEqual(sortRows(t, [0, 1, 2], 'hparams.lr', 1), [1, 0, 2]);
  assert.deepEqual(sortRows(t, [0, 1, 2], 'hparams.lr', -1), [0, 1, 2]);
  assert.deepEqual(sortRows(t, [0, 1, 2], 'loss', -1), [0, 1, 2]);
  assert.deepEqual(sortRows(t, [0, 1, 2], 'name', -1), [2, 1, 0]);
  assert.ok(compareValues('lr2', 'lr10') < 0);
});

test('filters: ranges and comparisons for numbers, substrings and equality for text', () => {
  const range = parseFilter('0.001..0.5', 'number');
  assert.deepEqual([0.1, 0.0001, null, NaN].map(range), [true, false, false, false]);
  assert.equal(parseFilter('..0.2', 'number')(0.1), true);
  assert.equal(parseFilter('>=0.1', 'number')(0.1), true);
  assert.equal(parseFilter('>0.1', 'number')(0.1), false);
  assert.equal(parseFilter('<1e-3', 'number')(0.0001), true);
  assert.equal(parseFilter('3', 'number')(3), true);
  assert.equal(parseFilter('SG', 'string')('sgd'), true);
  assert.equal(parseFilter('=sg', 'string')('sgd'), false);
  assert.equal(parseFilter('=true', 'bool')(true), true);
  assert.equal(parseFilter('  ', 'number'), null);
  assert.equal(parseFilter('abc', 'number')(12), false); // not a number: the value's text as a substring
  assert.equal(parseFilter('e-7', 'number')(1e-7), true);
});

test('axes: log for learning rates, categories in their declared order, missing as null', () => {
  const t = buildTable(resp);
  const lr = makeAxis(t.columns[0], [0, 1, 2]);
  assert.equal(lr.kind, 'log');
  assert.equal(lr.pos(0.0001), 0);
  assert.equal(lr.pos(0.1), 1);
  assert.equal(lr.pos(null), null);
  assert.deepEqual(lr.ticks.map((x) => x.label), ['1e-4', '0.001', '0.01', '0.1']);
  const opt = makeAxis(t.columns[1], [0, 1, 2]);
  assert.equal(opt.pos('sgd'), 0);
  assert.equal(opt.pos('adam'), 1);
  const seed = makeAxis(t.columns[2], [0, 1, 2]);
  assert.equal(seed.pos(1), 0.5); // one value: the middle
  const loss = makeAxis(t.columns[3], [0, 1, 2]);
  assert.equal(loss.kind, 'linear');
  assert.equal(loss.pos(NaN), null);
});

test('passing rows: every filter and every brush', () => {
  const t = buildTable(resp);
  const axes = new Map(t.columns.map((c) => [c.key, makeAxis(c, [0, 1, 2])]));
  assert.deepEqual(passingRows(t, [0, 1, 2], { 'hparams.opt': 'sgd' }, {}, axes), [0, 2]);
  assert.deepEqual(passingRows(t, [0, 1, 2], { name: '-b' }, {}, axes), [1]);
  assert.deepEqual(passingRows(t, [0, 1, 2], {}, { 'hparams.lr': [0.6, 1] }, axes), [0]);
  assert.deepEqual(passingRows(t, [0, 1, 2], {}, { loss: [1, 0] }, axes), [0, 1]); // NaN is missing
  assert.deepEqual(passingRows(t, [0, 1, 2], { 'hparams.opt': 'sgd' }, { 'hparams.lr': [0, 1] }, axes), [0]);
});

test('default columns and axes: everything when few; else what varies, and the metrics', () => {
  const t = buildTable(resp);
  assert.deepEqual(defaultColumns(t), ['hparams.lr', 'hparams.opt', 'seed', 'loss']);
  assert.deepEqual(defaultColumns(t, 3, 1), ['hparams.lr', 'hparams.opt', 'loss']);
  assert.deepEqual(defaultAxes(t), ['hparams.lr', 'hparams.opt', 'loss']);
});

test('formatting and colours', () => {
  assert.equal(fmtCell(0.1234567), '0.123457');
  assert.equal(fmtCell(1e-7), '1.0000e-7');
  assert.equal(fmtCell(null), '');
  assert.equal(fmtCell(NaN), 'NaN');
  assert.equal(fmtCell(true), 'true');
  assert.equal(colorAt(0), 'rgb(68,1,84)');
  assert.equal(colorAt(1), 'rgb(253,231,37)');
  assert.equal(colorAt(null), '#9aa0a6');
});

test('the query string reads the runs filter as /api/runs does', () => {
  assert.equal(hparamsQuery('p', ''), 'project=p');
  assert.equal(hparamsQuery('p', 'sweep lr=0.1 fast'), 'project=p&config.lr=0.1&q=sweep+fast');
});
