/**
 * Label files in the library: import (native picker in Electron, a typed path anywhere), the
 * import reports, the list of imported sources, removal. One instance for the app's lifetime.
 */
import type { ApiClient } from '../../../shared/contract';
import type { LabelSource } from '../../../shared/types';
import { describeError } from '../lib/errors';
import { labelPathProblem } from './labels-import-paths';
import { toasts } from '../lib/toasts.svelte';

export { labelPathProblem };

export interface ImportOutcome {
  path: string;
  /** The services' report, or null when the import failed. */
  report: Record<string, unknown> | null;
  error: string | null;
}

export class LabelsImport {
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
    if (paths.length === 0) return;
    this.busy = true;
    const out: ImportOutcome[] = [];
    try {
      for (const path of paths) {
        try {
          out.push({ path, report: await this.api.invoke('labels.import', path), error: null });
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

  /** A typed path (server mode, or Electron without the picker). Returns true when sent. */
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
