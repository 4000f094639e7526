// Tag filtering and grouping by prefix (pure, no DOM).

/** A predicate for the tag filter box: a case-insensitive regex, or a substring when not a valid regex. */
export function tagMatcher(text) {
  const t = String(text || '').trim();
  if (!t) return () => true;
  try {
    const re = new RegExp(t, 'i');
    return (tag) => re.test(tag);
  } catch {
    const s = t.toLowerCase();
    return (tag) => tag.toLowerCase().includes(s);
  }
}

/** The group of a tag: the part before the first '/', or the whole tag when it has none. */
export function tagPrefix(tag) {
  const i = tag.indexOf('/');
  return i < 0 ? tag : tag.slice(0, i);
}

/** tags -> [[prefix, [tags sorted]], ...] sorted by prefix. */
export function groupByPrefix(tags) {
  const groups = new Map();
  for (const tag of [...tags].sort()) {
    const p = tagPrefix(tag);
    if (!groups.has(p)) groups.set(p, []);
    groups.get(p).push(tag);
  }
  return [...groups.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/**
 * How a tag is shown: its display name when its writer gave one (SummaryWriter's display_name), with
 * the tag itself in the tooltip, and its description (summary_description). info: /api/tag_info's tags.
 */
export function tagLabel(tag, info) {
  const it = (info && info[tag]) || {};
  const name = (it.display_name || '').trim();
  const description = (it.description || '').trim();
  const text = name || tag;
  const title = [name && name !== tag ? `${name} (tag: ${tag})` : tag, description].filter(Boolean).join('\n');
  return { text, title, description };
}

/** A multiline chart's regex as TensorBoard applies it (Python's re.match: anchored at the tag's start);
 * a regex JavaScript cannot read matches its text exactly. */
export function layoutMatcher(regex) {
  try {
    const re = new RegExp(`^(?:${regex})`);
    return (tag) => re.test(tag);
  } catch {
    return (tag) => tag === regex;
  }
}

/**
 * Custom-scalar layouts (add_custom_scalars; /api/custom_scalars's `layouts`) over the scalar tags
 * shown -> [{title, closed, charts: [{key, title, kind: 'multiline', tags} | {key, title, kind:
 * 'margin', series: [{value, lower, upper}]}]}]. Several runs' layouts merge: categories by title,
 * in the order first seen; a chart repeated with the same title and definition is drawn once.
 * A multiline chart holds the tags that match any of its regexes; a margin series, the tags that exist.
 */
export function layoutCharts(layouts, tags) {
  const shown = new Set(tags);
  const categories = new Map();
  const seen = new Set();
  for (const { layout } of layouts || []) {
    for (const category of (layout && layout.categories) || []) {
      const title = String(category.title ?? '');
      if (!categories.has(title)) categories.set(title, { title, closed: !!category.closed, charts: [] });
      const out = categories.get(title);
      for (const chart of category.charts || []) {
        const chartTitle = String(chart.title ?? '');
        const key = `${title}\n${chartTitle}\n${JSON.stringify(chart.multiline || chart.margin || null)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        if (chart.multiline) {
          const matchers = (chart.multiline.tags || []).map(layoutMatcher);
          const matched = [...shown].filter((tag) => matchers.some((m) => m(tag))).sort();
          out.charts.push({ key, title: chartTitle, kind: 'multiline', tags: matched });
        } else if (chart.margin) {
          const series = (chart.margin.series || []).filter((s) => shown.has(s.value));
          out.charts.push({ key, title: chartTitle, kind: 'margin', series });
        }
      }
    }
  }
  return [...categories.values()].filter((c) => c.charts.length);
}
