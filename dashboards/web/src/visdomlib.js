// The Visdom view's pure logic (no DOM, tested under node): grouping envs, the Plotly title
// fix, image frames, pane sizes, and reading the change feed's Visdom events.

/** The group of an env: the part before the first '_', as Visdom's env selector groups them. */
export function envPrefix(env) {
  const i = env.indexOf('_');
  return i < 0 ? env : env.slice(0, i);
}

const byName = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** env names -> [[prefix, [envs sorted]], ...] sorted by prefix. */
export function groupEnvs(envs) {
  const groups = new Map();
  for (const env of [...envs].sort(byName)) {
    const p = envPrefix(env);
    if (!groups.has(p)) groups.set(p, []);
    groups.get(p).push(env);
  }
  return [...groups.entries()].sort((a, b) => byName(a[0], b[0]));
}

/** Windows in the order the client made them (`order`, then id), as Visdom lays them out. */
export function sortWindows(windows) {
  return [...windows].sort((a, b) => (a.order ?? 0) - (b.order ?? 0) || byName(String(a.win), String(b.win)));
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// plotly.js 3 dropped the string forms that the visdom client still sends: `title: 'x'` (now
// `title: {text}`) and `titlefont`/`titleside`/`titleposition`/`titleoffset` (now inside `title`).
// They can appear on the layout, each axis and scene axis, legends, colour bars and traces.
const MOVED = { titlefont: 'font', titleside: 'side', titleposition: 'position', titleoffset: 'offset' };

function fixNode(node) {
  if (Array.isArray(node)) return node.length && node.some((v) => typeof v === 'object' && v !== null) ? node.map(fixNode) : node;
  if (!isObject(node)) return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) if (!(k in MOVED)) out[k] = k === 'title' ? v : fixNode(v);
  const hasMoved = Object.keys(MOVED).some((k) => node[k] !== undefined && node[k] !== null);
  const t = node.title;
  if (typeof t === 'string' || typeof t === 'number') out.title = { text: String(t) };
  else if (isObject(t)) out.title = fixNode(t);
  else if (t === null || t === undefined) delete out.title;
  if (hasMoved) {
    const title = isObject(out.title) ? { ...out.title } : {};
    for (const [old, key] of Object.entries(MOVED)) {
      if (node[old] !== undefined && node[old] !== null && title[key] === undefined) title[key] = node[old];
    }
    out.title = title;
  }
  return out;
}

/**
 * A Plotly figure `{data, layout}` as the visdom client wrote it -> one current plotly.js draws
 * with its titles (a new object; the input is left alone; long numeric arrays are shared).
 */
export function fixFigure(figure) {
  const data = Array.isArray(figure && figure.data) ? figure.data.map(fixNode) : [];
  const layout = isObject(figure && figure.layout) ? fixNode(figure.layout) : {};
  return { data, layout };
}

/** The frames of an image pane, oldest first: [{src, caption}]; the last is the current image. */
export function imageFrames(content) {
  const frame = (f) => (typeof f === 'string' ? { src: f, caption: '' } : isObject(f) && typeof f.src === 'string' ? { src: f.src, caption: f.caption ? String(f.caption) : '' } : null);
  if (Array.isArray(content)) return content.map(frame).filter(Boolean); // Visdom's own image_history
  if (!isObject(content)) return [];
  const frames = (Array.isArray(content.history) ? content.history : []).map(frame).filter(Boolean);
  const current = frame(content);
  if (current && !frames.some((f) => f.src === current.src)) frames.push(current);
  return frames;
}

/** The frame an image pane opens at: the client's `selected` (Visdom's slider position), else the newest. */
export function selectedFrame(content, count) {
  const s = isObject(content) ? content.selected : undefined;
  return Number.isInteger(s) && s >= 0 && s < count ? s : count - 1;
}

export const DEFAULT_SIZE = Object.freeze({ plot: [400, 300], image: [300, 300], text: [300, 300] });

/** What draws a window: 'plot' | 'image' | 'html' | 'properties' | 'graph' | 'other'. */
export function paneKind(type) {
  if (type === 'plot') return 'plot';
  if (type === 'image' || type === 'images' || type === 'image_history') return 'image';
  if (type === 'text' || type === 'svg' || type === 'matplot' || type === 'audio' || type === 'video') return 'html';
  if (type === 'properties') return 'properties';
  if (type === 'network' || type === 'graph') return 'graph';
  return 'other';
}

// The visdom client sizes an image window to the image (a 28x28 digit: 28x28 px); those are shown
// scaled up by a whole factor (pixelated) to about this size, so that they can be seen.
export const MIN_IMAGE = 200;

/**
 * [width, height] in CSS pixels of a window's drawing area: the client's opts, else Visdom's
 * defaults; small images scaled up by a whole factor.
 */
export function paneSize(win) {
  const kind = paneKind(win.type);
  const [dw, dh] = DEFAULT_SIZE[kind] || DEFAULT_SIZE.text;
  const num = (v, d) => (v !== null && v !== '' && Number.isFinite(Number(v)) && Number(v) > 0 ? Math.round(Number(v)) : d);
  const opts = isObject(win.opts) ? win.opts : {};
  const w = num(win.width ?? opts.width, dw);
  const h = num(win.height ?? opts.height, dh);
  if (kind !== 'image') return [w, h];
  const scale = Math.max(1, Math.floor(MIN_IMAGE / Math.max(w, h)));
  return [w * scale, h * scale];
}

/**
 * The windows named by one change-feed event: [{env, win}], win null for a change of the whole
 * env (a new, forked or deleted env). Accepts {env, win}, {visdom: [...]}, {windows: [...]}
 * and a bare list; anything else names nothing.
 */
export function visdomChanges(data) {
  const list = Array.isArray(data) ? data : isObject(data) ? (Array.isArray(data.visdom) ? data.visdom : Array.isArray(data.windows) ? data.windows : 'env' in data ? [data] : []) : [];
  const out = [];
  for (const c of list) {
    if (isObject(c) && typeof c.env === 'string') out.push({ env: c.env, win: typeof c.win === 'string' ? c.win : null });
  }
  return out;
}

const BASIC_TRACE_TYPES = new Set(['scatter', 'bar', 'pie']);

/** Which plotly.js build draws every trace of `data`: 'basic' (scatter, bar, pie) or 'full'. */
export function plotlyBuildFor(data) {
  return data.every((trace) => BASIC_TRACE_TYPES.has((trace && trace.type) || 'scatter')) ? 'basic' : 'full';
}
