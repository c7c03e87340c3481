/** The model card is laid out once as sections (src/shared/model-card.ts): Markdown tables and lists, never raw JSON. */
import { describe, expect, it } from 'vitest';
import { modelCardMarkdown, modelCardSections } from '../../src/shared/model-card';
import type { ModelCard } from '../../src/shared/results';

const card: ModelCard = {
  name: 'CT SSL masked 20% encoder (tiny, 32px)',
  intendedUse: 'Research.',
  data: {
    patients: 2,
    studies: 2,
    series: 3,
    slices: 29,
    bySplit: { train: { patients: 1, series: 2, slices: 17 }, val: { patients: 1, series: 1, slices: 12 }, test: { patients: 0, series: 0, slices: 0 } },
    scanners: [{ manufacturer: 'GE', model: 'LightSpeed', series: 3 }],
    sliceThicknessMm: { min: 1.25, max: 2.5 },
    studyYears: { from: 2000, to: 2001 },
  },
  training: { optimizer: 'radam', lr: 0.001, batchSize: 2, steps: 30, lossWeights: { mse: 1, vq: 1 }, seed: 1, fractions: { train: 0.8, val: 0.1, test: 0.1 } },
  task: { name: 'masked', maskPercent: 20, maskDefinition: 'area', gap: null, noiseFraction: null },
  curriculum: [{ task: 'masked', maskPercent: 20, maskDefinition: 'area', steps: 30, epochs: null }],
  pretextMetrics: { split: 'test', perVolume: { mse: { mean: 0.41234567, sd: 0.01, n: 1 } }, perImage: {}, volumes: 1, images: 4 },
  finalTrainingLosses: { loss: 0.35926, mse: 0.4 },
  downstream: null,
  limitations: ['Trained on 2 patients.'],
  licence: 'CC-BY-4.0',
  author: 'Test Lab',
  ledger: {
    app: 'CT SSL Studio',
    appVersion: '0.1.0',
    exportedAt: '2026-12-05T09:00:00.000Z',
    runUid: 'abc',
    trainedWith: { appVersion: '0.1.0', backend: 'wasm' },
    backendAtExport: 'tfjs@4',
    seeds: { run: 1 },
    manifestHash: 'f'.repeat(64),
    configHash: 'e'.repeat(64),
    checkpoint: { step: 30, savedAt: '2026-12-05T08:59:00.000Z' },
  },
};

describe('model card', () => {
  it('is sections with tables and lists', () => {
    const s = modelCardSections(card);
    expect(s.map((x) => x.title)).toEqual(
      expect.arrayContaining(['Licence', 'Intended use', 'Training data (no identifiers)', 'Task', 'Curriculum', 'Training settings', 'Known limitations', 'Reproducibility']),
    );
    const data = s.find((x) => x.title.startsWith('Training data'))!;
    expect(data).toMatchObject({ kind: 'table', caption: '2 patients, 2 studies, 3 series, 29 slices' });
    const repro = s.find((x) => x.title === 'Reproducibility')!;
    expect(repro.kind === 'table' && repro.rows).toContainEqual(['trainedWith.backend', 'wasm']);
  });

  it('writes Markdown without JSON', () => {
    const md = modelCardMarkdown(card);
    expect(md).toMatch(/^# CT SSL masked 20% encoder/);
    expect(md).toContain('| split | patients | series | slices |');
    expect(md).toContain('| held out | 0 | 0 | 0 |');
    expect(md).toContain('| optimizer | radam |');
    expect(md).toContain('| mse | 0.4123 | 0.01 |');
    expect(md).toContain('| checkpoint.step | 30 |');
    expect(md).not.toMatch(/[{}]|```/);
  });
});
