/**
 * SVG plots (src/core/plots): well-formed XML (fast-xml-parser), the expected numbers of series,
 * markers, bands, bars and error bars, ticks, escaping and argument errors. The plots are written
 * to test/artifacts/ (gitignored) and converted to PNG with rsvg-convert when it is installed
 * (apt-get install librsvg2-bin), for a person to look at.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { aurocBootstrapCi, iterationsToReach, meanCi, rocCurve, smoothCurve, youdenThreshold } from '../../../src/core/metrics';
import { barChart, linePlot, logTicks, niceDomain, niceTicks, rocPlot, svgDataUri } from '../../../src/core/plots';
import { Rng } from '../../../src/core/random';
import { root } from '../../helpers';

const artifacts = join(root, 'test', 'artifacts');
mkdirSync(artifacts, { recursive: true });
const hasRsvg = !spawnSync('rsvg-convert', ['--version']).error;
if (!hasRsvg) console.warn('[plots.test] rsvg-convert not installed (apt-get install librsvg2-bin): no PNG renders');

type Node = Record<string, unknown>;
/** Parses an SVG (throws unless well-formed) and returns every element as {tag, attrs}. */
function parse(svg: string): { tag: string; attrs: Record<string, string> }[] {
  const v = XMLValidator.validate(svg);
  if (v !== true) throw new Error(`SVG is not well-formed: ${JSON.stringify(v.err)}`);
  const tree = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', isArray: () => true }).parse(svg) as Node;
  const out: { tag: string; attrs: Record<string, string> }[] = [];
  const walk = (tag: string, node: unknown) => {
    if (Array.isArray(node)) return node.forEach((x) => walk(tag, x));
    if (!node || typeof node !== 'object') return;
    const attrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(node as Node)) if (k.startsWith('@_')) attrs[k.slice(2)] = String(v);
    out.push({ tag, attrs });
    for (const [k, v] of Object.entries(node as Node)) if (!k.startsWith('@_') && k !== '#text') walk(k, v);
  };
  for (const [k, v] of Object.entries(tree)) walk(k, v);
  return out;
}
const byClass = (els: ReturnType<typeof parse>, cls: string) => els.filter((e) => (e.attrs.class ?? '').split(' ').includes(cls));

function save(name: string, svg: string, png = false): void {
  writeFileSync(join(artifacts, `${name}.svg`), svg);
  if (png && hasRsvg) {
    const r = spawnSync('rsvg-convert', ['-z', '1.5', '-o', join(artifacts, `${name}.png`), join(artifacts, `${name}.svg`)]);
    expect(r.status, String(r.stderr)).toBe(0);
  }
}

function gauss(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

describe('ticks', () => {
  it('nice linear ticks and domains, log ticks', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.52, 0.97, 5)).toEqual([0.6, 0.7, 0.8, 0.9]);
    expect(niceDomain(0.52, 0.97, 5)).toEqual([0.5, 1]);
    expect(niceTicks(0, 5000, 5)).toEqual([0, 1000, 2000, 3000, 4000, 5000]);
    expect(logTicks(0.008, 1.3).major).toEqual([0.01, 0.1, 1]);
    expect(logTicks(0.008, 1.3).minor).toContain(0.05);
    expect(logTicks(0.09, 1.1).major).toEqual([0.1, 0.2, 0.5, 1]);
  });
});

describe('line plot', () => {
  // The experiment grid's headline plot: test AUROC (mean and 95% t-interval over 3 seeds)
  // against the training fraction, log x, one series per initialisation.
  const fractions = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];
  const rng = new Rng(42);
  const inits = [
    { name: 'Random init', base: 0.6, gain: 0.25 },
    { name: 'Masked region 20%', base: 0.74, gain: 0.15 },
    { name: 'Next slice', base: 0.66, gain: 0.2 },
  ];
  const series = inits.map((it) => {
    const cis = fractions.map((f) => meanCi([0, 1, 2].map(() => it.base + it.gain * (1 + Math.log10(f) / 2) + 0.025 * gauss(rng))));
    return { name: it.name, x: fractions, y: cis.map((c) => c.mean), lower: cis.map((c) => c.lower), upper: cis.map((c) => c.upper) };
  });

  it('AUROC against training fraction: 3 series, 21 markers, 3 bands, legend, log axis', () => {
    const svg = linePlot({
      title: 'PE detection: test AUROC by training fraction',
      subtitle: 'mean and 95% CI over 3 seeds',
      xLabel: 'Fraction of labelled training slices',
      yLabel: 'Test AUROC',
      series,
      xLog: true,
      yDomain: [0.4, 1],
      hlines: [{ value: 0.5, label: 'chance' }],
      xTickFormat: (v) => `${+(v * 100).toPrecision(3)}%`,
    });
    const els = parse(svg);
    expect(els[0].tag).toBe('svg');
    expect(byClass(els, 'series').map((e) => e.attrs['data-series'])).toEqual(inits.map((i) => i.name));
    expect(byClass(els, 'marker')).toHaveLength(21);
    expect(byClass(els, 'band')).toHaveLength(3);
    expect(byClass(els, 'line')).toHaveLength(3);
    expect(byClass(els, 'legend-entry')).toHaveLength(3);
    const ticks = els.filter((e) => e.tag === 'text').length;
    expect(ticks).toBeGreaterThan(10);
    expect(svg).toContain('>1%<');
    expect(svg).toContain('>100%<');
    save('auroc-vs-fraction', svg, true);
  });

  it('Dice against iterations: many points without markers, smoothed, with reference lines', () => {
    const iters = Array.from({ length: 150 }, (_, i) => (i + 1) * 20);
    const curve = (rate: number) => iters.map((t) => 0.75 * (1 - Math.exp(-t / rate)) + 0.03 * gauss(rng));
    const pre = smoothCurve(curve(500), 5);
    const rnd = smoothCurve(curve(1000), 5);
    const reachPre = iterationsToReach(iters.map((step, i) => ({ step, value: pre[i] })), 0.6)!;
    const reachRnd = iterationsToReach(iters.map((step, i) => ({ step, value: rnd[i] })), 0.6)!;
    const svg = linePlot({
      title: 'Nodule segmentation: validation Dice',
      xLabel: 'Iteration',
      yLabel: 'Dice',
      series: [
        { name: 'U-Net, pretrained encoder', x: iters, y: pre },
        { name: 'U-Net, random init', x: iters, y: rnd, dash: true },
      ],
      yDomain: [0, 0.8],
      hlines: [{ value: 0.6, label: 'Dice 0.6' }],
      vlines: [
        { value: reachPre, label: `${reachPre}`, color: '#0072B2' },
        { value: reachRnd, label: `${reachRnd}`, color: '#E69F00' },
      ],
      legend: 'bottom-right',
    });
    const els = parse(svg);
    expect(byClass(els, 'series')).toHaveLength(2);
    expect(byClass(els, 'marker')).toHaveLength(0);
    expect(byClass(els, 'line')[1].attrs['stroke-dasharray']).toBe('6 4');
    // 150 points -> 150 coordinates in the path
    expect(byClass(els, 'line')[0].attrs.d.split(/[ML]/).filter(Boolean)).toHaveLength(150);
    save('dice-vs-iterations', svg, true);
  });

  it('error bars instead of a band, gaps at NaN, escaping, errors name the argument', () => {
    const svg = linePlot({
      title: 'A <b> & "c"',
      series: [{ name: 'x < y & z', x: [1, 2, 3, 4], y: [0.5, NaN, 0.7, 0.8], lower: [0.4, NaN, 0.6, 0.7], upper: [0.6, NaN, 0.8, 0.9], interval: 'bars' }],
    });
    const els = parse(svg);
    expect(byClass(els, 'errorbar')).toHaveLength(1);
    expect(byClass(els, 'marker')).toHaveLength(3);
    expect(byClass(els, 'line')[0].attrs.d.match(/M/g)).toHaveLength(2); // a gap at the NaN: two runs
    expect(byClass(els, 'series')[0].attrs['data-series']).toBe('x < y & z');
    expect(svgDataUri(svg).startsWith('data:image/svg+xml;charset=utf-8,%3Csvg')).toBe(true);
    expect(() => linePlot({ series: [{ name: 'a', x: [1, 2], y: [1] }] })).toThrow('linePlot: series[0] ("a") x and y differ in length (2 vs 1)');
    expect(() => linePlot({ series: [{ name: 'a', x: [0, 1], y: [1, 2] }], xLog: true })).toThrow('linePlot: xLog needs x > 0; series[0] ("a") has x <= 0');
    expect(() => linePlot({ series: [{ name: 'a', x: [1, 2], y: [1, 2], lower: [1] , upper: [1, 2] }] })).toThrow('linePlot: series[0] ("a") lower has 1 values, y has 2');
  });
});

describe('ROC plot', () => {
  it('two models with AUROC, bootstrap CI and the Youden point', () => {
    const rng = new Rng(7);
    const labels = Array.from({ length: 300 }, (_, i) => (i % 4 === 0 ? 1 : 0));
    const a = labels.map((y) => gauss(rng) + 1.4 * y);
    const b = labels.map((y) => gauss(rng) + 0.7 * y);
    const curves = [
      { name: 'Masked region 20%', s: a },
      { name: 'Random init', s: b },
    ].map(({ name, s }) => {
      const r = rocCurve(s, labels);
      const ci = aurocBootstrapCi(s, labels, { nResamples: 500, seed: 1 });
      const yt = youdenThreshold(s, labels);
      return {
        name,
        fpr: r.fpr,
        tpr: r.tpr,
        auc: ci.estimate,
        ci: [ci.lower, ci.upper] as [number, number],
        point: { fpr: 1 - yt.metrics.specificity, tpr: yt.metrics.sensitivity },
      };
    });
    const svg = rocPlot({ title: 'PE detection, test set', curves });
    const els = parse(svg);
    expect(byClass(els, 'series')).toHaveLength(2);
    expect(byClass(els, 'chance')).toHaveLength(1);
    expect(byClass(els, 'operating-point')).toHaveLength(2);
    expect(svg).toMatch(/Masked region 20% \(AUROC 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]\)/);
    // square plot area: the axes lines have the same length
    const axes = els.filter((e) => e.tag === 'line' && e.attrs.stroke === '#333');
    const [xAxis, yAxis] = axes;
    expect(Math.abs(+xAxis.attrs.x2 - +xAxis.attrs.x1)).toBeCloseTo(Math.abs(+yAxis.attrs.y2 - +yAxis.attrs.y1), 1);
    expect(() => rocPlot({ curves: [{ name: 'a', fpr: [0, 1], tpr: [0] }] })).toThrow('rocPlot: curves[0] ("a") fpr and tpr differ in length (2 vs 1)');
    save('roc', svg, true);
  });
});

describe('grouped bar chart', () => {
  it('the bias probe like the paper Figure 6: 3 attributes x 3 encoders with intervals', () => {
    const groups = ['Sex', 'Ethnic group', 'Age group\n(10-year bins)'];
    const series = [
      { name: 'Raw slices (no pretraining)', values: [0.93, 0.61, 0.71], lower: [0.9, 0.55, 0.67], upper: [0.96, 0.67, 0.75] },
      { name: 'Masked region 20%', values: [0.91, 0.72, 0.69], lower: [0.88, 0.66, 0.65], upper: [0.94, 0.78, 0.73] },
      { name: 'Next slice', values: [0.88, 0.68, NaN], lower: [0.84, 0.62, NaN], upper: [0.92, 0.74, NaN] },
    ];
    const svg = barChart({
      title: 'Bias probe: attributes predicted from middle-slice embeddings',
      yLabel: 'AUROC (5-fold CV, 95% CI)',
      groups,
      series,
      yDomain: [0.4, 1],
      hlines: [{ value: 0.5, label: 'chance' }],
      valueLabels: 2,
      legend: 'bottom',
    });
    const els = parse(svg);
    expect(byClass(els, 'series')).toHaveLength(3);
    expect(byClass(els, 'bar')).toHaveLength(8); // one n/a
    expect(byClass(els, 'errorbar')).toHaveLength(8);
    expect(byClass(els, 'value-label')).toHaveLength(8);
    expect(svg).toContain('>n/a<');
    expect(byClass(els, 'legend-entry')).toHaveLength(3);
    // bars start at the bottom of the domain (0.4) and reach their value
    const bar = byClass(els, 'bar')[0];
    expect(+bar.attrs.height).toBeGreaterThan(0);
    expect(() => barChart({ groups: ['a', 'b'], series: [{ name: 's', values: [1] }] })).toThrow('barChart: series[0] ("s") has 1 values for 2 groups');
    save('bias-probe', svg, true);
  });

  it('a title wider than the plot wraps onto lines that fit', () => {
    const title = 'Bias probe: AUROC of predicting patient attributes from each representation, per attribute';
    const svg = barChart({ title, width: 400, groups: ['a'], series: [{ name: 's', values: [0.7] }] });
    const t = /<text[^>]*class="title"[^>]*>(.*?)<\/text>/.exec(svg)?.[1] ?? '';
    const lines = [...t.matchAll(/<tspan[^>]*>(.*?)<\/tspan>/g)].map((m) => m[1]);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.join(' ')).toBe(title);
    for (const l of lines) expect(l.length * 15 * 0.56).toBeLessThan(400);
  });
});
