import assert from 'node:assert/strict';
import { test } from 'node:test';
import { audioLabel } from '../src/audio.js';
import { nextIndex, positionLabel } from '../src/mediagrid.js';
import { bounds, frameCamera, linearColors, meshLabel, parseMesh, sceneSpec } from '../src/meshlib.js';
import { videoLabel, videoScale } from '../src/video.js';

const at = (step, rank = 0, sample = 0) => ({ step, rank, sample });

test('the slider follows the newest point at the end, else keeps its point', () => {
  const before = [at(1), at(2), at(3)];
  const after = [at(1), at(2), at(3), at(4)];
  assert.equal(nextIndex(null, 0, after), 3);
  assert.equal(nextIndex(before, 2, after), 3);
  assert.equal(nextIndex(before, 1, after), 1);
  assert.equal(nextIndex(before, 1, [at(2), at(3)]), 0);
  assert.equal(nextIndex(before, 0, [at(5), at(6)]), 0); // its point is gone: the first
  assert.equal(nextIndex(before, 0, []), -1);
  assert.equal(nextIndex([at(1, 0, 0), at(1, 0, 1), at(2)], 1, [at(1, 0, 0), at(1, 0, 1), at(2), at(3)]), 1);
});

test('the position names rank and sample only when several are listed', () => {
  assert.equal(positionLabel([at(1), at(5)], 1), 'step 5 · 2/2');
  assert.equal(positionLabel([at(1, 0), at(1, 1)], 1), 'step 1 · rank 1 · 2/2');
  assert.equal(positionLabel([at(3, 0, 0), at(3, 0, 1)], 0), 'step 3 · sample 0 · 1/2');
});

test('audio and video labels', () => {
  assert.equal(audioLabel({ sample_rate: 44100, channels: 1, duration: 2 }), '44.1 kHz · mono · 2.00 s');
  assert.equal(audioLabel({ sample_rate: 800, channels: 2, duration: 12.34 }), '800 Hz · stereo · 12.3 s');
  assert.equal(audioLabel({ sample_rate: 16000, channels: 6, duration: 0.5 }), '16 kHz · 6 channels · 0.50 s');
  assert.equal(videoLabel({ frames: 16, fps: 4, width: 64, height: 48 }), '16 frames · 4 fps · 4.0 s · 64×48');
  assert.equal(videoLabel({ frames: 1, fps: 30, width: 8, height: 8 }), '1 frame · 30 fps · 0.0 s · 8×8');
  assert.equal(videoScale(32, 32), 6);
  assert.equal(videoScale(640, 480), 1);
});

test('a mesh body becomes typed arrays over the buffer, and a wrong length is refused', () => {
  const buffer = new ArrayBuffer(2 * 12 + 1 * 12 + 2 * 3);
  new Float32Array(buffer, 0, 6).set([0, 1, 2, 3, 4, 5]);
  new Uint32Array(buffer, 24, 3).set([0, 1, 1]);
  new Uint8Array(buffer, 36, 6).set([255, 0, 0, 0, 255, 0]);
  const mesh = parseMesh(buffer, 2, 1, true);
  assert.deepEqual([...mesh.vertices], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...mesh.faces], [0, 1, 1]);
  assert.deepEqual([...mesh.colors], [255, 0, 0, 0, 255, 0]);
  assert.equal(mesh.vertices.buffer, buffer);
  const cloud = parseMesh(new ArrayBuffer(24), 2, 0, false);
  assert.equal(cloud.faces, null);
  assert.equal(cloud.colors, null);
  assert.throws(() => parseMesh(new ArrayBuffer(20), 2, 0, false), /expected 24/);
});

test('colours are made linear (sRGB curve), bounds and the camera frame the mesh', () => {
  const lin = linearColors(new Uint8Array([0, 255, 128]));
  assert.equal(lin[0], 0);
  assert.equal(lin[1], 1);
  assert.ok(Math.abs(lin[2] - 0.2158605) < 1e-6);
  const b = bounds(new Float32Array([1, 1, 1, -1, -1, -1, 1, -1, 3]));
  assert.deepEqual(b.center, [0, 0, 1]);
  assert.ok(Math.abs(b.radius - Math.sqrt(1 + 1 + 4)) < 1e-6);
  assert.deepEqual(bounds(new Float32Array([])), { center: [0, 0, 0], radius: 1 });
  const cam = frameCamera({ center: [0, 0, 0], radius: 1 }, 60);
  assert.ok(Math.abs(Math.hypot(...cam.position) - 2.3) < 1e-9);
  assert.ok(cam.near > 0 && cam.near < 2.3 - 1 && cam.far > 2.3 + 1);
});

test('the config is read through a whitelist; point clouds use PointsMaterial', () => {
  const lit = sceneSpec(
    {
      camera: { cls: 'PerspectiveCamera', fov: 75, aspect: 0.9 },
      lights: [{ cls: 'AmbientLight', color: '#ffffff', intensity: 0.75 }, { cls: 'Evil', color: 'x' }],
      material: { cls: 'MeshStandardMaterial', roughness: 1, metalness: 0, onBeforeCompile: 'alert(1)' },
    },
    { hasFaces: true, hasColors: true },
  );
  assert.equal(lit.camera.fov, 75);
  assert.deepEqual(lit.lights.map((l) => [l.cls, l.intensity]), [['AmbientLight', 0.75]]);
  assert.equal(lit.material.cls, 'MeshStandardMaterial');
  assert.deepEqual(lit.material.props, { roughness: 1, metalness: 0, vertexColors: true, color: '#ffffff', side: 'double' });
  const plain = sceneSpec({}, { hasFaces: true, hasColors: false });
  assert.equal(plain.camera.fov, 50);
  assert.equal(plain.lights.length, 2);
  assert.equal(plain.material.props.color, '#a0a0a0');
  const cloud = sceneSpec({ material: { cls: 'MeshStandardMaterial', size: 0.2 } }, { hasFaces: false, hasColors: false });
  assert.equal(cloud.material.cls, 'PointsMaterial');
  assert.equal(cloud.material.props.size, 0.2);
  assert.equal(sceneSpec(null, { hasFaces: false, hasColors: true }).material.props.sizeAttenuation, false);
  assert.equal(sceneSpec({ material: { cls: 'ShaderMaterial' } }, { hasFaces: true }).material.cls, 'MeshStandardMaterial');
});

test('the mesh label', () => {
  assert.equal(meshLabel({ vertex_count: 1000000, face_count: 0, has_colors: true }), '1,000,000 vertices · point cloud · colours');
  assert.equal(meshLabel({ vertex_count: 4, face_count: 4, has_colors: false }), '4 vertices · 4 faces');
});
