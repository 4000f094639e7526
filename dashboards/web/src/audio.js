// The Audio tab: per audio tag and displayed run, an <audio> player of the clip at a step chosen with
// a slider (GET /api/audio lists the clips; each player loads its `url`, a WAV file served with byte
// ranges so that seeking works), with the clip's sample rate, channels and duration.

import { h } from './dom.js';
import { createMediaGrid, fetchList } from './mediagrid.js';

/** "44.1 kHz · stereo · 2.00 s". Pure. */
export function audioLabel(clip) {
  const rate = clip.sample_rate >= 1000 ? `${+(clip.sample_rate / 1000).toFixed(3)} kHz` : `${clip.sample_rate} Hz`;
  const channels = clip.channels === 1 ? 'mono' : clip.channels === 2 ? 'stereo' : `${clip.channels} channels`;
  const seconds = clip.duration >= 10 ? clip.duration.toFixed(1) : clip.duration.toFixed(2);
  return `${rate} · ${channels} · ${seconds} s`;
}

export function createAudioView(root) {
  return createMediaGrid(root, {
    kind: 'audio',
    noun: 'audio clips',
    list: (run, tag, opts) => fetchList('/api/audio', 'audio', run, tag, opts),
    player(card) {
      const audio = h('audio', { controls: true, preload: 'metadata', class: 'rs-audio', dataset: { testid: 'audio' } });
      audio.addEventListener('error', () => {
        if (audio.getAttribute('src')) card.label.textContent = `could not play the clip (${audio.getAttribute('src')})`;
      });
      return {
        el: audio,
        show(clip) {
          if (audio.getAttribute('src') !== clip.url) audio.src = clip.url;
        },
        label: audioLabel,
        hide: () => audio.pause(),
      };
    },
  });
}
