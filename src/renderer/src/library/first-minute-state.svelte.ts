/**
 * "Try it on a synthetic cohort" on an empty library: asks the services to write, index and label
 * a small synthetic cohort (library.synthCohort) and follows its progress events.
 */
import type { ApiClient, Events } from '../../../shared/contract';
import type { SyntheticCohortResult } from '../../../shared/types';
import { describeError } from '../lib/errors';

export type FirstMinutePhase = Events['library.synthProgress']['phase'] | 'idle' | 'starting';

/** What each phase is called on screen. */
export const PHASE_LABELS: Record<FirstMinutePhase, string> = {
  idle: '',
  starting: 'Starting',
  writing: 'Writing synthetic CT',
  indexing: 'Indexing',
  labels: 'Importing labels',
  done: 'Ready',
  error: 'Failed',
  cancelled: 'Cancelled',
};

export class FirstMinuteState {
  phase = $state<FirstMinutePhase>('idle');
  done = $state(0);
  total = $state(0);
  message = $state('');
  result = $state.raw<SyntheticCohortResult | null>(null);
  error = $state<string | null>(null);
  private requestId: string | null = null;
  private off: (() => void) | null = null;

  constructor(private readonly api: ApiClient) {}

  get busy(): boolean {
    return this.phase === 'starting' || this.phase === 'writing' || this.phase === 'indexing' || this.phase === 'labels';
  }

  /** Makes the cohort; `then` runs when it is ready (the library refreshes its lists). */
  async start(then: () => void | Promise<void>): Promise<void> {
    if (this.busy) return;
    const requestId = `synth-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    this.requestId = requestId;
    this.phase = 'starting';
    this.error = null;
    this.result = null;
    this.done = 0;
    this.total = 0;
    this.off?.();
    this.off = this.api.on('library.synthProgress', (p) => {
      if (p.requestId !== this.requestId || p.phase === 'error' || p.phase === 'cancelled' || p.phase === 'done') return;
      this.phase = p.phase;
      this.done = p.done;
      this.total = p.total;
      this.message = p.message;
    });
    try {
      this.result = await this.api.invoke('library.synthCohort', { requestId });
      this.phase = 'done';
      this.message = '';
      await then();
    } catch (err) {
      const { code, message } = describeError(err);
      this.phase = code === 'cancelled' ? 'cancelled' : 'error';
      this.error = message;
    } finally {
      this.off?.();
      this.off = null;
    }
  }

  async cancel(): Promise<void> {
    if (this.requestId && this.busy) await this.api.invoke('library.cancelSynth', this.requestId).catch(() => undefined);
  }
}
