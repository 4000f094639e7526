// The Texts tab: per text tag and displayed run, the latest texts (GET /api/texts), newest first,
// with their steps, rendered as Markdown as TensorBoard does and sanitised (markdown.js). marked and
// DOMPurify load with the first text shown, not with the page.

import { getTexts, isAbort } from './api.js';
import { h } from './dom.js';
import { loadMarkdown } from './mdload.js';

const LIMIT = 50;

export function createTextsView(root) {
  let ctx = { runs: [], runIds: [], colors: new Map(), tags: { texts: [] } };
  const grid = h('div', { class: 'img-groups' });
  const empty = h('div', { class: 'empty' });
  root.append(h('div', { class: 'view-scroll' }, grid, empty));
  let active = false;
  let controller = null;

  async function fill(card, run, tag, signal) {
    try {
      const [resp, render] = await Promise.all([getTexts(run.run_id, tag, LIMIT, { signal }), loadMarkdown()]);
      const texts = ((resp && resp.texts) || []).slice().reverse();
      card.replaceChildren(
        ...(texts.length
          ? texts.map((t) =>
              h('div', { class: 'text-item', dataset: { testid: 'text-item' } }, h('div', { class: 'image-label' }, `step ${t.step}${t.rank ? ` · rank ${t.rank}` : ''}`), h('div', { class: 'text-body text-md', dataset: { testid: 'text-body' } }, render(t.text))),
            )
          : [h('div', { class: 'image-label' }, `no ${tag} in this run`)]),
      );
    } catch (e) {
      if (!isAbort(e)) card.replaceChildren(h('div', { class: 'image-label' }, `could not load: ${e.message}`));
    }
  }

  function render() {
    if (controller) controller.abort();
    controller = new AbortController();
    const tags = [...(ctx.tags.texts || [])].sort();
    empty.hidden = tags.length > 0 && ctx.runs.length > 0;
    empty.textContent = !ctx.runs.length ? 'Select runs in the table to see their texts.' : 'The selected runs have logged no texts yet.';
    const sections = [];
    for (const tag of tags) {
      const body = h('div', { class: 'img-grid' });
      for (const run of ctx.runs) {
        const list = h('div', {}, h('div', { class: 'image-label' }, 'loading…'));
        const color = ctx.colors.get(run.run_id) || '#444';
        body.append(
          h(
            'div',
            { class: 'img-card', dataset: { testid: 'text-card', tag, runId: run.run_id } },
            h('div', { class: 'chart-head' }, h('i', { class: 'legend-swatch', style: { background: color } }), h('span', { class: 'chart-tag' }, run.name || run.run_id)),
            list,
          ),
        );
        fill(list, run, tag, controller.signal);
      }
      sections.push(h('section', { class: 'tag-group' }, h('div', { class: 'group-head static' }, h('span', { class: 'group-name' }, tag)), body));
    }
    grid.replaceChildren(...sections);
  }

  return {
    setContext(next) {
      ctx = next;
      if (active) render();
    },
    show() {
      active = true;
      render();
    },
    hide() {
      active = false;
    },
    refresh() {
      if (active) render();
    },
  };
}
