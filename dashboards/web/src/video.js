// The Video tab: per video tag and displayed run, the video at a step chosen with a slider (GET
// /api/videos lists them). A video is stored as an animated PNG (the SDK) or GIF (tensorboardX's
// event files): an <img> plays it in a loop, with no codec or player library; its fps and frame
// count are shown beside it.

import { h } from './dom.js';
import { createMediaGrid, fetchList } from './mediagrid.js';

const TARGET = 220; // small videos are scaled up (by a whole factor) to about this size, as images are

/** "12 frames · 4 fps · 3.0 s · 64×48". Pure. */
export function videoLabel(video) {
  const fps = +Number(video.fps).toFixed(2);
  const seconds = video.fps > 0 ? ` · ${(video.frames / video.fps).toFixed(1)} s` : '';
  return `${video.frames} frame${video.frames === 1 ? '' : 's'} · ${fps} fps${seconds} · ${video.width}×${video.height}`;
}

/** The whole factor a small video is scaled up by. Pure. */
export function videoScale(width, height) {
  return Math.max(1, Math.floor(TARGET / Math.max(width || TARGET, height || TARGET)));
}

export function createVideoView(root) {
  return createMediaGrid(root, {
    kind: 'videos',
    noun: 'videos',
    list: (run, tag, opts) => fetchList('/api/videos', 'videos', run, tag, opts),
    player(card) {
      const img = h('img', { class: 'rs-image', dataset: { testid: 'video' }, decoding: 'async' });
      img.addEventListener('error', () => {
        if (img.getAttribute('src')) card.label.textContent = `could not load the video (${img.getAttribute('src')})`;
      });
      return {
        el: img,
        show(video) {
          const scale = videoScale(video.width, video.height);
          img.style.width = video.width ? `${video.width * scale}px` : '';
          img.classList.toggle('pixelated', scale > 1);
          if (img.getAttribute('src') !== video.url) img.src = video.url;
          img.alt = `${card.tag} at step ${video.step}`;
        },
        label: videoLabel,
      };
    },
  });
}
