/**
 * The bias probe's report as text, from the trainer's numbers: the chart (SVG), the CSV of
 * scores and the HTML page. Pure; the host writes them (src/host/probe.ts).
 */
import type { ProbeAttribute, ProbeScore } from '../../shared/results';
import type { ProbeComputation } from '../../shared/trainer-protocol';
import { barChart } from '../plots';

/** How the report and the warnings name each attribute. */
export const PROBE_ATTRIBUTE_LABELS: Record<ProbeAttribute, string> = { sex: 'sex', ethnicGroup: 'ethnic group', ageGroup: 'age group' };

/** AUROC per attribute probed (groups) and representation (bars), with the chance line. */
export function probeChart(c: Pick<ProbeComputation, 'attributes' | 'features' | 'scores'>): string {
  const { scores } = c;
  const probed = c.attributes.filter((a) => scores.some((s) => s.attribute === a));
  if (!probed.length) return '<svg xmlns="http://www.w3.org/2000/svg"/>';
  return barChart({
    title: 'Bias probe: AUROC of predicting patient attributes from each representation',
    groups: probed.map((a) => PROBE_ATTRIBUTE_LABELS[a]),
    series: c.features.map((name) => {
      const of = (a: ProbeAttribute) => scores.find((s) => s.attribute === a && s.features === name);
      return {
        name,
        values: probed.map((a) => of(a)?.auroc ?? NaN),
        lower: probed.map((a) => of(a)?.ci95?.[0] ?? NaN),
        upper: probed.map((a) => of(a)?.ci95?.[1] ?? NaN),
      };
    }),
    // Headroom above 1 for the value labels of bars at AUROC 1.
    yDomain: [0, 1.1],
    yTicks: [0, 0.2, 0.4, 0.6, 0.8, 1],
    hlines: [{ value: 0.5, label: 'chance' }],
    yLabel: 'AUROC (cross-validated)',
    valueLabels: 2,
  });
}

/** One line per score. */
export function probeCsv(scores: ProbeScore[]): string {
  return (
    ['features,attribute,classes,n,auroc,ci_lower,ci_upper', ...scores.map((s) => [JSON.stringify(s.features), s.attribute, JSON.stringify(s.classes.join('|')), s.n, s.auroc, s.ci95?.[0] ?? '', s.ci95?.[1] ?? ''].join(','))].join('\n') + '\n'
  );
}

/** The page: settings, the chart, the table of scores and the warnings. */
export function probeHtml(c: Pick<ProbeComputation, 'scans' | 'scores' | 'warnings' | 'folds' | 'seed'>, svg: string): string {
  const { scores, warnings } = c;
  return `<!doctype html><meta charset="utf-8"><title>Bias probe</title><style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>
<h1>Bias probe</h1><p>${c.scans} scans; middle slice = largest body cross-section; logistic regression, ${c.folds}-fold cross-validation (seed ${c.seed}). Baseline (the paper's): a CNN trained from scratch on the raw middle slices, on the same folds; the logistic regression on the raw slice's pixels is an extra row.</p>
${svg}
<table><tr><th>representation</th><th>attribute</th><th>classes</th><th>n</th><th>AUROC</th><th>95% CI</th></tr>
${scores.map((s) => `<tr><td>${escapeHtml(s.features)}</td><td>${PROBE_ATTRIBUTE_LABELS[s.attribute]}</td><td>${escapeHtml(s.classes.join(', '))}</td><td>${s.n}</td><td>${s.auroc.toFixed(3)}</td><td>${s.ci95 ? `${s.ci95[0].toFixed(3)}–${s.ci95[1].toFixed(3)}` : ''}</td></tr>`).join('\n')}
</table>${warnings.length ? `<h2>Notes</h2><ul>${warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul>` : ''}`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
