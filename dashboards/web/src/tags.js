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
