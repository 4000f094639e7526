// The Visdom tab: the envs that visdom clients wrote (project `visdom`), chosen in a selector
// grouped by the part of the name before the first '_', and the chosen env's windows in a grid, in
// the client's order, with its titles and sizes.
//
// plotly.js (about 4.7 MB) and DOMPurify come with visdompanes.js, imported only when the tab first
// opens (esbuild splits it into a chunk). Live, while the tab is shown: GET /api/visdom/events
// names the changed (env, win); those windows are refetched at most every REFRESH_MS, the whole env
// when many changed or the env itself did. A tab shown again reloads its env (events were missed).

import { getVisdomEnv, getVisdomEnvs, getVisdomWindow, isAbort } from './api.js';
import { counters } from './debug.js';
import { h, throttle } from './dom.js';
import { startLive } from './live.js';
import { groupEnvs, paneKind, paneSize, sortWindows } from './visdomlib.js';

const REFRESH_MS = 500;
const MANY = 8; // more changed windows than this: one request for the env instead

let panesModule = null;
const loadPanes = () => (panesModule ||= import('./visdompanes.js'));

export function createVisdomView(root, store) {
  const select = h('select', { class: 'vd-env', dataset: { testid: 'visdom-env' }, 'aria-label': 'Visdom env' });
  const info = h('span', { class: 'muted small' });
  const grid = h('div', { class: 'vd-grid' });
  const empty = h('div', { class: 'empty', dataset: { testid: 'visdom-empty' } });
  root.append(h('div', { class: 'controls vd-controls' }, h('label', { class: 'vd-env-label' }, 'Env ', select), info), h('div', { class: 'view-scroll' }, empty, grid));
  select.addEventListener('change', () => store.set({ env: select.value }, { push: true }));

  const dbg = (counters.visdom = { envsLoaded: 0, panesDrawn: 0, draws: {}, lastEnvMs: null });
  let active = false;
  let envs = [];
  let shownEnv = null; // the env whose panes are in the grid
  let panes = new Map(); // win -> pane
  let stale = true; // the env needs a full reload when shown
  let envController = null;
  const pending = new Set(); // windows named by change events, not yet refetched
  let reloadEnv = false;
  let live = null;

  const currentEnv = () => {
    const want = store.get().env;
    const names = envs.map((e) => e.env);
    return names.includes(want) ? want : names.includes('main') ? 'main' : names[0] || '';
  };

  async function loadEnvs() {
    try {
      envs = (await getVisdomEnvs()).envs || [];
    } catch {
      return false; // the banner says why
    }
    const want = store.get().env;
    const names = envs.map((e) => e.env);
    const groups = groupEnvs(want && !names.includes(want) ? [...names, want] : names);
    select.replaceChildren(
      ...groups.map(([prefix, list]) =>
        h('optgroup', { label: prefix }, list.map((env) => h('option', { value: env }, `${env}${names.includes(env) ? '' : ' (not found)'}`))),
      ),
    );
    select.value = want && !names.includes(want) ? want : currentEnv();
    select.disabled = !envs.length;
    return true;
  }
  const refreshEnvs = throttle(() => loadEnvs(), 3000);

  async function loadEnv() {
    const env = store.get().env && !envs.some((e) => e.env === store.get().env) ? store.get().env : currentEnv();
    if (envController) envController.abort();
    const controller = (envController = new AbortController());
    stale = false;
    reloadEnv = false;
    pending.clear();
    if (!env) {
      render(null, []);
      return;
    }
    const started = performance.now();
    try {
      const width = requestWidth();
      const [resp, lib] = await Promise.all([getVisdomEnv(env, width, { signal: controller.signal }), loadPanes()]);
      if (controller.signal.aborted) return;
      await render(env, resp ? resp.windows || [] : null, lib);
      dbg.envsLoaded++;
      dbg.lastEnvMs = performance.now() - started;
      // the sizes come with the windows: ask again, at its width, for a wider pane's long traces
      for (const win of (resp && resp.windows) || []) {
        const pane = panes.get(win.win);
        const thinned = win.content && Array.isArray(win.content.data) && win.content.data.some((t) => t && t.downsampled);
        if (pane && thinned && requestWidth(pane) > width) pending.add(win.win);
      }
      if (pending.size) flush();
    } catch (e) {
      if (!isAbort(e)) {
        stale = true;
        info.textContent = `could not load ${env}: ${e.message}`;
      }
    }
  }

  /** The width the server downsamples long traces to: the widest plot pane, in device pixels. */
  function requestWidth(pane) {
    const css = pane ? pane.width : Math.max(400, ...[...panes.values()].map((p) => p.width));
    return Math.min(4000, Math.ceil(css * (window.devicePixelRatio || 1)));
  }

  async function render(env, windows, lib) {
    if (env !== shownEnv) {
      for (const p of panes.values()) if (lib) lib.release(p);
      panes = new Map();
      grid.replaceChildren();
      shownEnv = env;
    }
    empty.hidden = Boolean(windows && windows.length);
    empty.textContent = !env
      ? 'No Visdom envs yet. Point a visdom client at this server (Visdom(port=8097), or base_url="/visdom" on the HTTP port).'
      : windows === null
        ? `The env ${env} does not exist (any more).`
        : `The env ${env} has no windows.`;
    const list = sortWindows(windows || []);
    info.textContent = env ? `${list.length} window${list.length === 1 ? '' : 's'}` : '';
    const next = new Map();
    for (const win of list) next.set(win.win, panes.get(win.win) || makePane(win));
    for (const [id, p] of panes) if (!next.has(id) && lib) lib.release(p);
    panes = next;
    grid.replaceChildren(...[...panes.values()].map((p) => p.el));
    await Promise.all(list.map((win) => drawPane(panes.get(win.win), win, lib)));
  }

  function makePane(win) {
    const title = h('span', { class: 'vd-title' });
    const note = h('span', { class: 'vd-note muted' });
    const body = h('div', { class: 'vd-body' });
    const el = h('div', { class: 'vd-pane', dataset: { testid: 'visdom-pane', win: win.win } }, h('div', { class: 'vd-head' }, title, note), body);
    return { el, title, note, body, kind: null, state: {}, width: 0, height: 0, controller: null };
  }

  async function drawPane(pane, win, lib) {
    const [w, hgt] = paneSize(win);
    pane.width = w;
    pane.height = hgt;
    pane.el.dataset.type = win.type;
    pane.order = win.order ?? 0;
    pane.el.style.width = `${w + 2}px`; // + the border
    pane.body.style.height = paneKind(win.type) === 'image' ? '' : `${hgt}px`; // + its slider and caption
    pane.title.textContent = win.title || '';
    pane.title.title = `${win.title || ''} (${win.win})`;
    const t0 = performance.now();
    try {
      const points = await lib.draw(pane, win);
      const d = (dbg.draws[win.win] ||= { count: 0 });
      Object.assign(d, { count: d.count + 1, ms: performance.now() - t0, points, type: win.type });
      dbg.panesDrawn++;
    } catch (e) {
      console.error(e);
      pane.note.textContent = `could not draw: ${e.message}`;
    }
  }

  async function refetchWindow(win) {
    const pane = panes.get(win);
    if (!pane) {
      reloadEnv = true; // a new window: its place in the order comes with the env
      flush();
      return;
    }
    if (pane.controller) pane.controller.abort();
    const controller = (pane.controller = new AbortController());
    const env = shownEnv;
    try {
      const [resp, lib] = await Promise.all([getVisdomWindow(env, win, requestWidth(pane), { signal: controller.signal }), loadPanes()]);
      if (controller.signal.aborted || env !== shownEnv || panes.get(win) !== pane) return;
      if (resp === null) {
        reloadEnv = true; // closed
        flush();
        return;
      }
      const [w, hgt] = paneSize(resp);
      if ((resp.order ?? 0) !== (pane.order ?? 0) || w !== pane.width || hgt !== pane.height) {
        reloadEnv = true; // moved or resized: lay the env out again
        flush();
      }
      await drawPane(pane, resp, lib);
    } catch (e) {
      if (!isAbort(e)) pane.note.textContent = `could not refresh: ${e.message}`;
    }
  }

  const flush = throttle(() => {
    if (!active) return;
    if (reloadEnv || pending.size > MANY) {
      reloadEnv = false;
      pending.clear();
      loadEnv();
      return;
    }
    const wins = [...pending];
    pending.clear();
    for (const win of wins) refetchWindow(win);
  }, REFRESH_MS);

  store.subscribe((s, changed) => {
    if (changed.has('env') && active) {
      select.value = s.env;
      loadEnv();
    } else if (changed.has('env')) stale = true;
  });

  const view = {
    setContext() {},
    async show() {
      active = true;
      loadPanes(); // start the big download while the env list comes
      live ||= startLive({ url: '/api/visdom/events', onStatus() {}, onUpdate() {}, onVisdom: (list) => view.changes(list) });
      if (!(await loadEnvs())) return;
      if (stale || shownEnv !== currentEnv()) loadEnv();
      else if (pending.size || reloadEnv) flush();
    },
    hide() {
      active = false;
      if (live) live.stop();
      live = null;
      stale = true;
    },
    refresh() {}, // runs' updates: not ours; Visdom changes come through changes()
    /** Change-feed events: [{env, win}] (win null: the env itself changed). */
    changes(list) {
      for (const { env, win } of list) {
        if (active && (win === null || !envs.some((e) => e.env === env))) refreshEnvs();
        if (env !== shownEnv) continue;
        if (win === null || !panes.has(win)) reloadEnv = true; // the env itself, or a new window
        else pending.add(win);
      }
      if (!active && (pending.size || reloadEnv)) stale = true;
      else if (pending.size || reloadEnv) flush();
    },
  };
  return view;
}
