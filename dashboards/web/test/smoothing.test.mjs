import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clampWeight, DEFAULT_WEIGHT, ema } from '../src/smoothing.js';

const close = (actual, expected, eps = 1e-12) => {
  assert.equal(actual.length, expected.length);
  actual.forEach((v, i) => {
    if (expected[i] === null) assert.equal(v, null, `index ${i}`);
    else assert.ok(Math.abs(v - expected[i]) < eps, `index ${i}: ${v} != ${expected[i]}`);
  });
};

test('default weight is 0.6, as TensorBoard', () => {
  assert.equal(DEFAULT_WEIGHT, 0.6);
});

test('debiased EMA against a hand-computed example with null and NaN gaps', () => {
  // w = 0.6:
  // y=1:    last = 0.4*1 = 0.4;               debias 1-0.6   = 0.4   -> 1
  // y=2:    last = 0.6*0.4 + 0.4*2 = 1.04;    debias 1-0.36  = 0.64  -> 1.625
  // null:   gap, not counted
  // NaN:    gap, not counted
  // y=4:    last = 0.6*1.04 + 0.4*4 = 2.224;  debias 1-0.216 = 0.784 -> 2.836734693877551
  // y=0:    last = 0.6*2.224 = 1.3344;        debias 1-0.1296 = 0.8704 -> 1.5330882352941178
  const out = ema([1, 2, null, NaN, 4, 0], 0.6);
  close(out, [1, 1.625, null, null, 2.836734693877551, 1.5330882352941178]);
});

test('the first value is returned as is (debiasing)', () => {
  close(ema([5], 0.9), [5]);
  // w = 0.5: last = 1.5 -> 1.5 / 0.5 = 3; last = 0.5 * 1.5 + 0.5 * 3.5 = 2.5 -> 2.5 / 0.75
  close(ema([null, 3, 3.5], 0.5), [null, 3, 2.5 / 0.75]);
});

test('weight 0 returns the values, gaps as null', () => {
  assert.deepEqual(ema([1, null, 3, Infinity], 0), [1, null, 3, null]);
});

test('a constant series stays constant (no float drift)', () => {
  assert.deepEqual(ema([0.1, 0.1, null, 0.1, 0.1], 0.99), [0.1, 0.1, null, 0.1, 0.1]);
});

test('empty and all-gap series', () => {
  assert.deepEqual(ema([], 0.6), []);
  assert.deepEqual(ema([null, NaN], 0.6), [null, null]);
});

test('weights are clamped to [0, 0.99]', () => {
  assert.equal(clampWeight(-1), 0);
  assert.equal(clampWeight('0.3'), 0.3);
  assert.equal(clampWeight(1), 0.99);
  assert.equal(clampWeight(NaN), 0);
});

test('smoothing follows a step change gradually', () => {
  const out = ema([0, 0, 0, 10, 10, 10], 0.6);
  assert.equal(out[2], 0);
  assert.ok(out[3] > 0 && out[3] < 10);
  assert.ok(out[4] > out[3] && out[5] > out[4] && out[5] < 10);
});
