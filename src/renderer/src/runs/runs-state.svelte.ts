/**
 * Training runs as the app sees them, for the pretrain, fine-tune, evaluate and share pages: the
 * run list, live state from 'run.event' (status, last step, backend), curves, the latest sample and
 * (fine-tuning) the held-out results of each run, the doctor's advice. One instance for the app's
 * lifetime.
 *
 * Reactive fields are small (list, per-run live summary, version counters); curves and sample
 * images live in plain Maps and the pages redraw when `curvesVersion` / `sampleVersion` tick.
 */
import type { ApiClient } from '../../../shared/contract';
import type { FinetuneRequest, PretrainRequest } from '../../../shared/run-config';
import type { StepEvent, TrainerEvent } from '../../../shared/trainer-protocol';
import type { FinetuneResults, RecordedResults } from '../../../shared/results';
import type { DoctorInfo, RunSplit, RunSummary } from '../../../shared/types';
import { describeError } from '../lib/errors';
import { toasts } from '../lib/toasts.svelte';
import { appendPoint, fromMetrics, mergeCurves, type CurveSet } from './curves';

export type RunStatus = RunSummary['status'];
export type Sample = Extract<TrainerEvent, { type: 'sample' }>;

export interface LiveRun {
  status: RunStatus;
  step: number;
  totalSteps: number;
  epoch: number;
  lastStep: StepEvent | null;
  backend: string;
  params: number | null;
  resumedFrom: number | null;
  lastCheckpoint: number | null;
  lastEval: Record<string, number> | null;
  error: string | null;
  /** A pause or stop was asked for and the trainer has not confirmed it yet. */
  pending: 'pause' | 'stop' | null;
}

const FLUSH_MS = 300;
const ACTIVE: readonly RunStatus[] = ['running', 'paused'];
const TERMINAL: readonly RunStatus[] = ['done', 'stopped', 'failed', 'crashed'];

export function isActive(s: RunStatus): boolean {
  return ACTIVE.includes(s);
}

export class RunsState {
  runs = $state.raw<RunSummary[]>([]);
  /** Runs in the trash (deleted, restorable until the trash is emptied). */
  trashed = $state.raw<RunSummary[]>([]);
  live = $state.raw<Record<number, LiveRun>>({});
  doctor = $state.raw<DoctorInfo | null>(null);
  doctorState = $state<'idle' | 'loading' | 'done' | 'error'>('idle');
  doctorError = $state<string | null>(null);
  /** Ticks when any run's curves changed. */
  curvesVersion = $state(0);
  /** Ticks when any run's sample changed. */
  sampleVersion = $state(0);
  /** A create/start request is on its way. */
  starting = $state(false);
  /** Ticks when a fine-tuning run's held-out results arrived. */
  resultsVersion = $state(0);

  private curves = new Map<number, CurveSet>();
  private loading = new Map<number, Promise<void>>();
  private samples = new Map<number, Sample>();
  private results = new Map<number, FinetuneResults>();
  /** Each run's patient split, asked once (a run's manifest does not change). */
  private splits = new Map<number, Promise<RunSplit | null>>();
  private sampleAsked = new Set<number>();
  private started = false;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  /** Step events are frequent (tens per second on small presets): their effect on the page is applied at most every FLUSH_MS. */
  private pendingSteps = new Map<number, StepEvent>();
  private curvesDirty = false;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly api: ApiClient) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.api.on('run.event', ({ runId, event, earlierSteps }) => {
      // Steps come at most every 100 ms, each with the steps since the last one: every point is kept.
      for (const s of earlierSteps ?? []) this.onEvent(runId, s);
      this.onEvent(runId, event);
    });
    void this.refresh(true);
  }

  /** The runs list; with `withTrash` also the trash (which changes only by delete, restore and empty). */
  async refresh(withTrash = false): Promise<void> {
    try {
      [this.runs, this.trashed] = await Promise.all([this.api.invoke('runs.list'), withTrash ? this.api.invoke('runs.trash') : this.trashed]);
    } catch (e) {
      toasts.error('Runs', e);
    }
  }

  /** Moves a run to the trash, with Undo in the notice. */
  async remove(id: number): Promise<void> {
    const r = this.run(id);
    try {
      const { movedTo } = await this.api.invoke('runs.delete', id);
      await this.refresh(true);
      const what = `#${id} ${r?.name ?? ''}`.trim();
      toasts.notice('Run moved to the trash', movedTo ? what : `${what} (its folder is outside the data folder and stays where it is)`, 12_000, { label: 'Undo', run: () => this.restore(id) });
    } catch (e) {
      toasts.error('Delete run', e);
    }
  }

  /** Brings a run back from the trash. */
  async restore(id: number): Promise<void> {
    try {
      await this.api.invoke('runs.restore', id);
      await this.refresh(true);
    } catch (e) {
      toasts.error('Restore run', e);
    }
  }

  /** Deletes the given runs of the trash (those the confirmation listed) for good: folders and curves. */
  async emptyTrash(ids: number[]): Promise<void> {
    try {
      const { failed } = await this.api.invoke('runs.emptyTrash', ids);
      await this.refresh(true);
      if (failed.length > 0) toasts.error('Empty trash', new Error(failed.map((f) => `run #${f.id} kept in the trash: ${f.error}`).join('\n')));
    } catch (e) {
      toasts.error('Empty trash', e);
    }
  }

  /** Refreshes the list a little later (the services record a run's end when its process exits). */
  private refreshSoon(ms = 600): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      void this.refresh().then(() => {
        // Still recorded as active while the live state says it ended: look again.
        if (this.runs.some((r) => isActive(r.status) && this.live[r.id] && TERMINAL.includes(this.live[r.id].status))) this.refreshSoon(1500);
      });
    }, ms);
  }

  run(id: number): RunSummary | undefined {
    return this.runs.find((r) => r.id === id);
  }

  /** Status to show: live events win while the list has not caught up. */
  status(r: RunSummary): RunStatus {
    const l = this.live[r.id];
    if (!l) return r.status;
    if (isActive(r.status) || r.status === 'created') return l.status;
    return r.status;
  }

  /** The trainer said it ended but its process has not exited yet (the services still hold the run). */
  settling(r: RunSummary): boolean {
    const l = this.live[r.id];
    return !!l && TERMINAL.includes(l.status) && isActive(r.status);
  }

  progress(r: RunSummary): { step: number; total: number } {
    const l = this.live[r.id];
    return { step: Math.max(l?.step ?? 0, r.step), total: l?.totalSteps || r.totalSteps };
  }

  private patch(id: number, p: Partial<LiveRun>): void {
    const r = this.run(id);
    const base: LiveRun = this.live[id] ?? {
      status: r?.status ?? 'running',
      step: r?.step ?? 0,
      totalSteps: r?.totalSteps ?? 0,
      epoch: 0,
      lastStep: null,
      backend: r?.backend ?? '',
      params: null,
      resumedFrom: null,
      lastCheckpoint: null,
      lastEval: null,
      error: null,
      pending: null,
    };
    this.live = { ...this.live, [id]: { ...base, ...p } };
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  /** Applies buffered step events and redraws curves. */
  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    for (const [id, e] of this.pendingSteps) {
      const cur = this.live[id];
      this.patch(id, { step: e.step, epoch: e.epoch, lastStep: e, status: cur?.status === 'paused' ? 'paused' : cur?.status === 'running' || !cur ? 'running' : cur.status });
    }
    this.pendingSteps.clear();
    if (this.curvesDirty) {
      this.curvesDirty = false;
      this.curvesVersion++;
    }
  }

  private onEvent(id: number, e: TrainerEvent): void {
    // Anything but a step first applies the steps before it, so that the order on screen is kept.
    if (e.type !== 'step' && (this.pendingSteps.size > 0 || this.curvesDirty)) this.flush();
    switch (e.type) {
      case 'ready':
        this.patch(id, { backend: `${e.backend.package}@${e.backend.version} (${e.backend.name}${e.backend.simd ? ', SIMD' : ''})` });
        break;
      case 'started':
        this.patch(id, { status: 'running', step: e.step, totalSteps: e.totalSteps, params: e.params, resumedFrom: e.resumedFrom, error: null });
        if (!this.run(id)) void this.refresh();
        break;
      case 'step':
        this.pendingSteps.set(id, e);
        this.addPoints(id, 'train', e.step, { ...e.losses, slicesPerSecond: e.slicesPerSecond });
        break;
      case 'eval':
        this.patch(id, { lastEval: e.metrics });
        this.addPoints(id, 'val', e.step, e.metrics);
        break;
      case 'sample':
        this.samples.set(id, e);
        this.sampleVersion++;
        break;
      case 'checkpoint':
        this.patch(id, { lastCheckpoint: e.step });
        break;
      case 'results':
        this.results.set(id, e.results);
        this.resultsVersion++;
        break;
      case 'paused':
        this.patch(id, { status: 'paused', step: e.step, pending: this.live[id]?.pending === 'stop' ? 'stop' : null });
        void this.refresh();
        break;
      case 'resumed':
        this.patch(id, { status: 'running', step: e.step, pending: null });
        void this.refresh();
        break;
      case 'done':
        this.patch(id, { status: e.stopped ? 'stopped' : 'done', step: e.step, pending: null });
        this.refreshSoon();
        break;
      case 'error':
        this.patch(id, { status: 'failed', error: e.message, pending: null });
        this.refreshSoon();
        break;
    }
  }

  private addPoints(id: number, split: string, step: number, values: Record<string, number>): void {
    let set = this.curves.get(id);
    if (!set) {
      set = new Map();
      this.curves.set(id, set);
    }
    appendPoint(set, split, step, values);
    this.curvesDirty = true;
    this.scheduleFlush();
  }

  /** Curves of a run (loaded on first use; `curvesVersion` ticks when they arrive). */
  curvesOf(id: number): CurveSet | undefined {
    if (!this.loading.has(id)) this.loading.set(id, this.loadCurves(id));
    return this.curves.get(id);
  }

  /** Loads a run's curves from the services again (e.g. after a crash). */
  reloadCurves(id: number): void {
    this.loading.set(id, this.loadCurves(id));
  }

  private async loadCurves(id: number): Promise<void> {
    try {
      const m = await this.api.invoke('runs.metrics', id);
      this.curves.set(id, mergeCurves(fromMetrics(m), this.curves.get(id)));
      this.curvesVersion++;
    } catch (e) {
      this.loading.delete(id);
      toasts.error('Run metrics', e);
    }
  }

  /** The latest sample of a run (asks the services once when none arrived by event). */
  sampleOf(id: number): Sample | null {
    const s = this.samples.get(id);
    if (s) return s;
    if (!this.sampleAsked.has(id)) {
      this.sampleAsked.add(id);
      void this.api.invoke('runs.sample', id).then(
        (x) => {
          if (x && !this.samples.has(id)) {
            this.samples.set(id, x);
            this.sampleVersion++;
          }
        },
        () => undefined,
      );
    }
    return null;
  }

  /**
   * Held-out results of a fine-tuning run: as its trainer sent them at the end ('results' event),
   * else as recorded in the finished run's summary, else null.
   */
  resultsOf(id: number): RecordedResults | null {
    return this.results.get(id) ?? this.run(id)?.summary.results ?? null;
  }

  /** Which patients and series are in each split of a run (runs.split; null for an imported encoder). */
  splitOf(id: number): Promise<RunSplit | null> {
    let p = this.splits.get(id);
    if (!p) {
      p = this.api.invoke('runs.split', id);
      p.catch(() => this.splits.delete(id));
      this.splits.set(id, p);
    }
    return p;
  }

  async loadDoctor(force = false): Promise<void> {
    if (!force && (this.doctorState === 'loading' || this.doctorState === 'done')) return;
    this.doctorState = 'loading';
    this.doctorError = null;
    try {
      this.doctor = await this.api.invoke('system.doctor');
      this.doctorState = 'done';
    } catch (e) {
      this.doctorState = 'error';
      this.doctorError = describeError(e).message;
    }
  }

  /** Creates a run and starts it; resolves to the new run, or null when it failed (shown in the banner). */
  async createAndStart(config: PretrainRequest | FinetuneRequest): Promise<RunSummary | null> {
    this.starting = true;
    try {
      const created = await this.api.invoke('runs.create', config);
      this.runs = [created, ...this.runs.filter((r) => r.id !== created.id)];
      const started = await this.api.invoke('runs.start', created.id);
      this.patch(created.id, { status: 'running', totalSteps: started.totalSteps, error: null });
      await this.refresh();
      return started;
    } catch (e) {
      toasts.error('Start run', e);
      await this.refresh();
      return null;
    } finally {
      this.starting = false;
    }
  }

  /** Starts a created run, or resumes a stopped or crashed one from its latest checkpoint. */
  async startExisting(id: number): Promise<void> {
    try {
      this.patch(id, { status: 'running', error: null, pending: null });
      await this.api.invoke('runs.start', id);
      this.reloadCurves(id);
      await this.refresh();
    } catch (e) {
      this.patch(id, { status: this.run(id)?.status ?? 'stopped' });
      toasts.error('Start run', e);
    }
  }

  async pause(id: number): Promise<void> {
    this.patch(id, { pending: 'pause' });
    try {
      await this.api.invoke('runs.pause', id);
    } catch (e) {
      this.patch(id, { pending: null });
      toasts.error('Pause run', e);
    }
  }

  async resume(id: number): Promise<void> {
    try {
      await this.api.invoke('runs.resume', id);
    } catch (e) {
      toasts.error('Resume run', e);
    }
  }

  async stop(id: number): Promise<void> {
    this.patch(id, { pending: 'stop' });
    try {
      await this.api.invoke('runs.stop', id);
    } catch (e) {
      this.patch(id, { pending: null });
      toasts.error('Stop run', e);
    }
  }
}
