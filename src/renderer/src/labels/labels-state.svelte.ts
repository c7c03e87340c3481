/**
 * Label files in the library: import (Electron: the native picker or files dropped on the window;
 * server mode: a typed path on the server, or files dropped or chosen in the browser, sent as
 * bytes), the import reports, the list of imported sources, removal. One instance for the app's
 * lifetime.
 */
import type { ApiClient } from '../../../shared/contract';
import type { LabelFolderImport, LabelImport } from '../../../shared/results';
import type { LabelSource } from '../../../shared/types';
import { grantDroppedFile } from '../lib/api';
import { describeError } from '../lib/errors';
import { folderPathProblem } from '../lib/paths';
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
  /** The last folder import's summary (every file: imported, skipped or failed, and why). */
  folder = $state.raw<LabelFolderImport | null>(null);
  /** A folder import in progress: files done of total, the file being imported. */
  folderProgress = $state.raw<{ done: number; total: number; file: string } | null>(null);
  private folderRequest: string | null = null;
  private folderAbort: AbortController | null = null;

  constructor(
    private readonly api: ApiClient,
    /** Called after labels changed (the cohort counts depend on them). */
    private readonly onChanged: () => void,
  ) {
    api.on('labels.folderProgress', (p) => {
      if (p.requestId !== null && p.requestId === this.folderRequest) this.folderProgress = { done: p.done, total: p.total, file: p.file };
    });
  }

  /** A folder on the machine of the services (Electron: picked in the native dialog; server mode: typed): every label file under it. */
  /**
   * Electron: folders dropped on the panel, each granted to this window by its path (the preload
   * resolves it) and imported as a picked folder is, one after the other.
   */
  async importDroppedFolders(folders: File[]): Promise<void> {
    for (const f of folders) {
      try {
        const path = await grantDroppedFile(f);
        if (path) await this.importFolder(path);
      } catch (e) {
        toasts.error('Import labels', e);
      }
    }
  }

  async importFolder(path: string): Promise<void> {
    if (this.busy) return;
    const requestId = `folder-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
    this.folderRequest = requestId;
    this.busy = true;
    this.folder = null;
    this.folderProgress = { done: 0, total: 0, file: '' };
    try {
      this.folder = await this.api.invoke('labels.importFolder', path, { requestId });
    } catch (e) {
      toasts.error('Import a folder of labels', e);
    } finally {
      this.folderRequest = null;
      this.folderProgress = null;
      this.busy = false;
    }
    await this.refresh();
    this.onChanged();
  }

  /** Electron: the native folder picker, then import the folder. */
  async pickFolderAndImport(): Promise<void> {
    try {
      const path = await this.api.invoke('library.pickFolder', 'labels');
      if (path) await this.importFolder(path);
    } catch (e) {
      toasts.error('Import a folder of labels', e);
    }
  }

  /** A typed server folder (server mode). Returns true when sent. */
  async importTypedFolder(raw: string): Promise<boolean> {
    this.pathProblem = folderPathProblem(raw);
    if (this.pathProblem) return false;
    await this.importFolder(raw.trim());
    return true;
  }

  /** Stops the folder import in progress after the file being imported (what was imported stays). */
  async cancelFolder(): Promise<void> {
    this.folderAbort?.abort();
    if (!this.folderRequest) return;
    try {
      await this.api.invoke('labels.cancelFolder', this.folderRequest);
    } catch (e) {
      toasts.error('Cancel', e);
    }
  }

  /**
   * Folders dropped in a browser: their files are read here and the label files among them sent one
   * by one (as dropped files are); the summary says what happened to every file, as a server folder's does.
   */
  async importDroppedFolder(name: string, files: { path: string; file: File }[]): Promise<void> {
    if (this.busy) return;
    const t0 = performance.now();
    const ac = new AbortController();
    this.folderAbort = ac;
    this.busy = true;
    this.folder = null;
    const summary: LabelFolderImport = { folder: name, files: files.length, imported: [], skipped: [], failed: [], byKind: {}, notStarted: 0, cancelled: false, warnings: [], seconds: 0 };
    try {
      for (const [k, { path, file }] of files.entries()) {
        if (ac.signal.aborted) {
          summary.cancelled = true;
          summary.notStarted = files.length - k;
          break;
        }
        this.folderProgress = { done: k, total: files.length, file: path };
        const why = await notLabelReason(this.api, file);
        if (why) {
          summary.skipped.push({ file: path, reason: why });
          continue;
        }
        try {
          const r = await this.api.invoke('labels.importBytes', file.name, new Uint8Array(await file.arrayBuffer()));
          summary.imported.push({ file: path, kind: r.kind, format: r.view.format, sourceId: r.sourceId, headline: r.view.headline, incomplete: r.view.incomplete, warnings: r.warnings.length });
          summary.byKind[r.kind] = (summary.byKind[r.kind] ?? 0) + 1;
        } catch (e) {
          const { message } = describeError(e);
          if (/not a label file/.test(message)) summary.skipped.push({ file: path, reason: message.replace(/^labels\.importBytes: /, '') });
          else summary.failed.push({ file: path, kind: 'unknown', error: message.replace(/^labels\.importBytes: /, '') });
        }
      }
    } finally {
      summary.seconds = (performance.now() - t0) / 1000;
      this.folder = summary;
      this.folderProgress = null;
      this.folderAbort = null;
      this.busy = false;
    }
    await this.refresh();
    this.onChanged();
  }

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
    this.folder = null;
  }
}

/**
 * Why a file from a folder dropped or chosen in the browser is not sent, or null when it is a label
 * file: too large for the socket, or what the services say of its name and first KiB
 * (`labels.sniff`: the rule every import applies, so a CT image or a stray file is named as a server
 * folder's import names it), without sending the rest of its bytes.
 */
export async function notLabelReason(api: ApiClient, file: File): Promise<string | null> {
  if (file.size > MAX_LABEL_SOCKET_BYTES) return `${(file.size / 2 ** 20).toFixed(1)} MB: too large to send from the browser (at most 16 MB): type the folder's path on the server instead`;
  const head = new Uint8Array(await file.slice(0, 1024).arrayBuffer());
  return (await api.invoke('labels.sniff', uploadName(file.name), head)).reason;
}

/** A browser file's name as the services accept one (a base name, at most 255 characters). */
function uploadName(name: string): string {
  const base = name.replace(/[\/\0]/g, '_').slice(-255);
  return /^\.*$/.test(base) ? 'file' : base;
}

/** The files of a folder chosen with `<input webkitdirectory>`, with their paths inside it. */
export function filesOfChosenFolder(files: FileList | File[]): { name: string; files: { path: string; file: File }[] } {
  const list = [...files].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
  return { name: list[0]?.path.split('/')[0] ?? 'folder', files: list };
}

/** The files under dropped entries (folders read recursively), with their paths; at most `max`. */
export async function filesOfEntries(entries: FileSystemEntry[], max = 50_000): Promise<{ path: string; file: File }[]> {
  const out: { path: string; file: File }[] = [];
  const visit = async (e: FileSystemEntry): Promise<void> => {
    if (out.length >= max) return;
    if (e.isFile) {
      const file = await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej));
      out.push({ path: e.fullPath.replace(/^\//, ''), file });
    } else if (e.isDirectory) {
      const reader = (e as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (batch.length === 0) break;
        for (const c of batch) await visit(c);
      }
    }
  };
  for (const e of entries) await visit(e);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
