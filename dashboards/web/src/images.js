// The Images tab: per image tag and displayed run, the image at a step chosen with a slider
// (GET /api/images lists the steps; each <img> loads its `url`). The slider follows the newest
// step while it sits at the end. Boxes logged with the image (add_image_with_boxes: `boxes` in
// pixels of the image) are drawn over it with their labels, placed in percent so they scale with it.
// A tag's display name (/api/tag_info) heads its group, with the tag and description in the tooltip.

import { getImages, isAbort } from './api.js';
import { PALETTE } from './colors.js';
import { h } from './dom.js';
import { createLazy } from './lazy.js';
import { forgetTagInfo, tagInfoFor } from './prcurvesapi.js';
import { tagLabel } from './tags.js';

const TARGET = 220; // small images are scaled up (by a whole factor) to about this size

export function createImagesView(root) {
  let ctx = { runs: [], runIds: [], colors: new Map(), tags: { images: [] } };
  let cards = new Map();
  let info = {}; // tag -> {display_name, description}
  const grid = h('div', { class: 'img-groups' });
  const empty = h('div', { class: 'empty' });
  const scroller = h('div', { class: 'view-scroll' }, grid, empty);
  root.append(scroller);
  const lazy = createLazy({ scroller, load });
  let active = false;

  async function load(card) {
    if (card.controller) card.controller.abort();
    const controller = (card.controller = new AbortController());
    try {
      const resp = await getImages(card.run.run_id, card.tag, { signal: controller.signal });
      const images = ((resp && resp.images) || []).slice().sort((a, b) => a.step - b.step || (a.rank ?? 0) - (b.rank ?? 0));
      const atEnd = !card.images || card.index >= card.images.length - 1;
      const prevStep = card.images && card.images[card.index] ? card.images[card.index] : null;
      card.images = images;
      if (atEnd) card.index = images.length - 1;
      else card.index = Math.max(0, images.findIndex((im) => im.step === prevStep.step && im.rank === prevStep.rank));
      card.missing = resp === null;
      show(card);
    } catch (e) {
      if (!isAbort(e)) card.label.textContent = `could not load: ${e.message}`;
    }
  }

  function show(card) {
    const n = card.images.length;
    card.slider.max = String(Math.max(0, n - 1));
    card.slider.value = String(Math.max(0, card.index));
    card.slider.disabled = n < 2;
    card.frame.hidden = n === 0;
    if (!n) {
      card.label.textContent = card.missing ? `no ${card.tag} in this run` : 'no images yet';
      return;
    }
    const im = card.images[card.index];
    const scale = Math.max(1, Math.floor(TARGET / Math.max(im.width || TARGET, im.height || TARGET)));
    card.img.style.width = im.width ? `${im.width * scale}px` : '';
    card.img.classList.toggle('pixelated', scale > 1);
    if (card.img.getAttribute('src') !== im.url) card.img.src = im.url;
    card.img.alt = `${card.tag} at step ${im.step}`;
    drawBoxes(card, im);
    const ranks = new Set(card.images.map((x) => x.rank ?? 0));
    const boxes = (im.boxes && im.boxes.boxes && im.boxes.boxes.length) || 0;
    const boxNote = boxes ? ` · ${boxes} box${boxes === 1 ? '' : 'es'}` : '';
    card.label.textContent = `step ${im.step}${ranks.size > 1 ? ` · rank ${im.rank}` : ''} · ${card.index + 1}/${n} · ${im.width}×${im.height}${boxNote}`;
  }

  /** The image's boxes over it: left/top/width/height in percent of the image, a label on each. */
  function drawBoxes(card, im) {
    const boxes = (im.boxes && im.boxes.boxes) || [];
    const labels = (im.boxes && im.boxes.labels) || [];
    const W = im.width || 1;
    const H = im.height || 1;
    const pct = (v, total) => `${(100 * v) / total}%`;
    card.boxes.replaceChildren(
      ...boxes.map(([x0, y0, x1, y1], i) => {
        const color = PALETTE[i % 10];
        const label = labels[i] === undefined || labels[i] === null ? '' : String(labels[i]);
        return h(
          'div',
          {
            class: 'img-box',
            dataset: { testid: 'image-box', label },
            title: `${label ? `${label}: ` : ''}(${x0}, ${y0}) – (${x1}, ${y1})`,
            style: { left: pct(x0, W), top: pct(y0, H), width: pct(x1 - x0, W), height: pct(y1 - y0, H), borderColor: color },
          },
          label ? h('span', { class: 'img-box-label', style: { background: color } }, label) : null,
        );
      }),
    );
  }

  function makeCard(tag, run, order) {
    const img = h('img', { class: 'rs-image', dataset: { testid: 'image' }, decoding: 'async' });
    const boxes = h('div', { class: 'img-boxes' });
    const slider = h('input', { type: 'range', min: '0', max: '0', step: '1', value: '0', class: 'image-slider', dataset: { testid: 'image-slider' } });
    const label = h('div', { class: 'image-label' }, 'loading…');
    const frame = h('div', { class: 'image-frame' }, h('div', { class: 'img-wrap' }, img, boxes));
    const color = ctx.colors.get(run.run_id) || '#444';
    const el = h(
      'div',
      { class: 'img-card', dataset: { testid: 'image-card', tag, runId: run.run_id } },
      h('div', { class: 'chart-head' }, h('i', { class: 'legend-swatch', style: { background: color } }), h('span', { class: 'chart-tag' }, run.name || run.run_id)),
      frame,
      slider,
      label,
    );
    const card = { el, tag, run, order, img, boxes, slider, label, frame, images: null, index: 0 };
    slider.addEventListener('input', () => {
      card.index = Number(slider.value);
      show(card);
    });
    img.addEventListener('error', () => {
      if (img.getAttribute('src')) label.textContent = `could not load the image (${img.getAttribute('src')})`;
    });
    return card;
  }

  function render() {
    const tags = [...(ctx.tags.images || [])].sort();
    empty.hidden = tags.length > 0 && ctx.runs.length > 0;
    empty.textContent = !ctx.runs.length
      ? 'Select runs in the table to see their images.'
      : ctx.tags.error
        ? `Could not load the tags: ${ctx.tags.error}`
        : 'The selected runs have logged no images yet.';
    const next = new Map();
    const sections = [];
    let order = 0;
    for (const tag of tags) {
      const body = h('div', { class: 'img-grid' });
      for (const run of ctx.runs) {
        const key = `${tag}\n${run.run_id}`;
        let card = cards.get(key);
        if (!card) {
          card = makeCard(tag, run, order);
          lazy.add(card);
        }
        card.order = order++;
        next.set(key, card);
        body.append(card.el);
      }
      const l = tagLabel(tag, info);
      const head = h('div', { class: 'group-head static' }, h('span', { class: 'group-name', title: l.title }, l.text));
      const description = l.description ? h('div', { class: 'tag-description' }, l.description) : null;
      sections.push(h('section', { class: 'tag-group' }, head, description, body));
    }
    for (const [key, card] of cards) if (!next.has(key)) lazy.remove(card);
    cards = next;
    grid.replaceChildren(...sections);
    tagInfoFor(ctx.runIds).then((found) => {
      if (JSON.stringify(found) === JSON.stringify(info)) return;
      info = found;
      if (active) render();
    });
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
    },
    refresh() {
      forgetTagInfo();
      for (const card of cards.values()) lazy.invalidate(card);
    },
  };
}
