import { describe, expect, it } from 'vitest';
import { parseRunConfig, pretrainRequestSchema } from '../../src/shared/run-config';
import type { RunSplit, RunSummary } from '../../src/shared/types';
import { nextCurriculumConfig } from '../../src/renderer/src/runs/run-form';
import { lineageLines, splitCounts, splitShort } from '../../src/renderer/src/runs/split-view';
import { defaultFinetuneForm, toFinetuneConfig } from '../../src/renderer/src/finetune/finetune-form';
import { defaultExperimentForm, toExperimentSpec } from '../../src/renderer/src/experiments/experiment-form';

const group = (patients: number, positivePatients: number | null, positives: number | null) => ({ patients, series: patients, slices: patients * 8, positives, positivePatients, list: [] });

const split = (over: Partial<RunSplit> = {}): RunSplit => ({
  runId: 3,
  manifestHash: 'h',
  seed: 1,
  fractions: { train: 0.6, val: 0.2, test: 0.2 },
  labelled: true,
  lineage: {
    inheritedFrom: null,
    parents: [
      { dir: '/data/runs/pre', name: 'masked 20%', kind: 'pretrain', trainPatients: 6, note: '' },
      { dir: '/data/runs/imp', name: 'imp', kind: 'imported', trainPatients: null, note: 'cannot check: the encoder was trained elsewhere (imported from x.zip); its training patients are unknown' },
    ],
    keptInTrain: ['A', 'B', 'C', 'D', 'E', 'F'],
    overlap: [],
    stratified: true,
    due: { val: 3, test: 3 },
    warnings: [],
  },
  splits: { train: group(6, 2, 8), val: group(3, 1, 4), test: group(1, 1, 4) },
  ...over,
});

describe('the split panel in words', () => {
  it('counts patients, series, slices and positives per split, and says what the parents imply', () => {
    expect(splitCounts(split(), 'val')).toBe('3 patients · 3 series · 24 slices · 1 positive patient (4 positive slices)');
    expect(splitCounts(split({ splits: { train: group(10, null, null), val: group(1, null, null), test: group(1, null, null) } }), 'test')).toBe('1 patient · 1 series · 8 slices');
    expect(splitShort(split())).toBe('training 6, validation 3, held-out 1 patients');
    expect(lineageLines(split())).toEqual([
      'masked 20% (pretrain) trained on 6 patients of this cohort.',
      'imp: cannot check: the encoder was trained elsewhere (imported from x.zip); its training patients are unknown.',
      '6 patients kept in training because a parent run trained on them: never in validation or held-out.',
      'Stratified: patients with a positive slice and those without were split apart.',
    ]);
    expect(lineageLines(split({ lineage: null }))).toEqual([]);
    const inherited = split({ lineage: { ...split().lineage!, inheritedFrom: '/data/runs/stage1', parents: [], stratified: false, overlap: ['Z'] } });
    expect(lineageLines(inherited)).toEqual([
      'The data and patient split of the run it continues (stage1).',
      '6 patients kept in training because a parent run trained on them: never in validation or held-out.',
      '1 patient a parent run trained on is in validation or held-out (overlap allowed).',
    ]);
  });

  it('the next curriculum stage never asks for a new cohort or an overlap, even from a run that did', () => {
    const run: RunSummary = {
      id: 4,
      active: false,
      name: '',
      kind: 'pretrain',
      task: 'masked',
      status: 'done',
      dir: '/data/runs/r4',
      preset: 'tiny',
      config: parseRunConfig({ task: 'masked', maskPercent: 5, steps: 10, init: '/data/runs/r1', newCohort: true, allowOverlap: true, filter: { modality: 'CT' } }),
      backend: '',
      createdAt: '',
      updatedAt: '',
      step: 10,
      totalSteps: 10,
      manifestHash: '',
      parentDir: '',
      summary: {},
      error: '',
    };
    const next = nextCurriculumConfig(run)!;
    expect(next).not.toHaveProperty('newCohort');
    expect(next).not.toHaveProperty('allowOverlap');
    expect(next).toMatchObject({ init: 4, maskPercent: 10 });
    expect(pretrainRequestSchema.safeParse(next).success).toBe(true);
  });

  it('sends "allow overlap" only when ticked, and for fine-tuning only with a pretrained init', () => {
    const cohort = { filter: { modality: 'CT' } };
    expect(toFinetuneConfig({ ...defaultFinetuneForm(), allowOverlap: true }, cohort)).not.toHaveProperty('allowOverlap');
    expect(toFinetuneConfig({ ...defaultFinetuneForm(), init: '7', allowOverlap: true }, cohort)).toMatchObject({ init: 7, allowOverlap: true });
    expect(toFinetuneConfig({ ...defaultFinetuneForm(), init: '7' }, cohort)).not.toHaveProperty('allowOverlap');
    expect(toExperimentSpec({ ...defaultExperimentForm(), allowOverlap: true }, cohort)).toMatchObject({ allowOverlap: true });
    expect(toExperimentSpec(defaultExperimentForm(), cohort)).not.toHaveProperty('allowOverlap');
  });
});
