/**
 * An experiment's report (report.json, carried untyped by the contract) read defensively, and the
 * tables the page shows: mean [95% CI] per initialisation x fraction, DeLong tests, iterations to
 * reach a Dice level, and the runs of the grid. Pure; unit-tested.
 */
import { NONE } from '../lib/format';
import { percent, pValue, signed, withCi } from '../lib/stats-format';

export interface SummaryEntry {
  init: string;
  fraction: number;
  n: number;
  mean: number;
  lower: number;
  upper: number;
}

export interface DelongEntry {
  fraction: number;
  seed: number;
  pretrained: string;
  baseline: string;
  aurocPretrained: number;
  aurocBaseline: number;
  difference: number;
  p: number;
}

export interface ReachEntry {
  init: string;
  fraction: number;
  level: number;
  meanIterations: number | null;
  runsReaching: number;
  runs: number;
}

export interface CellEntry {
  init: string;
  initLabel: string;
  fraction: number;
  seed: number;
  status: string;
  runDir: string;
  results: Record<string, unknown> | null;
}

export interface ReportView {
  name: string;
  task: 'classification' | 'segmentation';
  metric: 'auroc' | 'dice';
  summary: SummaryEntry[];
  delong: DelongEntry[];
  reach: ReachEntry[];
  cells: CellEntry[];
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const rec = (v: unknown): Record<string, unknown> | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.map(rec).filter((x): x is Record<string, unknown> => x !== null) : []);

/** The report as the page shows it; entries with missing fields are dropped (NaN means are kept as NaN). */
export function readReport(raw: Record<string, unknown> | null | undefined): ReportView | null {
  if (!raw) return null;
  const task = raw.task === 'segmentation' ? 'segmentation' : raw.task === 'classification' ? 'classification' : null;
  if (!task) return null;
  const nanOr = (v: unknown) => num(v) ?? NaN;
  const summary: SummaryEntry[] = [];
  for (const s of list(raw.summary)) {
    const init = str(s.init);
    const fraction = num(s.fraction);
    if (init === null || fraction === null) continue;
    summary.push({ init, fraction, n: num(s.n) ?? 0, mean: nanOr(s.mean), lower: nanOr(s.lower), upper: nanOr(s.upper) });
  }
  const delong: DelongEntry[] = [];
  for (const d of list(raw.delong)) {
    const fraction = num(d.fraction);
    const p = num(d.p);
    if (fraction === null || p === null) continue;
    delong.push({
      fraction,
      seed: num(d.seed) ?? 0,
      pretrained: str(d.pretrained) ?? '?',
      baseline: str(d.baseline) ?? '?',
      aurocPretrained: nanOr(d.aurocPretrained),
      aurocBaseline: nanOr(d.aurocBaseline),
      difference: nanOr(d.difference),
      p,
    });
  }
  const reach: ReachEntry[] = [];
  for (const r of list(raw.iterationsToReach)) {
    const fraction = num(r.fraction);
    if (fraction === null) continue;
    reach.push({ init: str(r.init) ?? '?', fraction, level: num(r.level) ?? NaN, meanIterations: num(r.meanIterations), runsReaching: num(r.runsReaching) ?? 0, runs: num(r.runs) ?? 0 });
  }
  const cells: CellEntry[] = [];
  for (const c of list(raw.cells)) {
    const init = str(c.init);
    const fraction = num(c.fraction);
    if (init === null || fraction === null) continue;
    cells.push({ init, initLabel: str(c.initLabel) ?? init, fraction, seed: num(c.seed) ?? 0, status: str(c.status) ?? '?', runDir: str(c.runDir) ?? '', results: rec(c.results) });
  }
  return { name: str(raw.name) ?? '', task, metric: raw.metric === 'dice' || task === 'segmentation' ? 'dice' : 'auroc', summary, delong, reach, cells };
}

/** Initialisation keys in first-seen order with their labels (from the cells; the key itself when unknown). */
export function initLabels(r: ReportView): { init: string; label: string }[] {
  const out = new Map<string, string>();
  for (const c of r.cells) if (!out.has(c.init)) out.set(c.init, c.initLabel);
  for (const s of r.summary) if (!out.has(s.init)) out.set(s.init, s.init === 'random' ? 'random init' : s.init === 'cnn' ? 'supervised CNN (scratch)' : s.init);
  return [...out].map(([init, label]) => ({ init, label }));
}

export interface SummaryTable {
  /** Column headers: the fractions, ascending, as percentages. */
  fractions: number[];
  headers: string[];
  rows: { init: string; label: string; cells: { text: string; mean: number | null; n: number; best: boolean }[] }[];
}

/** Mean [95% CI] per initialisation (rows) x fraction (columns); the best mean per fraction is marked. */
export function summaryTable(r: ReportView, digits = 3): SummaryTable {
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
      if (!s || !Number.isFinite(s.mean) || s.n === 0) return { text: NONE, mean: null, n: s?.n ?? 0, best: false };
      return {
        text: s.n > 1 ? withCi(s.mean, s.lower, s.upper, digits) : withCi(s.mean, undefined, undefined, digits),
        mean: s.mean,
        n: s.n,
        best: best.get(f) === s.mean,
      };
    }),
  }));
  return { fractions, headers: fractions.map((f) => percent(f)), rows };
}

/** DeLong rows ready to show, with significance at 0.05. */
export function delongRows(r: ReportView): { pretrained: string; baseline: string; fraction: string; seed: number; pretrainedAuroc: string; baselineAuroc: string; difference: string; p: string; significant: boolean }[] {
  return [...r.delong]
    .sort((a, b) => a.fraction - b.fraction || a.seed - b.seed || a.baseline.localeCompare(b.baseline))
    .map((d) => ({
      pretrained: d.pretrained,
      baseline: d.baseline,
      fraction: percent(d.fraction),
      seed: d.seed,
      pretrainedAuroc: withCi(d.aurocPretrained),
      baselineAuroc: withCi(d.aurocBaseline),
      difference: signed(d.difference),
      p: pValue(d.p),
      significant: d.p < 0.05,
    }));
}

/** Iterations-to-reach rows ready to show. */
export function reachRows(r: ReportView): { init: string; fraction: string; level: string; iterations: string; reaching: string }[] {
  return r.reach.map((x) => ({
    init: x.init,
    fraction: percent(x.fraction),
    level: Number.isFinite(x.level) ? String(x.level) : NONE,
    iterations: x.meanIterations === null ? 'not reached' : String(Math.round(x.meanIterations)),
    reaching: `${x.runsReaching} of ${x.runs}`,
  }));
}

/** The grid's runs with their held-out metric and interval (AUROC [CI] or Dice). */
export function cellRows(r: ReportView): { init: string; fraction: string; seed: number; status: string; metric: string; detail: string }[] {
  return r.cells.map((c) => {
    const res = c.results ?? {};
    const ci = Array.isArray(res.aurocCi95) ? (res.aurocCi95 as unknown[]) : [];
    const metric = typeof res.error === 'string' ? 'n/a' : r.metric === 'auroc' ? withCi(res.auroc, ci[0], ci[1]) : withCi(res.dice);
    const detail =
      typeof res.error === 'string'
        ? res.error
        : r.metric === 'auroc'
          ? `sens ${withCi(res.sensitivity)} · spec ${withCi(res.specificity)}`
          : `IoU ${withCi(res.iou)}`;
    return { init: c.initLabel, fraction: percent(c.fraction), seed: c.seed, status: c.status, metric: c.results ? metric : NONE, detail: c.results ? detail : '' };
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
