/**
 * The application services behind the IPC contract: one implementation, used by Electron main
 * (over ipcMain), by `ctssl serve` (over WebSocket) and by the CLI (in process: it calls the
 * service objects returned here, the ones behind the handler table, with a console event sink).
 * Holds the library database and the running indexing job; pushes events through the `emit`
 * callback it is given.
 *
 * Paths from the renderer go through one policy here (user-paths.ts) whichever door they came
 * through: checked as absolute, existing, of the right kind and not special; in Electron a file to
 * import must also have been chosen in that window (native dialog or drop), recorded per window in
 * `PathGrants`. Runs are named by id and resolved to their folders here.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { appMeta } from '../platform/app-meta';
import { ApiError, type Args, type EventName, type Events, type Handlers } from '../shared/contract';
import type { FinetuneConfigInput, PretrainConfigInput } from '../shared/run-config';
import type { LabelSource } from '../shared/types';
import type { LabelFolderImport, LabelImport } from '../shared/results';
import { checkLabelSize, importLabels, listLabelSources, removeLabelSource, sniffLabelKind } from '../library/labels/label-import';
import { importLabelFolder } from '../library/labels/label-folder';
import { withView } from '../library/labels/label-formats';
import { seriesLabels, sliceMasksForViewer } from '../library/labels/viewer-labels';
import { ExperimentService } from './experiment-service';
import { RunService } from './run-service';
import type { SpawnTrainer } from './runs/trainer-host';
import { getRun } from './runs/run-store';
import { CONTRACT_VERSION } from '../shared/contract';
import { openLibrary } from '../library/db/schema';
import { checkFolders, removeFolder } from '../library/indexing/indexer';
import { IndexJobs } from './index-job';
import { cohortCounts, libraryStats, listFolders, listSeries, listSkipped, seriesPage, warmSeriesPage, type SeriesPageWarmth } from '../library/db/catalog';
import type { Database } from '../library/db/sqlite';
import { checkUserPath, DROPPED_FILE, FOLDER, labelFileRule, PACKAGE_FILE, PathGrants, type PathRule } from './user-paths';
import { ViewerBlocks } from './viewer-blocks';
import { PredictService } from './predict';
import { spawnNodeTrainer } from './runs/trainer-host';
import { listFolder } from './folder-browser';
import { FirstMinute } from './first-minute';
import { HeldOutService } from './held-out';
import { ClusterJobService } from './cluster-job/service';
import { toSummary } from './run-service';

export interface ServiceOptions {
  /** The door: Electron main, `ctssl serve`, or the CLI in process (paths typed by the user, like the server's). */
  mode: 'electron' | 'server' | 'cli';
  dataDir: string;
  dbPath: string;
  /** Native folder picker (Electron only), over the asking window (its webContents id; null: any), titled for its purpose. */
  pickFolder?: (window: number | null, purpose: FolderPurpose) => Promise<string | null>;
  /** Native file picker for label files (Electron only); what it returns is granted to the window. */
  pickFiles?: (window: number | null) => Promise<string[]>;
  /** Native file picker for a weights package (Electron only); what it returns is granted to the window. */
  pickPackage?: (window: number | null) => Promise<string | null>;
  /** Delivers an event to every connected renderer. */
  emit: <E extends EventName>(event: E, payload: Events[E]) => void;
  /** Path to a better-sqlite3 binding built for this runtime (Electron). */
  nativeBinding?: string;
  /** Starts a trainer process (Electron: a utility process); default: a Node child process. */
  spawnTrainer?: SpawnTrainer;
}

/** What a picked folder is for (the native dialog's title): studies to add, labels, where a cluster job goes, a job's output. */
export type FolderPurpose = NonNullable<Args<'library.pickFolder'>[0]>;

export interface Services {
  /**
   * The handler table of the default caller: the server bridge (every socket; files are typed
   * server paths or sent as bytes) and tests. In Electron mode it accepts the files its own pickers
   * returned, like a window.
   */
  handlers: Handlers;
  /** Electron: the handler table of one window (by webContents id), with the files that window's dialogs and drops granted. */
  forWindow(window: number): Handlers;
  /** Electron: records a file the user dropped on a window (its path, from the preload); returns its checked real path. */
  grantDropped(window: number, path: string): string;
  /** Electron: forgets a closed window's grants. */
  closeWindow(window: number): void;
  /**
   * The services behind the handler table, for a door that calls them in process (the CLI, which
   * names runs by folder and takes options the renderer does not send: a run folder, a backend, a
   * package path). Their events go to `emit` as the handlers' do.
   */
  runs: RunService;
  experiments: ExperimentService;
  /** Inference of fine-tuned runs on series (predict.run and its exports). */
  predict: PredictService;
  /** Cluster jobs: export a pretraining job for PyTorch DDP, import its output as a run (jobs.export, jobs.import). */
  clusterJobs: ClusterJobService;
  /** The indexing job: `start` checks the folders as library.addFolder and library.reindex do. */
  indexing: { start(folders: string[]): { jobId: string }; jobs: IndexJobs };
  /** Label files: import (as labels.import, for a path the caller has checked) and the imported sources. */
  labels: { import(file: string): Promise<LabelImport>; importFolder(folder: string, o?: { signal?: AbortSignal; onProgress?: (p: { done: number; total: number; file: string }) => void }): Promise<LabelFolderImport>; sources(): LabelSource[] };
  db: Database;
  /** Reads ahead, within `budgetMs`, the library pages a first library.seriesPage request reads (a server's start: warmSeriesPage). */
  warmSeriesPage(budgetMs: number): SeriesPageWarmth;
  close(): Promise<void>;
}

/** Who is asking: an Electron window with its grants, or the default caller. */
interface Caller {
  window: number | null;
  /** Files chosen in this window (dialog, drop); null: typed paths are the user's act (server mode). */
  grants: PathGrants | null;
}

/** Label files sent as bytes are kept here, one folder per content hash (re-sending one replaces its labels). */
const UPLOADED_LABELS = 'labels';


export function createServices(opts: ServiceOptions): Services {
  const db = openLibrary(opts.dbPath, { nativeBinding: opts.nativeBinding });
  const runs = new RunService(db, opts.dataDir, opts.emit, opts.spawnTrainer);
  const experiments = new ExperimentService(db, opts.dataDir, opts.emit, opts.spawnTrainer);
  const predict = new PredictService(db, opts.emit, opts.spawnTrainer ?? (() => spawnNodeTrainer()), opts.dataDir);
  // The indexing job (index-job.ts): always ends; a cancel ends it even when the indexer hangs.
  const jobs = new IndexJobs(db, (p) => opts.emit('index.progress', p));
  // Cluster jobs for PyTorch DDP (cluster-job/): the export's folders and the import of their output.
  const clusterJobs = new ClusterJobService(db, opts.dataDir);
  // The viewer's warm cache of decoded slices and their wire form (one per library, every door).
  const viewerBlocks = new ViewerBlocks(db);

  const startIndexing = (folders: string[]): { jobId: string } => {
    if (jobs.busy) throw new ApiError('busy', 'an indexing job is already running: wait for it or cancel it');
    const checked = (() => {
      try {
        return checkFolders(folders);
      } catch (err) {
        throw new ApiError('invalid-argument', (err as Error).message);
      }
    })();
    return jobs.start(checked);
  };

  // The Evaluate page's held-out browser (held-out.ts): images computed in a trainer process.
  const heldOut = new HeldOutService(opts.spawnTrainer ?? (() => spawnNodeTrainer()), join(opts.dataDir, 'cache', 'slices'));
  // "Try it on a synthetic cohort" (first-minute.ts): writes, indexes and labels a small cohort.
  const firstMinute = new FirstMinute({ db, dataDir: opts.dataDir, jobs, startIndexing, emit: (p) => opts.emit('library.synthProgress', p) });

  /** A file the caller may import: checked by `rule`; in Electron also chosen in the caller's window. */
  const chosenFile = (caller: Caller, channel: string, rule: PathRule, path: string, how: string): string => {
    const real = checkUserPath(channel, rule, path);
    if (caller.grants && !caller.grants.has(real))
      throw new ApiError('invalid-argument', `${channel}: ${rule.what} ${path} was not chosen in this window: ${how}`);
    return real;
  };

  /** The folder of a run named by id (`where` names the argument in errors). */
  const runFolder = (channel: string, where: string, id: unknown): string => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new ApiError('invalid-argument', `${channel}: ${where}: a run id, not ${typeof id === 'string' ? 'a path' : JSON.stringify(id)}`);
    const run = getRun(db, id);
    if (!run || run.deletedAt) throw new ApiError('not-found', `${channel}: ${where}: no run with id ${id}`);
    return run.dir;
  };

  const createRun = (req: Args<'runs.create'>[0]) => {
    const { init, ...rest } = req as typeof req & { init?: unknown };
    const config = init === undefined ? rest : { ...rest, init: runFolder('runs.create', 'argument 0.init', init) };
    return runs.create(config as PretrainConfigInput | FinetuneConfigInput);
  };

  /** jobs.export: the form's request as runs.create takes it (init by run id), or an existing run, written as a job folder. */
  const exportJob = (req: Args<'jobs.export'>[0]) => {
    const from = (() => {
      if (req.runId !== undefined) return { runDir: runFolder('jobs.export', 'argument 0.runId', req.runId) };
      const { init, ...rest } = req.request as NonNullable<typeof req.request> & { init?: unknown };
      return { config: (init === undefined ? rest : { ...rest, init: runFolder('jobs.export', 'argument 0.request.init', init) }) as PretrainConfigInput };
    })();
    // Picked or typed, as library.addFolder: the job's folder is made inside it.
    const parent = req.folder === undefined ? undefined : checkUserPath('jobs.export', { ...FOLDER, what: 'folder for the job' }, req.folder);
    const requestId = req.requestId ?? null;
    return clusterJobs.exportInto(from, {
      parent,
      dtype: req.dtype,
      requestId,
      onProgress: (p) => opts.emit('jobs.exportProgress', { requestId, ...p }),
    });
  };

  /** jobs.import: the output folder (picked, dropped or typed; checked by the service) as a run with its curves. */
  const importJob = (folder: string) => {
    const { run, ...r } = clusterJobs.import(folder);
    return { ...r, run: toSummary(run) };
  };

  const startExperiment = (req: Args<'experiments.start'>[0]) => {
    const inits = (req.inits as unknown[]).map((i, k) => (i === 'random' || i === 'cnn' ? i : runFolder('experiments.start', `argument 0.inits.${k}`, i)));
    return experiments.start({ ...req, inits });
  };

  const uploadsRoot = join(opts.dataDir, UPLOADED_LABELS);
  /** Imports a label file sent as bytes: kind and cap checked from the bytes, then kept under <data>/labels/<hash>/ and imported from there. */
  const importLabelBytes = async (name: string, bytes: Uint8Array) => {
    const where = (err: unknown, file: string) => new ApiError('invalid-argument', `labels.importBytes: ${(err as Error).message.split(file).join(name)}`);
    const safe = name.replace(/[^\w.-]+/g, '_').replace(/^\.+/, '_').slice(0, 120) || 'labels';
    try {
      checkLabelSize(sniffLabelKind(bytes, name), bytes.length, name);
    } catch (err) {
      throw where(err, name);
    }
    const file = join(uploadsRoot, createHash('sha256').update(bytes).digest('hex').slice(0, 24), safe);
    const existed = existsSync(file);
    if (!existed) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.part`, bytes);
      renameSync(`${file}.part`, file);
    }
    try {
      return withView(await importLabels(db, file));
    } catch (err) {
      if (!existed) rmSync(dirname(file), { recursive: true, force: true });
      throw where(err, file);
    }
  };

  /** Imports a label file from a path (checked by the caller's door); its errors become invalid-argument. */
  const importLabelFile = async (file: string): Promise<LabelImport> => {
    try {
      return withView(await importLabels(db, file));
    } catch (err) {
      throw new ApiError('invalid-argument', `labels.import: ${(err as Error).message}`);
    }
  };

  /** Folder imports running, by request id (labels.cancelFolder aborts one between files). */
  const folderImports = new Map<string, AbortController>();
  /** Imports every label file under a folder (checked by the caller's door), with progress and cancel. */
  const importLabelDir = async (folder: string, requestId: string | null, signal?: AbortSignal, onProgress?: (p: { done: number; total: number; file: string }) => void): Promise<LabelFolderImport> => {
    const key = requestId ?? `folder-${Date.now()}`;
    if (folderImports.has(key)) throw new ApiError('busy', `labels.importFolder: import ${key} is already running`);
    const ac = new AbortController();
    signal?.addEventListener('abort', () => ac.abort(), { once: true });
    folderImports.set(key, ac);
    try {
      return await importLabelFolder(db, folder, { signal: ac.signal, onProgress: (p) => {
          onProgress?.(p);
          opts.emit('labels.folderProgress', { requestId, ...p });
        } });
    } catch (err) {
      throw new ApiError('invalid-argument', `labels.importFolder: ${(err as Error).message}`);
    } finally {
      folderImports.delete(key);
    }
  };

  /** Removes a label source; a file that came as bytes goes with its last source. */
  const removeLabels = (id: number): boolean => {
    const row = db.prepare('SELECT path FROM label_sources WHERE id = ?').get(id) as { path: string } | undefined;
    const removed = removeLabelSource(db, id);
    if (row && row.path.startsWith(uploadsRoot + sep) && !db.prepare('SELECT 1 FROM label_sources WHERE path = ?').get(row.path))
      rmSync(dirname(row.path), { recursive: true, force: true });
    return removed;
  };

  const makeHandlers = (caller: Caller): Handlers => ({
    'app.info': () => ({
      name: appMeta().productName,
      version: appMeta().version,
      contractVersion: CONTRACT_VERSION,
      // The CLI has no renderer to ask this; it is a door of typed paths, as the server is.
      mode: opts.mode === 'electron' ? 'electron' : 'server',
      dataDir: opts.dataDir,
      dbPath: opts.dbPath,
      nativeDialogs: !!opts.pickFolder,
    }),
    'library.pickFolder': async (purpose) => {
      if (!opts.pickFolder) throw new ApiError('unsupported', 'no native folder picker in server mode: type the folder path');
      const path = await opts.pickFolder(caller.window, purpose ?? 'studies');
      if (path) caller.grants?.add(path);
      return path;
    },
    // Picked or typed (an explicit act of the user), checked either way.
    'library.addFolder': (path) => startIndexing([checkUserPath('library.addFolder', FOLDER, path)]),
    'files.listFolder': async (path) => listFolder(path),
    'library.synthCohort': (o) => firstMinute.run(o.requestId ?? null),
    'library.cancelSynth': (requestId) => firstMinute.cancel(requestId),
    'library.reindex': () => {
      const folders = listFolders(db).map((f) => f.path);
      if (folders.length === 0) throw new ApiError('invalid-argument', 'the library has no folders yet: add one first');
      return startIndexing(folders);
    },
    'library.cancel': (jobId) => {
      return jobs.cancel(jobId);
    },
    'library.progress': () => jobs.progress(),
    'library.folders': () => listFolders(db),
    'library.removeFolder': async (folderId) => {
      if (jobs.busy) throw new ApiError('busy', 'an indexing job is running: wait for it or cancel it');
      if (!db.prepare('SELECT 1 FROM folders WHERE id = ?').get(folderId)) throw new ApiError('not-found', `no folder with id ${folderId}`);
      return removeFolder(db, folderId);
    },
    'library.stats': () => libraryStats(db, opts.dbPath),
    'library.series': (filter) => listSeries(db, filter),
    'library.seriesPage': (req) => seriesPage(db, req),
    'library.cohortCounts': (filter) => cohortCounts(db, filter),
    'library.skipped': (limit) => listSkipped(db, limit ?? 1000),
    'viewer.open': (seriesId) => viewerBlocks.open(seriesId),
    'viewer.slices': async (seriesId, start, count) => ({ seriesId, ...(await viewerBlocks.slices(seriesId, start, count)) }),
    'viewer.packed': (seriesId, start, count, encoding) => viewerBlocks.packed(seriesId, start, count, encoding),
    'labels.pickFiles': async () => {
      if (!opts.pickFiles) throw new ApiError('unsupported', 'no native file picker in server mode: type the file path');
      const paths = await opts.pickFiles(caller.window);
      for (const p of paths) caller.grants?.add(p);
      return paths;
    },
    'labels.import': async (path) =>
      importLabelFile(chosenFile(caller, 'labels.import', labelFileRule(), path, 'choose it with "Import labels…" or drop it on the window')),
    'labels.importBytes': (name, bytes) => importLabelBytes(name, bytes),
    'labels.sniff': (name, head) => {
      try {
        return { kind: sniffLabelKind(head, name), reason: null };
      } catch (err) {
        return { kind: null, reason: (err as Error).message.replace(`${name}: `, '') };
      }
    },
    'labels.importFolder': (path, o) => {
      // Picked or typed, as library.addFolder: checked either way (reading label files is no more than indexing does).
      return importLabelDir(checkUserPath('labels.importFolder', FOLDER, path), o.requestId ?? null);
    },
    'labels.cancelFolder': (requestId) => {
      const ac = folderImports.get(requestId);
      ac?.abort();
      return !!ac;
    },
    'labels.sources': () => listLabelSources(db),
    'labels.removeSource': (id) => removeLabels(id),
    'labels.series': (seriesId) => seriesLabels(db, seriesId),
    'labels.masks': (seriesId, index, q) => sliceMasksForViewer(db, seriesId, index, q),
    'system.doctor': () => runs.doctor(),
    'runs.list': () => runs.list(),
    'runs.create': (req) => createRun(req),
    'runs.start': (id) => runs.start(id),
    'runs.pause': (id) => runs.pause(id),
    'runs.resume': (id) => runs.resume(id),
    'runs.stop': (id) => runs.stop(id),
    'runs.metrics': (id) => runs.metrics(id),
    'runs.split': (id) => runs.split(id),
    'runs.delete': (id) => runs.delete(id),
    'runs.restore': (id) => runs.restore(id),
    'runs.trash': () => runs.trash(),
    'runs.emptyTrash': (ids) => runs.emptyTrash(ids),
    'runs.sample': (id) => runs.sample(id),
    'runs.evaluate': (id, o) => runs.evaluate(id, o),
    'runs.evalImages': (id) => runs.evalImages(id),
    'runs.heldOutList': (id) => heldOut.list(runFolder('runs.heldOutList', 'argument 0', id)),
    'runs.heldOut': (id, series) => heldOut.images(runFolder('runs.heldOut', 'argument 0', id), series),
    'runs.export': (id, o) => runs.exportRun(id, o),
    'packages.import': (path) => runs.importPackage(chosenFile(caller, 'packages.import', PACKAGE_FILE, path, 'choose it with "Import…" or drop it on the window')),
    'experiments.start': (req) => startExperiment(req),
    'experiments.stop': (id) => experiments.stop(id),
    'experiments.resume': (id) => experiments.resume(id),
    'experiments.list': () => experiments.list(),
    'experiments.report': (id) => experiments.report(id),
    'experiments.delete': (id) => experiments.delete(id),
    'experiments.restore': (id) => experiments.restore(id),
    'experiments.trash': () => experiments.trash(),
    'experiments.emptyTrash': (ids) => experiments.emptyTrash(ids),
    'probe.run': (o) => {
      const dirs = o.runIds.map((rid) => {
        const r = runs.list().find((x) => x.id === rid);
        if (!r) throw new ApiError('not-found', `no run with id ${rid}`);
        return r.dir;
      });
      return experiments.probe({ encoders: dirs, seriesIds: o.seriesIds, filter: o.filter, attributes: o.attributes, folds: o.folds, seed: o.seed, includeTrainingScans: o.includeTrainingScans, requestId: o.requestId });
    },
    'probe.cancel': (id) => experiments.cancelProbe(id),
    'probe.list': () => experiments.listProbes(),
    'probe.result': (id) => experiments.probeResult(id),
    'probe.delete': (id) => experiments.deleteProbe(id),
    'probe.restore': (id) => experiments.restoreProbe(id),
    'probe.trash': () => experiments.trashedProbes(),
    'probe.emptyTrash': (ids) => experiments.emptyProbeTrash(ids),
    'predict.run': (o) => predict.run(o),
    'predict.cancel': (requestId) => predict.cancel(requestId),
    'predict.get': (runId, seriesId) => predict.summary(runId, seriesId),
    'predict.mask': (runId, seriesId, index) => predict.mask(runId, seriesId, index),
    'predict.export': (runId, seriesId, format) => predict.exportToExports(runId, seriesId, format),
    'jobs.export': (req) => exportJob(req),
    'jobs.cancelExport': (requestId) => clusterJobs.cancelExport(requestId),
    'jobs.import': (folder) => importJob(folder),
    'packages.pick': async () => {
      if (!opts.pickPackage) throw new ApiError('unsupported', 'no native file picker in server mode: drop the file on the page');
      const path = await opts.pickPackage(caller.window);
      if (path) caller.grants?.add(path);
      return path;
    },
  });

  // Server and CLI: a typed path is the user's own act; Electron: only files its pickers returned.
  const handlers = makeHandlers({ window: null, grants: opts.mode === 'electron' ? new PathGrants() : null });
  const windows = new Map<number, { handlers: Handlers; grants: PathGrants }>();
  const windowOf = (id: number) => {
    let w = windows.get(id);
    if (!w) {
      const grants = new PathGrants();
      w = { grants, handlers: makeHandlers({ window: id, grants }) };
      windows.set(id, w);
    }
    return w;
  };

  return {
    handlers,
    forWindow: (id) => windowOf(id).handlers,
    grantDropped: (id, path) => {
      // A dropped folder (a cluster job's output) is checked as a folder; its channel checks it again.
      const folder = (() => {
        try {
          return statSync(path).isDirectory();
        } catch {
          return false;
        }
      })();
      const real = checkUserPath('drop', folder ? { ...FOLDER, what: 'dropped folder' } : DROPPED_FILE, path);
      windowOf(id).grants.add(real);
      return real;
    },
    closeWindow: (id) => void windows.delete(id),
    runs,
    experiments,
    predict,
    clusterJobs,
    indexing: { start: startIndexing, jobs },
    labels: { import: importLabelFile, importFolder: (folder, o) => importLabelDir(folder, null, o?.signal, o?.onProgress), sources: () => listLabelSources(db) },
    db,
    warmSeriesPage: (budgetMs) => warmSeriesPage(db, budgetMs),
    async close() {
      viewerBlocks.clear();
      predict.close();
      clusterJobs.cancelAll();
      await experiments.close();
      await runs.close();
      const running = jobs.progress();
      if (jobs.busy && running) jobs.cancel(running.jobId);
      await jobs.idle();
      db.close();
    },
  };
}
