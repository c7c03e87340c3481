import { describe, expect, it } from 'vitest';
import type { DoctorInfo, LabelFinding, RunSummary } from '../../src/shared/types';
import type { SslEvaluation } from '../../src/shared/results';
import { parseArgs } from '../../src/shared/contract';
import { parseRunConfig } from '../../src/shared/run-config';

/** What the contract accepts from the renderer for runs.create (the pretraining request: init by run id). */
const parsePretrainConfig = (c: unknown) => {
  const [r] = parseArgs('runs.create', [c as never]);
  if (r.kind !== 'pretrain') throw new Error('not a pretraining request');
  return r;
};
import {
  applyPretrainInit,
  applyRecipe,
  canInitFrom,
  defaultRunForm,
  largestBatch,
  nextCurriculumConfig,
  params,
  runFormProblems,
  runLabel,
  toRunConfig,
} from '../../src/renderer/src/runs/run-form';
import { alignLines, appendPoint, decimate, fromMetrics, mergeCurves, metricNames } from '../../src/renderer/src/runs/curves';
import { nextCurriculumStage } from '../../src/shared/pretext-tasks';
import { absDiff, className, diffRgba, diffStats, greyRgba } from '../../src/renderer/src/runs/sample-image';
import { meanSd, PAPER_TABLE2, paperRowFor, TABLE2_LEGEND, table2Row, taskName } from '../../src/renderer/src/evaluate/table2';
import { labelPathProblem } from '../../src/renderer/src/labels/labels-import-paths';
import { composeOverlay, hexToRgb, nextLabelled } from '../../src/renderer/src/viewer/label-overlay';
import { groupFindings } from '../../src/renderer/src/viewer/label-groups';
import { cameraFor, imageRect, screenToVoxel, zoomAt, FIT } from '../../src/renderer/src/viewer/slice-geometry';
import { parseHash, routeHash } from '../../src/renderer/src/lib/routes';
import { noFilters, paperCohort, toCohortFilter } from '../../src/renderer/src/library/cohort';
import { actionFor } from '../../src/renderer/src/viewer/shortcuts';

const run = (over: Partial<RunSummary>): RunSummary => ({
  id: 1,
  active: false,
  name: '',
  kind: 'pretrain',
  task: 'masked',
  status: 'done',
  dir: '/data/runs/r1',
  preset: 'tiny',
  config: parseRunConfig({ task: 'masked', maskPercent: 5, maskDefinition: 'area', preset: 'tiny', size: 32, batchSize: 4, steps: 10, lr: 0.001, seed: 3, filter: { modality: 'CT' } }),
  backend: '',
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
  step: 10,
  totalSteps: 10,
  manifestHash: '',
  parentDir: '',
  summary: {},
  error: '',
  ...over,
});

describe('run form', () => {
  it('makes a request the contract accepts, with the cohort filter, only the chosen loss weights and the init run by id', () => {
    const f = { ...defaultRunForm(), size: 32, steps: 24, batchSize: 4, wSsim: 0.2, init: '7' };
    const c = toRunConfig(f, { filter: { modality: 'CT', maxThickness: 3 } });
    const parsed = parsePretrainConfig(c);
    expect(parsed.filter).toEqual({ modality: 'CT', maxThickness: 3 });
    expect(parsed.lossWeights).toEqual({ ssim: 0.2 });
    expect(parsed.steps).toBe(24);
    expect(parsed.epochs).toBeUndefined();
    expect(parsed.size).toBe(32);
    expect(parsed.init).toBe(7);
    const byEpochs = parsePretrainConfig(toRunConfig({ ...defaultRunForm(), lengthBy: 'epochs', epochs: 2 }, { seriesIds: [3, 4] }));
    expect(byEpochs.epochs).toBe(2);
    expect(byEpochs.steps).toBeUndefined();
    expect(byEpochs.seriesIds).toEqual([3, 4]);
    expect(byEpochs.size).toBeUndefined();
  });

  it("the reference recipe: choosing it sets the fields it fixes, a change to one is a problem, and the request says 'reference'", () => {
    const ref = applyRecipe(defaultRunForm(), 'reference');
    expect(ref).toMatchObject({ recipe: 'reference', batchSize: 16, maskDefinition: 'side', scaling: 'minmax', optimizer: 'radam', lr: 1e-3 });
    expect(runFormProblems(ref)).toEqual({});
    const parsed = parsePretrainConfig(toRunConfig(ref, { filter: {} }));
    expect(parsed).toMatchObject({ recipe: 'reference', batchSize: 16, codebookInit: 'uniform', scaling: 'minmax', channels: 3 });
    expect(runFormProblems({ ...ref, batchSize: 8 })).toEqual({ batchSize: 'the reference recipe uses batch 16' });
    expect(Object.keys(runFormProblems({ ...ref, scaling: 'fixed', maskDefinition: 'area' })).sort()).toEqual(['maskDefinition', 'scaling']);
    // back to ours: our values, and the request is ours
    const ours = applyRecipe(ref, 'ours');
    expect(ours).toMatchObject({ recipe: 'ours', batchSize: 8, maskDefinition: 'area', scaling: 'fixed' });
    expect(parsePretrainConfig(toRunConfig(ours, { filter: {} }))).toMatchObject({ recipe: 'ours', codebookInit: 'data' });
  });

  it('names the fields that are wrong', () => {
    expect(runFormProblems(defaultRunForm())).toEqual({});
    const bad = runFormProblems({ ...defaultRunForm(), batchSize: 0, steps: 1.5, lr: 2, size: 8, wVq: Number.NaN });
    expect(Object.keys(bad).sort()).toEqual(['batchSize', 'lr', 'size', 'steps', 'wVq']);
    expect(runFormProblems({ ...defaultRunForm(), lengthBy: 'epochs', steps: -1, epochs: 0 })).toEqual({ epochs: expect.any(String) });
  });

  it('continuing from a run takes its window and scaling; random initialisation keeps the form', () => {
    const lung = run({ id: 2, dir: '/data/runs/lung', config: { ...run({}).config, windowLevel: -600, windowWidth: 1500, scaling: 'minmax' } });
    const f = { ...defaultRunForm(), windowLevel: 40, windowWidth: 400 };
    expect(applyPretrainInit(f, '2', [run({}), lung])).toMatchObject({ init: '2', windowLevel: -600, windowWidth: 1500, scaling: 'minmax' });
    expect(applyPretrainInit(f, '', [lung])).toMatchObject({ init: '', windowLevel: 40, windowWidth: 400, scaling: 'fixed' });
    // a run that is no longer listed: the form is left as it is
    expect(applyPretrainInit(f, '9', [run({})])).toMatchObject({ init: '9', windowLevel: 40, windowWidth: 400 });
    // a reference run's next stage is a reference run: the recipe and its values
    const ref = run({ id: 3, config: { ...run({}).config, recipe: 'reference', batchSize: 16, scaling: 'minmax', maskDefinition: 'side' } as RunSummary['config'] });
    const stage = applyPretrainInit(f, '3', [ref]);
    expect(stage).toMatchObject({ init: '3', recipe: 'reference', batchSize: 16, maskDefinition: 'side', scaling: 'minmax' });
    expect(runFormProblems(stage)).toEqual({});
    expect(applyPretrainInit(f, '2', [lung]).recipe).toBe('ours');
  });

  it('chains the masked-region curriculum 5 -> 10 -> 20 -> 33 from finished runs only', () => {
    expect([5, 10, 20, 33].map((maskPercent) => nextCurriculumStage({ task: 'masked', maskPercent })?.value ?? null)).toEqual([10, 20, 33, null]);
    const next = nextCurriculumConfig(run({}))!;
    expect(next.maskPercent).toBe(10);
    expect(next.init).toBe(1);
    expect(next.filter).toEqual({ modality: 'CT' });
    expect(parsePretrainConfig(next).task).toBe('masked');
    expect(nextCurriculumConfig(run({ status: 'running' }))).toBeNull();
    expect(nextCurriculumConfig(run({ task: 'flip' }))).toBeNull();
    expect(nextCurriculumConfig(run({ config: parseRunConfig({ task: 'masked', maskPercent: 33, steps: 10 }) }))).toBeNull();
  });

  it('offers finished, stopped-with-weights and imported runs as initialisations', () => {
    expect(canInitFrom(run({}))).toBe(true);
    expect(canInitFrom(run({ status: 'stopped', step: 3 }))).toBe(true);
    expect(canInitFrom(run({ status: 'stopped', step: 0 }))).toBe(false);
    expect(canInitFrom(run({ status: 'running' }))).toBe(false);
    expect(canInitFrom(run({ kind: 'imported' }))).toBe(true);
    expect(canInitFrom(run({ kind: 'finetune' }))).toBe(false);
  });

  it('labels runs and scales the doctor’s batch advice with the input area', () => {
    expect(runLabel(run({}))).toBe('masked 5% · tiny 32px');
    expect(runLabel(run({ name: 'mine' }))).toBe('mine');
    expect(runLabel(run({ task: 'flip', config: parseRunConfig({ task: 'flip', steps: 10 }) }))).toBe('flip · tiny');
    const doctor = { presets: [{ preset: 'tiny', size: 64, params: 13595, activationsPerImageMb: 1, largestBatch: 40, gpuRecommended: false }] } as unknown as DoctorInfo;
    expect(largestBatch(doctor, 'tiny', null)).toBe(40);
    expect(largestBatch(doctor, 'tiny', 128)).toBe(10);
    expect(largestBatch(doctor, 'tiny', 32)).toBe(160);
    expect(largestBatch(doctor, 'paper', null)).toBeNull();
    expect(params(13595)).toBe('13.6 k');
    expect(params(101337283)).toBe('101.3 M');
  });
});

describe('curves', () => {
  it('grows from events, replaces repeated steps after a resume, and merges with loaded metrics', () => {
    const live = new Map();
    appendPoint(live, 'train', 1, { loss: 1, mse: 0.5 });
    appendPoint(live, 'train', 2, { loss: 0.9, mse: Number.NaN });
    appendPoint(live, 'train', 3, { loss: 0.8 });
    appendPoint(live, 'train', 2, { loss: 0.95 }); // resumed from a checkpoint at step 1
    expect(live.get('train/loss')).toEqual({ split: 'train', name: 'loss', steps: [1, 2], values: [1, 0.95] });
    expect(live.get('train/mse').steps).toEqual([1]);
    const loaded = fromMetrics({ runId: 1, series: [{ split: 'train', name: 'loss', steps: [1], values: [1] }] });
    const merged = mergeCurves(loaded, live);
    expect(merged.get('train/loss')!.steps).toEqual([1, 2]);
    expect(metricNames(merged)).toEqual(['loss', 'mse']);
  });

  it('aligns lines with different steps for uPlot', () => {
    expect(alignLines([{ steps: [1, 2, 3], values: [1, 2, 3] }, { steps: [2, 4], values: [20, 40] }])).toEqual([
      [1, 2, 3, 4],
      [1, 2, 3, null],
      [null, 20, null, 40],
    ]);
    expect(alignLines([])).toEqual([[]]);
  });

  it('draws a long curve with a bounded number of points, keeping its ends, spikes and order', () => {
    const n = 100_000;
    const steps = Array.from({ length: n }, (_, i) => i + 1);
    const values = steps.map((s) => 1 / s);
    values[54_321] = 5; // a spike
    values[77_777] = -3; // a dip
    const d = decimate(steps, values, 600);
    expect(d.steps.length).toBeLessThanOrEqual(600);
    expect(d.steps.length).toBeGreaterThan(500);
    expect(d.steps[0]).toBe(1);
    expect(d.steps.at(-1)).toBe(n);
    expect(d.steps).toEqual([...d.steps].sort((a, b) => a - b));
    expect(d.steps).toContain(54_322);
    expect(d.steps).toContain(77_778);
    expect(Math.max(...d.values)).toBe(5);
    expect(Math.min(...d.values)).toBe(-3);
    // Every point drawn is a point of the curve.
    d.steps.forEach((s, i) => expect(d.values[i]).toBe(values[s - 1]));
    // A short curve is drawn as it is.
    expect(decimate([1, 2, 3], [3, 2, 1], 600)).toEqual({ steps: [1, 2, 3], values: [3, 2, 1] });
  });

  it('orders losses first', () => {
    const set = fromMetrics({ runId: 1, series: ['zeta', 'ssim', 'slicesPerSecond', 'loss', 'vq'].map((name) => ({ split: 'train', name, steps: [1], values: [1] })) });
    expect(metricNames(set)).toEqual(['loss', 'vq', 'ssim', 'zeta']);
  });
});

describe('sample images', () => {
  it('draws [0, 1] as grey, clamps, and the difference on a hot ramp', () => {
    const rgba = greyRgba(new Float32Array([0, 0.5, 1, 2, Number.NaN]));
    expect([...rgba.filter((_, i) => i % 4 === 0)]).toEqual([0, 128, 255, 255, 0]);
    expect(rgba[3]).toBe(255);
    const d = absDiff(new Float32Array([0.5, 0.2]), new Float32Array([0.25, 0.7]));
    expect([...d]).toEqual([0.25, 0.5]);
    expect(diffStats(d)).toEqual({ mean: 0.375, max: 0.5 });
    const hot = diffRgba(new Float32Array([0, 0.5]), 0.5);
    expect([...hot.slice(0, 4)]).toEqual([0, 0, 0, 255]);
    expect([...hot.slice(4, 8)]).toEqual([255, 255, 255, 255]);
    expect(() => absDiff(new Float32Array(2), new Float32Array(3))).toThrow(/differ in size/);
    expect(className('rotation', 1)).toBe('90°');
    expect(className('flip', 2)).toBe('vertical');
    expect(className('flip', undefined)).toBe('—');
  });
});

describe('Table II', () => {
  it('lays out a result as the paper does: mean ± sd across volumes, AUROC as one number', () => {
    const evaluation = (over: Partial<SslEvaluation>): SslEvaluation => ({
      runDir: '/r',
      task: 'masked',
      maskPercent: 20,
      maskDefinition: 'area',
      split: 'test',
      checkpointStep: 24,
      backend: 'wasm',
      volumes: 2,
      images: 29,
      perVolume: {},
      perImage: {},
      samples: [{ input: '/r/eval/sample-0-input.png', output: '/r/eval/sample-0-output.png', target: null, diff: null }],
      warnings: ['w'],
      table: '',
      ...over,
    });
    const row = table2Row(evaluation({ perVolume: { mse: { mean: 0.117, sd: 0.0082, n: 2 }, maskedMse: { mean: 0.16, sd: 0.02, n: 2 }, ssim: { mean: 0.5, sd: 0.01, n: 2 } } }));
    expect(row).toEqual({ task: 'masked 20% (area)', mse: '0.1170 ± 0.0082', maskedMse: '0.1600 ± 0.0200', ssim: '0.5000 ± 0.0100', ce: '', auroc: '' });
    const cls = table2Row(evaluation({ task: 'rotation', maskPercent: null, maskDefinition: null, perVolume: { crossEntropy: { mean: 0.74, sd: 0.001, n: 2 }, auroc: { mean: 1, sd: 0, n: 2 } } }));
    expect(cls).toMatchObject({ task: 'rotation', mse: '', ce: '0.7400 ± 0.0010', auroc: '1.0000' });
    expect(taskName({ task: 'next-slice', maskPercent: null, maskDefinition: null })).toBe('next slice');
    expect(meanSd(undefined)).toBe('');
    // NaN is written as null in the run summary (JSON): shown as empty, an undefined sd as 0
    expect(meanSd({ mean: null, sd: null, n: 0 } as unknown as { mean: number; sd: number; n: number })).toBe('');
    expect(meanSd({ mean: 0.5, sd: NaN, n: 1 })).toBe('0.5000 ± 0.0000');
    expect(PAPER_TABLE2).toHaveLength(8);
  });

  it("gives a row in the paper's definitions and the paper's published row for the task", () => {
    const base = { runDir: '/r', task: 'masked', maskPercent: 20, maskDefinition: 'side', split: 'test' as const, checkpointStep: 24, backend: 'wasm', volumes: 2, images: 29, perImage: {}, samples: [], warnings: [], table: '' };
    const masked: SslEvaluation = { ...base, perVolume: { mse: { mean: 0.003, sd: 0.0002, n: 2 }, maskedMse: { mean: 0.006, sd: 0.003, n: 2 }, maskedMseBatchSum: { mean: 0.096, sd: 0.048, n: 2 }, ssim: { mean: 0.85, sd: 0.01, n: 2 } } };
    expect(table2Row(masked, 'paper')).toMatchObject({ mse: '0.0030 ± 0.0002', maskedMse: '0.0960 ± 0.0480', ssim: '0.8500 ± 0.0100' });
    expect(table2Row(masked).maskedMse).toBe('0.0060 ± 0.0030');
    expect(paperRowFor(masked)).toEqual({ task: 'masked 20%', mse: '0.0029 ± 0.0002', maskedMse: '0.0988 ± 0.0494', ssim: '0.8527 ± 0.0115', ce: '', auroc: '' });
    const rotation: SslEvaluation = { ...base, task: 'rotation', maskPercent: null, maskDefinition: null, perVolume: { crossEntropy: { mean: 0.001, sd: 0.0005, n: 2 }, crossEntropyDoubleSoftmax: { mean: 0.7437, sd: 0.0001, n: 2 }, auroc: { mean: 1, sd: 0, n: 2 } } };
    expect(table2Row(rotation, 'paper')).toMatchObject({ ce: '0.7437 ± 0.0001', auroc: '1.0000' });
    expect(paperRowFor(rotation)).toMatchObject({ ce: '0.7436 ± 0.0001', auroc: '1.0' });
    // An evaluation made before the paper's definitions has nothing in those columns.
    expect(table2Row({ ...rotation, perVolume: { crossEntropy: { mean: 0.001, sd: 0, n: 2 } } }, 'paper').ce).toBe('');
    expect(paperRowFor({ task: 'masked', maskPercent: 15 })).toBeNull();
    expect(TABLE2_LEGEND.map((d) => d.label)).toEqual(['MSE', 'masked MSE', 'SSIM', 'CE', 'AUROC']);
    expect(TABLE2_LEGEND.find((d) => d.column === 'crossEntropy')!.text).toMatch(/^ours: .*paper's: softmax applied again/);
  });
});

describe('label file paths', () => {
  it('asks for an absolute path', () => {
    expect(labelPathProblem('x.xml')).toMatch(/not an absolute path/);
    expect(labelPathProblem('/d/x.xml')).toBeNull();
  });
});

describe('label overlay', () => {
  it('fills each visible group in its colour with an opaque outline and reports what it drew', () => {
    const w = 5;
    const h = 4;
    const m = new Uint8Array(w * h);
    for (const [i, j] of [[1, 1], [2, 1], [3, 1], [1, 2], [2, 2], [3, 2]]) m[j * w + i] = 1;
    const out = new Uint8ClampedArray(w * h * 4);
    const box = composeOverlay([{ key: 'a', mask: m }], w, h, { opacity: 0.5, outline: false, colours: { a: '#ff0000' }, hidden: {} }, out);
    expect(box).toEqual({ i0: 1, j0: 1, i1: 3, j1: 2 });
    expect([...out.slice((1 * w + 2) * 4, (1 * w + 2) * 4 + 4)]).toEqual([255, 0, 0, 128]);
    expect(out[3]).toBe(0);
    composeOverlay([{ key: 'a', mask: m }], w, h, { opacity: 0, outline: true, colours: { a: '#00ff00' }, hidden: {} }, out);
    expect(out[(1 * w + 1) * 4 + 3]).toBe(255); // an edge pixel
    expect(composeOverlay([{ key: 'a', mask: m }], w, h, { opacity: 1, outline: true, colours: {}, hidden: { a: true } }, out)).toBeNull();
    expect(hexToRgb('#0072B2')).toEqual([0, 114, 178]);
    expect(hexToRgb('nope')).toEqual([255, 0, 255]);
  });

  it('finds the next and previous labelled slice', () => {
    expect(nextLabelled([2, 5, 9], 0, 1)).toBe(2);
    expect(nextLabelled([2, 5, 9], 5, 1)).toBe(9);
    expect(nextLabelled([2, 5, 9], 9, 1)).toBeNull();
    expect(nextLabelled([2, 5, 9], 5, -1)).toBe(2);
    expect(nextLabelled([2, 5, 9], 2, -1)).toBeNull();
    expect(actionFor('n')).toEqual({ kind: 'label', dir: 1 });
    expect(actionFor('P')).toEqual({ kind: 'label', dir: -1 });
    expect(actionFor('o')).toEqual({ kind: 'overlay' });
  });

  it('groups findings across readers as the masks name them', () => {
    const f = (id: number, reader: string, group: string, kind: LabelFinding['kind'] = 'nodule', malignancy?: number): LabelFinding => ({
      id,
      sourceId: 7,
      sourceKind: 'lidc-xml',
      kind,
      reader,
      key: `k${id}`,
      group,
      attributes: malignancy ? { malignancy } : {},
    });
    const g = groupFindings([f(1, '2', 'N1', 'nodule', 5), f(2, '1', 'N1', 'nodule', 4), f(3, '1', '', 'nodule'), f(4, '1', 'X', 'small-nodule')]);
    expect(g.map((x) => x.key)).toEqual(['7:N1', '7:F3']);
    expect(g[0]).toMatchObject({ readers: ['1', '2'], malignancy: 4.5, name: 'N1' });
    expect(g[1].name).toBe('k3');
  });

  it('places the slice image where the camera draws it, under zoom and pan', () => {
    const l = { columns: 96, rows: 64, sx: 1, sy: 1.5 };
    for (const t of [FIT, zoomAt(l, FIT, 800, 600, 200, 150, 3)]) {
      const cam = cameraFor(l, 800, 600, t);
      const r = imageRect(l, cam, 800, 600);
      // The centre of voxel (i, j) in the rectangle is the screen point the readout maps to (i, j).
      for (const [i, j] of [[0, 0], [95, 63], [40, 20]]) {
        const x = r.x + ((i + 0.5) / l.columns) * r.width;
        const y = r.y + ((j + 0.5) / l.rows) * r.height;
        const v = screenToVoxel(l, cam, 800, 600, x, y)!;
        expect([v.i + 0, v.j + 0]).toEqual([i, j]); // + 0: -0 from rounding is 0
      }
      expect(r.width / r.height).toBeCloseTo(96 / 96, 6);
    }
  });
});

describe('routes and cohort', () => {
  it('routes the new pages with an optional run', () => {
    expect(parseHash('#/pretrain')).toEqual({ page: 'pretrain' });
    expect(parseHash('#/pretrain/4')).toEqual({ page: 'pretrain', runId: 4 });
    expect(parseHash('#/evaluate/12&token=x')).toEqual({ page: 'evaluate', runId: 12 });
    expect(parseHash('#/share/3')).toEqual({ page: 'share' });
    expect(routeHash({ page: 'evaluate', runId: 2 })).toBe('#/evaluate/2');
    expect(routeHash({ page: 'share' })).toBe('#/share');
  });

  it('sends the labels filter only when chosen', () => {
    expect(toCohortFilter(paperCohort()).labels).toBeUndefined();
    expect(toCohortFilter({ ...noFilters(), labels: 'nodule' })).toEqual({ labels: 'nodule' });
  });
});
