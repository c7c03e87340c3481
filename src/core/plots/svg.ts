/**
 * SVG string building for the plots, pure (no DOM): escaping, compact numbers, elements, the
 * colour-blind-safe palette (Okabe & Ito 2008) and marker shapes, text width estimates.
 */

/** Okabe-Ito colours, most distinct first; yellow last (weak on white). */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#000000', '#F0E442'] as const;

export const MARKERS = ['circle', 'square', 'triangle', 'diamond', 'triangle-down'] as const;
export type MarkerShape = (typeof MARKERS)[number] | 'none';

export const FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif";

/** Escapes text and attribute values for XML. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A coordinate with at most 2 decimals. */
export function n(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

export type Attrs = Record<string, string | number | undefined | null | false>;

function attrs(a: Attrs): string {
  let s = '';
  for (const [k, v] of Object.entries(a)) {
    if (v === undefined || v === null || v === false) continue;
    s += ` ${k}="${esc(typeof v === 'number' ? n(v) : v)}"`;
  }
  return s;
}

/** An element; `children` is raw (already escaped) markup, or omitted for an empty element. */
export function el(tag: string, a: Attrs, children?: string): string {
  return children === undefined ? `<${tag}${attrs(a)}/>` : `<${tag}${attrs(a)}>${children}</${tag}>`;
}

/** A text element; the content is escaped; '\n' starts a new line (tspans). */
export function text(x: number, y: number, content: string, a: Attrs = {}, lineHeight = 1.15): string {
  const lines = content.split('\n');
  if (lines.length === 1) return el('text', { x, y, ...a }, esc(content));
  const body = lines.map((l, i) => el('tspan', { x, dy: i === 0 ? undefined : `${lineHeight}em` }, esc(l))).join('');
  return el('text', { x, y, ...a }, body);
}

/** Approximate rendered width of a string (sans-serif, ~0.6 em per character, wider for capitals). */
export function textWidth(s: string, fontSize: number): number {
  let w = 0;
  for (const ch of s) w += /[A-Z@%MW]/.test(ch) ? 0.68 : /[ il.,:;'|!()[\]1]/.test(ch) ? 0.32 : 0.56;
  return w * fontSize;
}

/** Widest line of a possibly multi-line string. */
export function blockWidth(s: string, fontSize: number): number {
  return Math.max(0, ...s.split('\n').map((l) => textWidth(l, fontSize)));
}

/** A marker of `shape` centred at (x, y), `size` px across. */
export function marker(shape: MarkerShape, x: number, y: number, size: number, a: Attrs): string {
  const h = size / 2;
  switch (shape) {
    case 'none':
      return '';
    case 'circle':
      return el('circle', { cx: x, cy: y, r: h, ...a });
    case 'square':
      return el('rect', { x: x - h * 0.9, y: y - h * 0.9, width: size * 0.9, height: size * 0.9, ...a });
    case 'triangle':
      return el('path', { d: `M${n(x)},${n(y - h * 1.1)}L${n(x + h * 1.05)},${n(y + h * 0.8)}L${n(x - h * 1.05)},${n(y + h * 0.8)}Z`, ...a });
    case 'triangle-down':
      return el('path', { d: `M${n(x)},${n(y + h * 1.1)}L${n(x + h * 1.05)},${n(y - h * 0.8)}L${n(x - h * 1.05)},${n(y - h * 0.8)}Z`, ...a });
    case 'diamond':
      return el('path', { d: `M${n(x)},${n(y - h * 1.2)}L${n(x + h)},${n(y)}L${n(x)},${n(y + h * 1.2)}L${n(x - h)},${n(y)}Z`, ...a });
  }
}

/** Dash pattern for a dash option. */
export function dashArray(dash: boolean | string | undefined): string | undefined {
  if (!dash) return undefined;
  return dash === true ? '6 4' : dash;
}

/** A short deterministic id prefix from a string (FNV-1a), for clipPath ids unique per plot. */
export function hashId(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return `plot${(h >>> 0).toString(36)}`;
}

/** data: URI of an SVG string, for an <img src> in an offline HTML report. */
export function svgDataUri(svg: string): string {
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}
