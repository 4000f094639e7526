// Logged texts as Markdown, as TensorBoard shows them: GitHub-flavoured (tables, strikethrough, autolinks)
// with marked, then sanitised with DOMPurify before anything reaches the page.
//
// Anyone who can log to a run can log text, and everyone who opens the Texts tab renders it. Markdown
// lets raw HTML through, so marked's output is untrusted HTML: DOMPurify removes <script>, on*=
// handlers, javascript: (and other non-http) URLs, <style> (it would restyle the page), forms and
// frames. The result comes back as a DocumentFragment that the view appends as it is (no second parse
// of a cleaned string, where mutation XSS lives). Links open in a new tab without an opener.
//
// makeMarkdown takes the marked module and a DOMPurify instance, so the tests run it over jsdom.

const PURIFY = Object.freeze({
  USE_PROFILES: { html: true }, // no SVG or MathML in texts
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'base', 'meta', 'link', 'iframe', 'frame', 'object', 'embed'],
  FORBID_ATTR: ['style', 'formaction', 'action', 'ping', 'srcset'],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
});

/** render(text) -> a DocumentFragment of the text's Markdown, sanitised. */
export function makeMarkdown(marked, purify) {
  const parser = new marked.Marked({ gfm: true, breaks: false, async: false });
  purify.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeName === 'A' && node.hasAttribute('href')) {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    }
  });
  return (text) => purify.sanitize(parser.parse(String(text ?? '')), PURIFY);
}
