/**
 * Early stopping on the validation patients: after every validation evaluation, whether the
 * metric (AUROC, or Dice) beat the best so far; after `patience` evaluations in a row without a
 * gain the run stops, and the weights of the best evaluation are the run's result (its last
 * checkpoint and its held-out numbers). An undefined metric (NaN: a validation split with one
 * class) never counts as a gain.
 */
import type { EarlyStopRecord } from '../../shared/results';

export type EarlyStopVerdict = 'improved' | 'waiting' | 'stop';

export class EarlyStopping {
  private bestValue = Number.NaN;
  private bestStep = -1;
  private since = 0;
  private evaluations = 0;
  private stoppedAt: number | null = null;

  constructor(
    readonly patience: number,
    readonly metric: EarlyStopRecord['metric'],
    readonly evalEvery: number,
  ) {
    if (!Number.isInteger(patience) || patience < 1) throw new Error(`early stopping: patience must be a whole number of evaluations >= 1 (got ${patience})`);
  }

  /** Records the validation metric at `step`; 'stop' once `patience` evaluations in a row brought no gain. */
  update(step: number, value: number): EarlyStopVerdict {
    this.evaluations++;
    if (Number.isFinite(value) && (!Number.isFinite(this.bestValue) || value > this.bestValue)) {
      this.bestValue = value;
      this.bestStep = step;
      this.since = 0;
      return 'improved';
    }
    this.since++;
    if (this.since >= this.patience) {
      this.stoppedAt = step;
      return 'stop';
    }
    return 'waiting';
  }

  /** The best evaluation so far (step -1 before any defined value). */
  get best(): { step: number; value: number } {
    return { step: this.bestStep, value: this.bestValue };
  }

  /** What results.json records; `stoppedAtStep` null when the run trained all its steps. */
  record(): EarlyStopRecord {
    return {
      patience: this.patience,
      metric: this.metric,
      evalEvery: this.evalEvery,
      evaluations: this.evaluations,
      bestStep: this.bestStep,
      bestValue: this.bestValue,
      stoppedAtStep: this.stoppedAt,
    };
  }
}
