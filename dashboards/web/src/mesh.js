// The Mesh tab: per mesh tag and displayed run, a 3-D view (three.js, orbit controls: drag to
// rotate, wheel to zoom, right-drag to pan) of the mesh or point cloud at a step chosen with a slider
// (GET /api/meshes lists them, with the logged config; each mesh's arrays come from its `url` as
// binary and become one BufferGeometry without parsing).
//
// The drawing code (meshdraw.js, with three.js) loads when the tab first draws. A browser keeps only
// so many WebGL contexts, so at most MAX_LIVE views hold one; the least recently drawn gives its
// context up and draws again when its card is clicked. window.__runstream.mesh: {draws, probe(i)} for
// tests (probe draws card i and counts the pixels that are not the background).

import { counters } from './debug.js';
import { h } from './dom.js';
import { createMediaGrid, fetchList } from './mediagrid.js';
import { meshLabel, parseMesh, sceneSpec } from './meshlib.js';

const MAX_LIVE = 8;
let drawModule = null;
const loadDraw = () => (drawModule ||= import('./meshdraw.js'));
const live = []; // players holding a WebGL context, least recently drawn first

async function fetchMesh(url, signal) {
  const reply = await fetch(url, { signal });
  if (!reply.ok) {
    let message = `${reply.status} ${reply.statusText}`;
    try {
      message = (await reply.json()).error || message;
    } catch {
      // not JSON: keep the status line
    }
    throw new Error(message);
  }
  const count = (name) => Number(reply.headers.get(name) || 0);
  const buffer = await reply.arrayBuffer();
  return parseMesh(buffer, count('X-Vertex-Count'), count('X-Face-Count'), reply.headers.get('X-Has-Colors') === '1');
}

function meshPlayer(card) {
  const canvasBox = h('div', { class: 'mesh-canvas', dataset: { testid: 'mesh-canvas' } });
  const note = h('div', { class: 'mesh-note muted small' });
  const el = h('div', { class: 'mesh-box' }, canvasBox, note);
  let drawing = null;
  let shown = null; // the item drawn (or being drawn)
  let controller = null;
  const player = { el, card };

  function release() {
    const at = live.indexOf(player);
    if (at >= 0) live.splice(at, 1);
    if (drawing) drawing.destroy();
    drawing = null;
  }

  async function draw(item) {
    shown = item;
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    note.textContent = 'loading…';
    note.hidden = false;
    try {
      const [mesh, module] = await Promise.all([fetchMesh(item.url, signal), loadDraw()]);
      if (signal.aborted || shown !== item) return;
      if (!drawing) {
        while (live.length >= MAX_LIVE) live[0].evict();
        drawing = module.createMeshDrawing(canvasBox);
      }
      const at = live.indexOf(player);
      if (at >= 0) live.splice(at, 1);
      live.push(player);
      drawing.set(mesh, sceneSpec(item.config, { hasFaces: !!mesh.faces, hasColors: !!mesh.colors }), card.tag);
      note.hidden = true;
      const dbg = (counters.mesh ||= { draws: 0 });
      dbg.draws++;
    } catch (e) {
      if (e.name !== 'AbortError') note.textContent = `could not draw the mesh: ${e.message}`;
    }
  }

  Object.assign(player, {
    show(item) {
      if (!shown || shown.url !== item.url || !drawing) draw(item);
    },
    label: meshLabel,
    evict() {
      release();
      canvasBox.replaceChildren();
      note.textContent = 'click to draw again (the browser keeps only a few 3-D views at a time)';
      note.hidden = false;
    },
    probe: () => (drawing ? drawing.probe() : null),
    destroy() {
      if (controller) controller.abort();
      release();
    },
  });
  el.addEventListener('click', () => {
    if (!drawing && shown) draw(shown);
  });
  return player;
}

export function createMeshView(root) {
  const grid = createMediaGrid(root, {
    kind: 'meshes',
    noun: 'meshes',
    parallel: 2,
    list: (run, tag, opts) => fetchList('/api/meshes', 'meshes', run, tag, opts),
    player: meshPlayer,
  });
  const dbg = (counters.mesh ||= { draws: 0 });
  dbg.probe = (i = 0) => {
    const card = grid.cards()[i];
    return card ? card.player.probe() : null;
  };
  return grid;
}
