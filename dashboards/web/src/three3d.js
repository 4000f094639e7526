// The three.js set-up the Projector's 3-D view and the Mesh tab share: a WebGL renderer filling its
// container, a perspective camera with orbit controls (drag to rotate, wheel to zoom, right-drag to
// pan), drawing only when something changed (one frame per burst of control events), following the
// container's size. Each view adds its own objects to `scene`.
//
// createScene3d(container, {fov, near, far, position, target, clearColor, antialias})
//   -> {renderer, scene, camera, controls, request, render, destroy}

import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';

/** The container's size in CSS pixels, at least 200 x 200. */
export function containerSize(container) {
  const r = container.getBoundingClientRect();
  return { width: Math.max(200, Math.floor(r.width)), height: Math.max(200, Math.floor(r.height)) };
}

export function createScene3d(container, options = {}) {
  const { fov = 50, near = 0.01, far = 100, position = [0, 0, 3], target = [0, 0, 0], clearColor = 0xffffff, antialias = false } = options;
  const { width, height } = containerSize(container);
  const renderer = new THREE.WebGLRenderer({ antialias });
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  renderer.setSize(width, height);
  renderer.setClearColor(clearColor);
  container.replaceChildren(renderer.domElement);
  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(fov, width / height, near, far);
  camera.position.set(...position);
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.target.set(...target);
  controls.update();
  let frame = 0;
  const render = () => {
    frame = 0;
    renderer.render(scene, camera);
  };
  const request = () => {
    if (!frame) frame = requestAnimationFrame(render);
  };
  controls.addEventListener('change', request);
  const resize = new ResizeObserver(() => {
    const s = containerSize(container);
    renderer.setSize(s.width, s.height);
    camera.aspect = s.width / s.height;
    camera.updateProjectionMatrix();
    request();
  });
  resize.observe(container);
  return {
    renderer,
    scene,
    camera,
    controls,
    request,
    render,
    destroy() {
      if (frame) cancelAnimationFrame(frame);
      resize.disconnect();
      controls.dispose();
      renderer.dispose();
    },
  };
}
