/**
 * Experiment grids as the app sees them: the form and its cohort, the list of experiments, live
 * progress of the running one from 'experiment.event' (cell k of n, the current run's step, loss
 * and last validation, the cells finished so far) and the reports (numbers and SVG plots). One
 * instance for the app's lifetime, listening from the start so that progress is not lost while
 * another page is shown.
 *
 * Reactive fields are small; the current run's loss curve lives in a plain Map and the page redraws
 * when `curveVersion` ticks (at most every FLUSH_MS).
 */
import type { ApiClient, Events, Results } from '../../../shared/contract';
import type { ExperimentRequest, ExperimentSpec } from '../../../shared/run-config';
import type { ExperimentSummary } from '../../../shared/types';
import { noFilters } from '../library/cohort';
import { toasts } from '../lib/toasts.svelte';
import { appendPoint, type CurveSet } from '../runs/curves';
import { CohortState } from '../runs/cohort-state.svelte';
import type { RunsState } from '../runs/runs-state.svelte';
import { cellAt, defaultExperimentForm, type ExperimentForm } from './experiment-form';

export type ExperimentEvent = Events['experiment.event'];
export type ExperimentReportResponse = Results['experiments.report'];

export interface CellDone {
  index: number;
  init: string;
  fraction: number;
  seed: number;
  status: string;
}

export interface ExperimentProgress {
  id: string;
  /** Cell being trained (0-based) and the grid's size. */
  index: number;
  total: number;
  init: string | null;
  fraction: number | null;
  seed: number | null;
  step: number | null;
  /** Steps per run when the spec gives steps (this session's experiments only). */
  totalSteps: number | null;
  loss: number | null;
  lastEval: Record<string, number> | null;
  /** Cell whose curve is kept (the running one, or the last finished until the next starts), or null. */
  curveIndex: number | null;
  cellsDone: CellDone[];
  state: 'running' | 'stopping' | 'done' | 'stopped' | 'error';
  message: string | null;
}

const FLUSH_MS = 300;

export class ExperimentsState {
  form = $state<ExperimentForm>(defaultExperimentForm());
  readonly cohort: CohortState;
  list = $state.raw<ExperimentSummary[]>([]);
  /** Experiments in the trash (restorable until the trash is emptied). */
  trashed = $state.raw<ExperimentSummary[]>([]);
  listLoaded = $state(false);
  progress = $state.raw<Record<string, ExperimentProgress>>({});
  reports = $state.raw<Record<string, ExperimentReportResponse>>({});
  loadingReport = $state.raw<Record<string, boolean>>({});
  starting = $state(false);
  /** Ticks when the current run's loss curve changed. */
  curveVersion = $state(0);
  /** Kinds of label files imported (to choose the cohort's labels filter for segmentation). */

  /** Loss (train) and validation metric of the running cell, by experiment id. */
  private curves = new Map<string, CurveSet>();
  private specs = new Map<string, ExperimentSpec>();
  private started = false;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private pending = new Map<string, ExperimentProgress>();
  private listTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly api: ApiClient,
    private readonly runs: RunsState,
  ) {
    this.cohort = new CohortState(api, { ...noFilters(), ctOnly: true, labels: 'any' });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.api.on('experiment.event', (e) => {
      // Steps come at most every 100 ms, each with the steps since the last one: every point is kept.
      for (const s of e.earlierSteps ?? []) this.onEvent({ ...e, event: s, earlierSteps: undefined });
      this.onEvent(e);
    });
    void this.refresh(true);
  }

  /** The experiment list; with `withTrash` also the trash (which changes only by delete, restore and empty). */
  async refresh(withTrash = false): Promise<void> {
    try {
      [this.list, this.trashed] = await Promise.all([this.api.invoke('experiments.list'), withTrash ? this.api.invoke('experiments.trash') : this.trashed]);
      this.listLoaded = true;
      // An experiment recorded as running that this page did not see start (another window, a reload).
      for (const x of this.list) if (x.status === 'running' && !this.progress[x.id]) this.setProgress(this.blank(x.id, x.completed, x.cells));
    } catch (e) {
      toasts.error('Experiments', e);
    }
  }

  private refreshSoon(ms = 400): void {
    if (this.listTimer) clearTimeout(this.listTimer);
    this.listTimer = setTimeout(() => {
      this.listTimer = null;
      void this.refresh();
    }, ms);
  }

  /** The running experiment (at most one runs at a time), or null. */
  get running(): ExperimentSummary | null {
    const live = Object.values(this.progress).find((p) => p.state === 'running' || p.state === 'stopping');
    if (live) return this.list.find((x) => x.id === live.id) ?? { id: live.id, name: live.id, task: '', status: 'running', cells: live.total, completed: live.cellsDone.length, dir: '' };
    return this.list.find((x) => x.status === 'running') ?? null;
  }

  private blank(id: string, index = 0, total = 0): ExperimentProgress {
    const spec = this.specs.get(id);
    return {
      id,
      index,
      total,
      init: null,
      fraction: null,
      seed: null,
      step: null,
      totalSteps: spec?.steps ?? null,
      loss: null,
      lastEval: null,
      curveIndex: null,
      cellsDone: [],
      state: 'running',
      message: null,
    };
  }

  private current(id: string): ExperimentProgress {
    return this.pending.get(id) ?? this.progress[id] ?? this.blank(id);
  }

  private setProgress(p: ExperimentProgress): void {
    this.progress = { ...this.progress, [p.id]: p };
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.pending.size === 0) return;
    const next = { ...this.progress };
    for (const [id, p] of this.pending) next[id] = p;
    this.pending.clear();
    this.progress = next;
    this.curveVersion++;
  }

  private onEvent(e: ExperimentEvent): void {
    const cur = this.current(e.id);
    const cell = { index: e.index, total: e.total, init: e.init ?? cur.init, fraction: e.fraction ?? cur.fraction, seed: e.seed ?? cur.seed };
    if (e.kind === 'run-event' && e.event) {
      const ev = e.event;
      // A new cell: its curve starts over (the last cell's stays on screen until then: tiny runs
      // end within a fraction of a second).
      if (cell.index !== cur.curveIndex && ev.type !== 'started') this.curves.delete(e.id);
      const base = cell.index !== cur.index ? { ...cur, step: null, loss: null, lastEval: null } : cur;
      let curves = this.curves.get(e.id);
      if (!curves) {
        curves = new Map();
        this.curves.set(e.id, curves);
      }
      if (ev.type === 'started') {
        // The run's length (known here even when the grid gives epochs, or was started elsewhere) and, resumed, its step.
        this.pending.set(e.id, { ...base, ...cell, step: ev.step, totalSteps: ev.totalSteps });
        this.scheduleFlush();
      } else if (ev.type === 'step') {
        appendPoint(curves, 'train', ev.step, ev.losses);
        this.pending.set(e.id, { ...base, ...cell, curveIndex: cell.index, step: ev.step, loss: ev.losses.loss ?? null, state: cur.state === 'stopping' ? 'stopping' : 'running' });
        this.scheduleFlush();
      } else if (ev.type === 'eval') {
        appendPoint(curves, 'val', ev.step, ev.metrics);
        this.pending.set(e.id, { ...base, ...cell, curveIndex: cell.index, lastEval: ev.metrics });
        this.scheduleFlush();
      } else if (ev.type === 'error') {
        this.flush();
        this.setProgress({ ...base, ...cell, message: ev.message });
      }
      return;
    }
    this.flush();
    if (e.kind === 'cell') {
      const done: CellDone = { index: e.index, init: e.init ?? '?', fraction: e.fraction ?? NaN, seed: e.seed ?? 0, status: e.status ?? '?' };
      const cellsDone = [...cur.cellsDone.filter((c) => c.index !== e.index), done];
      // The next cell (known from the spec when this session started the grid; otherwise from its first event).
      const spec = this.specs.get(e.id);
      const next = spec ? cellAt(spec, e.index + 1) : null;
      this.setProgress({ ...cur, index: Math.min(e.index + 1, e.total), total: e.total, cellsDone, init: next?.init ?? null, fraction: next?.fraction ?? null, seed: next?.seed ?? null, step: null, loss: null, lastEval: null });
      this.refreshSoon();
      void this.runs.refresh();
    } else {
      const state = e.kind === 'done' ? 'done' : e.kind === 'stopped' ? 'stopped' : 'error';
      this.setProgress({ ...cur, state, message: e.message ?? null, index: e.kind === 'done' ? e.total : cur.index, total: e.total || cur.total });
      if (e.kind === 'error') toasts.error('Experiment', new Error(e.message ?? 'the experiment failed'));
      this.refreshSoon(200);
      void this.runs.refresh();
      void this.loadReport(e.id, true);
    }
  }

  /** Curves (train loss, validation metric) of the running cell, or of the last finished one until the next starts. */
  curveOf(id: string): CurveSet | undefined {
    return this.curves.get(id);
  }

  /**
   * Starts an experiment; resolves to its summary, or null when it failed (shown in the banner).
   * `runs` name the run folders of the request's run ids, as the services write them into the spec.
   */
  async startExperiment(request: ExperimentRequest, runs: readonly { id: number; dir: string }[]): Promise<ExperimentSummary | null> {
    this.starting = true;
    try {
      const s = await this.api.invoke('experiments.start', request);
      const spec = { ...request, inits: request.inits.map((i) => (typeof i === 'number' ? (runs.find((r) => r.id === i)?.dir ?? `#${i}`) : i)) } as ExperimentSpec;
      this.specs.set(s.id, spec);
      // Events may have arrived before this answer: keep what they said.
      const first = cellAt(spec, 0);
      const seen = this.progress[s.id];
      this.setProgress(
        seen
          ? { ...seen, totalSteps: spec.steps ?? null }
          : { ...this.blank(s.id, 0, s.cells), init: first?.init ?? null, fraction: first?.fraction ?? null, seed: first?.seed ?? null, totalSteps: spec.steps ?? null },
      );
      this.list = [s, ...this.list.filter((x) => x.id !== s.id)];
      return s;
    } catch (e) {
      toasts.error('Start experiment', e);
      return null;
    } finally {
      this.starting = false;
    }
  }

  /** Continues an incomplete or failed experiment in its folder (finished runs are kept). */
  async resume(id: string): Promise<void> {
    this.starting = true;
    const spec = this.reports[id]?.spec;
    if (spec) this.specs.set(id, spec);
    const prev = this.progress[id];
    // Fresh progress first: the finished cells are reported as soon as the grid starts again.
    this.setProgress({ ...this.blank(id, 0, this.list.find((x) => x.id === id)?.cells ?? 0), totalSteps: spec?.steps ?? null });
    try {
      const s = await this.api.invoke('experiments.resume', id);
      this.list = this.list.map((x) => (x.id === id ? { ...s, completed: x.completed } : x));
    } catch (e) {
      const next = { ...this.progress };
      if (prev) next[id] = prev;
      else delete next[id];
      this.progress = next;
      toasts.error('Resume experiment', e);
    } finally {
      this.starting = false;
    }
  }

  /** Moves an experiment (folder, runs, report) to the trash, with Undo in the notice. */
  async remove(id: string): Promise<void> {
    const x = this.list.find((e) => e.id === id);
    try {
      await this.api.invoke('experiments.delete', id);
      // Out of the list before its report goes, so nothing asks for the report of a deleted experiment.
      this.list = this.list.filter((e) => e.id !== id);
      const reports = { ...this.reports };
      delete reports[id];
      this.reports = reports;
      await Promise.all([this.refresh(true), this.runs.refresh()]);
      toasts.notice('Experiment moved to the trash', x?.name ?? id, 12_000, { label: 'Undo', run: () => this.restore(id) });
    } catch (e) {
      toasts.error('Delete experiment', e);
    }
  }

  async restore(id: string): Promise<void> {
    try {
      await this.api.invoke('experiments.restore', id);
      await Promise.all([this.refresh(true), this.runs.refresh()]);
    } catch (e) {
      toasts.error('Restore experiment', e);
    }
  }

  /** Deletes the listed experiments of the trash for good. */
  async emptyTrash(ids: string[]): Promise<void> {
    try {
      await this.api.invoke('experiments.emptyTrash', ids);
      await this.refresh(true);
    } catch (e) {
      toasts.error('Empty trash', e);
    }
  }

  async stop(id: string): Promise<void> {
    const cur = this.progress[id];
    if (cur) this.setProgress({ ...cur, state: 'stopping' });
    try {
      await this.api.invoke('experiments.stop', id);
    } catch (e) {
      if (cur) this.setProgress({ ...cur });
      toasts.error('Stop experiment', e);
    }
  }

  /** Loads an experiment's report (once, or again with `force`). */
  async loadReport(id: string, force = false): Promise<void> {
    if (!force && (this.reports[id] || this.loadingReport[id])) return;
    this.loadingReport = { ...this.loadingReport, [id]: true };
    try {
      const r = await this.api.invoke('experiments.report', id);
      this.reports = { ...this.reports, [id]: r };
    } catch (e) {
      toasts.error('Experiment report', e);
    } finally {
      this.loadingReport = { ...this.loadingReport, [id]: false };
    }
  }

  /** Steps per run of an experiment this session started (null when unknown). */
  stepsOf(id: string): number | null {
    return this.specs.get(id)?.steps ?? null;
  }
}
