/**
 * The tables of an experiment's report (report.json, `SavedExperimentReport` of
 * src/shared/results.ts): mean [95% CI] per initialisation x fraction, the paired comparisons
 * (patient-level p, Holm-adjusted p, verdict; slice-level DeLong p as secondary), the report's
 * warnings, iterations to reach a Dice level, and the runs of the grid. A report.json written
 * before patient-level statistics has no comparisons and says so. Pure; unit-tested.
 */
import type { SavedExperimentReport } from '../../../shared/results';
import { NONE, plural } from '../lib/format';
import { percent, pValue, signed, withCi } from '../lib/stats-format';

/** Initialisation keys in first-seen order with their labels (from the cells; the key itself when unknown). */
export function initLabels(r: SavedExperimentReport): { init: string; label: string }[] {
  const out = new Map<string, string>();
  for (const c of r.cells) if (!out.has(c.init)) out.set(c.init, c.initLabel);
  for (const s of r.summary) if (!out.has(s.init)) out.set(s.init, s.init === 'random' ? 'random init' : s.init === 'cnn' ? 'supervised CNN (scratch)' : s.init);
  return [...out].map(([init, label]) => ({ init, label }));
}

export interface SummaryTable {
  /** Column headers: the fractions, ascending, as percentages. */
  fractions: number[];
  headers: string[];
  rows: { init: string; label: string; cells: { text: string; mean: number | null; n: number; best: boolean; patientCi: string | null }[] }[];
}

/** Mean [95% CI] per initialisation (rows) x fraction (columns); the best mean per fraction is marked. */
export function summaryTable(r: SavedExperimentReport, digits = 3): SummaryTable {
  const fractions = [...new Set(r.summary.map((s) => s.fraction))].sort((a, b) => a - b);
  const best = new Map<number, number>();
  for (const f of fractions) {
    const means = r.summary.filter((s) => s.fraction === f && Number.isFinite(s.mean)).map((s) => s.mean);
    if (means.length > 1) best.set(f, Math.max(...means));
  }
  const rows = initLabels(r).map(({ init, label }) => ({
    init,
    label,
    cells: fractions.map((f) => {
      const s = r.summary.find((x) => x.init === init && x.fraction === f);
      if (!s || !Number.isFinite(s.mean) || s.n === 0) return { text: NONE, mean: null, n: s?.n ?? 0, best: false, patientCi: null };
      const pc = s.patientCi95;
      return {
        text: s.n > 1 ? withCi(s.mean, s.lower, s.upper, digits) : withCi(s.mean, undefined, undefined, digits),
        mean: s.mean,
        n: s.n,
        best: best.get(f) === s.mean,
        // The patient-level interval of the mean, "[0.61, 0.80]" (null without patients).
        patientCi: pc && Number.isFinite(pc[0] ?? NaN) && Number.isFinite(pc[1] ?? NaN) ? `[${pc[0]!.toFixed(digits)}, ${pc[1]!.toFixed(digits)}]` : null,
      };
    }),
  }));
  return { fractions, headers: fractions.map((f) => percent(f)), rows };
}

export interface ComparisonRow {
  pretrained: string;
  baseline: string;
  fraction: string;
  /** "1", or "pooled (3 seeds)". */
  seed: string;
  pooled: boolean;
  pretrainedAuroc: string;
  baselineAuroc: string;
  /** "+0.051 [−0.020, +0.122]" */
  difference: string;
  /** Patient-level p, Holm-adjusted p, and the verdict (on the adjusted p). */
  p: string;
  pHolm: string;
  verdict: string;
  significant: boolean;
  /** Secondary: slice-level DeLong p (assumes independent slices), per seed only. */
  sliceP: string;
  /** "12 patients, 480 slices, 96 positive" */
  data: string;
}

/** The paired comparisons ready to show: per seed, then pooled, by fraction; significance on the Holm-adjusted p. */
export function comparisonRows(r: SavedExperimentReport): ComparisonRow[] {
  const alpha = r.statistics?.alpha ?? 0.05;
  const ci = (d: { ci95: [number | null, number | null] }) => {
    const [lo, hi] = d.ci95;
    return typeof lo === 'number' && typeof hi === 'number' && Number.isFinite(lo) && Number.isFinite(hi) ? ` [${signed(lo)}, ${signed(hi)}]` : '';
  };
  return [...(r.comparisons ?? [])]
    .sort((a, b) => a.fraction - b.fraction || a.baseline.localeCompare(b.baseline) || a.pretrained.localeCompare(b.pretrained) || (a.seed ?? Infinity) - (b.seed ?? Infinity))
    .map((d) => ({
      pretrained: d.pretrained,
      baseline: d.baseline,
      fraction: percent(d.fraction),
      seed: d.seed === null ? `pooled (${d.seeds.length} seeds)` : String(d.seed),
      pooled: d.seed === null,
      pretrainedAuroc: withCi(d.aurocPretrained),
      baselineAuroc: withCi(d.aurocBaseline),
      difference: signed(d.difference) + ci(d),
      p: pValue(d.p),
      pHolm: pValue(d.pHolm),
      verdict: d.verdict,
      significant: typeof d.pHolm === 'number' && d.pHolm < alpha,
      sliceP: pValue(d.sliceLevelP),
      data: `${plural(d.patients, 'patient')}, ${plural(d.slices, 'slice')}, ${d.positives} positive`,
    }));
}

/**
 * What the reader must see before the numbers: the report's warnings (a small test split, runs
 * scored before patient-level statistics), and for a report.json written before them, that its
 * tests were slice-level only and are not shown.
 */
export function reportWarnings(r: SavedExperimentReport): string[] {
  const out = [...(r.warnings ?? [])];
  if (!r.comparisons && r.task === 'classification')
    out.push('this report was written before patient-level statistics: its slice-level tests are not shown; run the experiment again in its folder to rewrite the report (finished runs are kept)');
  return out;
}

/** Iterations-to-reach rows ready to show. */
export function reachRows(r: SavedExperimentReport): { init: string; fraction: string; level: string; iterations: string; reaching: string }[] {
  return r.iterationsToReach.map((x) => ({
    init: x.init,
    fraction: percent(x.fraction),
    level: Number.isFinite(x.level) ? String(x.level) : NONE,
    iterations: x.meanIterations === null ? 'not reached' : String(Math.round(x.meanIterations)),
    reaching: `${x.runsReaching} of ${x.runs}`,
  }));
}

/** The grid's runs with their held-out metric and interval (AUROC [CI] or Dice). */
export function cellRows(r: SavedExperimentReport): { init: string; fraction: string; seed: number; status: string; metric: string; detail: string }[] {
  return r.cells.map((c) => {
    const res = c.results;
    const [metric, detail] = !res
      ? [NONE, '']
      : 'error' in res
        ? ['n/a', res.error]
        : res.task === 'classification'
          ? [withCi(res.auroc, res.aurocCi95[0], res.aurocCi95[1]), `sens ${withCi(res.sensitivity)} · spec ${withCi(res.specificity)}${res.ci ? '' : ' · slice-level CI'}`]
          : [withCi(res.dice, res.diceCi95?.[0], res.diceCi95?.[1]), `IoU ${withCi(res.iou)}`];
    return { init: c.initLabel, fraction: percent(c.fraction), seed: c.seed, status: c.status, metric, detail };
  });
}

/** The SVG files of a report in the order shown: metric vs fraction, vs iterations, ROC; then any others. */
export function orderedSvgs(svgs: Record<string, string>): { name: string; title: string; svg: string }[] {
  const rank = (n: string) => (n.endsWith('-vs-fraction.svg') ? 0 : n.endsWith('-vs-iterations.svg') ? 1 : n === 'roc.svg' ? 2 : 3);
  const title = (n: string) => {
    const m = /^(\w+)-vs-(fraction|iterations)\.svg$/.exec(n);
    if (m) return `${m[1] === 'auroc' ? 'AUROC' : m[1] === 'dice' ? 'Dice' : m[1]} against ${m[2] === 'fraction' ? 'training-set fraction' : 'iterations'}`;
    if (n === 'roc.svg') return 'ROC curves';
    return n.replace(/\.svg$/, '');
  };
  return Object.keys(svgs)
    .filter((n) => typeof svgs[n] === 'string' && svgs[n].length > 0)
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
    .map((name) => ({ name, title: title(name), svg: svgs[name] }));
}
