/**
 * The statistics of an experiment's report, pure: patient-level intervals of the mean over seeds,
 * paired comparisons of each pretrained initialisation against each baseline (per seed, and pooled
 * over seeds), Holm's adjustment over the report's tests, and the report's warnings. The methods
 * are those of src/core/metrics/cluster.ts; README "Statistics" says what they mean for a reader.
 *
 * Runs compared must have been scored on the same held-out slices (same labels and patients, in
 * the same order: one patient split for the grid makes it so). All comparisons of a test set share
 * one set of patient resamples (common random numbers), so a seed reproduces the report.
 */
import type { ComparisonVerdict, ExperimentCell, FinetuneResults, PairedComparison, ReportStatistics } from '../shared/results';
import { delongTest } from '../core/metrics/classification';
import { ClusterResampler, WeightedAuroc, clusterDiffTest, holmAdjust, meanDifference, percentileClusterCi } from '../core/metrics';

export interface StatisticsOptions {
  fractions: readonly number[];
  seeds: readonly number[];
  /** Resamples of the patients (default 2000) and their seed (default 1). */
  resamples?: number;
  seed?: number;
  /** Significance level of the verdicts, on Holm-adjusted p (default 0.05). */
  alpha?: number;
  /** An initialisation's label. */
  labelOf: (init: string) => string;
}

export interface ExperimentStatistics {
  /** Per initialisation and fraction: the patient-level 95% interval of the mean over seeds. */
  patientCi: Map<string, [number, number] | null>;
  comparisons: PairedComparison[];
  statistics: ReportStatistics;
  warnings: string[];
}

/** A cell's classification results with an AUROC (not segmentation, not a split with one class). */
const scored = (r: FinetuneResults | null | undefined) => (r && r.task === 'classification' && !('error' in r) ? r : undefined);
const isBaseline = (init: string) => init === 'random' || init === 'cnn';
export const summaryKey = (init: string, fraction: number) => `${init}\u0000${fraction}`;
/** A run's warning about its own bootstrap (src/trainer/finetune/finetune-loop.ts). */
const UNRELIABLE = /was undefined in \d+ of \d+ resamples/;
/** An interval of an AUROC difference, within the difference's range [-1, 1]. */
const clipDiff = (lo: number, hi: number): [number, number] => [Math.max(-1, lo), Math.min(1, hi)];

/** The held-out slices a run was scored on, with what the patient-level statistics need. */
interface TestSet {
  key: string;
  labels: number[];
  patientOfSlice: number[] | null;
  patients: number;
  positives: number;
  resampler: ClusterResampler | null;
}

export function experimentStatistics(cells: readonly ExperimentCell[], o: StatisticsOptions): ExperimentStatistics {
  const resamples = o.resamples ?? 2000;
  const seed = o.seed ?? 1;
  const alpha = o.alpha ?? 0.05;
  const warnings: string[] = [];

  // Test sets by their slices' labels and patients; a resampler for each with patients.
  const sets = new Map<string, TestSet>();
  const setOf = new Map<ExperimentCell, TestSet>();
  for (const c of cells) {
    const r = scored(c.results);
    if (!r) continue;
    const patients = r.patientOfSlice && r.patientOfSlice.length === r.labels.length ? r.patientOfSlice : null;
    const key = `${r.labels.join('')}|${patients ? patients.join(',') : '-'}`;
    let set = sets.get(key);
    if (!set) {
      const positives = r.labels.reduce((a, y) => a + (y === 1 ? 1 : 0), 0);
      set = { key, labels: r.labels, patientOfSlice: patients, patients: patients ? new Set(patients).size : (r.patients ?? 0), positives, resampler: patients ? new ClusterResampler(patients, { nResamples: resamples, seed }) : null };
      sets.set(key, set);
    }
    setOf.set(c, set);
  }
  const old = cells.filter((c) => scored(c.results) && !setOf.get(c)?.resampler).length;
  if (old) warnings.push(`${old} run${old === 1 ? '' : 's'} hold results from before patient-level statistics (no patient per slice): their intervals are slice-level and they take no part in the patient-level tests; delete their results.json and resume to score them again`);
  if (new Set([...setOf.values()].filter((s) => s.resampler)).size > 1) warnings.push('the runs were not all scored on the same held-out slices: only runs scored on the same slices are compared');
  // The runs' own warnings, once each; those about a run's bootstrap (its numbers differ by run) as one line.
  let unreliable = 0;
  for (const c of cells) {
    const ws = c.results?.warnings ?? [];
    if (ws.some((w) => UNRELIABLE.test(w))) unreliable++;
    for (const w of ws) if (!UNRELIABLE.test(w) && !warnings.includes(w)) warnings.push(w);
  }
  if (unreliable)
    warnings.push(`in ${unreliable} run${unreliable === 1 ? '' : 's'} the metric was undefined in more than 10 % of the patient resamples (resamples without both classes): ${unreliable === 1 ? 'its interval is' : 'their intervals are'} unreliable`);

  // AUROC of every resample, per cell (computed once, shared by the summary and the tests).
  const reps = new Map<ExperimentCell, Float64Array>();
  const replicates = (c: ExperimentCell): Float64Array => {
    let v = reps.get(c);
    if (!v) {
      const r = scored(c.results)!;
      const wa = new WeightedAuroc(r.scores);
      v = setOf.get(c)!.resampler!.replicate((w) => wa.value(w, r.labels));
      reps.set(c, v);
    }
    return v;
  };
  const cellAt = (init: string, fraction: number, seed: number) => cells.find((c) => c.init === init && c.fraction === fraction && c.seed === seed);
  const inits = [...new Set(cells.map((c) => c.init))];

  // The patient-level interval of the mean over seeds, on the test set most of its runs share.
  const patientCi = new Map<string, [number, number] | null>();
  for (const init of inits)
    for (const fraction of o.fractions) {
      const withPatients = cells.filter((c) => c.init === init && c.fraction === fraction && setOf.get(c)?.resampler);
      const set = mostCommon(withPatients.map((c) => setOf.get(c)!));
      const use = withPatients.filter((c) => setOf.get(c) === set);
      if (!set || use.length === 0) {
        patientCi.set(summaryKey(init, fraction), null);
        continue;
      }
      const r = use.map(replicates);
      const mean = Float64Array.from({ length: resamples }, (_, b) => r.reduce((a, x) => a + x[b], 0) / r.length);
      const estimate = use.reduce((a, c) => a + scored(c.results)!.auroc, 0) / use.length;
      const ci = percentileClusterCi(estimate, mean, set.patients);
      patientCi.set(summaryKey(init, fraction), [ci.lower, ci.upper]);
    }

  // Paired comparisons: per seed, then pooled over the seeds both have on one test set.
  const rows: Omit<PairedComparison, 'pHolm' | 'verdict'>[] = [];
  for (const p of inits.filter((i) => !isBaseline(i)))
    for (const b of inits.filter(isBaseline))
      for (const fraction of o.fractions) {
        const pairs: { cp: ExperimentCell; cb: ExperimentCell; set: TestSet; seed: number }[] = [];
        for (const s of o.seeds) {
          const cp = cellAt(p, fraction, s);
          const cb = cellAt(b, fraction, s);
          const rp = scored(cp?.results);
          const rb = scored(cb?.results);
          if (!cp || !cb || !rp || !rb || rp.scores.length !== rb.scores.length || setOf.get(cp)!.labels.join('') !== setOf.get(cb)!.labels.join('')) continue;
          const set = setOf.get(cp)!;
          const same = set === setOf.get(cb);
          let sliceLevelP: number | null = null;
          try {
            sliceLevelP = delongTest(rp.scores, rb.scores, rp.labels).pValue;
          } catch {
            /* fewer than 2 of a class: no DeLong */
          }
          const test = same && set.resampler ? clusterDiffTest(rp.auroc - rb.auroc, meanDifference([{ a: replicates(cp), b: replicates(cb) }]), set.patients) : null;
          if (same && set.resampler) pairs.push({ cp, cb, set, seed: s });
          rows.push({
            pretrained: o.labelOf(p),
            baseline: o.labelOf(b),
            fraction,
            seed: s,
            seeds: [s],
            aurocPretrained: rp.auroc,
            aurocBaseline: rb.auroc,
            difference: rp.auroc - rb.auroc,
            ci95: test ? clipDiff(test.lower, test.upper) : [NaN, NaN],
            p: test ? test.pValue : NaN,
            patients: set.patients,
            slices: set.labels.length,
            positives: set.positives,
            sliceLevelP: sliceLevelP !== null && Number.isFinite(sliceLevelP) ? sliceLevelP : null,
          });
        }
        const set = mostCommon(pairs.map((x) => x.set));
        const pooled = pairs.filter((x) => x.set === set);
        if (set && pooled.length >= 2) {
          const ap = pooled.reduce((a, x) => a + scored(x.cp.results)!.auroc, 0) / pooled.length;
          const ab = pooled.reduce((a, x) => a + scored(x.cb.results)!.auroc, 0) / pooled.length;
          const test = clusterDiffTest(ap - ab, meanDifference(pooled.map((x) => ({ a: replicates(x.cp), b: replicates(x.cb) }))), set.patients);
          rows.push({
            pretrained: o.labelOf(p),
            baseline: o.labelOf(b),
            fraction,
            seed: null,
            seeds: pooled.map((x) => x.seed),
            aurocPretrained: ap,
            aurocBaseline: ab,
            difference: ap - ab,
            ci95: clipDiff(test.lower, test.upper),
            p: test.pValue,
            patients: set.patients,
            slices: set.labels.length,
            positives: set.positives,
            sliceLevelP: null,
          });
        }
      }
  const adjusted = holmAdjust(rows.map((r) => r.p));
  const comparisons: PairedComparison[] = rows.map((r, i) => ({ ...r, pHolm: adjusted[i], verdict: verdictOf(r.difference, adjusted[i], alpha) }));
  const family = adjusted.filter(Number.isFinite).length;
  const patients = [...new Set([...sets.values()].filter((s) => s.resampler).map((s) => s.patients))];
  const statistics: ReportStatistics = {
    resamples,
    seed,
    family,
    alpha,
    method: [
      `Intervals and tests are patient-level: the ${patients.length === 1 ? patients[0] : patients.join(' or ')} held-out patients are resampled with replacement ${resamples} times (seed ${seed}; the same resamples for every run) and each AUROC is recomputed on all slices of the drawn patients.`,
      'A comparison resamples the patients once for both runs and recomputes the difference; its standard error (times √(K/(K−1)) for K patients) and Student’s t with K − 1 degrees of freedom give the 95% interval (clipped to [−1, 1]) and the two-sided p, so that a handful of patients cannot give a small p.',
      'Pooled rows average the difference over the seeds both initialisations have (the patients drawn once per resample for all seeds).',
      `p-values are adjusted by Holm over the ${family} patient-level test${family === 1 ? '' : 's'} of this report (per seed and pooled together); a verdict needs adjusted p < ${alpha}.`,
      'The slice-level DeLong p assumes independent slices, which slices of one patient are not: it is shown for reference only.',
    ].join(' '),
  };
  return { patientCi, comparisons, statistics, warnings };
}

function verdictOf(difference: number, pHolm: number, alpha: number): ComparisonVerdict {
  if (!Number.isFinite(pHolm)) return 'not testable';
  if (pHolm >= alpha) return 'no significant difference';
  return difference > 0 ? 'pretrained higher' : 'baseline higher';
}

function mostCommon<T>(xs: readonly T[]): T | undefined {
  const n = new Map<T, number>();
  for (const x of xs) n.set(x, (n.get(x) ?? 0) + 1);
  let best: T | undefined;
  let max = 0;
  for (const [x, k] of n) if (k > max) [best, max] = [x, k];
  return best;
}
