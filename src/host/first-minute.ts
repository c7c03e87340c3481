/**
 * "Try it on a synthetic cohort": the first minute of a newcomer with an empty library. Writes a
 * small labelled synthetic chest CT cohort (the `ctssl synth` generator, src/library/synth) into
 * <data>/synthetic/cohort-N, indexes it as an added folder (its DICOM SEG objects attached to their
 * series by the indexing job), and imports its LIDC XML nodule reads and RSNA-style train.csv as
 * label files, so that the library lists labelled series and a pretraining can start at once.
 * Progress as 'library.synthProgress' events (writing patients, indexing files, importing label
 * files); cancellable between steps; one job at a time, and not while an index job runs.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../shared/envelope';
import type { Events } from '../shared/contract';
import type { SyntheticCohortResult } from '../shared/types';
import { defaultOptions, type SynthOptions } from '../core/synth/plan';
import { writeCohort } from '../library/synth/synth-writer';
import { importLabels } from '../library/labels/label-import';
import type { Database } from '../library/db/sqlite';
import type { IndexJobs } from './index-job';

/** The cohort: six patients (enough for a patient split into training, validation and held-out), small and quick to write. */
export function firstMinuteOptions(): SynthOptions {
  return { ...defaultOptions(6, 1), slices: 24, size: 96, nodules: [1, 2], readers: [1, 2] };
}

type Progress = Events['library.synthProgress'];

export interface FirstMinuteDeps {
  db: Database;
  dataDir: string;
  jobs: IndexJobs;
  /** Starts indexing checked folders (the library.addFolder path). */
  startIndexing: (folders: string[]) => { jobId: string };
  emit: (p: Progress) => void;
}

export class FirstMinute {
  private running: { requestId: string | null; ac: AbortController } | null = null;

  constructor(private readonly d: FirstMinuteDeps) {}

  cancel(requestId: string): boolean {
    if (!this.running || this.running.requestId !== requestId) return false;
    this.running.ac.abort();
    return true;
  }

  async run(requestId: string | null, options: SynthOptions = firstMinuteOptions()): Promise<SyntheticCohortResult> {
    if (this.running) throw new ApiError('busy', 'a synthetic cohort is being made already');
    if (this.d.jobs.busy) throw new ApiError('busy', 'an indexing job is running: wait for it or cancel it');
    const ac = new AbortController();
    this.running = { requestId, ac };
    const t0 = Date.now();
    const report = (phase: Progress['phase'], done: number, total: number, message: string) => this.d.emit({ requestId, phase, done, total, message });
    try {
      const root = join(this.d.dataDir, 'synthetic');
      let n = 1;
      while (existsSync(join(root, `cohort-${n}`))) n++;
      const folder = join(root, `cohort-${n}`);

      report('writing', 0, options.patients, `writing ${options.patients} synthetic patients`);
      const summary = await writeCohort(options, folder, {
        jobs: 1,
        signal: ac.signal,
        onProgress: (done, total) => report('writing', done, total, `writing patient ${Math.min(done + 1, total)} of ${total}`),
      });
      if (ac.signal.aborted) throw new ApiError('cancelled', 'cancelled');

      report('indexing', 0, summary.files, 'indexing the cohort');
      const { jobId } = this.d.startIndexing([folder]);
      const onAbort = () => this.d.jobs.cancel(jobId);
      ac.signal.addEventListener('abort', onAbort, { once: true });
      const indexed = await this.d.jobs.finished(jobId);
      ac.signal.removeEventListener('abort', onAbort);
      if (indexed.phase !== 'done') throw new ApiError(indexed.phase === 'cancelled' ? 'cancelled' : 'internal', `indexing the synthetic cohort: ${indexed.message ?? indexed.phase}`);

      const labelFiles = [
        ...readdirSync(join(folder, 'lidc'))
          .filter((f) => f.endsWith('.xml'))
          .sort()
          .map((f) => join(folder, 'lidc', f)),
        summary.csv,
      ];
      let imported = 0;
      for (const file of labelFiles) {
        if (ac.signal.aborted) throw new ApiError('cancelled', 'cancelled');
        report('labels', imported, labelFiles.length, `importing labels: ${file.slice(folder.length + 1)}`);
        await importLabels(this.d.db, file);
        imported++;
      }
      const result: SyntheticCohortResult = {
        folder,
        patients: summary.patients,
        files: summary.files,
        nodules: summary.nodules,
        peSlices: summary.peSlices,
        labelFiles: imported,
        seconds: Math.round((Date.now() - t0) / 100) / 10,
      };
      report('done', labelFiles.length, labelFiles.length, `${summary.patients} patients ready`);
      return result;
    } catch (err) {
      const message = (err as Error)?.message ?? String(err);
      report(ac.signal.aborted ? 'cancelled' : 'error', 0, 0, message);
      if (err instanceof ApiError) throw err;
      throw new ApiError(ac.signal.aborted ? 'cancelled' : 'internal', `synthetic cohort: ${message}`);
    } finally {
      this.running = null;
    }
  }
}
