import assert from 'node:assert/strict';
import { test } from 'node:test';
import createDOMPurify from 'dompurify';
import { JSDOM } from 'jsdom';
import * as marked from 'marked';
import { makeMarkdown } from '../src/markdown.js';

const { window } = new JSDOM('');
const render = makeMarkdown(marked, createDOMPurify(window));
const html = (text) => {
  const box = window.document.createElement('div');
  box.append(render(text));
  return box;
};

test('Markdown tables, emphasis, code and links render', () => {
  // the table tensorboardX's demo logs
  const box = html('**bold** and `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[docs](https://example.org/x)');
  assert.equal(box.querySelector('strong').textContent, 'bold');
  assert.equal(box.querySelector('code').textContent, 'code');
  assert.deepEqual([...box.querySelectorAll('td')].map((td) => td.textContent), ['1', '2']);
  const link = box.querySelector('a');
  assert.equal(link.getAttribute('href'), 'https://example.org/x');
  assert.equal(link.getAttribute('target'), '_blank');
  assert.equal(link.getAttribute('rel'), 'noopener noreferrer');
});

test('scripts, handlers, javascript: links and styles do not survive', () => {
  const box = html(
    [
      '<script>window.pwned = 1</script>',
      '<img src="x" onerror="window.pwned = 2">',
      '[click](javascript:window.pwned=3)',
      '<a href="JaVaScRiPt:window.pwned=4">raw</a>',
      '<a href="data:text/html,<script>1</script>">data</a>',
      '<style>body { display: none }</style>',
      '<iframe src="https://example.org"></iframe>',
      '<svg><script>1</script></svg>',
      '<p style="position:fixed" onclick="x()">styled</p>',
      '<form action="/x"><input name="a"></form>',
    ].join('\n\n'),
  );
  const out = box.innerHTML.toLowerCase();
  for (const bad of ['<script', 'onerror', 'onclick', 'javascript:', 'data:text', '<style', '<iframe', '<svg', 'style=', '<form', '<input'])
    assert.ok(!out.includes(bad), `${bad} survived: ${out}`);
  assert.ok(box.textContent.includes('styled'));
  assert.ok(box.querySelector('img')); // the image stays, without its handler
});
