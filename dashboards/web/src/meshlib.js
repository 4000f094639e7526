// The Mesh tab's pure parts (no DOM, no three.js; tested under node): the binary body of /api/mesh as
// typed arrays, vertex colours made linear for three.js, the mesh's bounds and the camera that frames
// it, and the logged config (tensorboardX's config_dict: camera, lights, material, named by three.js
// class) read through a whitelist of classes and properties.

/** The body of GET /api/mesh (little-endian: vertices float32 x3, faces uint32 x3, colours uint8 x3)
 *  as views over `buffer`, without copying. Throws when the length does not match the counts. */
export function parseMesh(buffer, vertexCount, faceCount, hasColors) {
  const expected = vertexCount * 12 + faceCount * 12 + (hasColors ? vertexCount * 3 : 0);
  if (buffer.byteLength !== expected) {
    throw new Error(`the mesh has ${buffer.byteLength} bytes, expected ${expected} for ${vertexCount} vertices and ${faceCount} faces`);
  }
  const vertices = new Float32Array(buffer, 0, vertexCount * 3);
  const faces = faceCount ? new Uint32Array(buffer, vertexCount * 12, faceCount * 3) : null;
  const colors = hasColors ? new Uint8Array(buffer, vertexCount * 12 + faceCount * 12, vertexCount * 3) : null;
  return { vertices, faces, colors };
}

const SRGB_TO_LINEAR = new Float32Array(256);
for (let i = 0; i < 256; i++) {
  const c = i / 255;
  SRGB_TO_LINEAR[i] = c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

/** Logged colours (sRGB bytes) as linear floats, which three.js expects of vertex colours: the page
 *  then shows each vertex in exactly the colour logged. */
export function linearColors(bytes) {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = SRGB_TO_LINEAR[bytes[i]];
  return out;
}

/** The bounding sphere of the vertices: {center: [x, y, z], radius} (the box's centre; NaN skipped). */
export function bounds(vertices) {
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i + 2 < vertices.length; i += 3) {
    for (let k = 0; k < 3; k++) {
      const v = vertices[i + k];
      if (v < lo[k]) lo[k] = v;
      if (v > hi[k]) hi[k] = v;
    }
  }
  if (!(lo[0] <= hi[0])) return { center: [0, 0, 0], radius: 1 };
  const center = [0, 1, 2].map((k) => (lo[k] + hi[k]) / 2);
  let r2 = 0;
  for (let i = 0; i + 2 < vertices.length; i += 3) {
    const dx = vertices[i] - center[0];
    const dy = vertices[i + 1] - center[1];
    const dz = vertices[i + 2] - center[2];
    const d = dx * dx + dy * dy + dz * dz;
    if (d > r2) r2 = d;
  }
  return { center, radius: Math.sqrt(r2) || 1 };
}

const VIEW_DIRECTION = [0.45, 0.35, 1]; // a little from the right and above, so that depth shows

/** Where the camera stands to see the whole sphere with a vertical field of view `fov` (degrees). */
export function frameCamera({ center, radius }, fov) {
  const distance = (radius / Math.sin(((fov / 2) * Math.PI) / 180)) * 1.15;
  const len = Math.hypot(...VIEW_DIRECTION);
  const position = center.map((c, k) => c + (VIEW_DIRECTION[k] / len) * distance);
  return { position, target: center, near: Math.max(distance - radius * 2, distance / 1000), far: distance + radius * 4 };
}

const LIGHTS = new Set(['AmbientLight', 'DirectionalLight', 'PointLight', 'HemisphereLight']);
const MESH_MATERIALS = new Set(['MeshStandardMaterial', 'MeshBasicMaterial', 'MeshLambertMaterial', 'MeshPhongMaterial', 'MeshNormalMaterial']);
const MATERIAL_NUMBERS = ['roughness', 'metalness', 'opacity', 'shininess', 'size', 'emissiveIntensity'];
const MATERIAL_FLAGS = ['transparent', 'wireframe', 'flatShading', 'sizeAttenuation'];
const DEFAULT_LIGHTS = [
  { cls: 'AmbientLight', color: '#ffffff', intensity: 0.6 },
  { cls: 'DirectionalLight', color: '#ffffff', intensity: 1.6, position: [1, 1, 2] },
];

const finite = (v) => typeof v === 'number' && Number.isFinite(v);
const colorOf = (v) => (typeof v === 'string' && /^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$/.test(v) ? v : finite(v) ? v : undefined);

/**
 * What to draw, from the logged config and the mesh: {camera: {fov}, lights: [...], material: {cls,
 * props}}. Faces drawn with a Mesh material (MeshStandardMaterial unless the config names another);
 * a point cloud always with PointsMaterial (a config's `size` in scene units, else 3 pixels). Vertex
 * colours are used when logged. Unknown classes and properties are left out.
 */
export function sceneSpec(config, { hasFaces, hasColors }) {
  const cfg = config && typeof config === 'object' ? config : {};
  const cam = cfg.camera && typeof cfg.camera === 'object' ? cfg.camera : {};
  const fov = finite(cam.fov) && cam.fov > 1 && cam.fov < 179 ? cam.fov : 50;
  const given = Array.isArray(cfg.lights) ? cfg.lights.filter((l) => l && LIGHTS.has(l.cls)) : [];
  const lights = (given.length ? given : DEFAULT_LIGHTS).map((l) => ({
    cls: l.cls,
    color: colorOf(l.color) ?? '#ffffff',
    intensity: finite(l.intensity) ? l.intensity : 1,
    position: Array.isArray(l.position) && l.position.length === 3 && l.position.every(finite) ? l.position : [1, 1, 2],
  }));
  const mat = cfg.material && typeof cfg.material === 'object' ? cfg.material : {};
  const props = {};
  for (const k of MATERIAL_NUMBERS) if (finite(mat[k])) props[k] = mat[k];
  for (const k of MATERIAL_FLAGS) if (typeof mat[k] === 'boolean') props[k] = mat[k];
  if (colorOf(mat.color) !== undefined) props.color = colorOf(mat.color);
  let cls;
  if (hasFaces) {
    cls = MESH_MATERIALS.has(mat.cls) ? mat.cls : 'MeshStandardMaterial';
    delete props.size;
    delete props.sizeAttenuation;
    if (cls === 'MeshStandardMaterial') {
      props.roughness ??= 0.8;
      props.metalness ??= 0;
    }
  } else {
    cls = 'PointsMaterial';
    if (props.size === undefined) Object.assign(props, { size: 3, sizeAttenuation: false });
  }
  if (hasColors && cls !== 'MeshNormalMaterial') {
    props.vertexColors = true;
    if (props.color === undefined) props.color = '#ffffff';
  } else if (props.color === undefined && cls !== 'MeshNormalMaterial') props.color = hasFaces ? '#a0a0a0' : '#1f77b4';
  props.side = 'double';
  return { camera: { fov }, lights, material: { cls, props } };
}

/** "1,000,000 vertices · 2,000 faces · colours" for the card's label. */
export function meshLabel(mesh) {
  const n = (x) => Number(x).toLocaleString('en-US');
  const shape = mesh.face_count ? `${n(mesh.face_count)} faces` : 'point cloud';
  return `${n(mesh.vertex_count)} vertices · ${shape}${mesh.has_colors ? ' · colours' : ''}`;
}
