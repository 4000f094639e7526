// Load cards only when they come on screen, a few at a time, top ones first.
//
// An item is any object with `el` (observed) and `order`; createLazy({scroller, load}) calls
// `await load(item)` when the item is on screen and stale. invalidate(item) makes it stale
// again (live updates), and it reloads now if on screen, else when it scrolls into view.

export function createLazy({ scroller, load, parallel = 4, margin = '200px 0px' }) {
  const pending = new Set();
  let running = 0;
  let active = true;

  const observer = new IntersectionObserver(
    (entries) => {
      for (const e of entries) {
        const item = e.target.__lazy;
        if (!item) continue;
        item.visible = e.isIntersecting;
        ensure(item);
      }
    },
    { root: scroller, rootMargin: margin },
  );

  function ensure(item) {
    if (!active || !item.visible || !item.stale || item.removed || item.loading) return;
    pending.add(item);
    pump();
  }

  function pump() {
    while (running < parallel && pending.size) {
      let next = null;
      for (const it of pending) if (!next || it.order < next.order) next = it;
      pending.delete(next);
      if (!next.visible || next.removed || !next.stale || next.loading) continue;
      next.stale = false;
      next.loading = true;
      running++;
      const item = next;
      Promise.resolve()
        .then(() => load(item))
        .catch((e) => console.error(e))
        .finally(() => {
          running--;
          item.loading = false;
          ensure(item); // made stale again while loading (a live update): load once more
          pump();
        });
    }
  }

  return {
    add(item) {
      item.stale = true;
      item.visible = false;
      item.el.__lazy = item;
      observer.observe(item.el);
    },
    remove(item) {
      item.removed = true;
      pending.delete(item);
      observer.unobserve(item.el);
    },
    invalidate(item) {
      item.stale = true;
      ensure(item);
    },
    setActive(on) {
      active = on;
    },
    get idle() {
      return running === 0 && pending.size === 0;
    },
  };
}
