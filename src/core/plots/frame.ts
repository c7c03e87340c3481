/**
 * The frame every plot shares: layout of title, axes, tick labels, axis labels and legend around a
 * plot area, grid lines, reference lines, clipping, and the <svg> document. Pure string building.
 */
import { linearScale, logScale, type Scale } from './scale';
import { blockWidth, dashArray, el, esc, FONT_FAMILY, hashId, marker, n, text, textWidth, type MarkerShape } from './svg';

export type LegendPosition = 'right' | 'bottom' | 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right' | 'none';

/** A horizontal (y) or vertical (x) reference line, e.g. chance AUROC 0.5. */
export interface RefLine {
  value: number;
  label?: string;
  color?: string;
  dash?: boolean | string;
}

export interface CommonOptions {
  title?: string;
  subtitle?: string;
  xLabel?: string;
  yLabel?: string;
  /** Total size in px (default 640 x 420). */
  width?: number;
  height?: number;
  /** Default depends on the plot. */
  legend?: LegendPosition;
  /** Background fill (default white; 'none' for transparent). */
  background?: string;
  /** Horizontal reference lines at y values. */
  hlines?: RefLine[];
  /** Vertical reference lines at x values. */
  vlines?: RefLine[];
  /** Prefix of element ids (clip path), unique per document; default a hash of the plot. */
  id?: string;
  /** Base font size for tick labels (default 11). */
  fontSize?: number;
}

export interface LegendEntry {
  label: string;
  color: string;
  kind: 'line' | 'bar';
  marker?: MarkerShape;
  dash?: boolean | string;
  /** Draw a shaded band behind the line swatch. */
  band?: boolean;
}

export interface Tick {
  value: number;
  label: string;
}

export interface AxisSpec {
  domain: [number, number];
  log?: boolean;
  ticks: Tick[];
  minorTicks?: number[];
  grid?: boolean;
}

export interface PlotArea {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

const TICK = 5;
const LEGEND_ROW = 19;
const SWATCH = 28;

function legendSize(entries: LegendEntry[], fs: number): { w: number; h: number } {
  const w = SWATCH + 8 + Math.max(0, ...entries.map((e) => blockWidth(e.label, fs))) + 16;
  return { w, h: entries.length * LEGEND_ROW + 10 };
}

function legendSwatch(e: LegendEntry, x: number, y: number): string {
  if (e.kind === 'bar') return el('rect', { x: x + 6, y: y - 6, width: 16, height: 12, fill: e.color, rx: 1.5 });
  let s = '';
  if (e.band) s += el('rect', { x, y: y - 6, width: SWATCH - 4, height: 12, fill: e.color, 'fill-opacity': 0.2 });
  s += el('line', { x1: x, y1: y, x2: x + SWATCH - 4, y2: y, stroke: e.color, 'stroke-width': 2.2, 'stroke-dasharray': dashArray(e.dash) });
  if (e.marker && e.marker !== 'none') s += marker(e.marker, x + (SWATCH - 4) / 2, y, 7.5, { fill: e.color, stroke: '#fff', 'stroke-width': 1 });
  return s;
}

function renderLegend(entries: LegendEntry[], x: number, y: number, fs: number, boxed: boolean): string {
  const { w, h } = legendSize(entries, fs);
  let s = '';
  if (boxed) s += el('rect', { x, y, width: w, height: h, fill: '#fff', 'fill-opacity': 0.88, stroke: '#cfcfcf', rx: 3 });
  entries.forEach((e, i) => {
    const cy = y + 5 + LEGEND_ROW * i + LEGEND_ROW / 2;
    s += el('g', { class: 'legend-entry' }, legendSwatch(e, x + 8, cy) + text(x + 8 + SWATCH + 4, cy, e.label, { 'dominant-baseline': 'central', 'font-size': fs }));
  });
  return el('g', { class: 'legend' }, s);
}

/** Bottom legend laid out in rows of entries; returns markup and height. */
function renderBottomLegend(entries: LegendEntry[], left: number, maxWidth: number, y: number, fs: number): { svg: string; h: number } {
  let x = left;
  let row = 0;
  let s = '';
  for (const e of entries) {
    const w = SWATCH + 8 + textWidth(e.label, fs) + 18;
    if (x + w > left + maxWidth && x > left) {
      x = left;
      row++;
    }
    const cy = y + row * LEGEND_ROW + LEGEND_ROW / 2;
    s += el('g', { class: 'legend-entry' }, legendSwatch(e, x, cy) + text(x + SWATCH + 4, cy, e.label, { 'dominant-baseline': 'central', 'font-size': fs }));
    x += w;
  }
  return { svg: el('g', { class: 'legend' }, s), h: (row + 1) * LEGEND_ROW };
}

function bottomLegendRows(entries: LegendEntry[], maxWidth: number, fs: number): number {
  let x = 0;
  let rows = 1;
  for (const e of entries) {
    const w = SWATCH + 8 + textWidth(e.label, fs) + 18;
    if (x + w > maxWidth && x > 0) {
      x = 0;
      rows++;
    }
    x += w;
  }
  return rows;
}

export interface FrameResult {
  svg: string;
  area: PlotArea;
}

/**
 * Lays out and renders a plot: `draw` receives the x and y scales and the plot area and returns
 * the data markup, which is clipped to the plot area (with a few pixels of slack for markers).
 */
export function renderFrame(
  kind: string,
  opts: CommonOptions,
  x: AxisSpec,
  y: AxisSpec,
  legend: LegendEntry[],
  defaultLegend: LegendPosition,
  draw: (sx: Scale, sy: Scale, area: PlotArea) => string,
  frameOpts: { square?: boolean; xTickRotate?: boolean } = {},
): string {
  const width = opts.width ?? 640;
  const height = opts.height ?? 420;
  if (!(width >= 120 && height >= 100)) throw new Error(`${kind}: width and height must be at least 120 x 100, got ${width} x ${height}`);
  const fs = opts.fontSize ?? 11;
  const labelFs = fs + 1.5;
  const titleFs = fs + 4;
  const position = legend.length ? (opts.legend ?? defaultLegend) : 'none';
  const id = opts.id ?? hashId(`${kind}|${opts.title ?? ''}|${legend.map((l) => l.label).join('|')}|${x.domain}|${y.domain}`);

  // Margins
  // A title wider than the plot wraps at word boundaries.
  const title = opts.title ? wrapWords(opts.title, width - 24, titleFs) : '';
  const titleLines = title ? title.split('\n').length : 0;
  let top = 12;
  if (title) top += titleFs + 8 + (titleLines - 1) * titleFs * 1.15;
  if (opts.subtitle) top += fs + 6;
  top += 6;
  const yTickW = Math.max(0, ...y.ticks.map((t) => textWidth(t.label, fs)));
  let left = 10 + (opts.yLabel ? labelFs + 10 : 0) + yTickW + TICK + 5;
  const xTickLines = Math.max(1, ...x.ticks.map((t) => t.label.split('\n').length));
  let bottom = 8 + TICK + 4 + xTickLines * (fs + 3) + (opts.xLabel ? labelFs + 10 : 0);
  let right = 18;
  const lsize = legendSize(legend, fs);
  if (position === 'right') right = lsize.w + 26;
  let legendRows = 0;
  if (position === 'bottom') {
    legendRows = bottomLegendRows(legend, width - left - right, fs);
    bottom += legendRows * LEGEND_ROW + 8;
  }
  // Last x tick label may overhang the plot area.
  const lastX = x.ticks.length ? textWidth(x.ticks[x.ticks.length - 1].label, fs) / 2 : 0;
  right = Math.max(right, lastX + 6);
  let area: PlotArea = { left, top, right: width - right, bottom: height - bottom };
  if (area.right - area.left < 40 || area.bottom - area.top < 40) throw new Error(`${kind}: ${width} x ${height} px is too small for the labels and legend`);
  if (frameOpts.square) {
    const side = Math.min(area.right - area.left, area.bottom - area.top);
    const extra = area.right - area.left - side;
    left += extra / 2;
    area = { left, top, right: left + side, bottom: top + side };
  }
  const sx = x.log ? logScale(x.domain, [area.left, area.right]) : linearScale(x.domain, [area.left, area.right]);
  const sy = y.log ? logScale(y.domain, [area.bottom, area.top]) : linearScale(y.domain, [area.bottom, area.top]);

  let s = '';
  if ((opts.background ?? '#fff') !== 'none') s += el('rect', { class: 'background', x: 0, y: 0, width, height, fill: opts.background ?? '#fff' });
  if (title) s += text(width / 2, 12 + titleFs, title, { class: 'title', 'text-anchor': 'middle', 'font-size': titleFs, 'font-weight': 600 });
  if (opts.subtitle)
    s += text(width / 2, 12 + (title ? titleFs + 8 + (titleLines - 1) * titleFs * 1.15 : 0) + fs + 2, opts.subtitle, { class: 'subtitle', 'text-anchor': 'middle', 'font-size': fs, fill: '#555' });

  // Grid
  let grid = '';
  const inX = (v: number) => v >= Math.min(...x.domain) - 1e-12 && v <= Math.max(...x.domain) + 1e-12;
  const inY = (v: number) => v >= Math.min(...y.domain) - 1e-12 && v <= Math.max(...y.domain) + 1e-12;
  if (y.grid !== false) for (const t of y.ticks) if (inY(t.value)) grid += el('line', { x1: area.left, x2: area.right, y1: sy(t.value), y2: sy(t.value) });
  if (x.grid !== false) {
    for (const t of x.ticks) if (inX(t.value)) grid += el('line', { x1: sx(t.value), x2: sx(t.value), y1: area.top, y2: area.bottom });
    for (const v of x.minorTicks ?? []) if (inX(v)) grid += el('line', { x1: sx(v), x2: sx(v), y1: area.top, y2: area.bottom, 'stroke-opacity': 0.45 });
  }
  s += el('g', { class: 'grid', stroke: '#e6e6e6', 'stroke-width': 1 }, grid);

  // Reference lines
  let refs = '';
  for (const r of opts.hlines ?? []) {
    if (!inY(r.value)) continue;
    const yy = sy(r.value);
    refs += el('line', { x1: area.left, x2: area.right, y1: yy, y2: yy, stroke: r.color ?? '#777', 'stroke-width': 1.2, 'stroke-dasharray': dashArray(r.dash ?? true) });
    if (r.label) refs += text(area.right - 4, yy - 4, r.label, { 'text-anchor': 'end', 'font-size': fs - 1, fill: r.color ?? '#555' });
  }
  for (const r of opts.vlines ?? []) {
    if (!inX(r.value)) continue;
    const xx = sx(r.value);
    refs += el('line', { x1: xx, x2: xx, y1: area.top, y2: area.bottom, stroke: r.color ?? '#777', 'stroke-width': 1.2, 'stroke-dasharray': dashArray(r.dash ?? true) });
    if (r.label) refs += text(xx + 4, area.top + fs + 2, r.label, { 'font-size': fs - 1, fill: r.color ?? '#555' });
  }
  if (refs) s += el('g', { class: 'reference' }, refs);

  // Data, clipped
  const slack = 7;
  s += el('clipPath', { id: `${id}-clip` }, el('rect', { x: area.left - slack, y: area.top - slack, width: area.right - area.left + 2 * slack, height: area.bottom - area.top + 2 * slack }));
  s += el('g', { class: 'data', 'clip-path': `url(#${id}-clip)` }, draw(sx, sy, area));

  // Axes
  let ax = '';
  ax += el('line', { x1: area.left, x2: area.right, y1: area.bottom, y2: area.bottom, stroke: '#333' });
  ax += el('line', { x1: area.left, x2: area.left, y1: area.top, y2: area.bottom, stroke: '#333' });
  let xt = '';
  for (const t of x.ticks) {
    if (!inX(t.value)) continue;
    const xx = sx(t.value);
    xt += el('line', { x1: xx, x2: xx, y1: area.bottom, y2: area.bottom + TICK, stroke: '#333' });
    if (t.label) xt += text(xx, area.bottom + TICK + 3 + fs, t.label, { 'text-anchor': 'middle', 'font-size': fs });
  }
  for (const v of x.minorTicks ?? []) if (inX(v)) xt += el('line', { x1: sx(v), x2: sx(v), y1: area.bottom, y2: area.bottom + 3, stroke: '#333' });
  let yt = '';
  for (const t of y.ticks) {
    if (!inY(t.value)) continue;
    const yy = sy(t.value);
    yt += el('line', { x1: area.left - TICK, x2: area.left, y1: yy, y2: yy, stroke: '#333' });
    yt += text(area.left - TICK - 3, yy, t.label, { 'text-anchor': 'end', 'dominant-baseline': 'central', 'font-size': fs });
  }
  for (const v of y.minorTicks ?? []) if (inY(v)) yt += el('line', { x1: area.left - 3, x2: area.left, y1: sy(v), y2: sy(v), stroke: '#333' });
  ax += el('g', { class: 'x-ticks' }, xt) + el('g', { class: 'y-ticks' }, yt);
  if (opts.xLabel)
    ax += text((area.left + area.right) / 2, area.bottom + TICK + 4 + xTickLines * (fs + 3) + labelFs + 4, opts.xLabel, {
      class: 'x-label',
      'text-anchor': 'middle',
      'font-size': labelFs,
    });
  if (opts.yLabel) {
    const lx = 10 + labelFs * 0.8;
    const ly = (area.top + area.bottom) / 2;
    ax += text(lx, ly, opts.yLabel, { class: 'y-label', 'text-anchor': 'middle', 'font-size': labelFs, transform: `rotate(-90 ${n(lx)} ${n(ly)})` });
  }
  s += el('g', { class: 'axes', fill: '#222' }, ax);

  // Legend
  if (position !== 'none') {
    const inset = 8;
    if (position === 'right') s += renderLegend(legend, area.right + 16, area.top, fs, false);
    else if (position === 'bottom') {
      const yb = height - 6 - legendRows * LEGEND_ROW;
      s += renderBottomLegend(legend, area.left, area.right - area.left, yb, fs).svg;
    } else {
      const lx = position.endsWith('left') ? area.left + inset : area.right - inset - lsize.w;
      const ly = position.startsWith('top') ? area.top + inset : area.bottom - inset - lsize.h;
      s += renderLegend(legend, lx, ly, fs, true);
    }
  }

  const name = opts.title ?? kind;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${n(width)}" height="${n(height)}" viewBox="0 0 ${n(width)} ${n(height)}" ` +
    `role="img" aria-label="${esc(name)}" font-family="${esc(FONT_FAMILY)}" class="ctssl-plot ${esc(kind)}">` +
    el('title', {}, esc(name)) +
    s +
    '</svg>'
  );
}

/** Breaks `s` into lines no wider than `maxWidth` at spaces (a single long word stays whole). */
export function wrapWords(s: string, maxWidth: number, fontSize: number): string {
  const lines: string[] = [];
  for (const para of s.split('\n')) {
    let line = '';
    for (const word of para.split(' ')) {
      const next = line ? `${line} ${word}` : word;
      if (line && textWidth(next, fontSize) > maxWidth) {
        lines.push(line);
        line = word;
      } else line = next;
    }
    lines.push(line);
  }
  return lines.join('\n');
}
