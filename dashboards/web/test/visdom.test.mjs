import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import createDOMPurify from 'dompurify';
import { JSDOM } from 'jsdom';
import { makeSanitizer, safeImageSrc } from '../src/sanitize.js';
import { envPrefix, fixFigure, groupEnvs, imageFrames, paneKind, plotlyBuildFor, selectedFrame, paneSize, sortWindows, visdomChanges } from '../src/visdomlib.js';

const fixture = JSON.parse(readFileSync(new URL('./visdom-env.json', import.meta.url), 'utf8'));

test('envs group by the part before the first underscore', () => {
  assert.equal(envPrefix('main'), 'main');
  assert.equal(envPrefix('exp_lr_0.1'), 'exp');
  assert.equal(envPrefix('_hidden'), '');
  assert.deepEqual(groupEnvs(['exp_b', 'main', 'exp_a', 'abc_1', 'exp']), [
    ['abc', ['abc_1']],
    ['exp', ['exp', 'exp_a', 'exp_b']],
    ['main', ['main']],
  ]);
  assert.deepEqual(groupEnvs([]), []);
});

test('windows are laid out in the order the client made them', () => {
  const wins = sortWindows(fixture.windows).map((w) => w.win);
  assert.deepEqual(wins, ['loss', 'scatter', 'img', 'txt', 'props']);
});

test('string titles and titlefont become title.text and title.font', () => {
  const plot = fixture.windows.find((w) => w.win === 'loss');
  const before = JSON.stringify(plot.content);
  const { data, layout } = fixFigure(plot.content);
  assert.deepEqual(layout.title, { text: 'loss', font: { size: 18 } });
  assert.equal(layout.titlefont, undefined);
  assert.deepEqual(layout.xaxis.title, { text: 'step' });
  assert.deepEqual(layout.yaxis.title, { text: 'value', font: { color: 'red' }, side: 'right' });
  assert.equal(layout.yaxis.titlefont, undefined);
  assert.deepEqual(data[0].marker.colorbar.title, { text: 'z' });
  assert.equal(data[0].x, plot.content.data[0].x, 'point arrays are shared, not copied');
  assert.equal(JSON.stringify(plot.content), before, 'the input is left alone');
});

test('the title fix keeps current titles, drops null ones, and copes with odd input', () => {
  assert.deepEqual(fixFigure({ data: [], layout: { title: { text: 'a', font: { size: 3 } } } }).layout.title, { text: 'a', font: { size: 3 } });
  assert.deepEqual(fixFigure({ layout: { title: null, scene: { zaxis: { title: 7 } } } }).layout, { scene: { zaxis: { title: { text: '7' } } } });
  assert.deepEqual(fixFigure({ layout: { title: { text: 'a', font: { size: 1 } }, titlefont: { size: 9 } } }).layout.title, { text: 'a', font: { size: 1 } });
  assert.deepEqual(fixFigure(null), { data: [], layout: {} });
  assert.deepEqual(fixFigure({ data: 'x', layout: [] }), { data: [], layout: {} });
});

test('image frames: the history, then the current image, oldest first', () => {
  assert.deepEqual(imageFrames({ src: 'data:image/png;base64,C', history: ['data:image/png;base64,A', { src: 'data:image/png;base64,B', caption: 'b' }] }), [
    { src: 'data:image/png;base64,A', caption: '' },
    { src: 'data:image/png;base64,B', caption: 'b' },
    { src: 'data:image/png;base64,C', caption: '' },
  ]);
  assert.deepEqual(imageFrames({ src: 'data:image/png;base64,C', caption: 'c', history: [{ src: 'data:image/png;base64,C' }] }), [{ src: 'data:image/png;base64,C', caption: '' }]);
  assert.deepEqual(imageFrames([{ src: 'a', caption: 1 }, { nope: 1 }]), [{ src: 'a', caption: '1' }]);
  assert.deepEqual(imageFrames(null), []);
  const history = { src: 'data:image/png;base64,A', selected: 0, history: [{ src: 'data:image/png;base64,A' }, { src: 'data:image/png;base64,B' }] };
  assert.equal(imageFrames(history).length, 2, 'the current image is one of the history');
  assert.equal(selectedFrame(history, 2), 0);
  assert.equal(selectedFrame({ selected: 5 }, 2), 1);
  assert.equal(selectedFrame({}, 3), 2);
  assert.equal(imageFrames(fixture.windows.find((w) => w.win === 'img').content).length, 3);
});

test('pane kinds and sizes: the client opts, else Visdom defaults', () => {
  assert.equal(paneKind('plot'), 'plot');
  assert.equal(paneKind('image_history'), 'image');
  assert.equal(paneKind('matplot'), 'html');
  assert.equal(paneKind('embeddings'), 'other');
  assert.deepEqual(paneSize({ type: 'plot', width: 500, height: null }), [500, 300]);
  assert.deepEqual(paneSize({ type: 'plot', opts: { width: 640, height: '200' } }), [640, 200]);
  assert.deepEqual(paneSize({ type: 'text', width: -3, opts: {} }), [300, 300]);
  assert.deepEqual(paneSize({ type: 'image', opts: { width: 28, height: 28 } }), [196, 196]);
  assert.deepEqual(paneSize({ type: 'image_history', width: 640, height: 480 }), [640, 480]);
});

test('change events name windows, or a whole env with win null', () => {
  assert.deepEqual(visdomChanges({ env: 'main', win: 'w1' }), [{ env: 'main', win: 'w1' }]);
  assert.deepEqual(visdomChanges({ visdom: [{ env: 'a', win: 'x' }, { env: 'b' }, { win: 'orphan' }] }), [
    { env: 'a', win: 'x' },
    { env: 'b', win: null },
  ]);
  assert.deepEqual(visdomChanges({ windows: [{ env: 'a', win: 'x' }] }), [{ env: 'a', win: 'x' }]);
  assert.deepEqual(visdomChanges({ runs: ['r1'], time: 1 }), []);
  assert.deepEqual(visdomChanges('garbage'), []);
});

const sanitize = makeSanitizer(createDOMPurify(new JSDOM('').window));

test('sanitising removes scripts, handlers and javascript: URLs', () => {
  const html = sanitize(fixture.windows.find((w) => w.win === 'txt').content.html);
  assert.match(html, /<b>hello<\/b>/);
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /onerror|onload|onclick/i);
  assert.doesNotMatch(html, /javascript:/i);
  for (const evil of [
    '<img src=x onerror="window.__pwned=1">',
    '<a href="javascript:window.__pwned=1">x</a>',
    '<a href=" JaVaScRiPt:alert(1)">x</a>',
    '<svg><script>window.__pwned=1</script></svg>',
    '<svg onload="window.__pwned=1"><circle r="3"/></svg>',
    '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
  ]) {
    const out = sanitize(evil);
    assert.doesNotMatch(out, /<script|onerror|onload|javascript:|<iframe|<form|<meta|data:text/i, `${evil} -> ${out}`);
  }
});

test('sanitising keeps what Visdom users log: markup, SVG, media with data: sources', () => {
  assert.equal(sanitize('<p>a <i>b</i><br>c</p>'), '<p>a <i>b</i><br>c</p>');
  const svg = sanitize('<svg width="10" height="10"><defs><style>*{stroke:red}</style></defs><path d="M0 0L5 5"/></svg>');
  assert.match(svg, /<svg[^>]*width="10"/);
  assert.match(svg, /<path d="M0 0L5 5"/);
  const audio = sanitize('<audio controls><source type="audio/wav" src="data:audio/wav;base64,UklGRg=="></audio>');
  assert.match(audio, /<source[^>]*src="data:audio\/wav;base64,UklGRg=="/);
  const video = sanitize('<video controls><source type="video/mp4" src="data:video/mp4;base64,AAAA"></video>');
  assert.match(video, /src="data:video\/mp4;base64,AAAA"/);
  assert.match(sanitize('<a href="https://example.org/x">x</a>'), /target="_blank" rel="noopener noreferrer"/);
  assert.equal(sanitize(null), '');
  const fragment = sanitize.fragment('<b>x</b><img src=x onerror="window.__pwned=1">');
  assert.equal(fragment.childNodes.length, 2);
  assert.equal(fragment.querySelector('img').getAttribute('onerror'), null);
});

test('image sources: data:image URLs and same-origin paths only', () => {
  assert.equal(safeImageSrc('data:image/png;base64,AAAA'), 'data:image/png;base64,AAAA');
  assert.equal(safeImageSrc('data:image/svg+xml,<svg/>'), 'data:image/svg+xml,<svg/>');
  assert.equal(safeImageSrc('/api/visdom/blob/1'), '/api/visdom/blob/1');
  assert.equal(safeImageSrc('javascript:alert(1)'), '');
  assert.equal(safeImageSrc('//evil.example/x.png'), '');
  assert.equal(safeImageSrc('data:text/html,<script>'), '');
  assert.equal(safeImageSrc(undefined), '');
});

test('a pane of scatter, bar and pie traces needs only the basic plotly.js build', () => {
  assert.equal(plotlyBuildFor([{ x: [1], y: [2] }, { type: 'scatter' }, { type: 'bar' }, { type: 'pie' }]), 'basic');
  assert.equal(plotlyBuildFor([{ type: 'scatter' }, { type: 'heatmap' }]), 'full');
  assert.equal(plotlyBuildFor([{ type: 'surface' }]), 'full');
  assert.equal(plotlyBuildFor([]), 'basic');
});
