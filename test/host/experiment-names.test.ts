import { describe, expect, it } from 'vitest';
import { cellRunName } from '../../src/host/experiment';
import { parseRunConfig } from '../../src/shared/run-config';

describe('names of the runs of an experiment grid', () => {
  it('keeps short names whole', () => {
    expect(cellRunName('PE grid', 'random init, 10% of training data, seed 1')).toBe('PE grid: random init, 10% of training data, seed 1');
  });

  it('shortens a long experiment name so the run name fits (a 200-character spec name is valid)', () => {
    const long = 'Synthetic PE slice classification: masked-region pretraining vs random vs supervised CNN';
    const cell = 'pretrained: masked 20%, 25% of training data, seed 3';
    const name = cellRunName(long, cell);
    expect(name.length).toBeLessThanOrEqual(120);
    expect(name.endsWith(`…: ${cell}`)).toBe(true);
    expect(name.startsWith('Synthetic PE slice classification')).toBe(true);
    // and the fine-tuning config accepts it
    expect(() => parseRunConfig({ kind: 'finetune', name, task: 'classification', model: 'encoder-classifier', label: { kind: 'image-label', name: 'pe' }, preset: 'tiny', steps: 1 })).not.toThrow();
    expect(() => parseRunConfig({ kind: 'finetune', name: `${long}: ${cell}`, task: 'classification', model: 'encoder-classifier', label: { kind: 'image-label', name: 'pe' }, preset: 'tiny', steps: 1 })).toThrow(/120/);
    expect(cellRunName('x'.repeat(200), 'y'.repeat(118)).length).toBe(120);
  });
});
