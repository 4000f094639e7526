// The Projector's drawing, loaded only when the tab first draws (esbuild puts it in its own chunk):
// every point in WebGL, never subsampled. 2-D: regl-scatterplot (pan, zoom, hover, click to select);
// 3-D: three.js points with orbit controls (drag to rotate, wheel to zoom, click to select), in the
// scene set-up it shares with the Mesh tab (three3d.js).
//
// createDrawing(container, {axes, codes, palette, onHover, onSelect}) -> {recolor, select, destroy, drawn}
// axes: 2 or 3 Float32Arrays in [-1, 1]; codes: Int32Array category per point (colours from palette).

import createScatterplot from 'regl-scatterplot';
import * as THREE from 'three';
import { containerSize as size, createScene3d } from './three3d.js';

export function createDrawing(container, options) {
  return options.axes.length === 3 ? draw3d(container, options) : draw2d(container, options);
}

function draw2d(container, { axes, codes, palette, onHover, onSelect }) {
  const canvas = document.createElement('canvas');
  container.replaceChildren(canvas);
  const { width, height } = size(container);
  const plot = createScatterplot({ canvas, width, height, pointSize: 3, opacity: 0.85, pointColor: palette, colorBy: 'valueA', lassoOnLongPress: false });
  let current = codes;
  plot.subscribe('pointOver', (i) => onHover(i));
  plot.subscribe('pointOut', () => onHover(null));
  plot.subscribe('select', ({ points }) => points.length === 1 && onSelect(points[0]));
  const drawn = plot.draw({ x: axes[0], y: axes[1], valueA: current }, { zDataType: 'categorical' });
  const resize = new ResizeObserver(() => plot.set(size(container)));
  resize.observe(container);
  return {
    drawn,
    recolor(next, nextPalette) {
      current = next;
      plot.set({ pointColor: nextPalette });
      return plot.draw({ x: axes[0], y: axes[1], valueA: current }, { zDataType: 'categorical', preventFilterReset: true });
    },
    select(indices) {
      plot.select(indices, { preventEvent: true });
    },
    destroy() {
      resize.disconnect();
      plot.destroy();
    },
  };
}

function draw3d(container, { axes, codes, palette, onSelect }) {
  const view = createScene3d(container, { fov: 50, near: 0.01, far: 100, position: [0, 0, 3] });
  const { renderer, scene, camera, request, render } = view;
  const n = axes[0].length;
  const positions = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    positions[3 * i] = axes[0][i];
    positions[3 * i + 1] = axes[1][i];
    positions[3 * i + 2] = axes[2][i];
  }
  const geometry = new THREE.BufferGeometry();
  geometry.setAttribute('position', new THREE.BufferAttribute(positions, 3));
  const colors = new Float32Array(n * 3);
  geometry.setAttribute('color', new THREE.BufferAttribute(colors, 3));
  const paint = (next, nextPalette) => {
    const rgb = nextPalette.map((c) => new THREE.Color(c));
    for (let i = 0; i < n; i++) {
      const c = rgb[next[i]] || rgb[rgb.length - 1];
      colors[3 * i] = c.r;
      colors[3 * i + 1] = c.g;
      colors[3 * i + 2] = c.b;
    }
    geometry.attributes.color.needsUpdate = true;
  };
  paint(codes, palette);
  const points = new THREE.Points(geometry, new THREE.PointsMaterial({ size: 3, sizeAttenuation: false, vertexColors: true }));
  scene.add(points);
  const marked = new THREE.Points(new THREE.BufferGeometry(), new THREE.PointsMaterial({ size: 9, sizeAttenuation: false, color: 0x000000 }));
  scene.add(marked);
  const raycaster = new THREE.Raycaster();
  raycaster.params.Points.threshold = 0.01;
  renderer.domElement.addEventListener('click', (e) => {
    const r = renderer.domElement.getBoundingClientRect();
    const pointer = new THREE.Vector2(((e.clientX - r.left) / r.width) * 2 - 1, -((e.clientY - r.top) / r.height) * 2 + 1);
    raycaster.setFromCamera(pointer, camera);
    const hit = raycaster.intersectObject(points)[0];
    if (hit) onSelect(hit.index);
  });
  render();
  return {
    drawn: Promise.resolve(),
    recolor(next, nextPalette) {
      paint(next, nextPalette);
      request();
      return Promise.resolve();
    },
    select(indices) {
      const at = new Float32Array(indices.length * 3);
      indices.forEach((p, k) => at.set(positions.subarray(3 * p, 3 * p + 3), 3 * k));
      marked.geometry.setAttribute('position', new THREE.BufferAttribute(at, 3));
      request();
    },
    destroy() {
      geometry.dispose();
      view.destroy();
    },
  };
}
