// The Markdown renderer (markdown.js: marked, then DOMPurify), loaded with the first text that needs it
// (the Texts tab's texts, a tag's description on the Scalars tab), not with the page.

let markdown = null;

/** A promise of render(text) -> a sanitised DocumentFragment. */
export const loadMarkdown = () =>
  (markdown ||= Promise.all([import('marked'), import('dompurify'), import('./markdown.js')]).then(([marked, purify, md]) =>
    md.makeMarkdown(marked, purify.default(window)),
  ));
