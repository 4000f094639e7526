// Live updates: EventSource on /api/events. `update` events carry {runs: [ids], time}; Visdom
// changes name (env, win), in `visdom` events or in an update's `visdom` list (visdomChanges).
// The browser reconnects by itself after a dropped connection; when the server refuses the
// stream (an HTTP error), we retry with a growing delay.

import { visdomChanges } from './visdomlib.js';

export function startLive({ onUpdate, onStatus, onVisdom = () => {}, url = '/api/events' }) {
  let es = null;
  let delay = 2000;
  let timer = null;

  function connect() {
    es = new EventSource(url);
    es.addEventListener('open', () => {
      delay = 2000;
      onStatus('live');
    });
    es.addEventListener('update', (e) => {
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        return;
      }
      onUpdate({ runs: Array.isArray(data.runs) ? data.runs : [], time: data.time });
      const changes = visdomChanges(data);
      if (changes.length) onVisdom(changes);
    });
    es.addEventListener('visdom', (e) => {
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        return;
      }
      const changes = visdomChanges(data);
      if (changes.length) onVisdom(changes);
    });
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) {
        onStatus('offline');
        es.close();
        clearTimeout(timer);
        timer = setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      } else {
        onStatus('reconnecting');
      }
    });
  }

  connect();
  return {
    stop() {
      clearTimeout(timer);
      if (es) es.close();
    },
  };
}
