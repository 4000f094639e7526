// The Scalars tab: controls, the chart grid grouped by tag prefix (collapsible), and the
// fetching of chart data: one request per tag for all displayed runs (/api/scalars, or
// /api/scalar_groups when grouped by a config key: the server aggregates each group), only
// for charts on screen (IntersectionObserver), a few at a time, top charts first.
//
// Custom-scalar layouts (add_custom_scalars; GET /api/custom_scalars) come first: each category a
// collapsible group, each chart one ScalarChart over several tags: a multiline chart draws every tag
// matching its regexes, a margin chart a value with its lower-upper band (drawn as the envelope). Their
// points come from /api/scalars, one request per tag; they are drawn per run even when grouped.
// A tag's display name (/api/tag_info) is its chart's title, with the tag and description in the tooltip.

import { alignTables } from './align.js';
import { getScalarGroups, getScalars, isAbort } from './api.js';
import { ScalarChart } from './charts.js';
import { PALETTE } from './colors.js';
import { counters } from './debug.js';
import { debounce, h } from './dom.js';
import { loadMarkdown } from './mdload.js';
import { forgetTagInfo, getCustomScalars, tagInfoFor } from './prcurvesapi.js';
import { groupByPrefix, layoutCharts, tagLabel, tagMatcher } from './tags.js';

const PARALLEL = 4;

export function createScalarsView(root, store) {
  let ctx = { runs: [], runIds: [], colors: new Map(), tags: { scalars: [] }, configKeys: [] };
  const charts = new Map(); // tag -> ScalarChart
  const collapsed = new Set();
  let layouts = []; // the displayed runs' custom-scalar layouts
  let layoutsFor = null;
  let info = {}; // tag -> {display_name, description}
  const pending = new Set();
  let running = 0;
  let active = false;

  // ---- controls
  const st = store.get();
  const tagFilter = h('input', {
    type: 'search',
    class: 'tag-filter',
    placeholder: 'Filter tags (regex)',
    value: st.tags,
    dataset: { testid: 'tag-filter' },
    oninput: debounce(() => store.set({ tags: tagFilter.value }), 200),
  });
  const xAxis = h(
    'select',
    { dataset: { testid: 'x-axis' }, onchange: () => store.set({ x: xAxis.value }) },
    h('option', { value: 'step' }, 'Step'),
    h('option', { value: 'relative' }, 'Relative time'),
    h('option', { value: 'wall' }, 'Wall time'),
  );
  const logY = h('input', { type: 'checkbox', dataset: { testid: 'log-y' }, onchange: () => store.set({ logy: logY.checked }) });
  const smoothing = h('input', {
    type: 'range',
    min: '0',
    max: '0.99',
    step: '0.01',
    dataset: { testid: 'smoothing' },
    oninput: () => {
      smoothingOut.textContent = Number(smoothing.value).toFixed(2);
      setSmoothing(Number(smoothing.value));
    },
  });
  const smoothingOut = h('output', { class: 'smoothing-value' });
  const setSmoothing = debounce((v) => store.set({ smoothing: v }), 60);
  const envelope = h('input', {
    type: 'checkbox',
    dataset: { testid: 'envelope' },
    onchange: () => store.set({ envelope: envelope.checked }),
  });
  const groupBy = h('select', { dataset: { testid: 'group-by' }, onchange: () => store.set({ group: groupBy.value }) });
  const band = h(
    'select',
    { dataset: { testid: 'group-band' }, title: 'Band around each group mean', onchange: () => store.set({ band: band.value }) },
    h('option', { value: 'minmax' }, 'min–max'),
    h('option', { value: 'std' }, '± std'),
  );
  const bandWrap = h('span', { class: 'ctl' }, band);
  const tagCount = h('span', { class: 'muted small' });
  const expandAll = h('button', { class: 'link', onclick: () => { collapsed.clear(); render(); } }, 'expand all');
  const collapseAll = h('button', {
    class: 'link',
    onclick: () => {
      for (const [p] of groupByPrefix(visibleTags())) collapsed.add(p);
      for (const key of seenCategories) collapsed.add(key);
      render();
    },
  }, 'collapse all');

  const toolbar = h(
    'div',
    { class: 'toolbar' },
    tagFilter,
    h('label', { class: 'ctl' }, 'X ', xAxis),
    h('label', { class: 'ctl', title: 'Logarithmic y axis (values <= 0 are not drawn)' }, logY, ' log y'),
    h('label', { class: 'ctl', title: 'EMA smoothing weight, debiased as in TensorBoard' }, 'Smoothing ', smoothing, smoothingOut),
    h('label', { class: 'ctl', title: 'Min-max envelope of each run per pixel column' }, envelope, ' envelope'),
    h('label', { class: 'ctl' }, 'Group by ', groupBy, bandWrap),
  );
  const grid = h('div', { class: 'chart-groups' });
  const empty = h('div', { class: 'empty' });
  const gridTools = h('div', { class: 'grid-tools' }, tagCount, expandAll, collapseAll);
  const scroller = h('div', { class: 'view-scroll' }, gridTools, grid, empty);
  root.append(toolbar, scroller);

  function syncControls(s) {
    if (document.activeElement !== tagFilter && tagFilter.value !== s.tags) tagFilter.value = s.tags;
    xAxis.value = s.x;
    logY.checked = s.logy;
    if (Number(smoothing.value) !== s.smoothing && document.activeElement !== smoothing) smoothing.value = String(s.smoothing);
    smoothingOut.textContent = s.smoothing.toFixed(2);
    envelope.checked = s.envelope;
    envelope.disabled = !!s.group;
    band.value = s.band;
    bandWrap.hidden = !s.group;
  }

  function syncGroupOptions() {
    const s = store.get();
    const keys = [...ctx.configKeys];
    if (s.group && !keys.includes(s.group)) keys.push(s.group);
    groupBy.replaceChildren(h('option', { value: '' }, '(none)'), ...keys.map((k) => h('option', { value: k }, k)));
    groupBy.value = s.group;
  }

  // ---- visibility and fetching
  const observer = new IntersectionObserver(
    (entries) => {
      for (const e of entries) {
        const chart = e.target.__chart;
        if (!chart) continue;
        chart.visible = e.isIntersecting;
        if (chart.visible) ensure(chart);
      }
    },
    { root: scroller, rootMargin: '100px 0px' },
  );

  // the query of a chart; fetchKey adds its generation (bumped by live updates)
  const queryKey = (chart) => {
    const s = store.get();
    const bands = !s.group && s.envelope; // the envelope is sent only when it is drawn
    if (chart.custom) return JSON.stringify([[...ctx.runIds].sort(), chart.tag, customTags(chart.custom), s.x, chart.zoom, chart.fetchWidth || chart.width()]);
    return JSON.stringify([[...ctx.runIds].sort(), chart.tag, s.x, s.group, bands, chart.zoom, chart.fetchWidth || chart.width()]);
  };
  const fetchKey = (chart) => `${queryKey(chart)}#${chart.gen || 0}`;

  function drawOptions() {
    const s = store.get();
    return { runs: ctx.runs, colors: ctx.colors, smoothing: s.smoothing, logy: s.logy, envelope: s.envelope, band: s.band, x: s.x };
  }
  // the group key is not here: a new key is a new query (queryKey), drawn when it is back
  const drawSig = (o) => JSON.stringify([o.runs.map((r) => [r.run_id, r.name]), [...o.colors], o.smoothing, o.logy, o.envelope, o.band, o.x]);

  function ensure(chart) {
    if (!active || !chart.visible) return;
    if (chart.fetchedKey === fetchKey(chart)) {
      draw(chart);
      return;
    }
    // the same query already on its way: a newer generation is fetched when it is back
    // (so a slow server is not starved by live updates that abort every request)
    if (chart.inflight && chart.inflight.query === queryKey(chart)) return;
    pending.add(chart);
    pump();
  }

  function draw(chart) {
    const o = chart.custom ? customOptions(chart, drawOptions()) : drawOptions();
    const sig = drawSig(o);
    if (chart.drawnSig === sig) return;
    chart.drawnSig = sig;
    if (chart.draw(o)) counters.chartsDrawn++;
    noteFirstBatch();
  }

  /** The first batch of charts on screen has drawn: nothing is waiting or loading any more. */
  function noteFirstBatch() {
    if (counters.firstChartsAt === null && running === 0 && pending.size === 0 && counters.chartsDrawn > 0) {
      counters.firstChartsAt = performance.now();
    }
  }

  function pump() {
    while (running < PARALLEL && pending.size) {
      // the top-most waiting chart first
      let next = null;
      for (const c of pending) if (!next || c.order < next.order) next = c;
      pending.delete(next);
      if (!next.visible || !charts.has(next.tag)) continue;
      running++;
      load(next).finally(() => {
        running--;
        pump();
        noteFirstBatch();
      });
    }
  }

  async function load(chart) {
    if (chart.inflight) {
      chart.inflight.controller.abort();
      chart.inflight = null;
    }
    chart.fetchWidth = chart.width();
    const key = fetchKey(chart);
    if (!ctx.runIds.length) {
      chart.resp = { series: [] };
      chart.fetchedKey = key;
      chart.drawnSig = null;
      draw(chart);
      return;
    }
    const controller = new AbortController();
    const query = queryKey(chart);
    const inflight = (chart.inflight = { controller, query });
    // a spinner for new queries; live refreshes of what is on screen go unnoticed
    if (chart.fetchedQuery !== query) chart.setLoading(true);
    const s = store.get();
    const q = { runs: [...ctx.runIds].sort(), tag: chart.tag, x: s.x, xMin: chart.zoom?.[0], xMax: chart.zoom?.[1], width: chart.fetchWidth, bands: !s.group && s.envelope };
    try {
      const opts = { signal: controller.signal };
      if (chart.custom) {
        const answers = await Promise.all(customTags(chart.custom).map((tag) => getScalars({ ...q, tag, bands: false }, opts)));
        if (controller.signal.aborted) return;
        chart.resp = customResponse(chart.custom, answers);
        chart.fetchedKey = key;
        chart.fetchedQuery = query;
        chart.drawnSig = null;
        draw(chart);
        return;
      }
      const resp = s.group ? await getScalarGroups({ ...q, groupBy: s.group }, opts) : await getScalars(q, opts);
      if (controller.signal.aborted) return;
      chart.resp = resp;
      chart.fetchedKey = key;
      chart.fetchedQuery = query;
      chart.drawnSig = null;
      draw(chart);
    } catch (e) {
      if (isAbort(e)) return;
      chart.fetchedKey = key; // do not retry in a loop; the banner shows the error
      chart.showMessage(`could not load: ${e.message}`);
    } finally {
      if (chart.inflight === inflight) {
        chart.inflight = null;
        chart.setLoading(false);
        if (!controller.signal.aborted && chart.fetchedKey !== fetchKey(chart)) ensure(chart);
      }
    }
  }

  // ---- custom-scalar charts: several tags in one chart
  const SEP = '\u0001'; // joins a run id and a tag into one line's key

  /** The tags a custom chart reads, in order: a multiline chart's matches, a margin's value, lower, upper. */
  function customTags(spec) {
    if (spec.kind === 'multiline') return spec.tags;
    const shown = new Set(ctx.tags.scalars || []);
    return [...new Set(spec.series.flatMap((m) => [m.value, m.lower, m.upper]).filter((t) => shown.has(t)))];
  }

  /** The /api/scalars answers of a custom chart's tags -> one answer whose series are its lines. */
  function customResponse(spec, answers) {
    const byTag = new Map(customTags(spec).map((tag, i) => [tag, new Map((answers[i].series || []).map((x) => [x.run_id, x]))]));
    const series = [];
    if (spec.kind === 'multiline') {
      for (const tag of spec.tags) for (const x of byTag.get(tag).values()) series.push({ ...x, run_id: `${x.run_id}${SEP}${tag}`, tag });
      return { series };
    }
    for (const m of spec.series) {
      for (const [runId, value] of byTag.get(m.value) || []) {
        const lower = byTag.get(m.lower)?.get(runId);
        const upper = byTag.get(m.upper)?.get(runId);
        const line = { ...value, run_id: `${runId}${SEP}${m.value}`, tag: m.value };
        if (lower && upper) {
          const band = alignTables([{ x: lower.x, ys: [lower.y] }, { x: upper.x, ys: [upper.y] }]);
          Object.assign(line, { band_x: band.x, band_min: band.ys[0], band_max: band.ys[1] });
        }
        series.push(line);
      }
    }
    return { series };
  }

  /** Draw options for a custom chart: its lines as the "runs", each with its colour and name. */
  function customOptions(chart, o) {
    const lines = (chart.resp?.series || []).map((x) => x.run_id);
    const tags = [...new Set((chart.resp?.series || []).map((x) => x.tag))];
    const names = new Map(ctx.runs.map((r) => [r.run_id, r.name || r.run_id]));
    const runs = [];
    const colors = new Map();
    for (const key of lines) {
      const [runId, tag] = key.split(SEP);
      const run = ctx.runs.findIndex((r) => r.run_id === runId);
      if (run < 0) continue;
      const tagName = tagLabel(tag, info).text;
      runs.push({ run_id: key, name: ctx.runs.length > 1 ? `${names.get(runId)} · ${tagName}` : tagName });
      // one tag: the run's colour; else a colour per line (a run's lines would look alike)
      const t = tags.indexOf(tag);
      colors.set(key, tags.length === 1 ? ctx.colors.get(runId) || '#444' : PALETTE[(t * ctx.runs.length + run) % PALETTE.length]);
    }
    return { ...o, runs, colors, envelope: chart.custom.kind === 'margin' };
  }

  /** The charts of the custom-scalar layouts, as sections before the per-tag ones. */
  function customSections(keep, orderStart) {
    const match = tagMatcher(store.get().tags);
    let order = orderStart;
    const sections = [];
    for (const category of layoutCharts(layouts, ctx.tags.scalars || [])) {
      const groupKey = `custom:${category.title}`;
      if (category.closed && !seenCategories.has(groupKey)) collapsed.add(groupKey);
      seenCategories.add(groupKey);
      const isCollapsed = collapsed.has(groupKey);
      const body = h('div', { class: 'chart-grid', hidden: isCollapsed });
      let count = 0;
      for (const spec of category.charts) {
        if (!customTags(spec).length || !(match(spec.title) || customTags(spec).some(match))) continue;
        const key = `custom:${spec.key}`;
        let chart = charts.get(key);
        if (!chart) {
          chart = new ScalarChart(spec.title, { onZoom });
          chart.tag = key;
          chart.el.dataset.testid = 'custom-chart';
          chart.el.dataset.kind = spec.kind;
          charts.set(key, chart);
          observer.observe(chart.el);
        }
        chart.custom = spec;
        chart.titleEl.title = `${spec.kind === 'margin' ? 'margin chart' : 'multiline chart'}: ${customTags(spec).join(', ')}`;
        chart.order = order++;
        keep.add(key);
        body.append(chart.el);
        count++;
      }
      if (!count) continue;
      const head = h(
        'button',
        {
          class: `group-head custom-head${isCollapsed ? ' collapsed' : ''}`,
          dataset: { testid: 'custom-group', prefix: category.title },
          'aria-expanded': String(!isCollapsed),
          title: 'custom-scalar layout (add_custom_scalars)',
          onclick: () => {
            if (collapsed.has(groupKey)) collapsed.delete(groupKey);
            else collapsed.add(groupKey);
            render();
          },
        },
        h('span', { class: 'caret' }, '▾'),
        h('span', { class: 'group-name' }, category.title),
        h('span', { class: 'group-count' }, String(count)),
      );
      sections.push(h('section', { class: 'tag-group custom-group' }, head, body));
    }
    return [sections, order];
  }
  const seenCategories = new Set(); // a layout's `closed` category starts collapsed, once

  async function loadLayouts() {
    const key = [...ctx.runIds].sort().join(',');
    if (key === layoutsFor) return;
    layoutsFor = key;
    if (!key) {
      layouts = [];
      return;
    }
    try {
      const resp = await getCustomScalars(ctx.runIds);
      if (layoutsFor !== key) return;
      layouts = resp.layouts || [];
    } catch {
      layouts = []; // the banner says why; the per-tag charts still show
    }
    if (active) render();
  }

  async function loadInfo() {
    const found = await tagInfoFor(ctx.runIds);
    if (JSON.stringify(found) === JSON.stringify(info)) return;
    info = found;
    if (active) render();
  }

  function labelChart(chart) {
    const l = tagLabel(chart.tag, info);
    chart.titleEl.textContent = l.text;
    chart.titleEl.title = l.title;
    if (!chart.descEl && l.description) {
      chart.descEl = h('div', { class: 'tag-description' });
      chart.el.insertBefore(chart.descEl, chart.el.children[1]);
    }
    if (chart.descEl && chart.descEl.dataset.source !== l.description) {
      // summary_description is Markdown, as TensorBoard shows it; sanitised like logged texts
      const descEl = chart.descEl;
      descEl.dataset.source = l.description;
      descEl.textContent = l.description;
      descEl.hidden = !l.description;
      if (l.description) {
        loadMarkdown().then((render) => {
          if (descEl.dataset.source === l.description) descEl.replaceChildren(render(l.description));
        });
      }
    }
  }

  function onZoom(chart) {
    chart.fetchedKey = null;
    pending.add(chart);
    pump();
  }

  // ---- layout
  function visibleTags() {
    const match = tagMatcher(store.get().tags);
    return (ctx.tags.scalars || []).filter(match);
  }

  function render() {
    const s = store.get();
    const all = ctx.tags.scalars || [];
    const tags = visibleTags();
    tagCount.textContent = s.tags ? `${tags.length} of ${all.length} tags` : `${all.length} tag${all.length === 1 ? '' : 's'}`;
    if (!ctx.listed) empty.textContent = 'No runs to show yet.';
    else if (!ctx.runIds.length) empty.textContent = 'Select runs in the table to plot them.';
    else if (ctx.tags.error) empty.textContent = `Could not load the tags: ${ctx.tags.error}`;
    else if (!all.length) empty.textContent = 'The selected runs have logged no scalars yet.';
    else if (!tags.length) empty.textContent = `No tag matches "${s.tags}".`;
    empty.hidden = tags.length > 0 && ctx.runIds.length > 0;
    gridTools.hidden = !empty.hidden;

    const keep = new Set(tags);
    const [sections, firstOrder] = customSections(keep, 0);
    for (const [tag, chart] of charts) {
      if (!keep.has(tag)) {
        observer.unobserve(chart.el);
        pending.delete(chart);
        if (chart.inflight) chart.inflight.controller.abort();
        chart.destroy();
        charts.delete(tag);
      }
    }
    let order = firstOrder;
    for (const [prefix, group] of groupByPrefix(tags)) {
      const isCollapsed = collapsed.has(prefix);
      const body = h('div', { class: 'chart-grid', hidden: isCollapsed });
      for (const tag of group) {
        let chart = charts.get(tag);
        if (!chart) {
          chart = new ScalarChart(tag, { onZoom });
          charts.set(tag, chart);
          observer.observe(chart.el);
        }
        chart.order = order++;
        labelChart(chart);
        body.append(chart.el);
      }
      const head = h(
        'button',
        {
          class: `group-head${isCollapsed ? ' collapsed' : ''}`,
          dataset: { testid: 'tag-group', prefix },
          'aria-expanded': String(!isCollapsed),
          onclick: () => {
            if (collapsed.has(prefix)) collapsed.delete(prefix);
            else collapsed.add(prefix);
            render();
          },
        },
        h('span', { class: 'caret' }, '▾'),
        h('span', { class: 'group-name' }, prefix),
        h('span', { class: 'group-count' }, String(group.length)),
      );
      sections.push(h('section', { class: 'tag-group' }, head, body));
    }
    grid.replaceChildren(...sections);
    // charts already on screen: fetch or redraw for the new context
    for (const chart of charts.values()) ensure(chart);
  }

  // ---- resize: keep the plots as wide as their cards; ask again when much wider or narrower
  const resizeObserver = new ResizeObserver(
    debounce(() => {
      for (const chart of charts.values()) {
        if (!chart.u) continue;
        const w = chart.width();
        if (w !== chart.u.width) chart.u.setSize({ width: w, height: chart.u.height });
        if (chart.fetchWidth && Math.abs(w - chart.fetchWidth) / chart.fetchWidth > 0.2) {
          chart.fetchWidth = 0;
          chart.fetchedKey = null;
          ensure(chart);
        }
      }
    }, 150),
  );
  resizeObserver.observe(grid);

  store.subscribe((s, changed) => {
    syncControls(s);
    if (changed.has('group')) syncGroupOptions();
    if (changed.has('tags')) render();
    else if (['x', 'smoothing', 'logy', 'envelope', 'group', 'band', 'project'].some((k) => changed.has(k))) {
      if (changed.has('x') || changed.has('project')) {
        for (const c of charts.values()) {
          c.zoom = null;
          c.resetBtn.hidden = true;
        }
      }
      for (const c of charts.values()) {
        if (c.visible) ensure(c);
      }
    }
  });
  syncControls(store.get());
  syncGroupOptions();

  return {
    setContext(next) {
      const keysChanged = next.configKeys.join('\n') !== ctx.configKeys.join('\n');
      ctx = next;
      if (keysChanged) syncGroupOptions();
      if (active) {
        loadLayouts();
        loadInfo();
        render();
      }
    },
    show() {
      active = true;
      loadLayouts();
      loadInfo();
      render();
    },
    hide() {
      active = false;
    },
    /** Live data arrived for some displayed runs: refetch the charts on screen, keep their zoom. */
    refresh() {
      forgetTagInfo();
      layoutsFor = null;
      if (active) {
        loadLayouts();
        loadInfo();
      }
      for (const c of charts.values()) {
        c.gen = (c.gen || 0) + 1;
        if (active && c.visible) ensure(c);
      }
    },
  };
}
