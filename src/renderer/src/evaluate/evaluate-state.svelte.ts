/**
 * The evaluate page: which runs to evaluate, on which split, the queue of evaluations in progress
 * (each runs in its own trainer process and takes a while), and the results (from this session,
 * or the last one recorded in the run's summary).
 */
import type { ApiClient } from '../../../shared/contract';
import type { SslEvaluation } from '../../../shared/results';
import type { RunSummary } from '../../../shared/types';
import { describeError } from '../lib/errors';
import type { RunsState } from '../runs/runs-state.svelte';

export class EvaluateState {
  selected = $state.raw<number[]>([]);
  split = $state<'test' | 'val' | 'train'>('test');
  maxSlices = $state<number | null>(null);
  /** Run being evaluated now, the ones waiting, and when the current one started. */
  current = $state<number | null>(null);
  queue = $state.raw<number[]>([]);
  startedAt = $state<number | null>(null);
  results = $state.raw<Record<number, SslEvaluation>>({});
  errors = $state.raw<Record<number, string>>({});
  /** Seconds each finished evaluation took (to estimate the next). */
  took = $state.raw<Record<number, number>>({});

  constructor(
    private readonly api: ApiClient,
    private readonly runs: RunsState,
  ) {}

  toggle(id: number, on: boolean): void {
    this.selected = on ? [...new Set([...this.selected, id])] : this.selected.filter((x) => x !== id);
  }

  /** The newest result of a run: this session's, or the one saved in its summary. */
  resultOf(r: RunSummary): SslEvaluation | null {
    return this.results[r.id] ?? r.summary.eval ?? null;
  }

  get busy(): boolean {
    return this.current !== null;
  }

  /** Evaluates the selected runs one after another. */
  async evaluateSelected(): Promise<void> {
    const ids = this.selected.filter((id) => id !== this.current && !this.queue.includes(id));
    if (ids.length === 0) return;
    this.queue = [...this.queue, ...ids];
    if (this.current !== null) return;
    while (this.queue.length > 0) {
      const [id, ...rest] = this.queue;
      this.queue = rest;
      this.current = id;
      this.startedAt = Date.now();
      const { [id]: _drop, ...errs } = this.errors;
      void _drop;
      this.errors = errs;
      try {
        const opts: { split?: 'test' | 'val' | 'train'; maxSlices?: number } = { split: this.split };
        if (this.maxSlices !== null && this.maxSlices > 0) opts.maxSlices = this.maxSlices;
        const res = await this.api.invoke('runs.evaluate', id, opts);
        this.results = { ...this.results, [id]: res };
        this.took = { ...this.took, [id]: (Date.now() - this.startedAt) / 1000 };
      } catch (e) {
        this.errors = { ...this.errors, [id]: describeError(e).message };
      }
    }
    this.current = null;
    this.startedAt = null;
    void this.runs.refresh();
  }
}
