// The view state and its URL query string.
//
// parseQuery/toQuery are pure (tested under node). createStore() keeps the state of the page,
// mirrors it into the address bar (so a view can be bookmarked and shared) and tells
// subscribers which keys changed.
//
// Keys in the URL (defaults are left out):
//   project=P          the project
//   runs=ID,ID         selected run ids (each URI-encoded, so an id may hold a comma);
//                      absent = automatic (the listed runs, up to MAX_AUTO_RUNS); empty = none
//   q=TEXT             the runs filter box
//   tags=RE            tag filter (a regex, or a substring when it is not a valid regex)
//   smoothing=0.6      EMA weight, 0..0.99
//   x=step|relative|wall
//   logy=1  envelope=1
//   group=KEY          group runs by this config key
//   band=minmax|std    the band drawn around a group's mean
//   tab=scalars|histograms|images|texts|sql|visdom|projector|graphs|prcurves|audio|video|mesh|hparams
//   env=NAME           the Visdom env shown in the Visdom tab
//   archived=1         the runs panel lists archived runs too

export const MAX_AUTO_RUNS = 20;
export const X_AXES = ['step', 'relative', 'wall'];
export const TABS = ['scalars', 'histograms', 'images', 'texts', 'sql', 'visdom', 'projector', 'graphs', 'prcurves', 'audio', 'video', 'mesh', 'hparams'];
export const BANDS = ['minmax', 'std'];

export const DEFAULTS = Object.freeze({
  project: '',
  runs: null,
  q: '',
  tags: '',
  smoothing: 0.6,
  x: 'step',
  logy: false,
  envelope: false,
  group: '',
  band: 'minmax',
  tab: 'scalars',
  env: '',
  archived: false,
});

const decode = (s) => {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
};

/** Query string ("?a=b&..." or "a=b&...") -> full state (defaults filled in). */
export function parseQuery(search) {
  const raw = new Map();
  const text = String(search || '').replace(/^\?/, '');
  for (const part of text.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    raw.set(key, eq < 0 ? '' : part.slice(eq + 1));
  }
  const get = (k) => (raw.has(k) ? decode(raw.get(k)) : undefined);
  const state = { ...DEFAULTS };
  if (get('project') !== undefined) state.project = get('project');
  if (raw.has('runs')) {
    const v = raw.get('runs');
    state.runs = v === '' ? [] : [...new Set(v.split(',').map(decode).filter((id) => id !== ''))];
  }
  if (get('q') !== undefined) state.q = get('q');
  if (get('tags') !== undefined) state.tags = get('tags');
  const sm = Number(get('smoothing'));
  if (get('smoothing') !== undefined && Number.isFinite(sm)) state.smoothing = Math.min(0.99, Math.max(0, sm));
  if (X_AXES.includes(get('x'))) state.x = get('x');
  state.logy = get('logy') === '1' || get('logy') === 'true';
  state.envelope = get('envelope') === '1' || get('envelope') === 'true';
  if (get('group') !== undefined) state.group = get('group');
  if (BANDS.includes(get('band'))) state.band = get('band');
  if (TABS.includes(get('tab'))) state.tab = get('tab');
  if (get('env') !== undefined) state.env = get('env');
  state.archived = get('archived') === '1' || get('archived') === 'true';
  return state;
}

/** State -> query string without the leading "?" ("" when everything is default). */
export function toQuery(state) {
  const parts = [];
  const add = (k, v) => parts.push(`${k}=${encodeURIComponent(v)}`);
  if (state.project) add('project', state.project);
  if (state.tab !== DEFAULTS.tab) add('tab', state.tab);
  if (Array.isArray(state.runs)) parts.push(`runs=${state.runs.map(encodeURIComponent).join(',')}`);
  if (state.q) add('q', state.q);
  if (state.tags) add('tags', state.tags);
  if (state.smoothing !== DEFAULTS.smoothing) add('smoothing', String(state.smoothing));
  if (state.x !== DEFAULTS.x) add('x', state.x);
  if (state.logy) add('logy', '1');
  if (state.envelope) add('envelope', '1');
  if (state.group) add('group', state.group);
  if (state.band !== DEFAULTS.band) add('band', state.band);
  if (state.env) add('env', state.env);
  if (state.archived) add('archived', '1');
  return parts.join('&');
}

const same = (a, b) =>
  Array.isArray(a) && Array.isArray(b) ? a.length === b.length && a.every((v, i) => v === b[i]) : a === b;

/** The page's state, kept in the URL. subscribe(fn) -> fn(state, changedKeys: Set). */
export function createStore(win = window) {
  let state = parseQuery(win.location.search);
  const listeners = [];
  const notify = (changed) => {
    if (changed.size) for (const fn of listeners) fn(state, changed);
  };
  const writeUrl = (push) => {
    const q = toQuery(state);
    const url = `${win.location.pathname}${q ? `?${q}` : ''}${win.location.hash}`;
    if (url === `${win.location.pathname}${win.location.search}${win.location.hash}`) return;
    win.history[push ? 'pushState' : 'replaceState'](null, '', url);
  };
  win.addEventListener('popstate', () => {
    const next = parseQuery(win.location.search);
    const changed = new Set(Object.keys(next).filter((k) => !same(next[k], state[k])));
    state = next;
    notify(changed);
  });
  return {
    get: () => state,
    /** Merge `patch`; push a history entry when `push` (tab and project changes). */
    set(patch, { push = false } = {}) {
      const changed = new Set(Object.keys(patch).filter((k) => !same(patch[k], state[k])));
      if (!changed.size) return;
      state = { ...state, ...patch };
      writeUrl(push);
      notify(changed);
    },
    subscribe(fn) {
      listeners.push(fn);
    },
  };
}
