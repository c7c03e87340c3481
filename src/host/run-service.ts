/**
 * Runs as the app sees them: create, start/resume, pause, stop, curves, live samples, Table II
 * evaluation and the doctor. Training, evaluation and backend probing all happen in trainer
 * processes (never in the host, which may be Electron main); their events are forwarded to the
 * renderer as 'run.event'.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { exportRun, PrivacyError } from './export-package';
import { checkLicence } from '../core/licence';
import { importPackageAsRun, type PackageSource } from './package-import';
import { importCheckpointAsRun, importKind, writeEvaluationCohort } from './checkpoint-import';
import { ApiError, type EventName, type Events } from '../shared/contract';
import type { FinetuneConfigInput, PretrainConfigInput } from '../shared/run-config';
import type { HostMessage, TrainerEvent } from '../shared/trainer-protocol';
import type { DoctorInfo, RunMetrics, RunSplit, RunSummary } from '../shared/types';
import type { SslEvaluation } from '../shared/results';
import { spawnNodeTrainer, trainerRequest, type SpawnTrainer } from './runs/trainer-host';
import { adoptRun, getRun, listRuns, runMetrics, type RunRow } from './runs/run-store';
import { isTraining } from './runs/run-lock';
import { coalesceSteps } from './step-coalescer';
import { emptyTrash, listTrashedRuns, restoreRun, trashRun } from './runs/run-trash';
import { createFinetuneRun, createRun } from './runs/create-run';
import { startRun, type RunHandle } from './runs/start-run';
import type { Database } from '../library/db/sqlite';
import { runSplit } from '../library/runs/lineage';
import type { BackendName } from '../shared/backends';

type Sample = Extract<TrainerEvent, { type: 'sample' }>;

export function toSummary(r: RunRow, active = false): RunSummary {
  return {
    active,
    id: r.id,
    name: r.name,
    kind: r.kind,
    task: r.task,
    status: r.status,
    dir: r.dir,
    preset: r.config.preset,
    config: r.config,
    backend: r.backend,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    step: r.step,
    totalSteps: r.totalSteps,
    manifestHash: r.manifestHash,
    parentDir: r.parentDir,
    summary: r.summary,
    error: r.error,
  };
}

export class RunService {
  private active = new Map<number, RunHandle>();
  /** Runs whose folder an evaluation or export is reading: not deleted meanwhile. */
  private using = new Map<number, number>();
  private samples = new Map<number, Sample>();
  private spawn: SpawnTrainer;

  constructor(
    private db: Database,
    private dataDir: string,
    private emit: <E extends EventName>(event: E, payload: Events[E]) => void,
    spawn?: SpawnTrainer,
  ) {
    this.spawn = spawn ?? (() => spawnNodeTrainer());
  }

  private run(id: number): RunRow {
    const r = getRun(this.db, id);
    if (!r || r.deletedAt) throw new ApiError('not-found', `no run with id ${id}`);
    return r;
  }

  /** Moves a run to the trash (undone by `restore`); refused while it trains, is evaluated or exported. */
  delete(id: number): { id: number; movedTo: string | null } {
    if (this.active.has(id) || isTraining(this.run(id).dir)) throw new ApiError('busy', `run ${id} is training: stop it first`);
    if (this.using.get(id)) throw new ApiError('busy', `run ${id} is being evaluated or exported: try again when that is done`);
    try {
      const { movedTo } = trashRun(this.db, id, this.dataDir);
      this.samples.delete(id);
      return { id, movedTo };
    } catch (err) {
      throw new ApiError('invalid-argument', (err as Error).message);
    }
  }

  /** Brings a run back from the trash. */
  restore(id: number): RunSummary {
    try {
      return toSummary(restoreRun(this.db, id));
    } catch (err) {
      throw new ApiError('invalid-argument', (err as Error).message);
    }
  }

  /** Runs in the trash. */
  trash(): RunSummary[] {
    return listTrashedRuns(this.db).map((r) => toSummary(r));
  }

  /** Deletes the runs in the trash for good (all, or the ids a confirmation listed). */
  emptyTrash(ids?: number[]): { removed: number; failed: { id: number; error: string }[] } {
    return emptyTrash(this.db, ids);
  }

  /** Runs an operation that reads a run's folder; the run cannot be deleted meanwhile. */
  private async usingRun<T>(id: number, fn: () => Promise<T>): Promise<T> {
    this.using.set(id, (this.using.get(id) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      const n = (this.using.get(id) ?? 1) - 1;
      if (n > 0) this.using.set(id, n);
      else this.using.delete(id);
    }
  }

  list(): RunSummary[] {
    return listRuns(this.db).map((r) => this.listed(r));
  }

  /** One run as `list` shows it. */
  get(id: number): RunSummary {
    return this.listed(this.run(id));
  }

  private listed(r: RunRow): RunSummary {
    const s = toSummary(r, this.active.has(r.id));
    // A run recorded as running that no trainer is working on was interrupted (host killed). One
    // an experiment grid or another process drives is still running, just not controlled here.
    return (s.status === 'running' || s.status === 'paused') && !this.active.has(s.id) && !isTraining(s.dir) ? { ...s, status: 'crashed' } : s;
  }

  /**
   * The run recorded for a run folder (the CLI names runs by folder, the app by id); with `adopt`, a
   * run folder not yet in the library (copied from another machine) is recorded first.
   */
  byDir(dir: string, o: { adopt?: boolean } = {}): RunSummary {
    const abs = resolve(dir);
    const r = getRun(this.db, abs);
    if (r && !r.deletedAt) return this.listed(r);
    if (r) throw new ApiError('not-found', `run ${r.id} (${abs}) is in the trash: restore it first`);
    if (!o.adopt) throw new ApiError('not-found', `no run recorded for ${abs}`);
    try {
      return this.listed(adoptRun(this.db, abs));
    } catch (err) {
      throw new ApiError('invalid-argument', (err as Error).message);
    }
  }

  /** Creates a run; its folder is `dir` when given (the CLI's --out), else one under <data>/runs. */
  create(config: PretrainConfigInput | FinetuneConfigInput, o: { dir?: string } = {}): RunSummary {
    const where = { dataDir: this.dataDir, ...(o.dir !== undefined && { dir: o.dir }) };
    try {
      if ((config as { kind?: string }).kind === 'finetune') return toSummary(createFinetuneRun(this.db, config as FinetuneConfigInput, where));
      return toSummary(createRun(this.db, config as PretrainConfigInput, where));
    } catch (err) {
      throw new ApiError('invalid-argument', (err as Error).message);
    }
  }

  /** Starts or resumes a run in a trainer process (`backend` forces one: the CLI's --backend). */
  start(id: number, o: { backend?: BackendName } = {}): RunSummary {
    if (this.active.has(id)) throw new ApiError('busy', `run ${id} is already running`);
    const run = this.run(id);
    if (run.status === 'done') throw new ApiError('invalid-argument', `run ${id} is finished: create a new run (or chain one with "init")`);
    if (isTraining(run.dir)) throw new ApiError('busy', `run ${id} is already training (an experiment grid or another process drives it)`);
    const events = coalesceSteps((event, earlierSteps) => this.emit('run.event', { runId: id, event, ...(earlierSteps && { earlierSteps }) }));
    const handle = startRun(this.db, run, {
      resume: true,
      cacheDir: join(this.dataDir, 'cache', 'slices'),
      backend: o.backend,
      spawn: this.spawn,
      onEvent: (e) => {
        if (e.type === 'sample') this.samples.set(id, e);
        events.push(e);
      },
    });
    this.active.set(id, handle);
    void handle.done.then((res) => {
      events.flush();
      this.active.delete(id);
      if (res.status === 'crashed') {
        this.emit('run.event', { runId: id, event: { v: 1, type: 'error', message: res.error ?? 'the trainer process ended unexpectedly' } });
      }
    });
    return toSummary(this.run(id), true);
  }

  private handle(id: number): RunHandle {
    const h = this.active.get(id);
    if (!h) throw new ApiError('invalid-argument', `run ${id} is not running`);
    return h;
  }

  pause(id: number): boolean {
    this.handle(id).pause();
    return true;
  }

  resume(id: number): boolean {
    this.handle(id).resume();
    return true;
  }

  stop(id: number): boolean {
    this.handle(id).stop();
    return true;
  }

  /** Ends a running run's trainer at once (no checkpoint beyond its last one; the run resumes from there). */
  kill(id: number): boolean {
    this.handle(id).child.kill('SIGKILL');
    return true;
  }

  /** Resolves when a running run's trainer has exited, with how the run ended. */
  wait(id: number): RunHandle['done'] {
    return this.handle(id).done;
  }

  /**
   * Which patients and series are in each split of a run (its manifest.json), with the runs it
   * descends from and what they imply; null for a run without a manifest (an imported encoder).
   */
  split(id: number): RunSplit | null {
    const run = this.run(id);
    try {
      return runSplit(this.db, id, run.dir);
    } catch (err) {
      throw new ApiError('internal', `run ${id}: cannot read its manifest.json: ${(err as Error).message}`);
    }
  }

  metrics(id: number): RunMetrics {
    this.run(id);
    const rows = runMetrics(this.db, id);
    const series = new Map<string, RunMetrics['series'][number]>();
    for (const r of rows) {
      const key = `${r.split}/${r.name}`;
      const s = series.get(key) ?? { split: r.split, name: r.name, steps: [], values: [] };
      s.steps.push(r.step);
      s.values.push(r.value);
      series.set(key, s);
    }
    return { runId: id, series: [...series.values()] };
  }

  /** PNG bytes of the last evaluation's samples, read from the run folder's eval/ only. */
  evalImages(id: number) {
    const dir = join(this.run(id).dir, 'eval');
    const read = (name: string) => {
      const p = join(dir, name);
      return existsSync(p) ? new Uint8Array(readFileSync(p)) : null;
    };
    const samples: { input: Uint8Array; output: Uint8Array; target: Uint8Array | null; diff: Uint8Array | null }[] = [];
    for (let k = 0; k < 16; k++) {
      const input = read(`sample-${k}-input.png`);
      if (!input) {
        // classification samples are named with their classes: sample-k-input-classC-predP.png
        const cls = existsSync(dir) ? readdirSync(dir).find((f) => f.startsWith(`sample-${k}-input-class`)) : undefined;
        if (!cls) break;
        const img = read(cls)!;
        samples.push({ input: img, output: img, target: null, diff: null });
        continue;
      }
      samples.push({ input, output: read(`sample-${k}-output.png`) ?? input, target: read(`sample-${k}-target.png`), diff: read(`sample-${k}-diff.png`) });
    }
    return { samples };
  }

  sample(id: number): Sample | null {
    this.run(id);
    return this.samples.get(id) ?? null;
  }

  /** One request in a fresh trainer process; its errors become API errors. */
  private async oneShot<T extends TrainerEvent['type']>(msg: HostMessage, want: T): Promise<Extract<TrainerEvent, { type: T }>> {
    try {
      return await trainerRequest(this.spawn, msg, want);
    } catch (err) {
      throw new ApiError('internal', (err as Error).message);
    }
  }

  /**
   * Table II of a run in a trainer process; the result is kept in the run's summary as `eval`,
   * whichever door asked (`backend` forces one: the CLI's --backend).
   */
  async evaluate(id: number, o: { split?: 'test' | 'val' | 'train'; maxSlices?: number; backend?: BackendName }): Promise<SslEvaluation> {
    const run = this.run(id);
    if (this.active.has(id)) throw new ApiError('busy', `run ${id} is training: stop it before evaluating`);
    // A run trained elsewhere (an imported package or PyTorch checkpoint) has no manifest: it is
    // evaluated on this library's cohort, every patient held out.
    if (!existsSync(join(run.dir, 'manifest.json'))) {
      try {
        writeEvaluationCohort(this.db, run.dir);
      } catch (err) {
        throw new ApiError('invalid-argument', `run ${id} was trained elsewhere and is evaluated on this library's cohort: ${(err as Error).message}`);
      }
    }
    const e = await this.usingRun(id, () =>
      this.oneShot({ v: 1, type: 'evaluate', runDir: run.dir, split: o.split, maxSlices: o.maxSlices, cacheDir: join(this.dataDir, 'cache', 'slices'), backend: o.backend }, 'evaluation'),
    );
    const summary = { ...run.summary, eval: e.result };
    this.db.prepare('UPDATE runs SET summary = ? WHERE id = ?').run(JSON.stringify(summary), id);
    return e.result;
  }

  /** Exports a run as a weights package: into <data>/exports/, or to `out` (the CLI's --out). */
  async exportRun(id: number, { out, ...o }: { licence: string; author?: string; out?: string }) {
    // The licence is an SPDX identifier or expression (src/core/licence.ts), checked before any work.
    const licence = checkLicence(o.licence);
    if (!licence.ok) throw new ApiError('invalid-argument', licence.message);
    o = { ...o, licence: licence.licence };
    const run = this.run(id);
    if (this.active.has(id)) throw new ApiError('busy', `run ${id} is training: stop it before exporting`);
    // Named from the run's id and task, never from its folder (which the user may have named after
    // anything, a patient included): run-12-masked.ctssl.zip
    const task = String(run.task || run.kind).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 32) || 'run';
    const name = `run-${Math.trunc(id)}-${task}.ctssl.zip`;
    try {
      const r = await this.usingRun(id, () => exportRun(this.db, run.dir, out !== undefined ? resolve(out) : join(this.dataDir, 'exports', name), { ...o, dataDir: this.dataDir, spawn: this.spawn }));
      return { file: r.file, bytes: r.bytes, sha256: r.sha256, files: r.files, modelCard: r.modelCard };
    } catch (err) {
      throw new ApiError(err instanceof PrivacyError ? 'invalid-argument' : 'internal', (err as Error).message);
    }
  }

  /** Imports a package file (verified before anything is written; see package-import.ts). */
  importPackage(path: string) {
    return this.importFrom(path);
  }

  /** A weights package or the authors' PyTorch checkpoint (told from its bytes: checkpoint-import.ts). */
  private importFrom(source: PackageSource) {
    try {
      const { run, ...r } = importKind(source) === 'checkpoint' ? importCheckpointAsRun(this.db, source, this.dataDir) : importPackageAsRun(this.db, source, this.dataDir);
      return { ...r, run: toSummary(run) };
    } catch (err) {
      throw new ApiError('invalid-argument', (err as Error).message);
    }
  }

  async doctor(): Promise<DoctorInfo> {
    return (await this.oneShot({ v: 1, type: 'doctor' }, 'doctor')).info;
  }

  async close(): Promise<void> {
    const pending = [...this.active.values()];
    for (const h of pending) h.stop();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(pending.map((h) => h.done)), new Promise((r) => (timer = setTimeout(r, 15000)))]);
    clearTimeout(timer);
    for (const h of this.active.values()) h.child.kill('SIGKILL');
  }
}
