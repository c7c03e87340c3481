/**
 * The share page: export a finished run as a weights package (licence required), import
 * packages (Electron: the picker, or a dropped file granted to the window and imported by path;
 * browser: a dropped or chosen file's bytes), and bring a cluster job's output home as a run
 * (jobs.import: Electron: the folder picker or a dropped folder; browser: a folder on the server,
 * typed or chosen in the server's folder picker, since a browser cannot send a folder's path).
 */
import type { ApiClient, Results } from '../../../shared/contract';
import { describeError } from '../lib/errors';
import { exportDownloadUrl, grantDroppedFile, uploadPackage } from '../lib/api';
import { checkLicence, COMMON_LICENCES } from '../../../core/licence';
import type { RunsState } from '../runs/runs-state.svelte';

export type ExportResult = Results['runs.export'];
export type ImportResult = Results['packages.import'];
export type JobImportResult = Results['jobs.import'];


/** Suggested in the licence field; any SPDX identifier or expression is accepted (checkLicence). */
export const LICENCES = COMMON_LICENCES;

export class ShareState {
  runId = $state<number | null>(null);
  licence = $state('');
  author = $state('');
  exporting = $state(false);
  exported = $state.raw<ExportResult | null>(null);
  /** Why the last export failed; `privacy` when the package would have held patient identifiers. */
  exportError = $state.raw<{ message: string; privacy: boolean } | null>(null);

  importing = $state<string | null>(null);
  /** Bytes of the package sent so far while it uploads (server mode), or null. */
  uploaded = $state.raw<{ sent: number; total: number } | null>(null);
  private uploadAbort: AbortController | null = null;
  imported = $state.raw<ImportResult | null>(null);
  importError = $state<string | null>(null);

  /** Server mode: the typed path of a cluster job's output folder on the server. */
  jobPath = $state('');
  /** The folder whose job output is being imported, or null. */
  importingJob = $state<string | null>(null);
  jobImported = $state.raw<JobImportResult | null>(null);
  jobImportError = $state<string | null>(null);

  constructor(
    private readonly api: ApiClient,
    private readonly runs: RunsState,
  ) {}

  /** Why the licence cannot be used (the export service's own check, src/core/licence.ts), or null. */
  get licenceProblem(): string | null {
    const c = checkLicence(this.licence);
    return c.ok ? null : c.message;
  }

  async exportRun(): Promise<void> {
    if (this.runId === null || this.licenceProblem) return;
    this.exporting = true;
    this.exported = null;
    this.exportError = null;
    try {
      const author = this.author.trim();
      this.exported = await this.api.invoke('runs.export', this.runId, author ? { licence: this.licence.trim(), author } : { licence: this.licence.trim() });
    } catch (e) {
      const { message } = describeError(e);
      this.exportError = { message, privacy: /patient identifiers|privacy|would contain/i.test(message) };
    } finally {
      this.exporting = false;
    }
  }

  private async importWith(label: string, run: () => Promise<ImportResult>): Promise<void> {
    this.importing = label;
    this.imported = null;
    this.importError = null;
    try {
      this.imported = await run();
      await this.runs.refresh();
    } catch (e) {
      this.importError = describeError(e).message;
    } finally {
      this.importing = null;
    }
  }

  /** Electron: the native picker. */
  async pickAndImport(): Promise<void> {
    try {
      const path = await this.api.invoke('packages.pick');
      if (path) await this.importWith(path, () => this.api.invoke('packages.import', path));
    } catch (e) {
      this.importError = describeError(e).message;
    }
  }

  /** Server mode: where the browser downloads the last exported package; null in Electron. */
  get downloadUrl(): string | null {
    return this.exported ? exportDownloadUrl(this.exported.file) : null;
  }

  /** Imports a cluster job's output folder (or the job folder holding output/) as a run with its curves. */
  async importJob(folder: string): Promise<boolean> {
    const path = folder.trim();
    if (!path || this.importingJob) return false;
    this.importingJob = path;
    this.jobImported = null;
    this.jobImportError = null;
    try {
      this.jobImported = await this.api.invoke('jobs.import', path);
      await this.runs.refresh();
      return true;
    } catch (e) {
      this.jobImportError = describeError(e).message;
      return false;
    } finally {
      this.importingJob = null;
    }
  }

  /** Electron: the native folder picker, then the import. */
  async pickJobAndImport(): Promise<void> {
    try {
      const path = await this.api.invoke('library.pickFolder', 'job-output');
      if (path) await this.importJob(path);
    } catch (e) {
      this.jobImportError = describeError(e).message;
    }
  }

  /** A folder dropped on the import zone: a cluster job's output, by its path (Electron); a browser has no path to send. */
  async importDroppedFolder(file: File): Promise<void> {
    let path: string | null;
    try {
      path = await grantDroppedFile(file);
    } catch (e) {
      this.jobImportError = describeError(e).message;
      return;
    }
    if (path) await this.importJob(path);
    else
      this.jobImportError = `${file.name} is a folder: a browser cannot send a folder's path. Choose the job's output folder on the server below (Browse…), or type its path.`;
  }

  /** A dropped or chosen file: by path in Electron; streamed to the server and imported there in a browser. */
  async importFile(file: File): Promise<void> {
    let path: string | null;
    try {
      path = await grantDroppedFile(file);
    } catch (e) {
      this.importError = describeError(e).message;
      return;
    }
    if (path) return this.importWith(file.name, () => this.api.invoke('packages.import', path));
    this.uploaded = { sent: 0, total: file.size };
    const abort = (this.uploadAbort = new AbortController());
    try {
      await this.importWith(file.name, () => uploadPackage(file, (sent, total) => (this.uploaded = { sent, total }), abort.signal));
    } finally {
      this.uploaded = null;
      this.uploadAbort = null;
    }
  }

  /** Stops the upload in progress (server mode); the server keeps nothing of it. */
  cancelUpload(): void {
    this.uploadAbort?.abort();
  }
}
