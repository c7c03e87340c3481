/**
 * Line plots as SVG strings, pure: metric against training fraction or iterations, one line per
 * series with optional markers and a shaded confidence band (or error bars), optional log-scale
 * x; and ROC curves (square, chance diagonal, AUROC with its interval in the legend, operating
 * points such as the Youden threshold).
 */
import { renderFrame, type AxisSpec, type CommonOptions, type LegendEntry, type LegendPosition, type Tick } from './frame';
import { formatTick, logTicks, niceDomain, niceStep, niceTicks, type Scale } from './scale';
import { dashArray, el, MARKERS, marker, n, PALETTE, text, type MarkerShape } from './svg';

export interface LineSeries {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  /** Lower and upper bounds of an interval at each point (e.g. the 95% CI over seeds). */
  lower?: ArrayLike<number>;
  upper?: ArrayLike<number>;
  /** How to show lower/upper: a shaded band (default) or error bars at the points. */
  interval?: 'band' | 'bars';
  /** Default: the palette colour of the series index. */
  color?: string;
  /** Default: a shape per series index when markers are on. */
  marker?: MarkerShape;
  dash?: boolean | string;
  lineWidth?: number;
}

export interface LinePlotOptions extends CommonOptions {
  series: LineSeries[];
  /** log10 x axis (all x must be > 0). */
  xLog?: boolean;
  xDomain?: [number, number];
  yDomain?: [number, number];
  /** Explicit tick values. */
  xTicks?: number[];
  yTicks?: number[];
  xTickFormat?: (v: number) => string;
  yTickFormat?: (v: number) => string;
  /** Markers at the points (default: when every series has at most 40 points). */
  markers?: boolean;
}

function checkSeries(fn: string, s: LineSeries, i: number): void {
  if (!s || typeof s.name !== 'string') throw new Error(`${fn}: series[${i}].name must be a string`);
  if (!s.x || !s.y || s.x.length !== s.y.length)
    throw new Error(`${fn}: series[${i}] ("${s.name}") x and y differ in length (${s.x?.length} vs ${s.y?.length})`);
  for (const k of ['lower', 'upper'] as const)
    if (s[k] && s[k]!.length !== s.y.length) throw new Error(`${fn}: series[${i}] ("${s.name}") ${k} has ${s[k]!.length} values, y has ${s.y.length}`);
}

function finite(xs: Iterable<number>): number[] {
  return [...xs].filter((v) => Number.isFinite(v));
}

function linearAxis(domain: [number, number], count: number, explicit?: number[], format?: (v: number) => string): AxisSpec {
  const values = explicit ?? niceTicks(domain[0], domain[1], count);
  const step = values.length > 1 ? Math.abs(values[1] - values[0]) : niceStep(domain[1] - domain[0], count);
  const ticks: Tick[] = values.map((v) => ({ value: v, label: format ? format(v) : formatTick(v, step) }));
  return { domain, ticks };
}

function logAxis(domain: [number, number], explicit?: number[], format?: (v: number) => string): AxisSpec {
  const t = logTicks(domain[0], domain[1]);
  const values = explicit ?? t.major;
  return { domain, log: true, ticks: values.map((v) => ({ value: v, label: format ? format(v) : formatTick(v) })), minorTicks: explicit ? [] : t.minor };
}

/** Path of a polyline with gaps at non-finite points. */
function polyline(xs: number[], ys: number[]): string {
  let d = '';
  let pen = false;
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${n(xs[i])},${n(ys[i])}`;
    pen = true;
  }
  return d;
}

/** Closed band polygons between lower and upper, one per run of finite points. */
function bandPath(xs: number[], lo: number[], hi: number[]): string {
  let d = '';
  let run: number[] = [];
  const flush = () => {
    if (run.length >= 2) {
      d += `M${run.map((i) => `${n(xs[i])},${n(hi[i])}`).join('L')}`;
      d += `L${run.reverse().map((i) => `${n(xs[i])},${n(lo[i])}`).join('L')}Z`;
    }
    run = [];
  };
  for (let i = 0; i < xs.length; i++) {
    if (Number.isFinite(xs[i]) && Number.isFinite(lo[i]) && Number.isFinite(hi[i])) run.push(i);
    else flush();
  }
  flush();
  return d;
}

interface Drawn {
  name: string;
  color: string;
  shape: MarkerShape;
  dash?: boolean | string;
  lineWidth: number;
  x: number[];
  y: number[];
  lower?: number[];
  upper?: number[];
  interval: 'band' | 'bars';
}

function drawSeries(d: Drawn, sx: Scale, sy: Scale, extra = ''): string {
  const px = d.x.map((v) => (sx.log && !(v > 0) ? NaN : sx(v)));
  const py = d.y.map((v) => sy(v));
  let g = '';
  if (d.lower && d.upper) {
    const lo = d.lower.map((v) => sy(v));
    const hi = d.upper.map((v) => sy(v));
    if (d.interval === 'band') g += el('path', { class: 'band', d: bandPath(px, lo, hi), fill: d.color, 'fill-opacity': 0.18, stroke: 'none' });
    else {
      let bars = '';
      for (let i = 0; i < px.length; i++) {
        if (!Number.isFinite(px[i]) || !Number.isFinite(lo[i]) || !Number.isFinite(hi[i])) continue;
        bars += `M${n(px[i])},${n(lo[i])}V${n(hi[i])}M${n(px[i] - 4)},${n(lo[i])}h8M${n(px[i] - 4)},${n(hi[i])}h8`;
      }
      g += el('path', { class: 'errorbar', d: bars, stroke: d.color, 'stroke-width': 1.3, fill: 'none' });
    }
  }
  g += el('path', {
    class: 'line',
    d: polyline(px, py),
    fill: 'none',
    stroke: d.color,
    'stroke-width': d.lineWidth,
    'stroke-linejoin': 'round',
    'stroke-linecap': 'round',
    'stroke-dasharray': dashArray(d.dash),
  });
  if (d.shape !== 'none')
    for (let i = 0; i < px.length; i++)
      if (Number.isFinite(px[i]) && Number.isFinite(py[i])) g += marker(d.shape, px[i], py[i], 7.5, { class: 'marker', fill: d.color, stroke: '#fff', 'stroke-width': 1 });
  return el('g', { class: 'series', 'data-series': d.name }, g + extra);
}

/**
 * A line plot with optional confidence bands: e.g. test AUROC (mean and 95% CI over seeds)
 * against the training fraction on a log x axis, one series per initialisation.
 */
export function linePlot(opts: LinePlotOptions): string {
  const fn = 'linePlot';
  if (!opts || !Array.isArray(opts.series)) throw new Error(`${fn}: series must be an array`);
  opts.series.forEach((s, i) => checkSeries(fn, s, i));
  const showMarkers = opts.markers ?? opts.series.every((s) => s.x.length <= 40);
  const drawn: Drawn[] = opts.series.map((s, i) => ({
    name: s.name,
    color: s.color ?? PALETTE[i % PALETTE.length],
    shape: showMarkers ? (s.marker ?? MARKERS[i % MARKERS.length]) : 'none',
    dash: s.dash,
    lineWidth: s.lineWidth ?? 2,
    x: Array.from(s.x),
    y: Array.from(s.y),
    lower: s.lower && Array.from(s.lower),
    upper: s.upper && Array.from(s.upper),
    interval: s.interval ?? 'band',
  }));
  const xs = finite(drawn.flatMap((d) => d.x));
  if (opts.xLog) {
    const bad = drawn.findIndex((d) => d.x.some((v) => Number.isFinite(v) && v <= 0));
    if (bad >= 0) throw new Error(`${fn}: xLog needs x > 0; series[${bad}] ("${drawn[bad].name}") has x <= 0`);
    if (opts.xDomain && !(opts.xDomain[0] > 0)) throw new Error(`${fn}: xLog needs a positive xDomain, got [${opts.xDomain.join(', ')}]`);
  }
  const ys = finite(drawn.flatMap((d) => [...d.y, ...(d.lower ?? []), ...(d.upper ?? [])]));
  const width = opts.width ?? 640;
  const height = opts.height ?? 420;
  let x: AxisSpec;
  if (opts.xLog) {
    let dom = opts.xDomain;
    if (!dom) {
      const lo = xs.length ? Math.min(...xs) : 1;
      const hi = xs.length ? Math.max(...xs) : 10;
      const span = Math.max(0.3, Math.log10(hi / lo));
      const pad = 10 ** (0.05 * span);
      dom = [lo / pad, hi * pad];
    }
    x = logAxis(dom, opts.xTicks, opts.xTickFormat);
  } else {
    const dom = opts.xDomain ?? (xs.length ? niceDomain(Math.min(...xs), Math.max(...xs), Math.round(width / 100)) : ([0, 1] as [number, number]));
    x = linearAxis(dom, Math.max(2, Math.round(width / 100)), opts.xTicks, opts.xTickFormat);
  }
  const yCount = Math.max(2, Math.round(height / 70));
  const yDom = opts.yDomain ?? (ys.length ? niceDomain(Math.min(...ys), Math.max(...ys), yCount) : ([0, 1] as [number, number]));
  const y = linearAxis(yDom, yCount, opts.yTicks, opts.yTickFormat);
  const legend: LegendEntry[] = drawn.map((d) => ({ label: d.name, color: d.color, kind: 'line', marker: d.shape, dash: d.dash, band: !!(d.lower && d.upper && d.interval === 'band') }));
  return renderFrame('line-plot', opts, x, y, legend, 'right', (sx, sy) => drawn.map((d) => drawSeries(d, sx, sy)).join(''));
}

export interface RocSeries {
  name: string;
  fpr: ArrayLike<number>;
  tpr: ArrayLike<number>;
  /** Shown in the legend as "name (AUROC 0.873 [0.812, 0.921])". */
  auc?: number;
  ci?: [number, number];
  color?: string;
  dash?: boolean | string;
  /** An operating point to mark, e.g. the Youden threshold's (1 - specificity, sensitivity). */
  point?: { fpr: number; tpr: number; label?: string };
}

export interface RocPlotOptions extends CommonOptions {
  curves: RocSeries[];
  /** The chance diagonal (default true). */
  chance?: boolean;
  /** Decimals of AUROC in the legend (default 3). */
  digits?: number;
}

/** Drops points on straight horizontal or vertical runs (they do not change the drawn curve). */
function thinRoc(f: number[], t: number[]): number[] {
  const keep: number[] = [];
  for (let i = 0; i < f.length; i++) {
    if (i > 0 && i < f.length - 1) {
      const a = keep[keep.length - 1];
      if ((f[a] === f[i] && f[i] === f[i + 1]) || (t[a] === t[i] && t[i] === t[i + 1])) continue;
    }
    keep.push(i);
  }
  return keep;
}

/** ROC curves in a square plot with the chance diagonal; legend inside, bottom right. */
export function rocPlot(opts: RocPlotOptions): string {
  const fn = 'rocPlot';
  if (!opts || !Array.isArray(opts.curves)) throw new Error(`${fn}: curves must be an array`);
  const digits = opts.digits ?? 3;
  const drawn = opts.curves.map((c, i) => {
    if (!c.fpr || !c.tpr || c.fpr.length !== c.tpr.length)
      throw new Error(`${fn}: curves[${i}] ("${c.name}") fpr and tpr differ in length (${c.fpr?.length} vs ${c.tpr?.length})`);
    const f = Array.from(c.fpr);
    const t = Array.from(c.tpr);
    const keep = thinRoc(f, t);
    let label = c.name;
    if (c.auc !== undefined) {
      label += ` (AUROC ${c.auc.toFixed(digits)}`;
      if (c.ci) label += ` [${c.ci[0].toFixed(digits)}, ${c.ci[1].toFixed(digits)}]`;
      label += ')';
    }
    return { c, label, color: c.color ?? PALETTE[i % PALETTE.length], x: keep.map((k) => f[k]), y: keep.map((k) => t[k]) };
  });
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1];
  const axis = (): AxisSpec => ({ domain: [0, 1], ticks: ticks.map((v) => ({ value: v, label: v.toFixed(1) })) });
  const legend: LegendEntry[] = drawn.map((d) => ({ label: d.label, color: d.color, kind: 'line', dash: d.c.dash, marker: d.c.point ? 'circle' : undefined }));
  const o: CommonOptions = {
    width: 520,
    height: 500,
    xLabel: 'False positive rate (1 − specificity)',
    yLabel: 'True positive rate (sensitivity)',
    ...opts,
  };
  return renderFrame(
    'roc-plot',
    o,
    axis(),
    axis(),
    legend,
    'bottom-right' as LegendPosition,
    (sx, sy) => {
      let s = '';
      if (opts.chance ?? true)
        s += el('line', { class: 'chance', x1: sx(0), y1: sy(0), x2: sx(1), y2: sy(1), stroke: '#999', 'stroke-width': 1.2, 'stroke-dasharray': '5 4' });
      for (const d of drawn) {
        let extra = '';
        const p = d.c.point;
        if (p) {
          extra += marker('circle', sx(p.fpr), sy(p.tpr), 9, { class: 'operating-point', fill: d.color, stroke: '#fff', 'stroke-width': 1.5 });
          if (p.label) extra += text(sx(p.fpr) + 8, sy(p.tpr) + 14, p.label, { 'font-size': (opts.fontSize ?? 11) - 1, fill: d.color });
        }
        s += drawSeries({ name: d.c.name, color: d.color, shape: 'none', dash: d.c.dash, lineWidth: 2, x: d.x, y: d.y, interval: 'band' }, sx, sy, extra);
      }
      return s;
    },
    { square: true },
  );
}
