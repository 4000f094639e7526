import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS, parseQuery, toQuery } from '../src/state.js';

test('an empty query is the defaults', () => {
  assert.deepEqual(parseQuery(''), { ...DEFAULTS });
  assert.equal(toQuery(DEFAULTS), '');
});

test('round trip of every key', () => {
  const state = {
    project: 'mnist v2',
    runs: ['a1', 'b,2', 'c/3'],
    q: 'lr=0.1 base',
    tags: '^train/(loss|acc)',
    smoothing: 0.85,
    x: 'wall',
    logy: true,
    envelope: true,
    group: 'optimizer',
    band: 'std',
    tab: 'visdom',
    env: 'exp_lr 0.1',
    archived: true,
  };
  const q = toQuery(state);
  assert.match(q, /runs=a1,b%2C2,c%2F3/);
  assert.deepEqual(parseQuery(`?${q}`), state);
});

test('absent runs means automatic, empty runs means none', () => {
  assert.equal(parseQuery('project=p').runs, null);
  assert.deepEqual(parseQuery('runs=').runs, []);
  assert.equal(toQuery({ ...DEFAULTS, runs: [] }), 'runs=');
});

test('bad values fall back to the defaults', () => {
  const s = parseQuery('x=banana&tab=nope&smoothing=abc&band=wide');
  assert.equal(s.x, 'step');
  assert.equal(s.tab, 'scalars');
  assert.equal(s.smoothing, 0.6);
  assert.equal(s.band, 'minmax');
  assert.equal(parseQuery('smoothing=5').smoothing, 0.99);
  assert.equal(parseQuery('smoothing=0').smoothing, 0);
});

test('plus signs and percent escapes decode', () => {
  assert.equal(parseQuery('q=a+b%2Bc').q, 'a b+c');
  assert.equal(parseQuery('q=%E0%A4%A').q, '%E0%A4%A');
});
