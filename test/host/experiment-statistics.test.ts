/**
 * The statistics of an experiment report (src/host/experiment-statistics.ts) on made-up grid
 * cells, without training: per-seed and pooled patient-level comparisons with Holm, the patient
 * interval of a mean over seeds, results from before patient-level statistics, and the issue's
 * case of a slice-level DeLong p = 0.03 from 2 test patients.
 */
import { describe, expect, it } from 'vitest';
import { experimentStatistics, summaryKey } from '../../src/host/experiment-statistics';
import { delongTest, heldOutWarnings } from '../../src/core/metrics';
import { Rng } from '../../src/core/random';
import type { ClassificationResults, ExperimentCell } from '../../src/shared/results';

interface TestSet {
  labels: number[];
  patients: number[];
  /** The part of every model's score the patient and slice share (same for all runs). */
  latent: number[];
}

function testSet(rng: Rng, K: number, n: number): TestSet {
  const t: TestSet = { labels: [], patients: [], latent: [] };
  for (let k = 0; k < K; k++) {
    const u = rng.normal();
    const prev = 0.2 + 0.5 * rng.next();
    for (let i = 0; i < n; i++) {
      const y = rng.next() < prev ? 1 : 0;
      t.labels.push(y);
      t.patients.push(k);
      t.latent.push(0.5 * y + u + 0.5 * rng.normal());
    }
  }
  return t;
}

/** A run's results on the test set: the shared latent, `signal` x label, its own patient and slice noise. */
function results(rng: Rng, t: TestSet, signal: number, o: { patients?: boolean } = {}): ClassificationResults {
  const own = new Map<number, number>();
  const scores = t.latent.map((v, i) => {
    if (!own.has(t.patients[i])) own.set(t.patients[i], 0.8 * rng.normal());
    return v + signal * t.labels[i] + own.get(t.patients[i])! + 0.4 * rng.normal();
  });
  const positives = t.labels.reduce((a, y) => a + y, 0);
  const patients = new Set(t.patients).size;
  return {
    split: 'test',
    slices: t.labels.length,
    heldOut: true,
    task: 'classification',
    positives,
    auroc: delongTest(scores, scores, t.labels).auc1,
    aurocCi95: [0, 1],
    threshold: { method: 'youden', chosenOn: 'val', value: 0.5 },
    sensitivity: NaN,
    specificity: NaN,
    ppv: NaN,
    npv: NaN,
    roc: { fpr: [], tpr: [] },
    scores,
    labels: t.labels,
    ...(o.patients !== false && { patients, patientOfSlice: t.patients, ci: { unit: 'patient' as const, resamples: 2000, valid: 2000, seed: 1 }, warnings: heldOutWarnings({ what: 'test split', patients, positives }) }),
  };
}

const cell = (init: string, fraction: number, seed: number, r: ClassificationResults): ExperimentCell => ({
  init,
  initLabel: init === 'random' ? 'random init' : 'pretrained',
  fraction,
  seed,
  runDir: `/e/${init}-${fraction}-${seed}`,
  status: 'done',
  results: r,
});
const labelOf = (i: string) => (i === 'random' ? 'random init' : 'pretrained');

describe('experiment statistics', () => {
  it('compares per seed and pooled over seeds, Holm over all of them; intervals of the means are patient-level', () => {
    const rng = new Rng(1);
    const t = testSet(rng, 30, 12);
    const cells: ExperimentCell[] = [];
    for (const fraction of [0.1, 1])
      for (const seed of [1, 2, 3]) {
        cells.push(cell('random', fraction, seed, results(rng, t, 0.3)));
        // pretraining helps a lot at 10 %, not at 100 %
        cells.push(cell('/pre', fraction, seed, results(rng, t, fraction === 0.1 ? 2 : 0.3)));
      }
    const s = experimentStatistics(cells, { fractions: [0.1, 1], seeds: [1, 2, 3], labelOf, resamples: 500 });
    expect(s.comparisons).toHaveLength(8);
    expect(s.statistics.family).toBe(8);
    const pooled = s.comparisons.filter((c) => c.seed === null);
    expect(pooled.map((c) => [c.fraction, c.seeds])).toEqual([
      [0.1, [1, 2, 3]],
      [1, [1, 2, 3]],
    ]);
    const at10 = s.comparisons.filter((c) => c.fraction === 0.1);
    for (const c of at10) {
      expect(c.verdict).toBe('pretrained higher');
      expect(c.pHolm).toBeGreaterThanOrEqual(c.p);
      expect(c.ci95[0]).toBeGreaterThan(0);
      expect(c.sliceLevelP === null).toBe(c.seed === null);
      expect(c).toMatchObject({ patients: 30, slices: 360 });
    }
    // pooled: the mean of the per-seed AUROCs and differences
    const perSeed = at10.filter((c) => c.seed !== null);
    expect(pooled[0].difference).toBeCloseTo(perSeed.reduce((a, c) => a + c.difference, 0) / 3, 12);
    for (const c of s.comparisons.filter((x) => x.fraction === 1)) expect(c.verdict).toBe('no significant difference');
    // Holm: adjusted p in the same order as raw p, never below it
    const byP = [...s.comparisons].sort((a, b) => a.p - b.p);
    for (let i = 1; i < byP.length; i++) expect(byP[i].pHolm).toBeGreaterThanOrEqual(byP[i - 1].pHolm);
    // the mean over seeds with its patient-level interval
    const ci = s.patientCi.get(summaryKey('/pre', 0.1))!;
    const mean = cells.filter((c) => c.init === '/pre' && c.fraction === 0.1).reduce((a, c) => a + (c.results as ClassificationResults).auroc, 0) / 3;
    expect(ci[0]).toBeLessThan(mean);
    expect(ci[1]).toBeGreaterThan(mean);
    expect(s.warnings).toEqual([]);
    expect(s.statistics.method).toMatch(/30 held-out patients are resampled with replacement 500 times/);
  });

  it('results from before patient-level statistics: slice-level DeLong only, not testable, and a warning', () => {
    const rng = new Rng(2);
    const t = testSet(rng, 12, 10);
    const cells = [cell('random', 1, 1, results(rng, t, 0.3, { patients: false })), cell('/pre', 1, 1, results(rng, t, 1, { patients: false }))];
    const s = experimentStatistics(cells, { fractions: [1], seeds: [1], labelOf });
    expect(s.comparisons).toHaveLength(1);
    expect(s.comparisons[0]).toMatchObject({ verdict: 'not testable', seed: 1 });
    expect(s.comparisons[0].p).toBeNaN();
    expect(s.comparisons[0].sliceLevelP).toBeGreaterThan(0);
    expect(s.patientCi.get(summaryKey('random', 1))).toBeNull();
    expect(s.warnings[0]).toMatch(/^2 runs hold results from before patient-level statistics/);
  });

  it('gathers the runs’ warnings: each once, the bootstrap ones as one line; difference intervals stay within [-1, 1]', () => {
    const rng = new Rng(4);
    const t = testSet(rng, 3, 10);
    const with_ = (r: ClassificationResults, n: number) => ({ ...r, warnings: [...(r.warnings ?? []), `the AUROC was undefined in ${n} of 2000 resamples of the 3 patients (a resample without both classes): the interval is unreliable`] });
    const cells = [cell('random', 1, 1, with_(results(rng, t, 0.3), 500)), cell('/pre', 1, 1, with_(results(rng, t, 0.3), 510))];
    const s = experimentStatistics(cells, { fractions: [1], seeds: [1], labelOf, resamples: 300 });
    expect(s.warnings.filter((w) => /has 3 patients/.test(w))).toHaveLength(1);
    expect(s.warnings.filter((w) => /resamples/.test(w))).toEqual(['in 2 runs the metric was undefined in more than 10 % of the patient resamples (resamples without both classes): their intervals are unreliable']);
    const [lo, hi] = s.comparisons[0].ci95;
    expect(lo).toBeGreaterThanOrEqual(-1);
    expect(hi).toBeLessThanOrEqual(1);
  });

  it('2 test patients: where slice-level DeLong says p < 0.05, the patient-level test does not, and the report warns', () => {
    const rng = new Rng(3);
    let found = 0;
    for (let attempt = 0; attempt < 200 && found < 5; attempt++) {
      const t = testSet(rng, 2, 16);
      const pos = t.labels.reduce((a, y) => a + y, 0);
      if (pos < 2 || pos > 30) continue;
      const cells = [cell('random', 1, 1, results(rng, t, 0.3)), cell('/pre', 1, 1, results(rng, t, 0.3))];
      const s = experimentStatistics(cells, { fractions: [1], seeds: [1], labelOf, resamples: 400 });
      const c = s.comparisons[0];
      if (c.sliceLevelP === null || c.sliceLevelP >= 0.05) continue;
      found++;
      expect(c.p).not.toBeLessThan(0.05);
      expect(c.verdict).not.toMatch(/higher/);
      expect(c.patients).toBe(2);
      expect(s.warnings.some((w) => /the test split has 2 patients \(fewer than 10\)/.test(w))).toBe(true);
    }
    expect(found).toBeGreaterThan(0);
  });
});
