import { describe, expect, it } from 'vitest';
import { EarlyStopping } from '../../src/trainer/finetune/early-stop';

describe('early stopping on validation', () => {
  it('stops after `patience` evaluations in a row without a gain, keeping the best step', () => {
    const e = new EarlyStopping(2, 'auroc', 100);
    expect(e.update(100, 0.6)).toBe('improved');
    expect(e.update(200, 0.7)).toBe('improved');
    expect(e.update(300, 0.7)).toBe('waiting'); // equal is no gain
    expect(e.update(400, 0.65)).toBe('stop');
    expect(e.best).toEqual({ step: 200, value: 0.7 });
    expect(e.record()).toEqual({ patience: 2, metric: 'auroc', evalEvery: 100, evaluations: 4, bestStep: 200, bestValue: 0.7, stoppedAtStep: 400 });
  });

  it('a gain resets the count; an undefined metric never counts as one; a run that never stops records null', () => {
    const e = new EarlyStopping(2, 'dice', 10);
    expect(e.update(10, Number.NaN)).toBe('waiting');
    expect(e.update(20, 0.1)).toBe('improved');
    expect(e.update(30, 0.05)).toBe('waiting');
    expect(e.update(40, 0.2)).toBe('improved');
    expect(e.update(50, Number.NaN)).toBe('waiting');
    expect(e.update(60, 0.3)).toBe('improved');
    expect(e.record()).toMatchObject({ bestStep: 60, bestValue: 0.3, stoppedAtStep: null, evaluations: 6 });
  });

  it('refuses a patience that is not a whole number of evaluations', () => {
    expect(() => new EarlyStopping(0, 'auroc', 10)).toThrow(/patience must be a whole number of evaluations >= 1 \(got 0\)/);
    expect(() => new EarlyStopping(1.5, 'auroc', 10)).toThrow(/got 1.5/);
  });
});
