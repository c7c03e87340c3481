/**
 * The cluster-job service every door calls (the CLI's `ctssl job export` and `ctssl import
 * FOLDER`; the app through the services): export a pretraining job for PyTorch DDP, and bring
 * its output home as a run.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../../shared/envelope';
import type { PretrainConfigInput } from '../../shared/run-config';
import type { Database } from '../../library/db/sqlite';
import { checkUserPath, FOLDER } from '../user-paths';
import { exportClusterJob, jobHome, type ExportJobOptions, type ExportJobResult } from './export-job';
import { importJobOutput, type JobImportResult } from './import-job';

/** A new job folder's name: job-<task>-<preset>-<UTC date and time>, plain characters only. */
export function jobFolderName(config: { task?: unknown; preset?: unknown }, now = new Date()): string {
  const word = (v: unknown, d: string) => (typeof v === 'string' ? v.replace(/[^\w-]+/g, '_').slice(0, 32) : d) || d;
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `job-${word(config.task, 'masked')}-${word(config.preset, 'tiny')}-${stamp}`;
}

/** A run folder's config.json for naming its job (an unreadable one names nothing: the export says why). */
function readRunConfig(runDir: string): { task?: unknown; preset?: unknown } {
  try {
    const c = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as unknown;
    return c && typeof c === 'object' ? (c as { task?: unknown; preset?: unknown }) : {};
  } catch {
    return {};
  }
}

export class ClusterJobService {
  private exporting = false;
  /** The app's exports running, by request id (cancelExport aborts one). */
  private readonly running = new Map<string, AbortController>();

  constructor(
    private readonly db: Database,
    private readonly dataDir: string,
  ) {}

  /** Writes a job folder for a config (planned as a new run would be) or an existing run's config and data. */
  async export(from: { config: PretrainConfigInput } | { runDir: string }, o: Omit<ExportJobOptions, 'dataDir'>): Promise<ExportJobResult> {
    if (this.exporting) throw new ApiError('busy', 'a cluster job is being exported: wait for it or cancel it');
    this.exporting = true;
    try {
      return await exportClusterJob(this.db, from, { ...o, dataDir: this.dataDir });
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError((err as Error).message === 'cancelled' ? 'cancelled' : 'invalid-argument', (err as Error).message);
    } finally {
      this.exporting = false;
    }
  }

  /**
   * The app's export (jobs.export) of a configuration or an existing run: a new folder under `parent` (default <data>/jobs), named by
   * jobFolderName; progress to `onProgress`, cancelled by `cancelExport(requestId)`. A cancelled or
   * failed export leaves nothing: its new folder and home record are removed.
   */
  async exportInto(from: { config: PretrainConfigInput } | { runDir: string }, o: { parent?: string; dtype?: ExportJobOptions['dtype']; requestId: string | null; onProgress?: ExportJobOptions['onProgress'] }): Promise<ExportJobResult> {
    // Named by the task and preset (the run's config.json for a run; checked by the export itself).
    const config: { task?: unknown; preset?: unknown } = 'config' in from ? from.config : readRunConfig(from.runDir);
    const parent = o.parent ?? join(this.dataDir, 'jobs');
    mkdirSync(parent, { recursive: true });
    const name = jobFolderName(config);
    let out = join(parent, name);
    for (let k = 2; existsSync(out); k++) out = join(parent, `${name}-${k}`);
    const key = o.requestId ?? `export-${Date.now()}`;
    if (this.running.has(key)) throw new ApiError('busy', `jobs.export: export ${key} is already running`);
    const ac = new AbortController();
    this.running.set(key, ac);
    try {
      return await this.export(from, { out, dtype: o.dtype, signal: ac.signal, onProgress: o.onProgress });
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 'busy')) this.discard(out);
      throw err;
    } finally {
      this.running.delete(key);
    }
  }

  /** Cancels the app's export by its request id; false when none runs under that id. */
  cancelExport(requestId: string): boolean {
    const ac = this.running.get(requestId);
    ac?.abort();
    return !!ac;
  }

  /** Cancels every export of the app (the services are closing). */
  cancelAll(): void {
    for (const ac of this.running.values()) ac.abort();
  }

  /** Removes a job folder this service made (and the job's home record), best effort. */
  private discard(out: string): void {
    try {
      const { jobId } = JSON.parse(readFileSync(join(out, 'job.json'), 'utf8')) as { jobId?: string };
      if (typeof jobId === 'string') rmSync(jobHome(this.dataDir, jobId), { recursive: true, force: true });
    } catch {
      /* no job.json yet: nothing at home either */
    }
    rmSync(out, { recursive: true, force: true });
  }

  /** Imports a job's output folder (or the job folder holding output/) as a run with its curves. */
  import(folder: string): JobImportResult {
    const real = checkUserPath('jobs.import', { ...FOLDER, what: 'job output folder' }, folder);
    try {
      return importJobOutput(this.db, real, this.dataDir);
    } catch (err) {
      throw new ApiError('invalid-argument', (err as Error).message);
    }
  }
}
