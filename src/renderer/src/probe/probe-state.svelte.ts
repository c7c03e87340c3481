/**
 * The bias probe page: which encoders (finished pretraining or imported runs), which cohort,
 * attributes, folds and seed; the probe in progress ('probe.progress') and its result (scores,
 * warnings, the Figure 6 style bar chart), with Cancel; earlier probes from the data folder.
 *
 * Each request carries an id made here; the service's 'probe.progress' events carry it back with
 * the probe's id, so this page follows (and Cancel names) its own probe, not another window's.
 */
import type { ApiClient, Results } from '../../../shared/contract';
import type { ProbeAttribute } from '../../../shared/results';
import type { ProbeSummary } from '../../../shared/types';
import { noFilters, toCohortFilter } from '../library/cohort';
import { describeError } from '../lib/errors';
import { toasts } from '../lib/toasts.svelte';
import { CohortState } from '../runs/cohort-state.svelte';
import { probeProblems, type ProbeProblems } from './probe-table';

export type ProbeResponse = Results['probe.run'];

export class ProbeState {
  runIds = $state.raw<number[]>([]);
  attributes = $state.raw<ProbeAttribute[]>(['sex', 'ethnicGroup', 'ageGroup']);
  folds = $state(5);
  seed = $state(1);
  /** Probe the scans the encoders trained or validated on too (default off: they are left out, as the paper probes held-out exams). */
  includeTrainingScans = $state(false);
  readonly cohort: CohortState;
  running = $state(false);
  startedAt = $state<number | null>(null);
  progress = $state.raw<{ done: number; total: number; what: string } | null>(null);
  /** The probe shown: its id, result and chart. */
  response = $state.raw<ProbeResponse | null>(null);
  error = $state<string | null>(null);
  /** Id of the probe this page is running, once its first progress event arrived. */
  runningId = $state<string | null>(null);
  cancelling = $state(false);
  /** Earlier probes (newest first) and which one is shown. */
  history = $state.raw<ProbeSummary[]>([]);
  /** Probes in the trash. */
  trashed = $state.raw<ProbeSummary[]>([]);
  shownId = $state<string | null>(null);
  private listening = false;
  /** The requestId of this page's pending probe.run. */
  private requestId: string | null = null;

  constructor(private readonly api: ApiClient) {
    this.cohort = new CohortState(api, { ...noFilters(), ctOnly: true, axialOnly: true });
  }

  start(): void {
    if (this.listening) return;
    this.listening = true;
    this.api.on('probe.progress', (p) => {
      if (!this.running || !this.requestId || p.requestId !== this.requestId) return;
      this.runningId = p.id;
      this.progress = { done: p.done, total: p.total, what: p.what };
    });
    void this.loadHistory(true);
  }

  /** Reloads the list of earlier probes; with `showLatest`, shows the newest if nothing is shown. */
  async loadHistory(showLatest = false): Promise<void> {
    try {
      [this.history, this.trashed] = await Promise.all([this.api.invoke('probe.list'), this.api.invoke('probe.trash')]);
      if (showLatest && !this.response && !this.running && this.history.length > 0) await this.show(this.history[0].id);
    } catch (e) {
      this.error = describeError(e).message;
    }
  }

  /** Shows an earlier probe's result. */
  async show(id: string): Promise<void> {
    try {
      const res = await this.api.invoke('probe.result', id);
      this.response = res;
      this.shownId = id;
      this.error = null;
    } catch (e) {
      this.error = describeError(e).message;
    }
  }

  /** Moves the shown probe to the trash, with Undo in the notice; the next earlier one is shown. */
  async remove(id: string): Promise<void> {
    try {
      await this.api.invoke('probe.delete', id);
      if (this.shownId === id) {
        this.shownId = null;
        this.response = null;
      }
      await this.loadHistory(true);
      toasts.notice('Bias probe moved to the trash', id, 12_000, { label: 'Undo', run: () => this.restore(id) });
    } catch (e) {
      this.error = describeError(e).message;
    }
  }

  async restore(id: string): Promise<void> {
    try {
      await this.api.invoke('probe.restore', id);
      await this.loadHistory();
      await this.show(id);
    } catch (e) {
      this.error = describeError(e).message;
    }
  }

  /** Deletes the listed probes of the trash for good. */
  async emptyTrash(ids: string[]): Promise<void> {
    try {
      await this.api.invoke('probe.emptyTrash', ids);
      await this.loadHistory();
    } catch (e) {
      this.error = describeError(e).message;
    }
  }

  /** Cancels the running probe (kills its trainer process). */
  async cancel(): Promise<void> {
    if (!this.running || !this.runningId || this.cancelling) return;
    this.cancelling = true;
    try {
      await this.api.invoke('probe.cancel', this.runningId);
    } catch (e) {
      this.error = describeError(e).message;
    }
  }

  toggleRun(id: number, on: boolean): void {
    this.runIds = on ? [...new Set([...this.runIds, id])] : this.runIds.filter((x) => x !== id);
  }

  toggleAttribute(a: ProbeAttribute, on: boolean): void {
    this.attributes = on ? [...new Set([...this.attributes, a])] : this.attributes.filter((x) => x !== a);
  }

  get problems(): ProbeProblems {
    return probeProblems({ runIds: this.runIds, attributes: this.attributes, folds: this.folds, seed: this.seed });
  }

  /** Runs the probe (in a trainer process); the result replaces the previous one. */
  async run(): Promise<void> {
    if (this.running || Object.keys(this.problems).length > 0) return;
    this.running = true;
    this.error = null;
    this.progress = null;
    this.runningId = null;
    this.cancelling = false;
    this.startedAt = Date.now();
    try {
      this.requestId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
      const res = await this.api.invoke('probe.run', {
        requestId: this.requestId,
        runIds: [...this.runIds],
        filter: toCohortFilter(this.cohort.form),
        attributes: [...this.attributes],
        folds: this.folds,
        seed: this.seed,
        ...(this.includeTrainingScans && { includeTrainingScans: true }),
      });
      this.response = res;
      this.shownId = res.id;
    } catch (e) {
      const err = describeError(e);
      // A cancel is what the user asked for: no error, the previous result stays.
      if (err.code !== 'cancelled') this.error = err.message;
    } finally {
      this.running = false;
      this.startedAt = null;
      this.runningId = null;
      this.cancelling = false;
      void this.loadHistory();
    }
  }
}
