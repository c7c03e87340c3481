/**
 * Showing SVG plots made by our own generator (src/core/plots: experiment reports, the bias probe)
 * without injecting markup into the page: the SVG text becomes a data: URL for an <img>, where an
 * SVG can neither run scripts nor load anything (and the CSP allows data: images only). The text is
 * still checked first, as defence in depth and to show a clear message instead of a broken image:
 * only the elements our plots use, no event-handler attributes, no links, no external references,
 * no DTDs. Text labels (run names typed by users) are escaped by the generator; if one ever was
 * not, the check rejects the SVG rather than showing it. Pure; unit-tested.
 */

/** Elements our plots are made of (and a few harmless drawing ones). */
const ALLOWED = new Set([
  'svg',
  'g',
  'defs',
  'title',
  'desc',
  'rect',
  'line',
  'path',
  'circle',
  'ellipse',
  'polyline',
  'polygon',
  'text',
  'tspan',
  'clippath',
  'lineargradient',
  'radialgradient',
  'stop',
]);

/** Largest SVG shown (the plots are a few tens of kB). */
export const MAX_SVG_CHARS = 4_000_000;

/** Why an SVG text must not be shown, or null when it is fine. */
export function svgProblem(svg: unknown): string | null {
  if (typeof svg !== 'string' || svg.trim() === '') return 'no SVG';
  if (svg.length > MAX_SVG_CHARS) return `the SVG is larger than ${MAX_SVG_CHARS / 1e6} MB`;
  const body = svg.replace(/^\uFEFF/, '').trimStart().replace(/^<\?xml[^>]*\?>\s*/, '');
  if (!/^<svg[\s>]/.test(body)) return 'not an SVG document';
  if (/<!/.test(body)) return 'the SVG has a DTD, entity, CDATA or comment';
  if (/<\?/.test(body)) return 'the SVG has a processing instruction';
  for (const m of body.matchAll(/<\s*\/?\s*([^\s/>]+)/g)) {
    const name = m[1].toLowerCase();
    if (!ALLOWED.has(name)) return `the SVG has a <${m[1].slice(0, 40)}> element`;
  }
  // Attributes: no event handlers, no links or references to other documents (the SVG namespace
  // declaration is the one URL allowed).
  const rest = body.replace(/\sxmlns(?::[\w-]+)?\s*=\s*"http:\/\/www\.w3\.org\/(?:2000\/svg|1999\/xlink)"/g, '');
  if (/[\s"'/]on[a-z]+\s*=/i.test(rest)) return 'the SVG has an event-handler attribute';
  if (/\bhref\s*=/i.test(rest)) return 'the SVG has a link';
  if (/javascript:|data:|https?:|file:/i.test(rest)) return 'the SVG refers to another document';
  for (const m of rest.matchAll(/url\(\s*([^)]*)\)/gi)) if (!/^['"]?#[\w.-]+['"]?\s*$/.test(m[1])) return 'the SVG refers to something outside itself';
  return null;
}

/** A data: URL for an <img> showing the SVG, or null when it must not be shown (see svgProblem). */
export function svgDataUrl(svg: unknown): string | null {
  if (svgProblem(svg) !== null) return null;
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg as string)}`;
}

/** Width and height declared on the root element (for the <img>'s aspect ratio), or null. */
export function svgSize(svg: string): { width: number; height: number } | null {
  const root = /^[^]*?<svg\b([^>]*)>/.exec(svg)?.[1] ?? '';
  const w = /\swidth="(\d+(?:\.\d+)?)"/.exec(root)?.[1];
  const h = /\sheight="(\d+(?:\.\d+)?)"/.exec(root)?.[1];
  if (w && h) return { width: Number(w), height: Number(h) };
  const vb = /\sviewBox="\s*[-\d.]+[\s,]+[-\d.]+[\s,]+(\d+(?:\.\d+)?)[\s,]+(\d+(?:\.\d+)?)\s*"/.exec(root);
  return vb ? { width: Number(vb[1]), height: Number(vb[2]) } : null;
}
