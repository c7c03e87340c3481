/**
 * Grouped bar charts with error bars as SVG strings, pure: e.g. the bias probe (paper Figure 6):
 * groups = attributes (sex, ethnic group, age group), one bar per encoder, AUROC with its interval,
 * and a chance line at 0.5.
 */
import { renderFrame, type AxisSpec, type CommonOptions, type LegendEntry } from './frame';
import { formatTick, niceDomain, niceStep, niceTicks } from './scale';
import { el, n, PALETTE, text } from './svg';

export interface BarSeries {
  name: string;
  /** One value per group (NaN: no bar, marked n/a). */
  values: ArrayLike<number>;
  /** Interval bounds per group, drawn as error bars with caps. */
  lower?: ArrayLike<number>;
  upper?: ArrayLike<number>;
  color?: string;
}

export interface BarChartOptions extends CommonOptions {
  /** Group labels along x ('\n' for a second line). */
  groups: string[];
  series: BarSeries[];
  yDomain?: [number, number];
  yTicks?: number[];
  yTickFormat?: (v: number) => string;
  /** Print values above the bars with this many decimals (default: off). */
  valueLabels?: number | false;
  /** Where bars start (default 0 when inside the y domain, else its lower end). */
  baseline?: number;
}

/** Grouped bars with optional error bars; legend at the right by default. */
export function barChart(opts: BarChartOptions): string {
  const fn = 'barChart';
  if (!opts || !Array.isArray(opts.groups) || opts.groups.length === 0) throw new Error(`${fn}: groups must be a non-empty array of labels`);
  if (!Array.isArray(opts.series) || opts.series.length === 0) throw new Error(`${fn}: series must be a non-empty array`);
  const G = opts.groups.length;
  const S = opts.series.length;
  opts.series.forEach((s, i) => {
    if (!s.values || s.values.length !== G) throw new Error(`${fn}: series[${i}] ("${s.name}") has ${s.values?.length} values for ${G} groups`);
    for (const k of ['lower', 'upper'] as const)
      if (s[k] && s[k]!.length !== G) throw new Error(`${fn}: series[${i}] ("${s.name}") ${k} has ${s[k]!.length} values for ${G} groups`);
  });
  const all: number[] = [];
  for (const s of opts.series) for (const arr of [s.values, s.lower, s.upper]) if (arr) for (let g = 0; g < G; g++) if (Number.isFinite(arr[g])) all.push(arr[g]);
  const height = opts.height ?? 420;
  const yCount = Math.max(2, Math.round(height / 70));
  const yDomain = opts.yDomain ?? niceDomain(Math.min(0, ...all), Math.max(0, ...all), yCount);
  const values = opts.yTicks ?? niceTicks(yDomain[0], yDomain[1], yCount);
  const step = values.length > 1 ? values[1] - values[0] : niceStep(yDomain[1] - yDomain[0], yCount);
  const y: AxisSpec = { domain: yDomain, ticks: values.map((v) => ({ value: v, label: opts.yTickFormat ? opts.yTickFormat(v) : formatTick(v, step) })) };
  const x: AxisSpec = { domain: [0, G], ticks: opts.groups.map((label, g) => ({ value: g + 0.5, label })), grid: false };
  const colors = opts.series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]);
  const legend: LegendEntry[] = opts.series.map((s, i) => ({ label: s.name, color: colors[i], kind: 'bar' }));
  const baseline = opts.baseline ?? (yDomain[0] <= 0 && yDomain[1] >= 0 ? 0 : yDomain[0]);
  const fs = opts.fontSize ?? 11;
  return renderFrame('bar-chart', opts, x, y, legend, 'right', (sx, sy) => {
    const groupW = sx(1) - sx(0);
    const inner = groupW * 0.78;
    const gap = Math.min(3, inner / S / 6);
    const barW = (inner - gap * (S - 1)) / S;
    let out = '';
    opts.series.forEach((s, i) => {
      let bars = '';
      let errs = '';
      let labels = '';
      for (let g = 0; g < G; g++) {
        const x0 = sx(g) + (groupW - inner) / 2 + i * (barW + gap);
        const v = s.values[g];
        if (!Number.isFinite(v)) {
          labels += text(x0 + barW / 2, sy(baseline) - 4, 'n/a', { 'text-anchor': 'middle', 'font-size': fs - 2, fill: '#777' });
          continue;
        }
        const y0 = sy(baseline);
        const y1 = sy(v);
        bars += el('rect', {
          class: 'bar',
          'data-group': opts.groups[g],
          x: x0,
          y: Math.min(y0, y1),
          width: barW,
          height: Math.abs(y1 - y0),
          fill: colors[i],
        });
        const lo = s.lower?.[g];
        const hi = s.upper?.[g];
        let top = y1;
        if (lo !== undefined && hi !== undefined && Number.isFinite(lo) && Number.isFinite(hi)) {
          const cx = x0 + barW / 2;
          const cap = Math.min(8, barW * 0.5) / 2;
          errs += el('path', {
            class: 'errorbar',
            d: `M${n(cx)},${n(sy(lo))}V${n(sy(hi))}M${n(cx - cap)},${n(sy(lo))}h${n(2 * cap)}M${n(cx - cap)},${n(sy(hi))}h${n(2 * cap)}`,
          });
          top = Math.min(top, sy(hi));
        }
        if (opts.valueLabels !== undefined && opts.valueLabels !== false)
          labels += text(x0 + barW / 2, top - 4, v.toFixed(opts.valueLabels), { class: 'value-label', 'text-anchor': 'middle', 'font-size': fs - 2, fill: '#333' });
      }
      out += el(
        'g',
        { class: 'series', 'data-series': s.name },
        bars + (errs ? el('g', { stroke: '#222', 'stroke-width': 1.3, fill: 'none' }, errs) : '') + labels,
      );
    });
    return out;
  });
}
