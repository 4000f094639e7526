// The PR CURVES tab: per tag, precision against recall of the displayed runs at a chosen step.

import { h } from './dom.js';

export function createPrCurvesView(root) {
  const empty = h('div', { class: 'empty' }, 'PR curves are coming.');
  root.append(h('div', { class: 'view-scroll' }, empty));
  return { setContext() {}, show() {}, hide() {}, refresh() {} };
}
