// The Mesh tab's drawing, loaded only when the tab first draws (its own chunk, with three.js): one
// BufferGeometry over the typed arrays the server sent (vertices, colours, faces as the index), drawn
// as a Mesh when there are faces and as Points otherwise, in the scene set-up the Projector's 3-D view
// uses too (three3d.js). Nothing loops over the vertices here but the colour conversion and the
// normals three.js computes for lit faces, so a million vertices draw without stopping the page.
//
// createMeshDrawing(container) -> {set(mesh, spec), probe(), destroy()}
//   mesh: {vertices: Float32Array, faces: Uint32Array | null, colors: Uint8Array | null}
//   spec: meshlib.sceneSpec(...)

import * as THREE from 'three';
import { bounds, frameCamera, linearColors } from './meshlib.js';
import { createScene3d } from './three3d.js';

const CLEAR = 0xffffff;

function light({ cls, color, intensity, position }) {
  const made = cls === 'HemisphereLight' ? new THREE.HemisphereLight(color, 0x444444, intensity) : new THREE[cls](color, intensity);
  if (cls === 'DirectionalLight' || cls === 'PointLight') made.position.set(...position);
  return made;
}

function material({ cls, props }) {
  const { side, ...rest } = props;
  const made = new THREE[cls](rest);
  if (side === 'double' && cls !== 'PointsMaterial') made.side = THREE.DoubleSide;
  return made;
}

export function createMeshDrawing(container) {
  const view = createScene3d(container, { clearColor: CLEAR });
  const { scene, camera, controls, renderer } = view;
  scene.add(camera); // lights given to the camera move with it: the side in view stays lit
  let object = null;
  let lights = [];
  let framedFor = null;

  function clear() {
    if (object) {
      scene.remove(object);
      object.geometry.dispose();
      object.material.dispose();
      object = null;
    }
    for (const l of lights) l.parent.remove(l);
    lights = [];
  }

  return {
    /** Draw `mesh` (replacing the one drawn); the camera frames it the first time, and again when
     *  `frameKey` changes (another tag), so that moving the slider keeps the user's view. */
    set(mesh, spec, frameKey) {
      clear();
      const geometry = new THREE.BufferGeometry();
      geometry.setAttribute('position', new THREE.BufferAttribute(mesh.vertices, 3));
      if (mesh.colors) geometry.setAttribute('color', new THREE.BufferAttribute(linearColors(mesh.colors), 3));
      if (mesh.faces) {
        geometry.setIndex(new THREE.BufferAttribute(mesh.faces, 1));
        geometry.computeVertexNormals();
      }
      object = mesh.faces ? new THREE.Mesh(geometry, material(spec.material)) : new THREE.Points(geometry, material(spec.material));
      scene.add(object);
      for (const l of spec.lights) {
        const made = light(l);
        (l.cls === 'AmbientLight' || l.cls === 'HemisphereLight' ? scene : camera).add(made);
        lights.push(made);
      }
      if (framedFor !== frameKey) {
        framedFor = frameKey;
        const framed = frameCamera(bounds(mesh.vertices), spec.camera.fov);
        camera.fov = spec.camera.fov;
        camera.near = framed.near;
        camera.far = framed.far;
        camera.position.set(...framed.position);
        camera.updateProjectionMatrix();
        controls.target.set(...framed.target);
        controls.update();
      }
      view.render();
    },
    /** Draw now and count the pixels that are not the background (tests: has the canvas drawn?). */
    probe() {
      view.render();
      const gl = renderer.getContext();
      const w = gl.drawingBufferWidth;
      const h = gl.drawingBufferHeight;
      const pixels = new Uint8Array(w * h * 4);
      gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
      let drawn = 0;
      for (let i = 0; i < pixels.length; i += 4) if (pixels[i] !== 255 || pixels[i + 1] !== 255 || pixels[i + 2] !== 255) drawn++;
      return { width: w, height: h, drawn };
    },
    destroy() {
      clear();
      view.destroy();
      renderer.forceContextLoss();
    },
  };
}
