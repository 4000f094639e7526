// The card grid the Audio, Video and Mesh tabs share with the Images tab's layout: per tag a section,
// per displayed run a card with a step slider and a player, side by side. A card lists its tag's
// points when it comes on screen (lazy.js) and again on live updates; the slider follows the newest
// point while it sits at the end. What is played and how it is labelled is the tab's: `player`.
//
// createMediaGrid(root, {kind, noun, list, player}):
//   kind    the key of the tag lists (/api/tags): 'audio', 'videos', 'meshes'
//   noun    for messages ('audio clips', 'videos', 'meshes')
//   list(runId, tag, {signal}) -> [{step, rank, ...}] or null when the run lacks the tag
//   player(card) -> {el, show(item), label(item) -> string, hide?(), destroy?()}

import { isAbort } from './api.js';
import { h } from './dom.js';
import { createLazy } from './lazy.js';

/** GET a list route (`/api/audio`, ...) of one run and tag: its `field`, or null when the run lacks
 *  the tag (404: tags are listed for the selected runs together). Errors carry the server's message. */
export async function fetchList(path, field, run, tag, { signal } = {}) {
  const reply = await fetch(`${path}?${new URLSearchParams({ run, tag })}`, { signal, headers: { accept: 'application/json' } });
  let body = null;
  try {
    body = await reply.json();
  } catch {
    // not JSON: the status line says what went wrong
  }
  if (reply.status === 404 && body && body.error) return null;
  if (!reply.ok) throw new Error((body && body.error) || `${reply.status} ${reply.statusText}`);
  return body[field] || [];
}

/** The index to show in `items` after a reload: the last one when the slider sat at the end, else the
 *  same point as before (by step, rank and sample), else the first. Pure. */
export function nextIndex(previous, index, items) {
  if (!items.length) return -1;
  if (!previous || !previous.length || index >= previous.length - 1) return items.length - 1;
  const was = previous[index];
  const same = items.findIndex((it) => it.step === was.step && (it.rank ?? 0) === (was.rank ?? 0) && (it.sample ?? 0) === (was.sample ?? 0));
  return Math.max(0, same);
}

/** "step 5 · 2/3": where the card stands, with the rank (and sample) when several are listed. Pure. */
export function positionLabel(items, index) {
  const it = items[index];
  const ranks = new Set(items.map((x) => x.rank ?? 0));
  const samples = new Set(items.map((x) => x.sample ?? 0));
  return [
    `step ${it.step}`,
    ranks.size > 1 ? `rank ${it.rank}` : null,
    samples.size > 1 ? `sample ${it.sample}` : null,
    `${index + 1}/${items.length}`,
  ]
    .filter(Boolean)
    .join(' · ');
}

export function createMediaGrid(root, { kind, noun, list, player, parallel = 4 }) {
  let ctx = { runs: [], runIds: [], colors: new Map(), tags: {} };
  let cards = new Map();
  const grid = h('div', { class: 'img-groups' });
  const empty = h('div', { class: 'empty' });
  const scroller = h('div', { class: 'view-scroll' }, grid, empty);
  root.append(scroller);
  const lazy = createLazy({ scroller, load, parallel });
  let active = false;

  async function load(card) {
    if (card.controller) card.controller.abort();
    const controller = (card.controller = new AbortController());
    try {
      const found = await list(card.run.run_id, card.tag, { signal: controller.signal });
      const items = (found || []).slice().sort((a, b) => a.step - b.step || (a.rank ?? 0) - (b.rank ?? 0) || (a.sample ?? 0) - (b.sample ?? 0));
      card.index = nextIndex(card.items, card.index, items);
      card.items = items;
      card.missing = found === null;
      show(card);
    } catch (e) {
      if (!isAbort(e)) card.label.textContent = `could not load: ${e.message}`;
    }
  }

  function show(card) {
    const n = card.items.length;
    card.slider.max = String(Math.max(0, n - 1));
    card.slider.value = String(Math.max(0, card.index));
    card.slider.disabled = n < 2;
    card.frame.hidden = n === 0;
    if (!n) {
      card.label.textContent = card.missing ? `no ${card.tag} in this run` : `no ${noun} yet`;
      return;
    }
    const item = card.items[card.index];
    card.player.show(item);
    card.label.textContent = `${positionLabel(card.items, card.index)} · ${card.player.label(item)}`;
  }

  function makeCard(tag, run) {
    const slider = h('input', { type: 'range', min: '0', max: '0', step: '1', value: '0', class: 'image-slider', dataset: { testid: `${kind}-slider` } });
    const label = h('div', { class: 'image-label', dataset: { testid: `${kind}-label` } }, 'loading…');
    const frame = h('div', { class: 'image-frame media-frame' });
    const color = ctx.colors.get(run.run_id) || '#444';
    const el = h(
      'div',
      { class: 'img-card media-card', dataset: { testid: `${kind}-card`, tag, runId: run.run_id } },
      h('div', { class: 'chart-head' }, h('i', { class: 'legend-swatch', style: { background: color } }), h('span', { class: 'chart-tag' }, run.name || run.run_id)),
      frame,
      slider,
      label,
    );
    const card = { el, tag, run, order: 0, slider, label, frame, items: null, index: 0, missing: false };
    card.player = player(card);
    frame.append(card.player.el);
    slider.addEventListener('input', () => {
      card.index = Number(slider.value);
      show(card);
    });
    return card;
  }

  function render() {
    const tags = [...(ctx.tags[kind] || [])].sort();
    empty.hidden = tags.length > 0 && ctx.runs.length > 0;
    empty.textContent = !ctx.runs.length
      ? `Select runs in the table to see their ${noun}.`
      : ctx.tags.error
        ? `Could not load the tags: ${ctx.tags.error}`
        : `The selected runs have logged no ${noun} yet.`;
    const next = new Map();
    const sections = [];
    let order = 0;
    for (const tag of tags) {
      const body = h('div', { class: `img-grid media-grid media-${kind}` });
      for (const run of ctx.runs) {
        const key = `${tag}\n${run.run_id}`;
        let card = cards.get(key);
        if (!card) {
          card = makeCard(tag, run);
          lazy.add(card);
        }
        card.order = order++;
        next.set(key, card);
        body.append(card.el);
      }
      sections.push(h('section', { class: 'tag-group' }, h('div', { class: 'group-head static' }, h('span', { class: 'group-name' }, tag)), body));
    }
    for (const [key, card] of cards) {
      if (next.has(key)) continue;
      lazy.remove(card);
      if (card.controller) card.controller.abort();
      if (card.player.destroy) card.player.destroy();
    }
    cards = next;
    grid.replaceChildren(...sections);
  }

  return {
    setContext(next) {
      ctx = next;
      if (active) render();
    },
    show() {
      active = true;
      lazy.setActive(true);
      render();
    },
    hide() {
      active = false;
      lazy.setActive(false);
      for (const card of cards.values()) if (card.player.hide) card.player.hide();
    },
    refresh() {
      for (const card of cards.values()) lazy.invalidate(card);
    },
    cards: () => [...cards.values()],
  };
}
