/**
 * The cluster-job service every door calls (the CLI's `ctssl job export` and `ctssl import
 * FOLDER`; the app through the services): export a pretraining job for PyTorch DDP, and bring
 * its output home as a run.
 */
import { ApiError } from '../../shared/envelope';
import type { PretrainConfigInput } from '../../shared/run-config';
import type { Database } from '../../library/db/sqlite';
import { checkUserPath, FOLDER } from '../user-paths';
import { exportClusterJob, type ExportJobOptions, type ExportJobResult } from './export-job';
import { importJobOutput, type JobImportResult } from './import-job';

export class ClusterJobService {
  private exporting = false;

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
