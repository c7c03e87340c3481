/**
 * The app's indexing job (one at a time), behind `library.addFolder`, `library.reindex`,
 * `library.cancel` and `library.progress`. The job always ends: a failure becomes an 'error'
 * progress event, and a cancel ends it even if the indexer does not stop (the header worker is
 * terminated by the indexer on the signal; should the job still not settle within the grace
 * period, it is released as cancelled and whatever it does later is ignored).
 */
import { randomUUID } from 'node:crypto';
import type { IndexProgress } from '../shared/types';
import { type IndexOptions, indexFolders } from '../library/indexing/indexer';
import { attachIndexedSegs } from '../library/labels/seg-attach';
import type { Database } from '../library/db/sqlite';

export interface IndexJobOptions {
  /** Milliseconds a cancelled job may take to stop before it is released (default 10 s). */
  cancelGraceMs?: number;
  /** Extra indexer options (tests: worker module, stall time). */
  index?: Omit<IndexOptions, 'signal' | 'onProgress' | 'jobId'>;
}

interface Job {
  id: string;
  ac: AbortController;
  folders: string[];
  last: IndexProgress | null;
  done: Promise<void>;
  ended: boolean;
  /** Resolves when the job has ended (settled, or released after a cancel). */
  whenEnded: Promise<void>;
  markEnded: () => void;
}

export class IndexJobs {
  private job: Job | null = null;
  /** The last job that ended (its final progress is `lastFinished`). */
  private lastJob: Job | null = null;
  private lastFinished: IndexProgress | null = null;

  constructor(
    private readonly db: Database,
    private readonly emit: (p: IndexProgress) => void,
    private readonly options: IndexJobOptions = {},
  ) {}

  /** Whether a job is running. */
  get busy(): boolean {
    return this.job !== null;
  }

  /** Starts indexing checked (absolute, real) folders; throws when a job is running. */
  start(folders: string[]): { jobId: string } {
    if (this.job) throw new Error('an indexing job is already running: wait for it or cancel it');
    const id = randomUUID();
    let markEnded = () => {};
    const whenEnded = new Promise<void>((r) => (markEnded = r));
    const job: Job = { id, ac: new AbortController(), folders, last: null, done: Promise.resolve(), ended: false, whenEnded, markEnded };
    this.job = job;
    job.done = (async () => {
      // The indexer's final event (done/cancelled, with its summary) is held back until the SEG
      // objects are attached: the end event every door sees comes after the label sources changed.
      let final: IndexProgress | null = null;
      try {
        await indexFolders(this.db, folders, {
          ...this.options.index,
          jobId: id,
          signal: job.ac.signal,
          onProgress: (p) => {
            if (job.ended) return; // released after a cancel: late events are not this job's any more
            if (p.phase === 'done' || p.phase === 'cancelled') final = p;
            else {
              job.last = p;
              this.emit(p);
            }
          },
        });
        // SEG objects found are attached to the series they segment (imported as labels).
        if (!job.ac.signal.aborted) await attachIndexedSegs(this.db, { signal: job.ac.signal });
      } catch (err) {
        if (!job.ended) this.fail(job, 'error', (err as Error)?.message ?? String(err));
        return;
      }
      if (!job.ended) this.end(job, final);
    })();
    return { jobId: id };
  }

  /** Cancels the job with this id; false when it is not the running job. */
  cancel(jobId: string): boolean {
    const job = this.job;
    if (!job || job.id !== jobId) return false;
    if (job.ac.signal.aborted) return true;
    job.ac.abort();
    const grace = this.options.cancelGraceMs ?? 10_000;
    const t = setTimeout(() => {
      if (!job.ended) this.fail(job, 'cancelled', `the indexing job did not stop within ${Math.round(grace / 1000)} s of the cancel: released`);
    }, grace);
    t.unref?.();
    void job.done.finally(() => clearTimeout(t));
    return true;
  }

  /** The running job's last progress, else the last finished job's. */
  progress(): IndexProgress | null {
    return this.job?.last ?? this.lastFinished;
  }

  /** Resolves when the running job (if any) has ended. */
  async idle(): Promise<void> {
    await this.job?.whenEnded;
  }

  /**
   * The final progress of the job with this id (the running job or the last one that ended), once
   * it has ended: 'done' or 'cancelled' with the indexer's summary, or 'error'/'cancelled' with a
   * message when it ended without one. For a door that waits for its job (the CLI).
   */
  async finished(jobId: string): Promise<IndexProgress> {
    const job = this.job?.id === jobId ? this.job : this.lastJob?.id === jobId ? this.lastJob : null;
    if (!job) throw new Error(`no indexing job ${jobId}`);
    await job.whenEnded;
    return job.last!;
  }

  /** Ends a job here ('error', or 'cancelled' when released), with a final progress made from its last one. */
  private fail(job: Job, phase: 'error' | 'cancelled', message: string): void {
    this.end(job, {
      jobId: job.id,
      phase,
      folders: job.folders,
      filesFound: job.last?.filesFound ?? 0,
      filesDone: job.last?.filesDone ?? 0,
      filesPerSecond: 0,
      etaSeconds: null,
      skipped: job.last?.skipped ?? 0,
      message,
    });
  }

  /** Ends a job: its final progress (done/cancelled from the indexer, or one made by `fail`) is sent, and the slot freed. */
  private end(job: Job, final: IndexProgress | null): void {
    job.ended = true;
    if (final) {
      job.last = final;
      this.emit(final);
    }
    if (this.job === job) this.job = null;
    this.lastJob = job;
    this.lastFinished = job.last;
    job.markEnded();
  }
}
