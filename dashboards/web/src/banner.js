// The error banner: every API error is shown here until the user dismisses it.
// The same message again bumps a counter instead of stacking a copy.

import { h } from './dom.js';

let root = null;
const shown = new Map(); // text -> {el, count, countEl}

export function mountBanner(el) {
  root = el;
}

export function showError(err) {
  const route = err && err.route ? `${err.route}` : '';
  const status = err && err.status ? ` (${err.status})` : '';
  const message = (err && err.message) || String(err);
  const key = `${route}|${message}`;
  if (!root) {
    console.error(err);
    return;
  }
  const prev = shown.get(key);
  if (prev) {
    prev.count++;
    prev.countEl.textContent = `×${prev.count}`;
    prev.countEl.hidden = false;
    return;
  }
  const countEl = h('span', { class: 'banner-count', hidden: true });
  const el = h(
    'div',
    { class: 'banner-item', role: 'alert', dataset: { testid: 'error' } },
    h('span', { class: 'banner-msg' }, message),
    route ? h('span', { class: 'banner-route' }, `${route}${status}`) : null,
    countEl,
    h('button', { class: 'banner-close', title: 'Dismiss', 'aria-label': 'Dismiss', onclick: () => dismiss(key) }, '×'),
  );
  shown.set(key, { el, count: 1, countEl });
  root.append(el);
  root.hidden = false;
}

function dismiss(key) {
  const item = shown.get(key);
  if (!item) return;
  item.el.remove();
  shown.delete(key);
  if (!shown.size) root.hidden = true;
}
