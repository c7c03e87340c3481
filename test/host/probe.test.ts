import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { crossValidatedProba, fitLogReg, fitStandardizer, predictProba, standardize, stratifiedFolds } from '../../src/core/probe/logreg';
import { probeChart, probeCsv } from '../../src/core/probe/report';
import { defaultOptions } from '../../src/core/synth/plan';
import { encoderSeenSeries, excludeEncoderScans, prepareProbe, runBiasProbe } from '../../src/host/probe';
import { createRun } from '../../src/host/runs/create-run';
import { startRun } from '../../src/host/runs/start-run';
import { openLibrary } from '../../src/library/db/schema';
import type { Database } from '../../src/library/db/sqlite';
import { indexFolders } from '../../src/library/indexing/indexer';
import { writeCohort } from '../../src/library/synth/synth-writer';
import { tempDir } from '../helpers';
import { aurocOvr, auroc } from '../../src/core/metrics/auroc';
import { Rng } from '../../src/core/random';

describe('logistic regression probe', () => {
  it('separates a linearly separable problem and gives calibrated-looking probabilities', () => {
    const n = 200;
    const d = 2;
    const rng = new Rng(1);
    const x = new Float64Array(n * d);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2;
      x[i * 2] = (y[i] ? 1 : -1) + 0.3 * (rng.next() - 0.5);
      x[i * 2 + 1] = rng.next();
    }
    const m = fitLogReg(x, y, n, d, 2, { l2: 1e-3, iterations: 500 });
    const p = predictProba(m, x, n);
    const s = Float64Array.from({ length: n }, (_, i) => p[i * 2 + 1]);
    expect(auroc(s, y)).toBe(1);
    expect(p[1 * 2 + 1]).toBeGreaterThan(0.8); // example 1 is class 1
    expect(p[0]).toBeGreaterThan(0.8); // example 0 is class 0
  });

  it('stratifies folds so every fold has every class', () => {
    const y = Int32Array.from({ length: 30 }, (_, i) => (i < 10 ? 0 : i < 20 ? 1 : 2));
    const folds = stratifiedFolds(y, 5, 3);
    for (let f = 0; f < 5; f++) for (let c = 0; c < 3; c++) expect([...y].filter((v, i) => v === c && folds[i] === f).length).toBe(2);
  });

  it('cross-validated AUROC is near 0.5 on noise and high on signal, deterministically', () => {
    const n = 120;
    const d = 8;
    const rng = new Rng(5);
    const noise = Float64Array.from({ length: n * d }, () => rng.next());
    const y = Int32Array.from({ length: n }, (_, i) => i % 3);
    const pNoise = crossValidatedProba(noise, y, n, d, 3, 5, 1);
    expect(Math.abs(aurocOvr(pNoise, y, 3).macro - 0.5)).toBeLessThan(0.15);
    const signal = noise.slice();
    for (let i = 0; i < n; i++) signal[i * d + y[i]] += 1.5;
    const pSig = crossValidatedProba(signal, y, n, d, 3, 5, 1);
    expect(aurocOvr(pSig, y, 3).macro).toBeGreaterThan(0.9);
    expect([...crossValidatedProba(signal, y, n, d, 3, 5, 1)]).toEqual([...pSig]);
  });

  it('standardises with training statistics', () => {
    const x = Float64Array.from([1, 10, 3, 30]);
    const s = fitStandardizer(x, 2, 2);
    expect([...s.mean]).toEqual([2, 20]);
    expect([...standardize(x, 2, 2, s)]).toEqual([-1, -1, 1, 1]);
  });
});

/**
 * The bias probe as `ctssl bias-probe` runs it: the host prepares the manifest from the library,
 * a real trainer process embeds and cross-validates, the host writes the report.
 */
describe('the bias probe, host and trainer halves', () => {
  const tmp = tempDir();
  let db: Database;
  beforeAll(async () => {
    const cohort = join(tmp.dir, 'cohort');
    await writeCohort({ ...defaultOptions(10, 5), slices: 8, size: 64, peFraction: 0.6, trait: 'sex', traitValue: 'F', traitStrength: 4 }, cohort, { jobs: 1 });
    db = openLibrary(join(tmp.dir, 'lib.sqlite'));
    await indexFolders(db, [cohort]);
  }, 240_000);
  afterAll(() => {
    db?.close();
    tmp.cleanup();
  });

  it('prepares the scans with their attributes, computes in a trainer process and writes the report', async () => {
    const manifest = prepareProbe(db, {});
    expect(manifest.scans).toHaveLength(10);
    expect(manifest.scans.every((s) => s.planes.length === 8 && ['F', 'M'].includes(s.attrs.sex))).toBe(true);
    const progress: string[] = [];
    const outDir = join(tmp.dir, 'probe');
    const r = await runBiasProbe(db, { encoders: [], attributes: ['sex'], folds: 2, cnn: { steps: 20 }, outDir, onProgress: (done, total, what) => progress.push(`${what} ${done}/${total}`) });
    expect(progress).toContain('embedding 10/10');
    expect(progress).toContain('training the CNN baseline (sex, 2 folds) 10/10');
    expect(r.scans).toBe(10);
    // The paper's baseline (a CNN from scratch on raw slices) first, the 16x16 logistic regression as an extra row.
    expect(r.scores).toEqual([
      expect.objectContaining({ attribute: 'sex', features: 'raw slice: CNN from scratch (encoder-classifier, tiny preset, 64x64 px)', classes: ['F', 'M'], n: 10 }),
      expect.objectContaining({ attribute: 'sex', features: 'raw slice: logistic regression (16x16 px)', classes: ['F', 'M'], n: 10 }),
    ]);
    expect(r.scores[0].auroc).toBeGreaterThanOrEqual(0);
    expect(r.scores[0].auroc).toBeLessThanOrEqual(1);
    expect(r.scores[1].auroc).toBeGreaterThan(0.7); // the generator ties a strong trait to female patients
    expect(r.excluded).toEqual({ scans: 0, byEncoder: [], unchecked: [], training: false });
    // the report: the result as JSON (no more, no less), the scores, the chart and the page with the trainer's settings
    expect(r.files).toEqual({ json: join(outDir, 'bias-probe.json'), csv: join(outDir, 'bias-probe.csv'), svg: join(outDir, 'bias-probe.svg'), html: join(outDir, 'bias-probe.html') });
    expect(JSON.parse(readFileSync(r.files.json, 'utf8'))).toEqual(r);
    expect(Object.keys(r)).toEqual(['scans', 'middleSlices', 'scores', 'files', 'warnings', 'excluded']);
    expect(readFileSync(r.files.csv, 'utf8')).toBe(probeCsv(r.scores));
    expect(readFileSync(r.files.svg, 'utf8')).toMatch(/^<svg[\s\S]*chance/);
    expect(readFileSync(r.files.html, 'utf8')).toContain('10 scans; middle slice = largest body cross-section; logistic regression, 2-fold cross-validation (seed 1). Baseline (the paper\'s): a CNN trained from scratch');
  }, 300_000);

  it("leaves out the scans a probed encoder trained or validated on (from its run manifest), and says how many", async () => {
    // An encoder pretrained on 2 patients, validated on 2: the probe keeps the 6 others.
    const run = createRun(
      db,
      { task: 'masked', preset: 'tiny', size: 32, steps: 1, batchSize: 2, checkpointEvery: 1, evalEvery: 1, evalBatches: 1, useCache: false, fractions: { train: 0.2, val: 0.2, test: 0.6 }, filter: { modality: 'CT' } },
      { dataDir: tmp.dir, dir: join(tmp.dir, 'encoder') },
    );
    expect((await startRun(db, run).done).status).toBe('done');
    const m = JSON.parse(readFileSync(join(run.dir, 'manifest.json'), 'utf8')) as { series: { seriesUid: string; split: string }[] };
    const seen = new Set(m.series.filter((x) => x.split !== 'test').map((x) => x.seriesUid));
    expect(seen.size).toBe(4);
    expect(encoderSeenSeries(run.dir)).toEqual(seen);
    // a curriculum stage sees what its parent saw
    const stage = createRun(db, { task: 'masked', maskPercent: 33, init: run.dir, steps: 1, useCache: false }, { dataDir: tmp.dir, dir: join(tmp.dir, 'stage') });
    expect(encoderSeenSeries(stage.dir)).toEqual(seen);

    const outDir = join(tmp.dir, 'held-out');
    const r = await runBiasProbe(db, { encoders: [run.dir], attributes: ['sex'], folds: 2, cnn: { steps: 5 }, outDir });
    expect(r.scans).toBe(6);
    expect(r.middleSlices.some((s) => seen.has(s.seriesUid))).toBe(false);
    expect(r.excluded).toEqual({ scans: 4, byEncoder: [{ encoder: 'encoder', scans: 4 }], unchecked: [], training: false });
    // the probed scans' sexes (a seeded cohort): both classes with 2+ scans are needed for 2 folds
    const kept = prepareProbe(db, {}).scans.filter((x) => !seen.has(x.seriesUid));
    const bothClasses = ['F', 'M'].every((v) => kept.filter((x) => x.attrs.sex === v).length >= 2);
    expect(r.scores.map((x) => x.features)).toEqual(
      bothClasses ? ['raw slice: CNN from scratch (encoder-classifier, tiny preset, 64x64 px)', 'raw slice: logistic regression (16x16 px)', expect.stringMatching(/^masked 20%.*\(tiny\)$/)] : [],
    );
    expect(readFileSync(r.files.html, 'utf8')).toContain('4 scans left out: in a probed encoder&#39;s training or validation split (4 of encoder)');

    // asked to: every scan, said to be not held out
    const all = await runBiasProbe(db, { encoders: [run.dir], attributes: ['sex'], folds: 2, cnn: { steps: 5 }, includeTrainingScans: true, outDir: join(tmp.dir, 'all') });
    expect(all.scans).toBe(10);
    expect(all.excluded).toMatchObject({ scans: 0, training: true });
    expect(all.warnings[0]).toMatch(/included \(--include-training-scans\): the probe is not on held-out scans/);

    // an encoder without a run manifest (trained elsewhere) cannot be checked, and says so
    const imported = join(tmp.dir, 'imported');
    cpSync(run.dir, imported, { recursive: true });
    rmSync(join(imported, 'manifest.json'));
    expect(excludeEncoderScans(prepareProbe(db, {}), [imported]).excluded).toEqual({ scans: 0, byEncoder: [], unchecked: ['imported'], training: false });

    // too few left: refused, saying why, before a trainer starts
    await expect(runBiasProbe(db, { encoders: [run.dir], folds: 4, outDir: join(tmp.dir, 'few') })).rejects.toThrow(
      /4 scans left out: in a probed encoder's training or validation split \(4 of encoder\); 6 remain: the probe needs at least 8 for 4-fold cross-validation/,
    );
  }, 300_000);

  it('refuses a cohort too small for the folds with the trainer\'s message, writing nothing', async () => {
    const outDir = join(tmp.dir, 'small');
    await expect(runBiasProbe(db, { encoders: [], folds: 6, outDir })).rejects.toThrow(/the cohort has 10 scans: the probe needs at least 12 for 6-fold cross-validation/);
    expect(existsSync(outDir)).toBe(false);
  });

  it('draws no chart when no attribute could be probed', () => {
    expect(probeChart({ attributes: ['sex'], features: ['raw'], scores: [] })).toBe('<svg xmlns="http://www.w3.org/2000/svg"/>');
  });
});
