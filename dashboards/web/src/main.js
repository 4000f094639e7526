// Entry point: wires the store (URL state), the runs panel, the tabs and live updates.

import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { getProjects, getTags, isAbort, onApiError } from './api.js';
import { mountBanner, showError } from './banner.js';
import { $, h, throttle } from './dom.js';
import { fmtClock } from './format.js';
import { createHistogramsView } from './histograms.js';
import { createImagesView } from './images.js';
import { createTextsView } from './texts.js';
import { createVisdomView } from './visdom.js';
import { createProjectorView } from './projector.js';
import { createGraphsView } from './graphs.js';
import { createHparamsView } from './hparams.js';
import { createAudioView } from './audio.js';
import { createVideoView } from './video.js';
import { createMeshView } from './mesh.js';
import { createPrCurvesView } from './prcurves.js';
import { startLive } from './live.js';
import { createRunsPanel } from './runs.js';
import { createScalarsView } from './scalars.js';
import { createSqlView } from './sql.js';
import { createStore, TABS } from './state.js';

const store = createStore();
mountBanner($('#banner'));
onApiError(showError);

const EMPTY_TAGS = { scalars: [], histograms: [], images: [], texts: [] };
let ctx = { runs: [], runIds: [], colors: new Map(), configKeys: [], tags: EMPTY_TAGS };

const views = {
  scalars: createScalarsView($('#view-scalars'), store),
  histograms: createHistogramsView($('#view-histograms'), store),
  images: createImagesView($('#view-images'), store),
  texts: createTextsView($('#view-texts'), store),
  sql: createSqlView($('#view-sql'), store),
  visdom: createVisdomView($('#view-visdom'), store),
  projector: createProjectorView($('#view-projector'), store),
  graphs: createGraphsView($('#view-graphs'), store),
  hparams: createHparamsView($('#view-hparams'), store),
  audio: createAudioView($('#view-audio'), store),
  video: createVideoView($('#view-video'), store),
  mesh: createMeshView($('#view-mesh'), store),
  prcurves: createPrCurvesView($('#view-prcurves'), store),
};
const runsPanel = createRunsPanel($('#runs-panel'), store, { onChange: () => recompute() });

// ---- tabs
for (const tab of TABS) {
  $(`.tabs [data-tab="${tab}"]`).addEventListener('click', () => store.set({ tab }, { push: true }));
}
function showTab(tab) {
  for (const t of TABS) {
    const on = t === tab;
    $(`.tabs [data-tab="${t}"]`).classList.toggle('active', on);
    $(`.tabs [data-tab="${t}"]`).setAttribute('aria-selected', String(on));
    $(`#view-${t}`).hidden = !on;
    if (on) views[t].show();
    else views[t].hide();
  }
  document.body.dataset.view = tab;
}

// ---- projects
const projectSelect = $('#project');
projectSelect.addEventListener('change', () => store.set({ project: projectSelect.value, runs: null, group: '' }, { push: true }));

/** Fill the project picker; `initial`: also load the runs of the chosen project. */
async function loadProjects({ initial = false } = {}) {
  let projects = [];
  try {
    projects = (await getProjects()).projects || [];
  } catch {
    return; // the banner shows why
  }
  const current = store.get().project;
  const names = projects.map((p) => p.project);
  if (current && !names.includes(current)) projects.push({ project: current, runs: 0 });
  projectSelect.replaceChildren(...projects.map((p) => h('option', { value: p.project }, `${p.project} (${p.runs})`)));
  if (!projects.length) {
    projectSelect.append(h('option', { value: '' }, 'no projects yet'));
    runsPanel.showNoProject();
    setStatus();
    return;
  }
  if (!current) store.set({ project: projects[0].project });
  else if (initial) runsPanel.load();
  projectSelect.value = store.get().project;
}
const refreshProjects = throttle(() => loadProjects(), 3000);

// ---- the displayed runs and their tags
let tagsController = null;
let tagsFor = '';
let tagsRetry = null;

function recompute() {
  const runs = runsPanel.displayedRuns();
  const runIds = runs.map((r) => r.run_id);
  ctx = { ...ctx, runs, runIds, listed: runsPanel.runs().length, colors: runsPanel.colors(), configKeys: runsPanel.configKeys() };
  const key = [...runIds].sort().join(',');
  if (key !== tagsFor) loadTags(key);
  else pushContext();
  setStatus();
}

async function loadTags(key, { force = false } = {}) {
  if (key === tagsFor && !force) return;
  tagsFor = key;
  if (tagsController) tagsController.abort();
  if (!key) {
    ctx = { ...ctx, tags: EMPTY_TAGS };
    pushContext();
    return;
  }
  const controller = (tagsController = new AbortController());
  try {
    const tags = await getTags(ctx.runIds, { signal: controller.signal });
    if (controller.signal.aborted) return;
    const same = JSON.stringify(tags) === JSON.stringify(ctx.tags);
    ctx = { ...ctx, tags: { ...EMPTY_TAGS, ...tags } };
    if (!same || !force) pushContext();
  } catch (e) {
    if (!isAbort(e)) {
      // the banner shows the error; try again in a while (or at the next change)
      tagsFor = null;
      clearTimeout(tagsRetry);
      tagsRetry = setTimeout(() => recompute(), 5000);
      if (!force) {
        ctx = { ...ctx, tags: { ...EMPTY_TAGS, error: e.message } };
        pushContext();
      }
    }
  }
}

function pushContext() {
  for (const v of Object.values(views)) v.setContext(ctx);
  setStatus();
}

// ---- live updates
let liveState = 'connecting';
let lastUpdate = null;
const statusLine = $('#status-line');
const counts = $('#status-counts');

// /api/tags' keys (the views) as the status line names them: "4 scalar, 1 histogram, 2 PR curve tags"
const KIND_NOUNS = {
  scalars: 'scalar', histograms: 'histogram', images: 'image', texts: 'text', graphs: 'graph', embeddings: 'embedding',
  audio: 'audio', videos: 'video', pr_curves: 'PR curve', meshes: 'mesh', tensors: 'tensor',
};

function setStatus() {
  const label = { live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', offline: 'offline (retrying)' }[liveState];
  statusLine.textContent = `${label}${lastUpdate ? ` · last update ${fmtClock(lastUpdate)}` : liveState === 'live' ? ' · connected, no new data yet' : ''}`;
  statusLine.className = `status-line s-${liveState}`;
  const t = ctx.tags;
  const kinds = Object.entries(t)
    .filter(([, tags]) => Array.isArray(tags) && tags.length)
    .map(([kind, tags]) => `${tags.length} ${KIND_NOUNS[kind] || kind}`);
  counts.textContent = `${ctx.runIds.length} run${ctx.runIds.length === 1 ? '' : 's'} shown · ${kinds.join(', ') || 'no'} tags`;
}

let touched = new Set();
const refreshRuns = throttle(() => runsPanel.load(), 2000);
// at most one refetch a second however often updates come (and the server sends one a second)
const refreshData = throttle(() => {
  const hit = ctx.runIds.some((id) => touched.has(id));
  touched = new Set();
  if (!hit) return;
  loadTags([...ctx.runIds].sort().join(','), { force: true });
  views[store.get().tab].refresh();
  // the other tabs reload when they are shown again
  for (const [tab, v] of Object.entries(views)) if (tab !== store.get().tab) v.refresh();
}, 1000);

startLive({
  onStatus(s) {
    liveState = s;
    setStatus();
  },
  onUpdate({ runs, time }) {
    lastUpdate = Number.isFinite(time) ? time : Date.now() / 1000;
    for (const id of runs) touched.add(id);
    const known = new Set(runsPanel.runs().map((r) => r.run_id));
    if (runs.some((id) => !known.has(id))) {
      refreshProjects(); // a new run may open a new project
      refreshRuns();
    } else if (runsPanel.hasRunning()) refreshRuns();
    refreshData();
    setStatus();
  },
});
// status changes (a run finishing) without new data still show up
setInterval(() => {
  if (runsPanel.hasRunning() && !document.hidden) runsPanel.load();
}, 15000);

// ---- state changes
store.subscribe((s, changed) => {
  if (changed.has('tab')) showTab(s.tab);
  if (changed.has('project')) {
    projectSelect.value = s.project;
    tagsFor = null;
  }
});

showTab(store.get().tab);
setStatus();
loadProjects({ initial: true });
