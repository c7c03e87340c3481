/**
 * "Export as cluster job" on the pretrain page: the form's request written by jobs.export as a job
 * folder for PyTorch DDP (src/host/cluster-job/), with progress ('jobs.exportProgress' of this
 * page's request) and cancel; where it went, how to run it, and in a browser the download of the
 * folder as one tar (GET /files/jobs/<jobId>.tar).
 */
import type { ApiClient, Results } from '../../../shared/contract';
import type { PretrainRequest } from '../../../shared/run-config';
import { describeError } from '../lib/errors';
import { jobDownloadUrl } from '../lib/api';

export type JobExport = Results['jobs.export'];

export class JobExportState {
  /** What to export: '' = the new-run form's configuration, else the id of an existing pretraining run (its config, data and split). */
  source = $state('');
  /** Folder the job's folder is made in ('' = the data folder's jobs/). */
  folder = $state('');
  dtype = $state<'int16' | 'uint8' | ''>('');
  exporting = $state(false);
  progress = $state.raw<{ done: number; total: number } | null>(null);
  result = $state.raw<JobExport | null>(null);
  error = $state<string | null>(null);
  /** True after Cancel, until the export has ended. */
  cancelling = $state(false);
  private requestId: string | null = null;

  constructor(private readonly api: ApiClient) {
    api.on('jobs.exportProgress', (p) => {
      if (this.requestId !== null && p.requestId === this.requestId) this.progress = { done: p.done, total: p.total };
    });
  }

  /** Exports the form's request (the pretrain form's runs.create request, unchanged), or the chosen run. */
  async export(request: PretrainRequest): Promise<void> {
    if (this.exporting) return;
    const requestId = `job-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    this.requestId = requestId;
    this.exporting = true;
    this.cancelling = false;
    this.progress = null;
    this.result = null;
    this.error = null;
    try {
      const folder = this.folder.trim();
      this.result = await this.api.invoke('jobs.export', {
        ...(this.source ? { runId: Number(this.source) } : { request }),
        ...(folder ? { folder } : {}),
        ...(this.dtype ? { dtype: this.dtype } : {}),
        requestId,
      });
    } catch (e) {
      const err = describeError(e);
      this.error = err.code === 'cancelled' ? 'Export cancelled: its folder was removed.' : err.message;
    } finally {
      this.exporting = false;
      this.cancelling = false;
      this.requestId = null;
    }
  }

  async cancel(): Promise<void> {
    if (!this.requestId) return;
    this.cancelling = true;
    try {
      await this.api.invoke('jobs.cancelExport', this.requestId);
    } catch (e) {
      this.error = describeError(e).message;
    }
  }

  /** Electron: the native folder picker for where the job goes. */
  async pickFolder(): Promise<void> {
    try {
      const path = await this.api.invoke('library.pickFolder', 'job-parent');
      if (path) this.folder = path;
    } catch (e) {
      this.error = describeError(e).message;
    }
  }

  /** Server mode: where the browser downloads the job folder as one tar; null in Electron. */
  get downloadUrl(): string | null {
    return this.result ? jobDownloadUrl(this.result.jobId) : null;
  }
}
