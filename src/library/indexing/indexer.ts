/**
 * Incremental indexing of DICOM folders into the library database.
 *
 * Reads headers only (the first 64 KiB of a file, up to 1 MiB when the header is longer, see
 * file-header.ts), opens regular files only (see file-kind.ts), never writes to source folders,
 * commits in batches so that a killed run leaves a consistent database that the next run
 * completes, skips unchanged files (size and mtime), re-reads changed ones and drops deleted
 * ones. Every file ends up indexed, a counted duplicate, or skipped with a reason.
 *
 * A job's steps, in indexFolders: plan (the folders' rows, the outermost folders), count (names
 * only, for the progress bar), read and record (walk again, read the headers of new and changed
 * files ahead in a worker while the previous batch is written: folder-walk.ts, header-reader.ts,
 * index-records.ts), prune (files that are gone), geometry (series that changed), summary.
 */
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { siblingModule } from '../../platform/ts-worker';
import type { IndexProgress, IndexSummary, SkippedFile } from '../../shared/types';
import type { Database } from '../db/sqlite';
import { updateDirtyGeometry } from '../db/catalog';
import { pseudoFolderReason } from './file-kind';
import type { ReadResult } from './file-header';
import { walk, type ScannedFile } from './folder-walk';
import { headerReader } from './header-reader';
import { cleanupOrphans, detachFile, FileRecorder, isUnchanged, statements, totals, type Stmts } from './index-records';

export interface IndexOptions {
  signal?: AbortSignal;
  onProgress?: (p: IndexProgress) => void;
  jobId?: string;
  /** Files per transaction. */
  batchSize?: number;
  /** Bytes read for a header before reading up to 1 MiB (file-header.ts HEADER_LIMIT). */
  headChunk?: number;
  /** Milliseconds between progress events. */
  progressInterval?: number;
  /** Worker threads reading headers (default: 1 when there are 2+ cores, else 0 = inline). */
  workers?: number;
  /**
   * Milliseconds the header-reading worker may go without finishing a file before it is
   * terminated and that file skipped (a hung drive); default 60 s.
   */
  readerStallMs?: number;
  /** The header-reading worker's module (tests substitute one that crashes or hangs). */
  workerEntry?: URL;
}

const MAX_LISTED_WARNINGS = 50;

export function checkFolders(folders: string[]): string[] {
  if (folders.length === 0) throw new Error('no folder given');
  return folders.map((f) => {
    const abs = isAbsolute(f) ? f : resolve(f);
    let st;
    try {
      st = statSync(abs);
    } catch {
      throw new Error(`folder not found: ${abs}`);
    }
    if (!st.isDirectory()) throw new Error(`not a folder: ${abs}`);
    const real = realpathSync(abs);
    const pseudo = pseudoFolderReason(real);
    if (pseudo) throw new Error(`not a folder of files: ${abs} is ${pseudo}`);
    return real;
  });
}
function likePrefix(folder: string): string {
  const base = folder.endsWith(sep) ? folder : folder + sep;
  return base.replace(/[\\%_]/g, (c) => '\\' + c) + '%';
}

/** Lists skipped files under the given folders, with reasons. */
export function skippedUnder(db: Database, folders: string[], limit = 100000): SkippedFile[] {
  const out: SkippedFile[] = [];
  const q = db.prepare(
    // From the skipped files to their paths (CROSS JOIN keeps that order): SQLite would otherwise walk
    // every file's path in order for the ORDER BY and LIMIT (a million files: most of a second).
    `SELECT f.path AS path, s.reason AS reason FROM skipped s CROSS JOIN files f ON f.id = s.file_ref
     WHERE f.path LIKE ? ESCAPE '\\' ORDER BY f.path LIMIT ?`,
  );
  for (const folder of folders) out.push(...(q.all(likePrefix(folder), limit) as SkippedFile[]));
  return out;
}
/** Progress of one job: its phase and counts, sent at most every `interval` ms (or when forced). */
class Progress {
  phase: IndexProgress['phase'] = 'scanning';
  filesFound = 0;
  filesDone = 0;
  skipped = 0;
  private parseStart = Date.now();
  private lastEmit = 0;

  constructor(
    private readonly jobId: string,
    private readonly folders: string[],
    private readonly interval: number,
    private readonly onProgress?: (p: IndexProgress) => void,
  ) {}

  startParsing(): void {
    this.phase = 'parsing';
    this.parseStart = Date.now();
  }

  emit(force = false, extra: Partial<IndexProgress> = {}): void {
    const now = Date.now();
    if (!force && now - this.lastEmit < this.interval) return;
    this.lastEmit = now;
    const secs = (now - this.parseStart) / 1000;
    const rate = this.phase === 'parsing' && secs > 0 ? this.filesDone / secs : 0;
    const left = this.filesFound - this.filesDone;
    this.onProgress?.({
      jobId: this.jobId,
      phase: this.phase,
      folders: this.folders,
      filesFound: this.filesFound,
      filesDone: this.filesDone,
      filesPerSecond: Math.round(rate * 10) / 10,
      etaSeconds: this.phase === 'parsing' && rate > 0 ? Math.round(left / rate) : null,
      skipped: this.skipped,
      ...extra,
    });
  }
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

export async function indexFolders(db: Database, folderArgs: string[], opts: IndexOptions = {}): Promise<IndexSummary> {
  const started = Date.now();
  const folders = checkFolders(folderArgs);
  const s = statements(db);
  const warnings: string[] = [];
  const warn = (w: string) => {
    if (warnings.length < MAX_LISTED_WARNINGS) warnings.push(w);
  };
  const progress = new Progress(opts.jobId ?? randomUUID(), folders, opts.progressInterval ?? 250, opts.onProgress);

  const { folderIds, roots } = planFolders(s, folders);
  await countFiles(roots, opts.signal, progress);
  progress.startParsing();
  const runId = Date.now();
  const recorder = new FileRecorder(s, runId, opts.headChunk ?? 64 * 1024);
  let cancelled = await readAndRecord(db, s, roots, folderIds, recorder, progress, warn, opts);
  if (opts.signal?.aborted) cancelled = true;
  const removed = cancelled ? cleanupAfterCancel(db) : pruneGone(db, s, roots, folderIds, runId);
  if (!cancelled) {
    progress.phase = 'geometry';
    progress.emit(true);
    updateDirtyGeometry(db);
  }

  for (const [dir, n] of recorder.derivedFolders) {
    warn(`${n} file(s) in ${dir} have empty UIDs or PatientID: indexed under stable derived identities`);
  }
  const summary: IndexSummary = {
    files: progress.filesFound,
    ...totals(db),
    skipped: skippedUnder(db, folders),
    parsed: recorder.parsed,
    removed,
    warnings,
    cancelled,
    seconds: Math.round((Date.now() - started) / 10) / 100,
  };
  progress.phase = cancelled ? 'cancelled' : 'done';
  progress.emit(true, { summary });
  return summary;
}

/**
 * Plan: each folder's row (added now if new), and the folders to walk (a folder inside another
 * folder of the job is covered by the outer one).
 */
function planFolders(s: Stmts, folders: string[]): { folderIds: Map<string, number>; roots: string[] } {
  const now = new Date().toISOString();
  const folderIds = new Map<string, number>();
  for (const f of folders) folderIds.set(f, (s.upsertFolder.get(f, now) as { id: number }).id);
  const roots = folders.filter((f) => !folders.some((o) => o !== f && f.startsWith(o + sep)));
  return { folderIds, roots };
}

/** Count: the files under the folders (names only, no stat), for the progress bar and ETA. */
async function countFiles(roots: string[], signal: AbortSignal | undefined, progress: Progress): Promise<void> {
  for (const f of roots) {
    for (const _ of walk(f, signal, false)) {
      progress.filesFound++;
      if ((progress.filesFound & 4095) === 0) {
        progress.emit();
        await yieldToLoop();
      }
    }
  }
}

type Item = { file: ScannedFile; folderId: number };

/**
 * Read and record: streams the files again in batches; unchanged ones are only marked as seen by
 * this run, new and changed ones are parsed. The headers of a batch are read ahead (in a worker
 * thread when there is a second core) while the previous batch is written: reading and writing
 * overlap, and memory stays flat in the number of files. True when cancelled.
 */
async function readAndRecord(
  db: Database,
  s: Stmts,
  roots: string[],
  folderIds: Map<string, number>,
  recorder: FileRecorder,
  progress: Progress,
  warn: (w: string) => void,
  opts: IndexOptions,
): Promise<boolean> {
  const headChunk = opts.headChunk ?? 64 * 1024;
  const batchSize = opts.batchSize ?? 500;
  const aborted = () => opts.signal?.aborted === true;
  const recordBatch = db.transaction((items: Item[], read: Map<string, ReadResult>) => {
    for (const { file, folderId } of items) recorder.record(file, folderId, read);
  });
  const reader = await headerReader(
    opts.workers ?? (cpus().length >= 2 ? 1 : 0),
    headChunk,
    warn,
    opts.signal,
    opts.readerStallMs ?? 60_000,
    opts.workerEntry ?? siblingModule(import.meta.url, 'index-worker'),
  );
  // Files decided from stat data are never opened; unchanged ones are not read again.
  const readAhead = (items: Item[]) => ({ items, read: reader.read(items.map((x) => x.file).filter((f) => f.skip === undefined && !isUnchanged(s, f))) });
  const record = async (p: ReturnType<typeof readAhead>) => {
    const read = await p.read;
    if (aborted()) return; // cancelled while reading: the batch is left for the next run
    recordBatch(p.items, read);
    progress.skipped = recorder.skipped;
    progress.filesDone += p.items.length;
    if (progress.filesDone > progress.filesFound) progress.filesFound = progress.filesDone; // files added since the count
    progress.emit();
    await yieldToLoop();
  };
  let inflight: ReturnType<typeof readAhead> | null = null;
  let batch: Item[] = [];
  const flush = async () => {
    const next = readAhead(batch);
    batch = [];
    if (inflight) await record(inflight);
    inflight = next;
  };
  let cancelled = false;
  try {
    outer: for (const f of roots) {
      const folderId = folderIds.get(f)!;
      for (const file of walk(f, opts.signal, true, (dir, why) => warn(`folder ${dir} skipped: ${why}`))) {
        batch.push({ file, folderId });
        if (batch.length >= batchSize) {
          await flush();
          if (aborted()) break outer;
        }
      }
    }
    if (aborted()) cancelled = true;
    else if (batch.length > 0) await flush();
    if (inflight) await record(inflight);
  } finally {
    await reader.close();
  }
  progress.skipped = recorder.skipped;
  return cancelled;
}

/**
 * Prune, after a complete walk: the files this run did not see are gone; they leave the library
 * with what only they held, and the folders are marked indexed. Returns the files removed.
 */
function pruneGone(db: Database, s: Stmts, roots: string[], folderIds: Map<string, number>, runId: number): number {
  const gone: number[] = [];
  for (const f of roots) gone.push(...(s.unseenUnder.pluck().all(f, likePrefix(f), runId) as number[]));
  let removed = 0;
  db.transaction(() => {
    for (const id of gone) {
      detachFile(s, id);
      s.deleteFile.run(id);
      removed++;
    }
    cleanupOrphans(db);
    const at = new Date().toISOString();
    for (const id of folderIds.values()) s.folderDone.run(at, id);
  })();
  return removed;
}

/** After a cancelled walk nothing is pruned (it saw too little); rows left without instances go. */
function cleanupAfterCancel(db: Database): number {
  db.transaction(() => cleanupOrphans(db))();
  return 0;
}

/**
 * Removes a folder from the library with everything indexed from it. Source files are untouched;
 * files that are also under another library folder stay.
 */
export function removeFolder(db: Database, folderId: number): IndexSummary {
  const started = Date.now();
  const s = statements(db);
  const folder = db.prepare('SELECT path FROM folders WHERE id = ?').get(folderId) as { path: string } | undefined;
  if (!folder) throw new Error(`no folder with id ${folderId}`);
  const others = db.prepare('SELECT path FROM folders WHERE id != ?').pluck().all(folderId) as string[];
  const coveredElsewhere = (path: string) => others.some((o) => path.startsWith(o + sep));
  let removed = 0;
  db.transaction(() => {
    const files = db.prepare('SELECT id, path FROM files WHERE folder_ref = ?').all(folderId) as { id: number; path: string }[];
    for (const f of files) {
      if (coveredElsewhere(f.path)) continue;
      detachFile(s, f.id);
      s.deleteFile.run(f.id);
      removed++;
    }
    // Files still referencing this folder (kept because another folder covers them) move to it.
    const move = db.prepare('UPDATE files SET folder_ref = (SELECT id FROM folders WHERE ? LIKE path || ? ORDER BY length(path) DESC LIMIT 1) WHERE id = ?');
    for (const f of db.prepare('SELECT id, path FROM files WHERE folder_ref = ?').all(folderId) as { id: number; path: string }[]) {
      move.run(f.path, sep + '%', f.id);
    }
    db.prepare('DELETE FROM folders WHERE id = ?').run(folderId);
    cleanupOrphans(db);
  })();
  updateDirtyGeometry(db);
  return {
    files: 0,
    ...totals(db),
    skipped: [],
    parsed: 0,
    removed,
    warnings: [],
    cancelled: false,
    seconds: Math.round((Date.now() - started) / 10) / 100,
  };
}
