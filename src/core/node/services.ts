/**
 * The application services behind the IPC contract: one implementation, used by Electron main
 * (over ipcMain) and by `ctssl serve` (over WebSocket). Holds the library database and the
 * running indexing job; pushes events through the `emit` callback it is given.
 */
import { appMeta } from './app-meta';
import { ApiError, type EventName, type Events, type Handlers } from '../../shared/contract';
import type { LabelSource } from '../../shared/types';
import { importLabels, listLabelSources, removeLabelSource } from './labels';
import { seriesLabels, sliceMasksForViewer } from './label-service';
import { ExperimentService } from './experiment-service';
import { RunService } from './run-service';
import type { SpawnTrainer } from './runs';
import { CONTRACT_VERSION } from '../../shared/contract';
import { openLibrary } from './db';
import { checkFolders, removeFolder } from './indexer';
import { IndexJobs } from './index-job';
import { cohortCounts, libraryStats, listFolders, listSeries } from './library';
import type { Database } from './sqlite';
import { openVolumeInfo, readSliceBlock } from './viewer';

export interface ServiceOptions {
  mode: 'electron' | 'server';
  dataDir: string;
  dbPath: string;
  /** Native folder picker (Electron only). */
  pickFolder?: () => Promise<string | null>;
  /** Native file picker for label files (Electron only). */
  pickFiles?: () => Promise<string[]>;
  /** Native file picker for a weights package (Electron only). */
  pickPackage?: () => Promise<string | null>;
  /** Delivers an event to every connected renderer. */
  emit: <E extends EventName>(event: E, payload: Events[E]) => void;
  /** Path to a better-sqlite3 binding built for this runtime (Electron). */
  nativeBinding?: string;
  /** Starts a trainer process (Electron: a utility process); default: a Node child process. */
  spawnTrainer?: SpawnTrainer;
}

export interface Services {
  handlers: Handlers;
  db: Database;
  close(): Promise<void>;
}


export function createServices(opts: ServiceOptions): Services {
  const db = openLibrary(opts.dbPath, { nativeBinding: opts.nativeBinding });
  const runs = new RunService(db, opts.dataDir, opts.emit, opts.spawnTrainer);
  const experiments = new ExperimentService(db, opts.dataDir, opts.emit, opts.spawnTrainer);
  // The indexing job (index-job.ts): always ends; a cancel ends it even when the indexer hangs.
  const jobs = new IndexJobs(db, (p) => opts.emit('index.progress', p));

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

  const handlers: Handlers = {
    'app.info': () => ({
      name: appMeta().productName,
      version: appMeta().version,
      contractVersion: CONTRACT_VERSION,
      mode: opts.mode,
      dataDir: opts.dataDir,
      dbPath: opts.dbPath,
      nativeDialogs: !!opts.pickFolder,
    }),
    'library.pickFolder': async () => {
      if (!opts.pickFolder) throw new ApiError('unsupported', 'no native folder picker in server mode: type the folder path');
      return opts.pickFolder();
    },
    'library.addFolder': (path) => startIndexing([path]),
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
    'library.cohortCounts': (filter) => cohortCounts(db, filter),
    'library.skipped': (limit) =>
      db
        .prepare(`SELECT f.path AS path, s.reason AS reason FROM skipped s JOIN files f ON f.id = s.file_ref ORDER BY f.path LIMIT ?`)
        .all(limit ?? 1000) as { path: string; reason: string }[],
    'viewer.open': (seriesId) => openVolumeInfo(db, seriesId),
    'viewer.slices': (seriesId, start, count) => readSliceBlock(db, seriesId, start, count),
    'labels.pickFiles': async () => {
      if (!opts.pickFiles) throw new ApiError('unsupported', 'no native file picker in server mode: type the file path');
      return opts.pickFiles();
    },
    'labels.import': async (path) => {
      try {
        return (await importLabels(db, path)) as unknown as Record<string, unknown>;
      } catch (err) {
        throw new ApiError('invalid-argument', (err as Error).message);
      }
    },
    'labels.sources': () => listLabelSources(db) as unknown as LabelSource[],
    'labels.removeSource': (id) => removeLabelSource(db, id),
    'labels.series': (seriesId) => seriesLabels(db, seriesId),
    'labels.masks': (seriesId, index, q) => sliceMasksForViewer(db, seriesId, index, q),
    'system.doctor': () => runs.doctor(),
    'runs.list': () => runs.list(),
    'runs.create': (config) => runs.create(config),
    'runs.start': (id) => runs.start(id),
    'runs.pause': (id) => runs.pause(id),
    'runs.resume': (id) => runs.resume(id),
    'runs.stop': (id) => runs.stop(id),
    'runs.metrics': (id) => runs.metrics(id),
    'runs.delete': (id) => runs.delete(id),
    'runs.restore': (id) => runs.restore(id),
    'runs.trash': () => runs.trash(),
    'runs.emptyTrash': (ids) => runs.emptyTrash(ids),
    'runs.sample': (id) => runs.sample(id),
    'runs.evaluate': (id, o) => runs.evaluate(id, o),
    'runs.evalImages': (id) => runs.evalImages(id),
    'runs.export': (id, o) => runs.exportRun(id, o),
    'packages.import': (path) => runs.importPackage(path),
    'packages.importBytes': (name, bytes) => runs.importPackageBytes(name, bytes),
    'experiments.start': (spec) => experiments.start(spec),
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
      return experiments.probe({ encoders: dirs, seriesIds: o.seriesIds, filter: o.filter, attributes: o.attributes, folds: o.folds, seed: o.seed, requestId: o.requestId });
    },
    'probe.cancel': (id) => experiments.cancelProbe(id),
    'probe.list': () => experiments.listProbes(),
    'probe.result': (id) => experiments.probeResult(id),
    'probe.delete': (id) => experiments.deleteProbe(id),
    'probe.restore': (id) => experiments.restoreProbe(id),
    'probe.trash': () => experiments.trashedProbes(),
    'probe.emptyTrash': (ids) => experiments.emptyProbeTrash(ids),
    'packages.pick': async () => {
      if (!opts.pickPackage) throw new ApiError('unsupported', 'no native file picker in server mode: drop the file on the page');
      return opts.pickPackage();
    },
  };

  return {
    handlers,
    db,
    async close() {
      await experiments.close();
      await runs.close();
      const running = jobs.progress();
      if (jobs.busy && running) jobs.cancel(running.jobId);
      await jobs.idle();
      db.close();
    },
  };
}
