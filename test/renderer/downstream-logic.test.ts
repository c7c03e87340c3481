/**
 * Renderer logic of the fine-tune, experiments and bias probe pages: forms to configs (validated
 * by the shared schemas), initialisation choices, list parsing, report and probe tables, interval
 * formatting, ROC geometry, the SVG check, routes.
 */
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/shared/contract';

/** What the contract accepts from the renderer (pretrained runs by id). */
const parseFinetuneConfig = (c: unknown) => parseArgs('runs.create', [c as never])[0];
const parseExperimentSpec = (s: unknown) => parseArgs('experiments.start', [s as never])[0];
import type { RunSummary } from '../../src/shared/types';
import type { BiasProbeResult, ReportedResults, SavedExperimentReport } from '../../src/shared/results';
import { parseRunConfig } from '../../src/shared/run-config';
import {
  applyInit,
  applyTask,
  defaultFinetuneForm,
  finetuneFormProblems,
  finetuneLabel,
  initChoices,
  initMismatch,
  isExperimentRun,
  labelsFilterFor,
  modelFor,
  toFinetuneConfig,
} from '../../src/renderer/src/finetune/finetune-form';
import { ciNote, operatingPoint, rocPath, rocXY } from '../../src/renderer/src/finetune/results';
import {
  cellAt,
  defaultExperimentForm,
  defaultExperimentName,
  experimentFormProblems,
  experimentInitChoices,
  gridSize,
  parseFractions,
  parseSeeds,
  toExperimentSpec,
  toggleInit,
} from '../../src/renderer/src/experiments/experiment-form';
import { cellRows, comparisonRows, initLabels, orderedSvgs, reachRows, reportWarnings, summaryTable } from '../../src/renderer/src/experiments/report-table';
import { initName } from '../../src/renderer/src/experiments/init-label';
import { probeEncoders, probeProblems, probeRows } from '../../src/renderer/src/probe/probe-table';
import { percent, pValue, signed, withCi } from '../../src/renderer/src/lib/stats-format';
import { svgDataUrl, svgProblem, svgSize } from '../../src/renderer/src/lib/svg-image';
import { parseHash, routeHash } from '../../src/renderer/src/lib/routes';
import { linePlot, barChart } from '../../src/core/plots';
import { tickLabels } from '../../src/renderer/src/runs/curves';

const run = (over: Partial<RunSummary>): RunSummary => ({
  id: 1,
  active: false,
  name: '',
  kind: 'pretrain',
  task: 'masked',
  status: 'done',
  dir: '/data/runs/r1',
  preset: 'tiny',
  config: parseRunConfig({ task: 'masked', maskPercent: 20, maskDefinition: 'area', preset: 'tiny', size: 32, steps: 2 }),
  backend: '',
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
  step: 2,
  totalSteps: 2,
  manifestHash: '',
  parentDir: '',
  summary: {},
  error: '',
  ...over,
});

const pretrained = run({ id: 3, dir: '/data/runs/masked' });
const imported = run({ id: 4, kind: 'imported', dir: '/data/imported/pkg', preset: 'small', config: parseRunConfig({ task: 'masked', maskPercent: 20, preset: 'small', windowLevel: -600, windowWidth: 1500, steps: 2 }) });
const unfinished = run({ id: 5, status: 'running', dir: '/data/runs/busy' });
const finetuned = run({ id: 6, kind: 'finetune', task: 'classification', dir: '/data/runs/ft', config: parseRunConfig({ kind: 'finetune', task: 'classification', model: 'cnn', label: { kind: 'image-label', name: 'pe_present_on_image' }, trainFraction: 0.5, steps: 2 }) });
const runs = [pretrained, imported, unfinished, finetuned];

describe('fine-tune form', () => {
  it('offers random, the CNN baseline (classification only) and finished pretraining or imported runs', () => {
    const c = initChoices(runs, 'classification');
    expect(c.map((x) => x.value)).toEqual(['random', 'cnn', '3', '4']);
    expect(c[2]).toMatchObject({ label: '#3 masked 20% · tiny 32px', preset: 'tiny', size: 32, runId: 3 });
    expect(c[3].label).toBe('#4 masked 20% · small (imported)');
    expect(c[3].size).toBeNull();
    expect(initChoices(runs, 'segmentation').map((x) => x.value)).toEqual(['random', '3', '4']);
  });

  it('derives the model from task and initialisation', () => {
    expect(modelFor('classification', 'random')).toBe('encoder-classifier');
    expect(modelFor('classification', '3')).toBe('encoder-classifier');
    expect(modelFor('classification', 'cnn')).toBe('cnn');
    expect(modelFor('segmentation', '3')).toBe('unet');
  });

  it('takes the preset and size of a pretrained init, and says when they differ', () => {
    const c = initChoices(runs, 'classification');
    const f = applyInit(defaultFinetuneForm(), c[2]);
    expect(f).toMatchObject({ init: '3', preset: 'tiny', size: 32 });
    expect(initMismatch(f, c[2])).toBeNull();
    expect(initMismatch({ ...f, size: 64 }, c[2])).toBe('the encoder was trained as tiny at 32 px: use the same preset and size');
    // The window the encoder was trained on comes with it (lung window for the imported one).
    expect(f).toMatchObject({ windowLevel: 50, windowWidth: 350 });
    expect(applyInit(defaultFinetuneForm(), c[3])).toMatchObject({ preset: 'small', windowLevel: -600, windowWidth: 1500, scaling: 'fixed' });
    // and its scaling
    const minmax = initChoices([{ ...imported, config: { ...imported.config, scaling: 'minmax' } }], 'segmentation')[1];
    expect(applyInit(defaultFinetuneForm(), minmax)).toMatchObject({ windowLevel: -600, windowWidth: 1500, scaling: 'minmax' });
    // Random and the CNN keep what the form had.
    expect(applyInit({ ...f, size: 48 }, c[1])).toMatchObject({ init: 'cnn', preset: 'tiny', size: 48 });
    expect(initMismatch(f, c[0])).toBeNull();
    // Segmentation has no CNN baseline.
    expect(applyTask({ ...f, init: 'cnn' }, 'segmentation').init).toBe('random');
    expect(applyTask(f, 'segmentation').init).toBe('3');
  });

  it('builds configs the shared schema accepts: classification from a pretrained run', () => {
    const f = { ...applyInit(defaultFinetuneForm(), initChoices(runs, 'classification')[2]), steps: 6, batchSize: 4, freezeEpochs: 1, trainFraction: 0.25, name: ' pe ' };
    expect(finetuneFormProblems(f)).toEqual({});
    const c = toFinetuneConfig(f, { filter: { modality: 'CT', labels: 'any' } });
    expect(c).toMatchObject({
      kind: 'finetune',
      name: 'pe',
      task: 'classification',
      model: 'encoder-classifier',
      label: { kind: 'image-label', name: 'pe_present_on_image' },
      init: 3,
      preset: 'tiny',
      size: 32,
      freezeEpochs: 1,
      trainFraction: 0.25,
      steps: 6,
      filter: { modality: 'CT', labels: 'any' },
    });
    expect(c.epochs).toBeUndefined();
    expect(parseFinetuneConfig(c)).toEqual(c);
  });

  it('builds configs the shared schema accepts: CNN baseline and segmentation', () => {
    const cnn = toFinetuneConfig({ ...defaultFinetuneForm(), init: 'cnn', freezeEpochs: 2 }, { seriesIds: [1, 2] });
    expect(cnn).toMatchObject({ model: 'cnn', freezeEpochs: 0, seriesIds: [1, 2] });
    expect(cnn.init).toBeUndefined();
    expect(cnn.filter).toBeUndefined();
    expect(() => parseFinetuneConfig(cnn)).not.toThrow();
    const seg = toFinetuneConfig({ ...defaultFinetuneForm(), task: 'segmentation', consensusK: 2, wDice: 1, lengthBy: 'epochs', epochs: 0.5 }, { filter: {} });
    expect(seg).toMatchObject({ model: 'unet', label: { kind: 'nodule', consensusK: 2 }, lossWeights: { dice: 1 }, epochs: 0.5 });
    expect(seg.steps).toBeUndefined();
    expect(() => parseFinetuneConfig(seg)).not.toThrow();
    const plain = toFinetuneConfig({ ...defaultFinetuneForm(), task: 'segmentation' }, {});
    expect(plain.label).toEqual({ kind: 'nodule' });
    expect(plain.earlyStopPatience).toBeUndefined();
    // early stopping: the same config field as `ctssl finetune --early-stop`
    const early = toFinetuneConfig({ ...defaultFinetuneForm(), earlyStopPatience: 8 }, {});
    expect(parseFinetuneConfig(early)).toMatchObject({ earlyStopPatience: 8 });
    expect(finetuneFormProblems({ ...defaultFinetuneForm(), earlyStopPatience: 0 }).earlyStopPatience).toMatch(/validations ≥ 1/);
  });

  it('names what is wrong before anything is sent', () => {
    const d = defaultFinetuneForm();
    expect(finetuneFormProblems({ ...d, labelName: ' ' }).labelName).toMatch(/label/);
    expect(finetuneFormProblems({ ...d, trainFraction: 0 }).trainFraction).toMatch(/fraction/);
    expect(finetuneFormProblems({ ...d, trainFraction: 1.5 }).trainFraction).toBeDefined();
    expect(finetuneFormProblems({ ...d, task: 'segmentation', init: 'cnn' }).init).toMatch(/classification/);
    expect(finetuneFormProblems({ ...d, task: 'segmentation', consensusK: 0 }).consensusK).toBeDefined();
    expect(finetuneFormProblems({ ...d, splitTest: 0 }).split).toBeDefined();
    expect(finetuneFormProblems({ ...d, batchSize: 0, steps: 1.5, lr: 2 })).toMatchObject({ batchSize: expect.any(String), steps: expect.any(String), lr: expect.any(String) });
    expect(finetuneFormProblems({ ...d, wBce: -1 }).wBce).toBeDefined();
  });

  it('chooses the cohort labels filter from the task', () => {
    expect(labelsFilterFor('classification')).toBe('any');
    expect(labelsFilterFor('segmentation')).toBe('nodule');
  });

  it('tells experiment runs apart and names runs', () => {
    expect(isExperimentRun('/data/experiments/20260101-grid/runs/random-f1-s1')).toBe(true);
    expect(isExperimentRun('C:\\data\\experiments\\x\\runs\\cnn-f0.5-s1')).toBe(true);
    expect(isExperimentRun('/data/runs/20260101-finetune')).toBe(false);
    expect(finetuneLabel(finetuned)).toBe('PE classification · CNN baseline · 50% · tiny');
    const unet = parseRunConfig({ kind: 'finetune', task: 'segmentation', model: 'unet', label: { kind: 'nodule' }, init: '/data/runs/masked/', steps: 2 });
    expect(finetuneLabel({ ...finetuned, config: unet, task: 'segmentation' })).toBe('nodule segmentation · from masked · tiny');
    expect(finetuneLabel({ ...finetuned, name: 'mine' })).toBe('mine');
  });
});

describe('fine-tune results', () => {
  it('places the ROC curve and the operating point', () => {
    const box = { size: 200, pad: 30 };
    expect(rocXY(0, 0, box)).toEqual([30, 230]);
    expect(rocXY(1, 1, box)).toEqual([230, 30]);
    expect(rocXY(2, -1, box)).toEqual([230, 230]);
    expect(rocPath([0, 0, 0.5, 1], [0, 0.5, 1, 1], box)).toBe('M30,230L30,130L130,30L230,30');
    expect(operatingPoint({ sensitivity: 1, specificity: 0.25 })).toEqual({ fpr: 0.75, tpr: 1 });
    expect(operatingPoint({ sensitivity: NaN, specificity: 0.25 })).toBeNull();
    // how the held-out interval was made
    expect(ciNote({ ci: { unit: 'patient', resamples: 2000 }, patients: 12 })).toBe('patient-level bootstrap, 2000 resamples of the 12 patients');
    expect(ciNote({ ci: { unit: 'patient', resamples: 2000 }, patients: 1 })).toMatch(/of the 1 patient$/);
    expect(ciNote({})).toMatch(/^slice-level bootstrap \(older result/);
  });
});

describe('experiment form', () => {
  it('parses fractions and seeds as lists', () => {
    expect(parseFractions('1, 0.5 0.5;10%')).toEqual({ values: [0.1, 0.5, 1], error: null });
    expect(parseFractions('').error).toBe('at least one fraction');
    expect(parseFractions('0.5, 2').error).toBe('2 is outside (0, 1]');
    expect(parseFractions('0').error).toBe('0 is outside (0, 1]');
    expect(parseFractions('half').error).toBe('"half" is not a fraction (0.1 or 10%)');
    expect(parseSeeds('1, 3-5 1')).toEqual({ values: [1, 3, 4, 5], error: null });
    expect(parseSeeds('5-3').error).toMatch(/range/);
    expect(parseSeeds('-1').error).toMatch(/not a seed/);
    expect(parseSeeds('1.5').error).toMatch(/not a seed/);
  });

  it('ticks initialisations in order and counts the grid', () => {
    expect(toggleInit(['random'], 'cnn', true)).toEqual(['random', 'cnn']);
    expect(toggleInit(['random', 'cnn'], 'cnn', true)).toEqual(['random', 'cnn']);
    expect(toggleInit(['random', 'cnn'], 'random', false)).toEqual(['cnn']);
    const f = { ...defaultExperimentForm(), inits: ['random', 'cnn', '3'], fractions: '0.5, 1', seeds: '1' };
    expect(gridSize(f)).toBe(6);
    expect(gridSize({ ...f, seeds: 'x' })).toBe(0);
  });

  it('builds a spec the shared schema accepts (the e2e grid)', () => {
    const choices = experimentInitChoices(runs, 'classification');
    expect(choices.map((c) => c.value)).toEqual(['random', 'cnn', '3', '4']);
    const f = { ...defaultExperimentForm(), inits: ['random', 'cnn', '3'], fractions: '0.5, 1', seeds: '1', steps: 3, batchSize: 4, evalEvery: 3, size: 32 };
    expect(experimentFormProblems(f, choices)).toEqual({});
    const spec = toExperimentSpec(f, { filter: { modality: 'CT', labels: 'any' } }, choices);
    expect(spec).toMatchObject({
      name: 'PE classification: random vs cnn vs #3',
      task: 'classification',
      label: 'pe',
      preset: 'tiny',
      size: 32,
      inits: ['random', 'cnn', 3],
      fractions: [0.5, 1],
      seeds: [1],
      steps: 3,
      batchSize: 4,
      evalEvery: 3,
      filter: { modality: 'CT', labels: 'any' },
    });
    expect(parseExperimentSpec(spec)).toEqual(spec);
    const seg = toExperimentSpec({ ...f, task: 'segmentation', inits: ['random'], consensusK: 2, name: 'nodules', lengthBy: 'epochs', epochs: 2 }, { seriesIds: [4] });
    expect(seg).toMatchObject({ name: 'nodules', task: 'segmentation', label: 'nodule', consensusK: 2, epochs: 2, seriesIds: [4] });
    expect(seg.steps).toBeUndefined();
    expect(() => parseExperimentSpec(seg)).not.toThrow();
  });

  it('knows which cell of the grid runs at each index (inits, then fractions, then seeds)', () => {
    const spec = { inits: ['random', 'cnn', '/r'], fractions: [0.5, 1], seeds: [1, 2] };
    const all = Array.from({ length: 12 }, (_, i) => cellAt(spec, i)!);
    expect(all.slice(0, 4)).toEqual([
      { init: 'random', fraction: 0.5, seed: 1 },
      { init: 'random', fraction: 0.5, seed: 2 },
      { init: 'random', fraction: 1, seed: 1 },
      { init: 'random', fraction: 1, seed: 2 },
    ]);
    expect(all[11]).toEqual({ init: '/r', fraction: 1, seed: 2 });
    expect(new Set(all.map((c) => JSON.stringify(c))).size).toBe(12);
    expect(cellAt(spec, 12)).toBeNull();
    expect(cellAt(spec, -1)).toBeNull();
  });

  it('refuses grids that cannot run', () => {
    const choices = experimentInitChoices(runs, 'classification');
    const f = { ...defaultExperimentForm(), size: 32 };
    expect(experimentFormProblems({ ...f, inits: [] }, choices).inits).toBe('tick at least one initialisation');
    expect(experimentFormProblems({ ...f, inits: ['99'] }, choices).inits).toBe('not available: 99');
    expect(experimentFormProblems({ ...f, task: 'segmentation', inits: ['cnn'] }, experimentInitChoices(runs, 'segmentation')).inits).toBe('the CNN baseline is for classification');
    expect(experimentFormProblems({ ...f, inits: ['3'], size: 64 }, choices).inits).toMatch(/trained as tiny at 32 px/);
    expect(experimentFormProblems({ ...f, inits: ['random'], fractions: '0', seeds: '' }, choices)).toMatchObject({ fractions: expect.any(String), seeds: expect.any(String) });
    expect(experimentFormProblems({ ...f, inits: ['random'], label: '' }, choices).label).toBeDefined();
    expect(experimentFormProblems({ ...f, inits: ['random'], task: 'segmentation', diceLevel: 1 }, choices).diceLevel).toBeDefined();
    expect(defaultExperimentName({ ...f, task: 'segmentation', inits: ['random', '99'] }, choices)).toBe('nodule segmentation: random vs pretrained');
  });
});

describe('experiment report', () => {
  // `patients` given: a result with a patient-level interval; without: one written before them (slice-level).
  const cls = (auroc: number, ci: [number, number], sensitivity: number, specificity: number, patients?: number): ReportedResults => ({
    split: 'test',
    slices: 16,
    heldOut: true,
    task: 'classification',
    positives: 3,
    auroc,
    aurocCi95: ci,
    ...(patients !== undefined && { patients, ci: { unit: 'patient' as const, resamples: 2000, valid: 1990, seed: 1 }, warnings: [`the test split has ${patients} patients (fewer than 10)`] }),
    threshold: { method: 'youden', chosenOn: 'val', value: 0.5 },
    sensitivity,
    specificity,
    ppv: 0.3,
    npv: 0.9,
  });
  const files = { csv: '/e/results.csv', html: '/e/report.html', json: '/e/report.json', svg: [] };
  const cmp = { pretrained: 'pretrained: masked 20%', baseline: 'random init', patients: 2, slices: 16, positives: 3 };
  // report.json as `ctssl experiment` writes it (numbers from a real 6-run grid); NaN becomes null in JSON.
  const raw: SavedExperimentReport = JSON.parse(
    JSON.stringify({
      name: 'e2e grid',
      task: 'classification',
      metric: 'auroc',
      cells: [
        { init: 'random', initLabel: 'random init', fraction: 0.5, seed: 1, runDir: '/e/runs/random-f0.5-s1', status: 'done', results: cls(0.359, [0.077, 0.692], 0.333, 0.308, 2) },
        { init: 'random', initLabel: 'random init', fraction: 1, seed: 1, runDir: '/e/runs/random-f1-s1', status: 'done', results: cls(0.4615, [0, 1], 0.333, 0.46) },
        { init: '/r/masked', initLabel: 'pretrained: masked 20%', fraction: 0.5, seed: 1, runDir: '/e/runs/init-f0.5-s1', status: 'failed', results: null },
        {
          init: '/r/masked',
          initLabel: 'pretrained: masked 20%',
          fraction: 1,
          seed: 1,
          runDir: '/e/runs/init-f1-s1',
          status: 'done',
          results: { split: 'test', slices: 16, heldOut: true, task: 'classification', error: 'the test split has only one class' },
        },
      ],
      summary: [
        { init: 'random', fraction: 0.5, n: 1, mean: 0.359, lower: 0.359, upper: 0.359, patientCi95: [0.2, 0.55] },
        { init: 'random', fraction: 1, n: 3, mean: 0.4615, lower: 0.3, upper: 0.6 },
        { init: '/r/masked', fraction: 0.5, n: 0, mean: NaN, lower: NaN, upper: NaN },
        { init: '/r/masked', fraction: 1, n: 3, mean: 0.55, lower: 0.41, upper: 0.69 },
        { init: 'cnn', fraction: 1, n: 1, mean: 0.59, lower: 0.59, upper: 0.59 },
      ],
      comparisons: [
        { ...cmp, fraction: 1, seed: 1, seeds: [1], aurocPretrained: 0.4615, aurocBaseline: 0.4615, difference: 0, ci95: [0, 0], p: 1, pHolm: 1, verdict: 'no significant difference', sliceLevelP: 1 },
        { ...cmp, fraction: 0.5, seed: 1, seeds: [1], aurocPretrained: 0.3077, aurocBaseline: 0.359, difference: -0.0513, ci95: [-0.3, 0.21], p: 0.41, pHolm: 0.82, verdict: 'no significant difference', sliceLevelP: 0.0004 },
        { ...cmp, fraction: 0.5, seed: null, seeds: [1, 2], aurocPretrained: 0.4, aurocBaseline: 0.2, difference: 0.2, ci95: [0.1, 0.3], p: 0.004, pHolm: 0.012, verdict: 'pretrained higher', sliceLevelP: null },
        { ...cmp, fraction: 0.5, seed: 2, seeds: [2], aurocPretrained: 0.5, aurocBaseline: 0.5, difference: 0, ci95: [NaN, NaN], p: NaN, pHolm: NaN, verdict: 'not testable', sliceLevelP: null },
      ],
      statistics: { resamples: 2000, seed: 1, family: 3, alpha: 0.05, method: 'Intervals and tests are patient-level.' },
      warnings: ['the test split has 2 patients (fewer than 10)'],
      iterationsToReach: [],
      files,
    } satisfies SavedExperimentReport),
  );

  it('builds the mean [95% CI] table', () => {
    const r = raw;
    expect(initLabels(r)).toEqual([
      { init: 'random', label: 'random init' },
      { init: '/r/masked', label: 'pretrained: masked 20%' },
      { init: 'cnn', label: 'supervised CNN (scratch)' },
    ]);
    const t = summaryTable(r);
    expect(t.headers).toEqual(['50%', '100%']);
    expect(t.rows.map((x) => x.cells.map((c) => c.text))).toEqual([
      ['0.359', '0.462 [0.300, 0.600]'],
      ['—', '0.550 [0.410, 0.690]'],
      ['—', '0.590'],
    ]);
    // the patient-level interval of the mean, where the report has one
    expect(t.rows[0].cells.map((c) => c.patientCi)).toEqual(['[0.200, 0.550]', null]);
    expect(t.rows[2].cells[1].best).toBe(true);
    expect(t.rows[0].cells[0].best).toBe(false);
  });

  it('formats the paired comparisons (patient-level p, Holm, verdict, slice-level p as secondary), the warnings, iterations to reach and the runs', () => {
    const r = raw;
    const rows = comparisonRows(r);
    expect(rows.map((x) => [x.fraction, x.seed, x.difference, x.p, x.pHolm, x.verdict, x.significant, x.sliceP])).toEqual([
      ['50%', '1', '−0.051 [−0.300, +0.210]', '0.410', '0.820', 'no significant difference', false, '< 0.001'],
      ['50%', '2', '0.000', '—', '—', 'not testable', false, '—'],
      ['50%', 'pooled (2 seeds)', '+0.200 [+0.100, +0.300]', '0.00400', '0.0120', 'pretrained higher', true, '—'],
      ['100%', '1', '0.000 [0.000, 0.000]', '1.00', '1.00', 'no significant difference', false, '1.00'],
    ]);
    expect(rows[2].pooled).toBe(true);
    expect(rows[0].data).toBe('2 patients, 16 slices, 3 positive');
    expect(reportWarnings(r)).toEqual(['the test split has 2 patients (fewer than 10)']);
    // a report.json from before patient-level statistics: no comparisons, and it says so
    const legacy = { ...r, comparisons: undefined, warnings: undefined, statistics: undefined } as unknown as SavedExperimentReport;
    expect(comparisonRows(legacy)).toEqual([]);
    expect(reportWarnings(legacy)[0]).toMatch(/written before patient-level statistics/);
    const seg: SavedExperimentReport = {
      name: 'seg',
      task: 'segmentation',
      metric: 'dice',
      summary: [],
      comparisons: [],
      statistics: { resamples: 2000, seed: 1, family: 0, alpha: 0.05, method: '' },
      warnings: [],
      iterationsToReach: [
        { init: 'random init', fraction: 1, level: 0.5, meanIterations: 122.5, runsReaching: 2, runs: 3 },
        { init: 'pretrained', fraction: 0.1, level: 0.5, meanIterations: null, runsReaching: 0, runs: 3 },
      ],
      cells: [
        {
          init: 'random',
          initLabel: 'random init',
          fraction: 1,
          seed: 2,
          runDir: '/e/runs/random-f1-s2',
          status: 'done',
          results: { split: 'test', slices: 8, heldOut: true, task: 'segmentation', dice: 0.41, iou: 0.26, meanSliceDice: 0.3, sdSliceDice: 0.1, meanSliceIou: 0.2, slicesScored: 5 },
        },
      ],
      files,
    };
    expect(reachRows(seg)).toEqual([
      { init: 'random init', fraction: '100%', level: '0.5', iterations: '123', reaching: '2 of 3' },
      { init: 'pretrained', fraction: '10%', level: '0.5', iterations: 'not reached', reaching: '0 of 3' },
    ]);
    expect(cellRows(seg)).toEqual([{ init: 'random init', fraction: '100%', seed: 2, status: 'done', metric: '0.410', detail: 'IoU 0.260' }]);
    expect(cellRows(r).map((c) => [c.metric, c.detail])).toEqual([
      ['0.359 [0.077, 0.692]', 'sens 0.333 · spec 0.308'],
      ['0.462 [0.000, 1.000]', 'sens 0.333 · spec 0.460 · slice-level CI'],
      ['—', ''],
      ['n/a', 'the test split has only one class'],
    ]);
  });

  it('orders the plots: fraction, iterations, ROC, others', () => {
    const o = orderedSvgs({ 'roc.svg': '<svg/>', 'extra.svg': '<svg/>', 'auroc-vs-iterations.svg': '<svg/>', 'auroc-vs-fraction.svg': '<svg/>', 'empty.svg': '' });
    expect(o.map((x) => [x.name, x.title])).toEqual([
      ['auroc-vs-fraction.svg', 'AUROC against training-set fraction'],
      ['auroc-vs-iterations.svg', 'AUROC against iterations'],
      ['roc.svg', 'ROC curves'],
      ['extra.svg', 'extra'],
    ]);
    expect(orderedSvgs({ 'dice-vs-fraction.svg': '<svg/>' })[0].title).toBe('Dice against training-set fraction');
  });

  it('names initialisations', () => {
    expect(initName('random', runs)).toBe('random init');
    expect(initName('cnn', runs)).toBe('supervised CNN');
    expect(initName('/data/runs/masked', runs)).toBe('#3 masked 20% · tiny 32px');
    expect(initName('/elsewhere/run-7/', runs)).toBe('run-7');
    expect(initName(null, runs)).toBe('—');
  });
});

describe('bias probe', () => {
  const result: BiasProbeResult = {
    scans: 8,
    middleSlices: [],
    scores: [
      { features: 'masked 20% (tiny)', attribute: 'sex', classes: ['F', 'M'], n: 8, auroc: 0.5625, ci95: [0, 1], perClass: [0.44, 0.56] },
      { features: 'raw slice (16x16 px, no pretraining)', attribute: 'sex', classes: ['F', 'M'], n: 8, auroc: 0.59375, ci95: [0.1875, 1], perClass: [] },
      { features: 'masked 20% (tiny)', attribute: 'ageGroup', classes: ['40-49', '50-59', '60-69'], n: 12, auroc: 0.71, ci95: null, perClass: [] },
      { features: 'raw slice (16x16 px, no pretraining)', attribute: 'ethnicGroup', classes: ['A', 'B'], n: 8, auroc: 0.9, ci95: [0.7, 1], perClass: [] },
    ],
    files: { json: '/p/bias-probe.json', csv: '/p/bias-probe.csv', svg: '/p/bias-probe.svg', html: '/p/bias-probe.html' },
    warnings: ['ethnic group: "C" (1) left out: fewer scans than folds'],
  };

  it('groups rows by attribute, baseline first', () => {
    expect(probeRows(result).map((r) => [r.attribute, r.baseline, r.auroc, r.aboveChance])).toEqual([
      ['sex', true, '0.594 [0.188, 1.000]', false],
      ['sex', false, '0.563 [0.000, 1.000]', false],
      ['ethnic group', true, '0.900 [0.700, 1.000]', true],
      ['age group', false, '0.710', null],
    ]);
    expect(probeRows(result)[3].classes).toBe('40-49, 50-59, 60-69');
  });

  it('checks settings and offers only encoders with weights', () => {
    expect(probeProblems({ runIds: [1], attributes: ['sex'], folds: 2, seed: 1 })).toEqual({});
    expect(probeProblems({ runIds: [], attributes: [], folds: 1, seed: -1 })).toEqual({ attributes: 'tick at least one attribute', folds: 'from 2 to 20 folds', seed: 'a whole number ≥ 0' });
    expect(probeEncoders(runs).map((r) => r.id)).toEqual([3, 4]);
  });
});

describe('interval formatting', () => {
  it('formats estimates, percentages, p-values and differences', () => {
    expect(withCi(0.61538, 0.3077, 0.9231)).toBe('0.615 [0.308, 0.923]');
    expect(withCi(0.61538)).toBe('0.615');
    expect(withCi(0.61538, null, 0.9)).toBe('0.615');
    expect(withCi(NaN, 0, 1)).toBe('—');
    expect(withCi(0.5, 0.25, 0.75, 2)).toBe('0.50 [0.25, 0.75]');
    expect(percent(0.05)).toBe('5%');
    expect(percent(0.125)).toBe('12.5%');
    expect(percent(1)).toBe('100%');
    expect(percent(undefined)).toBe('—');
    expect(pValue(0.00004)).toBe('< 0.001');
    expect(pValue(0.6861678)).toBe('0.686');
    expect(pValue(0.04)).toBe('0.0400');
    expect(signed(0.0513)).toBe('+0.051');
    expect(signed(-0.0513)).toBe('−0.051');
    expect(signed(-0.0001)).toBe('0.000');
  });
});

describe('SVG plots as images', () => {
  const ours = [
    linePlot({ title: 'held-out AUROC <against> "fraction" & more', xLabel: 'fraction', yLabel: 'AUROC', series: [{ name: '<script>alert(1)</script> init', x: [0.5, 1], y: [0.4, 0.6], lower: [0.3, 0.5], upper: [0.5, 0.7] }] }),
    barChart({ title: 'bias probe', groups: ['sex', 'age group'], series: [{ name: 'raw', values: [0.5, 0.6], lower: [0.4, 0.5], upper: [0.6, 0.7] }] }),
  ];

  it('accepts what our generator makes, even with markup in its labels (escaped)', () => {
    for (const svg of ours) {
      expect(svgProblem(svg)).toBeNull();
      const url = svgDataUrl(svg)!;
      expect(url.startsWith('data:image/svg+xml;charset=utf-8,%3Csvg')).toBe(true);
      expect(decodeURIComponent(url.slice(url.indexOf(',') + 1))).toBe(svg);
    }
    expect(svgSize(ours[0])).toEqual({ width: 640, height: 420 });
    expect(svgSize('<svg viewBox="0 0 300 200"></svg>')).toEqual({ width: 300, height: 200 });
    expect(svgSize('<svg></svg>')).toBeNull();
  });

  it('refuses scripts, handlers, links, foreign content, DTDs and external references', () => {
    const cases: [string, RegExp][] = [
      ['', /no SVG/],
      ['<div>hi</div>', /not an SVG/],
      ['<svg><script>alert(1)</script></svg>', /<script>/],
      ['<svg><g onload="alert(1)"></g></svg>', /event-handler/],
      ['<svg><rect ONCLICK = "x"/></svg>', /event-handler/],
      ['<svg><a href="https://example.com"><text>x</text></a></svg>', /<a>/],
      ['<svg><use href="#x"/></svg>', /<use>/],
      ['<svg><image href="x.png"/></svg>', /<image>/],
      ['<svg><foreignObject><div/></foreignObject></svg>', /<foreignObject>/],
      ['<svg><style>@import url(https://x)</style></svg>', /<style>/],
      ['<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "y">]><svg/>', /not an SVG/],
      ['<svg><!ENTITY x "y"><text>&x;</text></svg>', /DTD/],
      ['<svg><rect fill="url(https://x/y#z)"/></svg>', /another document|outside/],
      ['<svg><rect fill="url(file.svg#z)"/></svg>', /outside itself/],
      ['<svg><rect style="fill: url(javascript:alert(1))"/></svg>', /another document/],
      ['<svg><text>&lt;b&gt;</text><b>x</b></svg>', /<b>/],
    ];
    for (const [svg, why] of cases) {
      expect(svgProblem(svg), svg).toMatch(why);
      expect(svgDataUrl(svg)).toBeNull();
    }
    expect(svgProblem('<svg xmlns="http://www.w3.org/2000/svg"><rect fill="url(#clip-1)"/></svg>')).toBeNull();
    expect(svgProblem('x'.repeat(10))).toMatch(/not an SVG/);
  });
});

describe('routes of the downstream pages', () => {
  it('parses and formats fine-tune runs and experiment ids', () => {
    expect(parseHash('#/finetune')).toEqual({ page: 'finetune' });
    expect(parseHash('#/finetune/7')).toEqual({ page: 'finetune', runId: 7 });
    expect(parseHash('#/experiments/20260101120000-pe-grid&token=x')).toEqual({ page: 'experiments', experimentId: '20260101120000-pe-grid' });
    expect(parseHash('#/experiments/..%2F')).toEqual({ page: 'experiments' });
    expect(parseHash('#/probe/3')).toEqual({ page: 'probe' });
    expect(routeHash({ page: 'finetune', runId: 2 })).toBe('#/finetune/2');
    expect(routeHash({ page: 'experiments', experimentId: 'a.b-c_1' })).toBe('#/experiments/a.b-c_1');
    expect(routeHash({ page: 'experiments', experimentId: 'bad/id' })).toBe('#/experiments');
    expect(routeHash({ page: 'probe' })).toBe('#/probe');
  });
});

describe('chart ticks', () => {
  it('writes y ticks with the decimals their spacing needs', () => {
    // A flat Dice loss near 1: uPlot's default wrote "1" twice.
    expect(tickLabels([0.9995, 0.99955, 1])).toEqual(['0.99950', '0.99955', '1.00000']);
    expect(tickLabels([0, 25, 50, 75, 100])).toEqual(['0', '25', '50', '75', '100']);
    expect(tickLabels([0, 0.25, 0.5])).toEqual(['0.00', '0.25', '0.50']);
    expect(tickLabels([1.82, 1.83, 1.84])).toEqual(['1.82', '1.83', '1.84']);
    expect(tickLabels([-0.5, 0.1 + 0.2 - 0.3, 0.5])).toEqual(['-0.5', '0.0', '0.5']);
    expect(tickLabels([0, 0.00002, 0.00004])).toEqual(['0', '2.0e-5', '4.0e-5']);
    expect(tickLabels([2e6, 4e6])).toEqual(['2.0e+6', '4.0e+6']);
    expect(tickLabels([])).toEqual([]);
  });
});
