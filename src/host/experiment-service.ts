/**
 * Experiments and the bias probe as the app sees them. Experiment grids are orchestrated by the
 * host (runs start in trainer processes, one after another); the bias probe is computed in a
 * trainer process from a manifest the host prepares (probe.ts). Results live in the data folder:
 * experiments/<id>/ and probes/<id>/, with their HTML reports.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { ApiError, type EventName, type Events, type ProbeOutcome } from '../shared/contract';
import type { BiasProbeResult, SavedExperimentReport } from '../shared/results';
import { latestCheckpointDir } from '../library/runs/checkpoint';
import { parseExperimentSpec, type ExperimentSpec, type ExperimentSpecInput } from '../shared/run-config';
import { prepareProbe, runProbe } from './probe';
import { runExperiment, type ExperimentReport } from './experiment';
import { FolderTrash } from './folder-trash';
import { spawnNodeTrainer, TrainerRequestError, type SpawnTrainer } from './runs/trainer-host';
import { isTraining } from './runs/run-lock';
import { forgetExperimentRuns, moveExperimentRuns } from './runs/run-trash';
import type { Database } from '../library/db/sqlite';

import type { CohortFilter, ExperimentSummary, ProbeSummary } from '../shared/types';
import type { BackendName } from '../shared/backends';
import { coalesceSteps } from './step-coalescer';

const stamp = () => new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '');
const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'experiment';

export class ExperimentService {
  private active = new Map<string, { ac: AbortController; done: Promise<void>; report: Promise<ExperimentReport> }>();
  private failed = new Map<string, string>();
  private probes = new Map<string, AbortController>();
  private spawn: SpawnTrainer;
  /** experiments/<id> folders and their trash; the same for probes/<id>. */
  private readonly experimentTrash: FolderTrash;
  private readonly probeTrash: FolderTrash;

  constructor(
    private db: Database,
    private dataDir: string,
    private emit: <E extends EventName>(event: E, payload: Events[E]) => void,
    spawn?: SpawnTrainer,
  ) {
    this.spawn = spawn ?? (() => spawnNodeTrainer());
    this.experimentTrash = new FolderTrash(this.root(), join(dataDir, 'trash', 'experiments'), 'spec.json', 'experiment');
    this.probeTrash = new FolderTrash(this.probesRoot(), join(dataDir, 'trash', 'probes'), 'bias-probe.json', 'finished bias probe');
  }

  private root() {
    return join(this.dataDir, 'experiments');
  }

  /**
   * Starts an experiment grid in a new folder under <data>/experiments, or in `dir` (the CLI's
   * --out; a folder that holds the grid already continues it); `backend` forces one for its runs.
   */
  start(specInput: ExperimentSpecInput, o: { dir?: string; backend?: BackendName } = {}): ExperimentSummary {
    let spec;
    try {
      spec = parseExperimentSpec(specInput);
    } catch (err) {
      throw new ApiError('invalid-argument', (err as Error).message);
    }
    // Every pretrained init before the first run starts, not when its cell comes up.
    spec.inits.forEach((init, k) => {
      if (init !== 'random' && init !== 'cnn' && !latestCheckpointDir(resolve(init)))
        throw new ApiError('invalid-argument', `experiment spec: inits.${k}: ${init} is not a run folder with a checkpoint`);
    });
    if (this.active.size > 0) throw new ApiError('busy', 'an experiment is already running: wait for it or stop it');
    const dir = o.dir !== undefined ? resolve(o.dir) : join(this.root(), `${stamp()}-${slug(spec.name)}`);
    const id = basename(dir);
    mkdirSync(dir, { recursive: true });
    this.launch(id, dir, spec, o.backend);
    const total = spec.inits.length * spec.fractions.length * spec.seeds.length;
    return { id, name: spec.name, task: spec.task, status: 'running', cells: total, completed: 0, dir };
  }

  /**
   * Continues a stopped, failed or interrupted experiment in its own folder: finished runs are
   * kept, a run that was cut off resumes from its checkpoint, the rest start; one report at the end.
   */
  resume(id: string): ExperimentSummary {
    const dir = this.dirOf(id);
    if (this.active.has(id)) throw new ApiError('busy', `experiment ${id} is already running`);
    if (this.active.size > 0) throw new ApiError('busy', 'an experiment is already running: wait for it or stop it');
    const before = this.summary(id);
    if (before.status === 'done') throw new ApiError('invalid-argument', `experiment ${id} is complete: nothing to resume`);
    const spec = parseExperimentSpec(JSON.parse(readFileSync(join(dir, 'spec.json'), 'utf8')));
    this.failed.delete(id);
    this.launch(id, dir, spec);
    return { ...before, status: 'running' };
  }

  private launch(id: string, dir: string, spec: ExperimentSpec, backend?: BackendName): void {
    const ac = new AbortController();
    const total = spec.inits.length * spec.fractions.length * spec.seeds.length;
    // The cell of the events held by the coalescer: held steps are sent before another cell's first event.
    let cell: { index: number; total: number; init: string; fraction: number; seed: number } | null = null;
    const events = coalesceSteps((event, earlierSteps) => {
      if (cell) this.emit('experiment.event', { id, kind: 'run-event', index: cell.index, total: cell.total, init: cell.init, fraction: cell.fraction, seed: cell.seed, event, ...(earlierSteps && { earlierSteps }) });
    });
    const report = runExperiment(this.db, spec, {
      outDir: dir,
      dataDir: this.dataDir,
      cacheDir: join(this.dataDir, 'cache', 'slices'),
      spawn: this.spawn,
      backend,
      signal: ac.signal,
      onEvent: (c, e) => {
        if (e.type !== 'started' && e.type !== 'step' && e.type !== 'eval' && e.type !== 'error') return;
        if (cell && cell.index !== c.index) events.flush();
        cell = { index: c.index, total: c.total, init: c.init, fraction: c.fraction, seed: c.seed };
        events.push(e);
      },
      onCell: (index, t, done) => {
        events.flush();
        this.emit('experiment.event', { id, kind: 'cell', index, total: t, init: done.init, fraction: done.fraction, seed: done.seed, status: done.status });
      },
    });
    const done = report
      // No longer active before the last event goes out: whoever reacts to it sees the final status.
      .then(() => {
        events.flush();
        this.active.delete(id);
        this.emit('experiment.event', { id, kind: ac.signal.aborted ? 'stopped' : 'done', index: total, total });
      })
      .catch((err: Error) => {
        events.flush();
        this.active.delete(id);
        this.failed.set(id, err.message);
        this.emit('experiment.event', { id, kind: 'error', index: 0, total, message: err.message });
      });
    this.active.set(id, { ac, done, report });
  }

  /** Resolves when a running experiment ends: its report (also when stopped), or rejects with why it failed. */
  wait(id: string): Promise<ExperimentReport> {
    const a = this.active.get(id);
    if (!a) throw new ApiError('invalid-argument', `experiment ${id} is not running`);
    return a.report;
  }

  private dirOf(id: string): string {
    return this.experimentTrash.liveDir(id);
  }

  /**
   * Moves an experiment (its folder with every run, report and plot) to the trash; its runs leave
   * the run lists with it. Undone by `restore`; refused while it runs.
   */
  delete(id: string): { id: string } {
    const dir = this.experimentTrash.liveDir(id);
    if (this.active.has(id)) throw new ApiError('busy', `experiment ${id} is running: stop it first`);
    const runsDir = join(dir, 'runs');
    if (existsSync(runsDir) && readdirSync(runsDir).some((r) => isTraining(join(runsDir, r)))) throw new ApiError('busy', `a run of experiment ${id} is training`);
    const { from, to } = this.experimentTrash.move(id);
    this.failed.delete(id);
    moveExperimentRuns(this.db, from, to, true);
    return { id };
  }

  /** Brings an experiment back from the trash, with its runs. */
  restore(id: string): ExperimentSummary {
    const { from, to } = this.experimentTrash.restore(id);
    moveExperimentRuns(this.db, from, to, false);
    return this.summary(id);
  }

  /** Experiments in the trash, most recently deleted first. */
  trash(): ExperimentSummary[] {
    return this.experimentTrash.ids().map((id) => this.summary(id, this.experimentTrash.trash));
  }

  /** Deletes experiments in the trash for good (all, or the ids a confirmation listed), with their runs' records. */
  emptyTrash(ids?: string[]): { removed: number } {
    return { removed: this.experimentTrash.empty(ids, (dir) => forgetExperimentRuns(this.db, dir)).length };
  }

  stop(id: string): boolean {
    const a = this.active.get(id);
    if (!a) throw new ApiError('invalid-argument', `experiment ${id} is not running`);
    a.ac.abort();
    return true;
  }

  list(): ExperimentSummary[] {
    if (!existsSync(this.root())) return [];
    return readdirSync(this.root())
      .filter((d) => existsSync(join(this.root(), d, 'spec.json')))
      .sort()
      .reverse()
      .map((id) => this.summary(id));
  }

  private summary(id: string, root = this.root()): ExperimentSummary {
    const dir = join(root, id);
    const spec = parseExperimentSpec(JSON.parse(readFileSync(join(dir, 'spec.json'), 'utf8')));
    const cells = spec.inits.length * spec.fractions.length * spec.seeds.length;
    const runsDir = join(dir, 'runs');
    const completed = existsSync(runsDir) ? readdirSync(runsDir).filter((r) => existsSync(join(runsDir, r, 'results.json'))).length : 0;
    // Done only with its report: every run finished but no report.json (the report failed, or the
    // app stopped in between) can be resumed, which writes it.
    const reported = (() => {
      if (completed !== cells) return false;
      try {
        const r = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { cells?: { results?: unknown }[] };
        return Array.isArray(r.cells) && r.cells.length === cells && r.cells.every((c) => c.results);
      } catch {
        return false;
      }
    })();
    const status: ExperimentSummary['status'] = this.active.has(id)
      ? 'running'
      : this.failed.has(id)
        ? 'failed'
        : completed === cells && reported
          ? 'done'
          : 'incomplete';
    return { id, name: spec.name, task: spec.task, status, cells, completed, dir };
  }

  /** The report of an experiment: numbers (report.json) and its SVG plots as text. */
  report(id: string): { summary: ExperimentSummary; spec: ExperimentSpec; report: SavedExperimentReport | null; svgs: Record<string, string>; error: string | null } {
    const dir = this.dirOf(id);
    const spec = parseExperimentSpec(JSON.parse(readFileSync(join(dir, 'spec.json'), 'utf8')));
    const report = existsSync(join(dir, 'report.json')) ? (JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as SavedExperimentReport) : null;
    const svgs: Record<string, string> = {};
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.svg'))) svgs[f] = readFileSync(join(dir, f), 'utf8');
    return { summary: this.summary(id), spec, report, svgs, error: this.failed.get(id) ?? null };
  }

  /** Runs the bias probe in a trainer process; resolves with its result and the chart. */
  async probe(o: {
    encoders: string[];
    seriesIds?: number[];
    filter?: CohortFilter;
    attributes?: ('sex' | 'ethnicGroup' | 'ageGroup')[];
    folds?: number;
    seed?: number;
    /** Probe the scans the encoders trained or validated on too (default: left out). */
    includeTrainingScans?: boolean;
    requestId?: string;
  }): Promise<ProbeOutcome> {
    const requestId = o.requestId ?? null;
    const manifest = prepareProbe(this.db, { seriesIds: o.seriesIds, filter: o.filter });
    let id = `${stamp()}-probe`;
    for (let n = 2; existsSync(join(this.probesRoot(), id)) || this.probes.has(id); n++) id = `${stamp()}-probe-${n}`;
    const outDir = join(this.probesRoot(), id);
    const ac = new AbortController();
    this.probes.set(id, ac);
    // The first event names the probe, so a renderer can cancel it before the trainer reports.
    this.emit('probe.progress', { id, requestId, done: 0, total: 0, what: 'starting the trainer process' });
    try {
      // The report is written into outDir; it is read back from there below.
      await runProbe(manifest, {
        encoders: o.encoders,
        attributes: o.attributes,
        folds: o.folds,
        seed: o.seed,
        includeTrainingScans: o.includeTrainingScans,
        outDir,
        spawn: this.spawn,
        signal: ac.signal,
        onProgress: (done, total, what) => this.emit('probe.progress', { id, requestId, done, total, what }),
      });
    } catch (err) {
      if (err instanceof TrainerRequestError && err.cancelled) {
        rmSync(outDir, { recursive: true, force: true });
        throw new ApiError('cancelled', 'the bias probe was cancelled');
      }
      throw new ApiError(err instanceof TrainerRequestError && err.crashed ? 'internal' : 'invalid-argument', (err as Error).message);
    } finally {
      this.probes.delete(id);
    }
    // The settings beside the result, for the list of earlier probes.
    writeFileSync(join(outDir, 'probe-request.json'), JSON.stringify({ createdAt: new Date().toISOString(), attributes: o.attributes ?? null, folds: o.folds ?? null, seed: o.seed ?? null }, null, 2));
    return this.probeResult(id);
  }

  /** Cancels a running probe; false if there is none with that id. */
  cancelProbe(id: string): boolean {
    const ac = this.probes.get(id);
    if (!ac) return false;
    ac.abort();
    return true;
  }

  /** Finished probes (a folder with bias-probe.json), newest first. */
  listProbes(root = this.probesRoot()): ProbeSummary[] {
    if (!existsSync(root)) return [];
    const out: ProbeSummary[] = [];
    for (const id of readdirSync(root)) {
      const dir = join(root, id);
      try {
        const result = JSON.parse(readFileSync(join(dir, 'bias-probe.json'), 'utf8')) as { scans?: number; scores?: { features: string; attribute: string }[] };
        const req = existsSync(join(dir, 'probe-request.json')) ? (JSON.parse(readFileSync(join(dir, 'probe-request.json'), 'utf8')) as { createdAt?: string; folds?: number; seed?: number }) : {};
        const scores = Array.isArray(result.scores) ? result.scores : [];
        out.push({
          id,
          createdAt: req.createdAt ?? statSync(join(dir, 'bias-probe.json')).mtime.toISOString(),
          scans: typeof result.scans === 'number' ? result.scans : 0,
          attributes: [...new Set(scores.map((x) => x.attribute))],
          features: [...new Set(scores.map((x) => x.features))],
          folds: req.folds ?? null,
          seed: req.seed ?? null,
          dir,
        });
      } catch {
        // not a finished probe (cancelled, crashed, or unreadable): not listed
      }
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  }

  /** Moves a finished probe to the trash (undone by restoreProbe). */
  deleteProbe(id: string): { id: string } {
    this.probeTrash.move(id);
    return { id };
  }

  /** Brings a probe back from the trash. */
  restoreProbe(id: string): ProbeSummary {
    this.probeTrash.restore(id);
    return this.listProbes().find((p) => p.id === id)!;
  }

  /** Probes in the trash, most recently deleted first. */
  trashedProbes(): ProbeSummary[] {
    const listed = new Map(this.listProbes(this.probeTrash.trash).map((p) => [p.id, p]));
    return this.probeTrash.ids().flatMap((id) => listed.get(id) ?? []);
  }

  /** Deletes probes in the trash for good (all, or the listed ids). */
  emptyProbeTrash(ids?: string[]): { removed: number } {
    return { removed: this.probeTrash.empty(ids).length };
  }

  /** A finished probe's result and chart. */
  probeResult(id: string): ProbeOutcome {
    const dir = this.probeTrash.liveDir(id);
    const result = JSON.parse(readFileSync(join(dir, 'bias-probe.json'), 'utf8')) as BiasProbeResult;
    const svgPath = join(dir, 'bias-probe.svg');
    return { id, result, svg: existsSync(svgPath) ? readFileSync(svgPath, 'utf8') : '' };
  }

  private probesRoot() {
    return join(this.dataDir, 'probes');
  }

  async close(): Promise<void> {
    for (const ac of this.probes.values()) ac.abort();
    for (const a of this.active.values()) a.ac.abort();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all([...this.active.values()].map((a) => a.done)), new Promise((r) => (timer = setTimeout(r, 15000)))]);
    // Not left pending: a CLI command (or a stopping server) exits as soon as the work has stopped.
    clearTimeout(timer);
  }
}
