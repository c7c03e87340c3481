/**
 * The patient-level (cluster) bootstrap of src/core/metrics/cluster.ts against an independent
 * implementation with Debian's python3-numpy and python3-scipy (cluster_reference.py beside this
 * file, one python process for every case), on clustered random data: patients with random
 * effects on score and prevalence, slices correlated within a patient (AR(1) along the slices),
 * two models sharing part of their signal, scores with and without ties.
 *
 * The two sides cannot draw the same resamples (different generators), so both use B = 20000
 * resamples and are compared with Monte Carlo tolerances: the AUROC exactly (Mann-Whitney in
 * scipy), the percentile interval within 0.01 (also of the pooled Dice of per-slice overlap counts), the bootstrap standard error of the difference
 * within 3%, the t-based p within 0.01 and the percentile p (a count of resamples) within 0.03.
 * Holm's adjustment is compared exactly.
 * Skipped with a message when /usr/bin/python3 lacks numpy or scipy
 * (apt-get install python3-numpy python3-scipy).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { aurocClusterCi, aurocDiffClusterTest, ClusterResampler, diceClusterCi, holmAdjust, type OverlapCounts } from '../../../src/core/metrics';
import { Rng } from '../../../src/core/random';
import { root } from '../../helpers';

const PY = '/usr/bin/python3';
const hasScipy = existsSync(PY) && spawnSync(PY, ['-c', 'import numpy, scipy.stats']).status === 0;
if (!hasScipy) console.warn('[metrics-cluster-reference.test] /usr/bin/python3 with numpy/scipy not found (apt-get install python3-numpy python3-scipy): the comparisons are skipped');

const B = 20000;

interface Case {
  name: string;
  scores: number[][];
  labels: number[];
  patients: number[];
  resamples: number;
  /** Per-slice overlap counts of a segmentation, for the pooled Dice. */
  dice?: { tp: number[]; fp: number[]; fn: number[] };
}

/**
 * K patients with 4-40 slices each; per patient a random effect on the score and on the
 * prevalence; each model's slice noise is AR(1) along the slices (rho 0.7).
 */
function clustered(rng: Rng, name: string, K: number, o: { shift: number; prevalence: number; digits?: number }): Case {
  const labels: number[] = [];
  const patients: number[] = [];
  const a: number[] = [];
  const b: number[] = [];
  const round = (v: number) => (o.digits === undefined ? v : Number(v.toFixed(o.digits)));
  for (let k = 0; k < K; k++) {
    const n = rng.intBetween(4, 40);
    const u = rng.normal();
    const ua = 0.5 * rng.normal();
    const ub = 0.5 * rng.normal();
    const prev = 1 / (1 + Math.exp(-(Math.log(o.prevalence / (1 - o.prevalence)) + 1.5 * rng.normal())));
    let ea = rng.normal();
    let eb = rng.normal();
    for (let i = 0; i < n; i++) {
      ea = 0.7 * ea + Math.sqrt(1 - 0.49) * rng.normal();
      eb = 0.7 * eb + Math.sqrt(1 - 0.49) * rng.normal();
      const y = rng.next() < prev ? 1 : 0;
      labels.push(y);
      patients.push(1000 + k * 7); // any numbers: keys, not indices
      a.push(round(o.shift * y + u + ua + 0.8 * ea));
      b.push(round(0.8 * o.shift * y + u + ub + 0.8 * eb));
    }
  }
  return { name, scores: [a, b], labels, patients, resamples: B };
}

/** Per-slice TP / FP / FN of a segmentation whose quality varies by patient. */
function withDice(rng: Rng, c: Case): Case {
  const quality = new Map<number, number>();
  const dice = { tp: [] as number[], fp: [] as number[], fn: [] as number[] };
  for (const [i, p] of c.patients.entries()) {
    if (!quality.has(p)) quality.set(p, Math.min(0.95, Math.max(0.05, 0.6 + 0.2 * rng.normal())));
    const q = quality.get(p)!;
    const area = c.labels[i] ? rng.intBetween(20, 400) : 0;
    const tp = Math.round(area * q);
    dice.tp.push(tp);
    dice.fn.push(area - tp);
    dice.fp.push(Math.round(rng.next() * (1 - q) * 100));
  }
  return { ...c, dice };
}

const rng = new Rng(20240601);
const cases: Case[] = [
  clustered(rng, '30 patients', 30, { shift: 1, prevalence: 0.3 }),
  clustered(rng, '12 patients, scores with ties', 12, { shift: 1.2, prevalence: 0.4, digits: 1 }),
  clustered(rng, '60 patients, low prevalence', 60, { shift: 0.8, prevalence: 0.1 }),
];
cases[0] = withDice(rng, cases[0]);
const holmCases = [
  [0.01, 0.04, 0.03, 0.005],
  [0.2, 0.2, 0.01, 0.5, 0.049, 0.001],
  Array.from({ length: 12 }, () => rng.next() * 0.2),
];

interface Ref {
  cases: {
    patients: number;
    models: { auroc: number; lower: number; upper: number; valid: number }[];
    dice?: { dice: number; lower: number; upper: number };
    diff: { estimate: number; se: number; t: number; p: number; lower: number; upper: number; percentileLower: number; percentileUpper: number; percentileP: number };
  }[];
  holm: number[][];
}

describe.skipIf(!hasScipy)('patient-level bootstrap against numpy/scipy (cluster_reference.py)', () => {
  let ref: Ref;
  beforeAll(() => {
    const r = spawnSync(PY, [join(root, 'test', 'core', 'metrics', 'cluster_reference.py')], { input: JSON.stringify({ cases, holm: holmCases }), encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`cluster_reference.py failed: ${r.stderr}`);
    ref = JSON.parse(r.stdout) as Ref;
  }, 180_000);

  for (const [i, c] of cases.entries())
    it(`AUROC, its interval and the paired test agree: ${c.name}`, () => {
      const want = ref.cases[i];
      const resampler = new ClusterResampler(c.patients, { nResamples: B, seed: 7 });
      expect(resampler.clusters).toBe(want.patients);
      const table: Record<string, unknown>[] = [];
      for (const [m, scores] of c.scores.entries()) {
        const ci = aurocClusterCi(scores, c.labels, resampler);
        const w = want.models[m];
        expect(ci.estimate).toBeCloseTo(w.auroc, 12);
        expect(Math.abs(ci.lower - w.lower)).toBeLessThan(0.01);
        expect(Math.abs(ci.upper - w.upper)).toBeLessThan(0.01);
        expect(Math.abs(ci.nValid - w.valid) / B).toBeLessThan(0.01);
        table.push({ model: m, auroc: ci.estimate, ts: [ci.lower, ci.upper], py: [w.lower, w.upper] });
      }
      if (c.dice) {
        const counts: OverlapCounts[] = c.dice.tp.map((tp, j) => ({ tp, fp: c.dice!.fp[j], fn: c.dice!.fn[j] }));
        const ci = diceClusterCi(counts, resampler);
        expect(ci.estimate).toBeCloseTo(want.dice!.dice, 12);
        expect(Math.abs(ci.lower - want.dice!.lower)).toBeLessThan(0.01);
        expect(Math.abs(ci.upper - want.dice!.upper)).toBeLessThan(0.01);
        table.push({ dice: ci.estimate, ts: [ci.lower, ci.upper], py: [want.dice!.lower, want.dice!.upper] });
      }
      const d = aurocDiffClusterTest([{ a: c.scores[0], b: c.scores[1] }], c.labels, resampler);
      const w = want.diff;
      expect(d.estimate).toBeCloseTo(w.estimate, 12);
      expect(Math.abs(d.se / w.se - 1)).toBeLessThan(0.03);
      expect(Math.abs(d.pValue - w.p)).toBeLessThan(0.01);
      expect(Math.abs(d.lower - w.lower)).toBeLessThan(0.01);
      expect(Math.abs(d.upper - w.upper)).toBeLessThan(0.01);
      expect(Math.abs(d.percentile.lower - w.percentileLower)).toBeLessThan(0.01);
      expect(Math.abs(d.percentile.upper - w.percentileUpper)).toBeLessThan(0.01);
      // A count of resamples: its Monte Carlo sd is up to 2 sqrt(0.25 / B) = 0.007 on each side.
      expect(Math.abs(d.percentile.pValue - w.percentileP)).toBeLessThan(0.03);
      table.push({ diff: d.estimate, se: [d.se, w.se], p: [d.pValue, w.p], ci: [d.lower, d.upper, w.lower, w.upper], percentileP: [d.percentile.pValue, w.percentileP] });
      console.log(`[cluster reference] ${c.name}: ${c.labels.length} slices\n${table.map((r) => JSON.stringify(r, (_, v) => (typeof v === 'number' ? +v.toFixed(4) : v))).join('\n')}`);
    });

  it('Holm adjustment is the textbook one', () => {
    for (const [i, ps] of holmCases.entries()) {
      const got = holmAdjust(ps);
      ref.holm[i].forEach((v, j) => expect(got[j]).toBeCloseTo(v, 14));
    }
  });
});
