import assert from 'node:assert/strict';
import { test } from 'node:test';
import { curvePoints, fmtCount, nearestPoint, plotScale, stepIndex, unionSteps } from '../src/prcurveslib.js';
import { layoutCharts, layoutMatcher, tagLabel } from '../src/tags.js';

const series = {
  thresholds: [0, 0.5, 1],
  precision: [0.5, 0.8, null],
  recall: [1, 0.4, 0],
  true_positives: [10, 4, 0],
  false_positives: [10, 1, 0],
  true_negatives: [0, 9, 10],
  false_negatives: [0, 6, 10],
};
const stored = { ...series, precision: [0.5, 0.8, 0], thresholds: [0, 0.5, 1] }; // tensorboardX: 0 for 0/0

test('a curve keeps its points whose precision and recall are numbers, with their counts', () => {
  assert.deepEqual(curvePoints(series), [
    { recall: 1, precision: 0.5, threshold: 0, tp: 10, fp: 10, tn: 0, fn: 0 },
    { recall: 0.4, precision: 0.8, threshold: 0.5, tp: 4, fp: 1, tn: 9, fn: 6 },
  ]);
  assert.deepEqual(curvePoints(stored), curvePoints(series)); // nothing predicted at threshold 1: no point
});

test('the slider stops at every run step; a step between stops picks the one before', () => {
  const steps = unionSteps([{ steps: [0, 10, 20] }, { steps: [5, 10] }]);
  assert.deepEqual(steps, [0, 5, 10, 20]);
  assert.equal(stepIndex(steps, null), 3);
  assert.equal(stepIndex(steps, 12), 2);
  assert.equal(stepIndex(steps, -1), 0);
  assert.equal(stepIndex([], 3), 0);
});

test('the nearest point is found in pixels of the plot', () => {
  const scale = plotScale({ left: 10, top: 0, width: 100, height: 100 });
  assert.equal(scale.x(0.5), 60);
  assert.equal(scale.y(1), 0);
  const points = curvePoints(series);
  assert.equal(nearestPoint(points, scale, 105, 50), 0);
  assert.equal(nearestPoint(points, scale, 50, 20), 1);
  assert.equal(nearestPoint([], scale, 0, 0), -1);
  assert.equal(fmtCount(12000), '12,000');
  assert.equal(fmtCount(0.12345), '0.123');
  assert.equal(fmtCount(null), '–');
});

test("a tag shows its display name, with the tag and its description in the tooltip", () => {
  const info = { 'a/b': { display_name: 'Nice name', description: 'what it is' }, c: { display_name: '', description: '' } };
  assert.deepEqual(tagLabel('a/b', info), { text: 'Nice name', title: 'Nice name (tag: a/b)\nwhat it is', description: 'what it is' });
  assert.deepEqual(tagLabel('c', info), { text: 'c', title: 'c', description: '' });
  assert.deepEqual(tagLabel('d', undefined), { text: 'd', title: 'd', description: '' });
});

test("a layout's regex matches from the tag's start, as Python's re.match", () => {
  assert.equal(layoutMatcher('twse/')('twse/0050'), true);
  assert.equal(layoutMatcher('0050')('twse/0050'), false);
  assert.equal(layoutMatcher('loss|acc')('accuracy'), true);
  assert.equal(layoutMatcher('[')('['), true); // not a JavaScript regex: the text itself
});

test('layouts of several runs merge by category, charts drawn once, over the tags shown', () => {
  const layout = {
    categories: [
      { title: 'Taiwan', charts: [{ title: 'twse', multiline: { tags: ['twse/0050', 'twse/2330'] } }] },
      {
        title: 'USA',
        closed: true,
        charts: [{ title: 'dow', margin: { series: [{ value: 'dow/aaa', lower: 'dow/bbb', upper: 'dow/ccc' }, { value: 'gone', lower: 'x', upper: 'y' }] } }],
      },
    ],
  };
  const other = { categories: [{ title: 'Taiwan', charts: [{ title: 'more', multiline: { tags: ['twse/.*'] } }, { title: 'twse', multiline: { tags: ['twse/0050', 'twse/2330'] } }] }] };
  const tags = ['twse/0050', 'twse/2330', 'twse/9999', 'dow/aaa', 'dow/bbb', 'dow/ccc'];
  const got = layoutCharts([{ run_id: 'a', layout }, { run_id: 'b', layout: other }], tags);
  assert.deepEqual(got.map((c) => [c.title, c.closed, c.charts.map((x) => x.title)]), [
    ['Taiwan', false, ['twse', 'more']],
    ['USA', true, ['dow']],
  ]);
  assert.deepEqual(got[0].charts[0].tags, ['twse/0050', 'twse/2330']);
  assert.deepEqual(got[0].charts[1].tags, ['twse/0050', 'twse/2330', 'twse/9999']);
  assert.equal(got[1].charts[0].kind, 'margin');
  assert.deepEqual(got[1].charts[0].series, [{ value: 'dow/aaa', lower: 'dow/bbb', upper: 'dow/ccc' }]);
  assert.deepEqual(layoutCharts([], tags), []);
});
