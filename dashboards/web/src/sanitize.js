// Sanitising what a Visdom client logged as HTML (text, svg, matplot, audio, video panes).
//
// Anyone who can write to an env can log HTML, and everyone who opens the view renders it: a
// logged <script>, an on*= handler or a javascript: URL must not run in the viewer's browser.
// We use DOMPurify (an npm dependency, pinned), not a sandboxed iframe: it keeps the markup that
// Visdom users log (tables, <b>, inline SVG, <audio>/<video> with data: sources) in the page,
// sized by its content and readable by the page's tests, and it removes the active parts instead of
// relying on one attribute being right. What survives is put into a shadow root by the view, so a
// logged <style> cannot restyle the page.
//
// makeSanitizer takes the DOMPurify instance (the browser's, or one over jsdom in the tests).

const CONFIG = Object.freeze({
  // html and svg (matplot is SVG); MathML is off: it has been the source of DOMPurify bypasses
  USE_PROFILES: { html: true, svg: true, svgFilters: true },
  FORBID_TAGS: ['form', 'base', 'meta', 'link'],
  FORBID_ATTR: ['formaction', 'action', 'ping'],
  ALLOW_DATA_ATTR: false,
});

/**
 * sanitize(html) -> html safe to put into the page; links open in a new tab without an opener.
 * sanitize.fragment(html) -> the same as a DocumentFragment, which the view appends as it is (no
 * second parse of the cleaned string, which is where mutation XSS lives).
 */
export function makeSanitizer(purify) {
  purify.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeName === 'A' && node.hasAttribute('href')) {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    }
  });
  const sanitize = (html) => purify.sanitize(String(html ?? ''), CONFIG);
  sanitize.fragment = (html) => purify.sanitize(String(html ?? ''), { ...CONFIG, RETURN_DOM_FRAGMENT: true });
  return sanitize;
}

/** An image source that cannot run anything: a data:image URL, or a same-origin path. */
export function safeImageSrc(src) {
  const s = String(src ?? '').trim();
  if (/^data:image\/[a-z0-9.+-]+[;,]/i.test(s)) return s;
  if (s.startsWith('/') && !s.startsWith('//')) return s;
  return '';
}
