/**
 * Label files in the library: import (Electron: the native picker or files dropped on the window;
 * server mode: a typed path on the server, or files dropped or chosen in the browser, sent as
 * bytes), the import reports, the list of imported sources, removal. One instance for the app's
 * lifetime.
 */
import type { ApiClient } from '../../../shared/contract';
import type { LabelImport } from '../../../shared/results';
import type { LabelSource } from '../../../shared/types';
import { grantDroppedFile } from '../lib/api';
import { describeError } from '../lib/errors';
import { labelPathProblem } from './labels-import-paths';
import { toasts } from '../lib/toasts.svelte';

export { labelPathProblem };

/** Largest label file the browser sends over the socket (the server refuses bigger frames): type larger ones' paths. */
export const MAX_LABEL_SOCKET_BYTES = 16 * 1024 * 1024 - 4096;

export interface ImportOutcome {
  path: string;
  /** The services' report with what it says, or null when the import failed. */
  report: LabelImport | null;
  error: string | null;
}

export class LabelsState {
  sources = $state.raw<LabelSource[]>([]);
  /** Reports of the last import action (one per file), newest first. */
  outcomes = $state.raw<ImportOutcome[]>([]);
  busy = $state(false);
  pathProblem = $state<string | null>(null);

  constructor(
    private readonly api: ApiClient,
    /** Called after labels changed (the cohort counts depend on them). */
    private readonly onChanged: () => void,
  ) {}

  async refresh(): Promise<void> {
    try {
      this.sources = await this.api.invoke('labels.sources');
    } catch (e) {
      toasts.error('Label sources', e);
    }
  }

  /** Imports files one by one; each gets its own report or error. */
  async importPaths(paths: string[]): Promise<void> {
    await this.importEach(paths.map((path) => ({ path, run: () => this.api.invoke('labels.import', path) })));
  }

  /**
   * Files dropped or chosen: in Electron each is granted to this window and imported by path; in a
   * browser its bytes are sent (up to 16 MB; larger files are imported by typing their path).
   */
  async importFiles(files: File[]): Promise<void> {
    await this.importEach(
      files.map((file) => ({
        path: file.name,
        run: async () => {
          const path = await grantDroppedFile(file);
          if (path) return this.api.invoke('labels.import', path);
          if (file.size > MAX_LABEL_SOCKET_BYTES)
            throw new Error(`${(file.size / 2 ** 20).toFixed(1)} MB is too large to send from the browser (at most 16 MB): type its path on the server instead`);
          return this.api.invoke('labels.importBytes', file.name, new Uint8Array(await file.arrayBuffer()));
        },
      })),
    );
  }

  private async importEach(items: { path: string; run: () => Promise<LabelImport> }[]): Promise<void> {
    if (items.length === 0) return;
    this.busy = true;
    const out: ImportOutcome[] = [];
    try {
      for (const { path, run } of items) {
        try {
          out.push({ path, report: await run(), error: null });
        } catch (e) {
          const { message } = describeError(e);
          out.push({ path, report: null, error: message });
        }
      }
    } finally {
      this.outcomes = out;
      this.busy = false;
    }
    await this.refresh();
    this.onChanged();
  }

  /** A typed path of a file on the server (server mode). Returns true when sent. */
  async importTyped(raw: string): Promise<boolean> {
    this.pathProblem = labelPathProblem(raw);
    if (this.pathProblem) return false;
    await this.importPaths([raw.trim()]);
    return true;
  }

  /** Electron: the native picker, then import. */
  async pickAndImport(): Promise<void> {
    try {
      const paths = await this.api.invoke('labels.pickFiles');
      await this.importPaths(paths);
    } catch (e) {
      toasts.error('Import labels', e);
    }
  }

  async remove(source: LabelSource): Promise<void> {
    try {
      await this.api.invoke('labels.removeSource', source.id);
      this.outcomes = this.outcomes.filter((o) => o.report?.sourceId !== source.id);
      await this.refresh();
      this.onChanged();
    } catch (e) {
      toasts.error('Remove labels', e);
    }
  }

  dismissReports(): void {
    this.outcomes = [];
  }
}
