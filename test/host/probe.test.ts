import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crossValidatedProba, fitLogReg, fitStandardizer, predictProba, standardize, stratifiedFolds } from '../../src/core/probe/logreg';
import { probeChart, probeCsv } from '../../src/core/probe/report';
import { defaultOptions } from '../../src/core/synth/plan';
import { prepareProbe, runBiasProbe } from '../../src/host/probe';
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
    const r = await runBiasProbe(db, { encoders: [], attributes: ['sex'], folds: 2, outDir, onProgress: (done, total, what) => progress.push(`${what} ${done}/${total}`) });
    expect(progress).toContain('embedding 10/10');
    expect(r.scans).toBe(10);
    expect(r.scores).toEqual([expect.objectContaining({ attribute: 'sex', features: 'raw slice (16x16 px, no pretraining)', classes: ['F', 'M'], n: 10 })]);
    expect(r.scores[0].auroc).toBeGreaterThan(0.7); // the generator ties a strong trait to female patients
    // the report: the result as JSON (no more, no less), the scores, the chart and the page with the trainer's settings
    expect(r.files).toEqual({ json: join(outDir, 'bias-probe.json'), csv: join(outDir, 'bias-probe.csv'), svg: join(outDir, 'bias-probe.svg'), html: join(outDir, 'bias-probe.html') });
    expect(JSON.parse(readFileSync(r.files.json, 'utf8'))).toEqual(r);
    expect(Object.keys(r)).toEqual(['scans', 'middleSlices', 'scores', 'files', 'warnings']);
    expect(readFileSync(r.files.csv, 'utf8')).toBe(probeCsv(r.scores));
    expect(readFileSync(r.files.svg, 'utf8')).toMatch(/^<svg[\s\S]*chance/);
    expect(readFileSync(r.files.html, 'utf8')).toContain('10 scans; middle slice = largest body cross-section; logistic regression, 2-fold cross-validation (seed 1).');
  });

  it('refuses a cohort too small for the folds with the trainer\'s message, writing nothing', async () => {
    const outDir = join(tmp.dir, 'small');
    await expect(runBiasProbe(db, { encoders: [], folds: 6, outDir })).rejects.toThrow(/the cohort has 10 scans: the probe needs at least 12 for 6-fold cross-validation/);
    expect(existsSync(outDir)).toBe(false);
  });

  it('draws no chart when no attribute could be probed', () => {
    expect(probeChart({ attributes: ['sex'], features: ['raw'], scores: [] })).toBe('<svg xmlns="http://www.w3.org/2000/svg"/>');
  });
});
