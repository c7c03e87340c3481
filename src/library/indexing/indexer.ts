/**
 * Incremental indexing of DICOM folders into the library database.
 *
 * Reads headers only (the first 64 KiB of a file, up to 1 MiB when the header is longer, see
 * file-header.ts), opens regular files only (see file-kind.ts), never writes to source folders, commits in batches so that a killed run leaves a consistent
 * database that the next run completes, skips unchanged files (size and mtime), re-reads changed
 * ones and drops deleted ones. Every file ends up indexed, a counted duplicate, or skipped with
 * a reason.
 */
import { lstatSync, readdirSync, realpathSync, statSync, type Dirent } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { siblingModule, spawnWorker } from '../../platform/ts-worker';
import { pseudoFileSystem, pseudoFolderReason, pseudoRoot, specialEntryReason, unreadableReason } from './file-kind';
import type { IndexProgress, IndexSummary, SkippedFile } from '../../shared/types';
import { type InstanceHeader, isImage } from '../../core/dicom/header';
import { resolveIdentity } from '../../core/dicom/identity';
import type { Database } from '../db/sqlite';
import { updateDirtyGeometry } from '../db/catalog';

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

interface HeaderReader {
  read(files: ScannedFile[]): Promise<Map<string, ReadResult>>;
  close(): Promise<void>;
}

/** Restarts of the worker in one job before the rest is read inline. */
const MAX_WORKER_RESTARTS = 10;

/** Reads one file inline; readFileHeader never throws, this guards against it anyway. */
function readInline(f: ScannedFile, headChunk: number, buf: Uint8Array): ReadResult {
  try {
    return readFileHeader(f.path, f.size, headChunk, buf);
  } catch (err) {
    return { skip: `could not read the header: ${(err as Error)?.message ?? String(err)}` };
  }
}

/** Ends a worker without waiting for it (one stuck in a system call may never finish ending). */
function dropWorker(w: Worker): void {
  w.removeAllListeners();
  w.on('error', () => {}); // late errors of a dropped worker are of no interest
  w.unref();
  void w.terminate().catch(() => {});
}

/**
 * Reads headers inline, or in a worker thread (falling back to inline if it cannot start).
 * The worker answers file by file, so a failure is pinned on the file being read: when the
 * worker throws, crashes, runs out of memory, sends what cannot be received, or finishes no file
 * for `stallMs`, that file is skipped with the reason and the rest of the batch goes to a new
 * worker. Cancelling (the signal) terminates the worker at once; the pending read resolves with
 * what it has.
 */
async function headerReader(
  workers: number,
  headChunk: number,
  warn: (w: string) => void,
  signal: AbortSignal | undefined,
  stallMs: number,
  entry: URL,
): Promise<HeaderReader> {
  const inlineBuf = new Uint8Array(headChunk);
  const inline: HeaderReader = {
    async read(files) {
      return new Map(files.map((f) => [f.path, readInline(f, headChunk, inlineBuf)]));
    },
    async close() {},
  };
  if (workers <= 0) return inline;
  // The worker starts with the first batch that has something to read (a re-run of an unchanged
  // folder never starts it).
  let current: Promise<Worker | null> | null = null;
  let restarts = 0;
  let gaveUp = false;
  let nextId = 1;
  const start = () =>
    (current ??= (async () => {
      let worker: Worker | null = null;
      try {
        worker = spawnWorker(entry, null, { resourceLimits: { maxOldGenerationSizeMb: 512 } });
        const w = worker;
        await new Promise<void>((res, rej) => {
          const t = setTimeout(() => rej(new Error('worker did not start in 30 s')), 30_000);
          const done = (err?: Error) => {
            clearTimeout(t);
            w.off('message', onMessage).off('error', done).off('exit', onExit);
            if (err) rej(err);
            else res();
          };
          const onMessage = (m: { type: string; message?: string }) => done(m.type === 'ready' ? undefined : new Error(m.message ?? 'worker failed'));
          const onExit = (code: number) => done(new Error(`worker exited with code ${code} while starting`));
          w.on('message', onMessage).on('error', done).on('exit', onExit);
        });
        w.on('error', () => {}); // reported through 'exit' during a read
        return w;
      } catch (err) {
        if (worker) dropWorker(worker);
        warn(`header reading in a worker thread is unavailable (${(err as Error).message}): reading inline`);
        gaveUp = true;
        return null;
      }
    })());
  const discard = (w: Worker) => {
    dropWorker(w);
    current = null;
    restarts++;
    if (restarts > MAX_WORKER_RESTARTS && !gaveUp) {
      gaveUp = true;
      warn(`the header-reading worker failed ${restarts} times: the remaining files are read inline`);
    }
  };

  type Outcome = { done: true } | { done: false; failedAt: number; reason: string } | { cancelled: true };
  /** Sends files to the worker; results arrive in order, `onResult` gets each. */
  const runOnWorker = (w: Worker, files: ScannedFile[], onResult: (i: number, r: ReadResult) => void): Promise<Outcome> =>
    new Promise((resolve) => {
      const id = nextId++;
      let received = 0;
      let error: Error | null = null;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (o: Outcome) => {
        clearTimeout(timer);
        w.off('message', onMessage).off('messageerror', onMessageError).off('error', onError).off('exit', onExit);
        signal?.removeEventListener('abort', onAbort);
        resolve(o);
      };
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(
          () => finish({ done: false, failedAt: received, reason: `reading the header did not finish within ${Math.round(stallMs / 1000)} s (a hung drive or a file that blocks): skipped` }),
          stallMs,
        );
      };
      const onMessage = (m: { type: string; id: number; index: number; result: ReadResult }) => {
        if (m.type !== 'result' || m.id !== id) return;
        onResult(m.index, m.result);
        received = m.index + 1;
        if (received >= files.length) finish({ done: true });
        else arm();
      };
      const onMessageError = (err: Error) =>
        finish({ done: false, failedAt: received, reason: `the header reader's result could not be received: ${err.message}` });
      const onError = (err: Error) => {
        error = err; // 'exit' follows, after the messages sent before the failure
      };
      const onExit = (code: number) => {
        const why = error ? `${(error as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'ran out of memory' : 'failed'}: ${error.message}` : `exited with code ${code}`;
        finish({ done: false, failedAt: received, reason: `the header reader ${why} while reading this file: skipped` });
      };
      const onAbort = () => finish({ cancelled: true });
      w.on('message', onMessage).on('messageerror', onMessageError).on('error', onError).on('exit', onExit);
      if (signal?.aborted) return finish({ cancelled: true });
      signal?.addEventListener('abort', onAbort, { once: true });
      arm();
      w.postMessage({ id, files: files.map((f) => ({ path: f.path, size: f.size })), headChunk });
    });

  /** A promise, or undefined as soon as the job is cancelled. */
  const untilAborted = <T>(p: Promise<T>): Promise<T | undefined> =>
    !signal
      ? p
      : signal.aborted
        ? Promise.resolve(undefined)
        : new Promise((res, rej) => {
            const onAbort = () => res(undefined);
            signal.addEventListener('abort', onAbort, { once: true });
            p.then(res, rej).finally(() => signal.removeEventListener('abort', onAbort));
          });
  let queue: Promise<unknown> = Promise.resolve();
  const readNow = async (files: ScannedFile[]): Promise<Map<string, ReadResult>> => {
    const out = new Map<string, ReadResult>();
    let i = 0;
    while (i < files.length) {
      if (signal?.aborted) break;
      const w = gaveUp ? null : await untilAborted(start());
      if (signal?.aborted) break; // a starting worker is ended by close()
      if (!w) {
        for (; i < files.length && !signal?.aborted; i++) out.set(files[i].path, readInline(files[i], headChunk, inlineBuf));
        break;
      }
      const rest = files.slice(i);
      const base = i;
      const o = await runOnWorker(w, rest, (k, r) => out.set(rest[k].path, r));
      if ('cancelled' in o) {
        discard(w);
        break;
      }
      if (o.done) break;
      out.set(rest[o.failedAt].path, { skip: o.reason });
      i = base + o.failedAt + 1;
      discard(w);
    }
    return out;
  };
  return {
    // One read at a time (the worker reads in order); the next batch queues behind the current one.
    read(files) {
      if (files.length === 0) return Promise.resolve(new Map());
      const p = queue.then(() => readNow(files));
      queue = p.catch(() => {});
      return p;
    },
    async close() {
      const pending = current;
      current = null;
      if (!pending) return;
      // A worker still starting is ended once it has started; one stuck in a system call may not
      // end promptly: wait 2 s at most, then let it go (unreferenced).
      const sleep = () => new Promise<null>((r) => setTimeout(() => r(null), 2000).unref());
      const w = await Promise.race([pending, sleep()]);
      if (!w) {
        void pending.then((late) => late && dropWorker(late));
        return;
      }
      const ended = w.terminate().catch(() => {});
      await Promise.race([ended, sleep()]);
      dropWorker(w);
    },
  };
}

interface ScannedFile {
  path: string;
  size: number;
  mtimeMs: number;
  /** Decided from stat data alone: the file is recorded as skipped with this reason, never opened. */
  skip?: string;
}

interface KnownFile {
  id: number;
  size: number;
  mtime_ms: number;
}

const MAX_LISTED_WARNINGS = 50;

/** Resolves and checks user-supplied folder paths; throws naming the offending path. */
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

const errCode = (err: unknown) => (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err);

/**
 * One non-folder entry of a walked folder, with its size and mtime, or with the reason it is
 * skipped unread. Symbolic links: a link to a regular file is followed (its target's size and
 * mtime); a link to a folder is not (the walk follows real subfolders only, so it cannot loop);
 * a dangling or looping link, or one into /proc, /sys or /dev, is skipped with the reason.
 * Special files (FIFOs, sockets, devices) are recognised from the entry type (lstat), never
 * stat-followed or opened. Null: the entry vanished.
 */
function scanEntry(p: string, e: Dirent): ScannedFile | null {
  const special = specialEntryReason(e);
  if (special) {
    let mtimeMs = 0;
    try {
      mtimeMs = Math.round(lstatSync(p).mtimeMs);
    } catch {
      return null;
    }
    return { path: p, size: 0, mtimeMs, skip: special };
  }
  let st;
  try {
    st = statSync(p);
  } catch (err) {
    if (!e.isSymbolicLink()) return null; // vanished since the listing
    const code = errCode(err);
    const skip =
      code === 'ELOOP' ? 'a symbolic link loop: not followed' : code === 'ENOENT' ? 'a dangling symbolic link (its target does not exist)' : `a symbolic link that cannot be followed: ${code}`;
    return { path: p, size: 0, mtimeMs: 0, skip };
  }
  const mtimeMs = Math.round(st.mtimeMs);
  if (e.isSymbolicLink()) {
    if (st.isDirectory()) return { path: p, size: 0, mtimeMs, skip: 'a symbolic link to a folder: not followed (folders are walked through real subfolders only, so no loops)' };
    let real: string;
    try {
      real = realpathSync(p);
    } catch (err) {
      return { path: p, size: 0, mtimeMs, skip: `a symbolic link that cannot be resolved: ${errCode(err)}` };
    }
    const special = specialEntryReason(st);
    if (special) return { path: p, size: 0, mtimeMs, skip: `a symbolic link to ${real}, ${special}` };
    const root = pseudoRoot(real);
    if (root) return { path: p, size: st.size, mtimeMs, skip: `a symbolic link to ${real}, a pseudo file under ${root}: never opened` };
    const fs = pseudoFileSystem(real);
    if (fs) return { path: p, size: st.size, mtimeMs, skip: `a symbolic link to ${real}, on the ${fs} pseudo file system: never opened` };
  }
  if (st.isDirectory()) return null; // replaced by a folder since the listing: the next run walks it
  const why = unreadableReason(st);
  return why ? { path: p, size: st.size, mtimeMs, skip: why } : { path: p, size: st.size, mtimeMs };
}

/**
 * Recursively lists every non-folder entry (see scanEntry). Folders on a pseudo file system
 * (proc, sysfs, ...) are not entered; each is reported through `onSkippedFolder`.
 */
function* walk(root: string, signal: AbortSignal | undefined, withStat: boolean, onSkippedFolder?: (dir: string, why: string) => void): Generator<ScannedFile> {
  const stack = [root];
  const pseudoByDevice = new Map<number, string | null>();
  while (stack.length > 0) {
    if (signal?.aborted) return;
    const dir = stack.pop()!;
    if (dir !== root) {
      // A mount point inside the folder can bring a pseudo file system (checked once per device).
      let dev: number;
      try {
        dev = statSync(dir).dev;
      } catch {
        continue;
      }
      if (!pseudoByDevice.has(dev)) pseudoByDevice.set(dev, pseudoFileSystem(dir));
      const fs = pseudoByDevice.get(dev);
      if (fs) {
        onSkippedFolder?.(dir, `on the ${fs} pseudo file system: not entered`);
        continue;
      }
    }
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subdirs: string[] = [];
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) subdirs.push(p);
      else if (!withStat) yield { path: p, size: 0, mtimeMs: 0 };
      else {
        const f = scanEntry(p, e);
        if (f) yield f;
      }
    }
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]);
  }
}

import { readFileHeader, type ReadResult } from './file-header';

export { readFileHeader, type ReadResult };

const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));

/** Prepared statements for one database, built once per job. */
function statements(db: Database) {
  return {
    upsertFolder: db.prepare(
      `INSERT INTO folders (path, added_at) VALUES (?, ?) ON CONFLICT(path) DO UPDATE SET path = excluded.path RETURNING id`,
    ),
    folderDone: db.prepare(`UPDATE folders SET last_indexed_at = ? WHERE id = ?`),
    fileByPath: db.prepare(`SELECT id, size, mtime_ms FROM files WHERE path = ?`),
    markSeen: db.prepare(`UPDATE files SET seen_run = ? WHERE id = ?`),
    unseenUnder: db.prepare(`SELECT id FROM files WHERE (path = ? OR path LIKE ? ESCAPE '\\') AND seen_run != ?`),
    insertFile: db.prepare(
      `INSERT INTO files (path, folder_ref, size, mtime_ms, status, instance_ref, warnings) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    ),
    updateFile: db.prepare(`UPDATE files SET size = ?, mtime_ms = ?, status = ?, instance_ref = ?, warnings = ? WHERE id = ?`),
    deleteFile: db.prepare(`DELETE FROM files WHERE id = ?`),
    fileById: db.prepare(`SELECT id, status, instance_ref FROM files WHERE id = ?`),
    insertSkipped: db.prepare(`INSERT OR REPLACE INTO skipped (file_ref, reason) VALUES (?, ?)`),
    deleteSkipped: db.prepare(`DELETE FROM skipped WHERE file_ref = ?`),
    upsertPatient: db.prepare(
      `INSERT INTO patients (patient_key, patient_id, sex, birth_date, ethnic_group, uid_derived) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(patient_key) DO UPDATE SET
         sex = CASE WHEN excluded.sex != '' THEN excluded.sex ELSE sex END,
         birth_date = CASE WHEN excluded.birth_date != '' THEN excluded.birth_date ELSE birth_date END,
         ethnic_group = CASE WHEN excluded.ethnic_group != '' THEN excluded.ethnic_group ELSE ethnic_group END
       RETURNING id`,
    ),
    upsertStudy: db.prepare(
      `INSERT INTO studies (study_uid, patient_ref, study_date, study_time, study_id, description, patient_age, uid_derived)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(study_uid) DO UPDATE SET patient_ref = excluded.patient_ref,
         patient_age = CASE WHEN excluded.patient_age != '' THEN excluded.patient_age ELSE patient_age END
       RETURNING id`,
    ),
    upsertSeries: db.prepare(
      `INSERT INTO series (series_uid, study_ref, modality, series_number, description, body_part, manufacturer, model,
         contrast_agent, kernel, series_date, frame_of_reference_uid, uid_derived, geometry_dirty)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
       ON CONFLICT(series_uid) DO UPDATE SET geometry_dirty = 1, study_ref = excluded.study_ref,
         contrast_agent = CASE WHEN excluded.contrast_agent != '' THEN excluded.contrast_agent ELSE contrast_agent END
       RETURNING id`,
    ),
    insertIdentifier: db.prepare(`INSERT OR IGNORE INTO phi_identifiers (series_ref, kind, value) VALUES (?, ?, ?)`),
    instanceBySop: db.prepare(`SELECT id, file_ref, series_ref FROM instances WHERE sop_uid = ?`),
    insertInstance: db.prepare(
      `INSERT INTO instances (sop_uid, series_ref, file_ref, sop_class_uid, instance_number, rows, columns, pixel_spacing,
         slice_thickness, image_position, image_orientation, frame_positions, slice_location, gantry_tilt, rescale_slope,
         rescale_intercept, rescale_type, bits_allocated, bits_stored, high_bit, pixel_representation, photometric,
         samples_per_pixel, transfer_syntax, number_of_frames, pixel_padding_value, pixel_padding_range_limit,
         window_center, window_width, has_pixel_data, image_type, acquisition_time, uid_derived, identifiers_indexed)
       VALUES (@sop_uid, @series_ref, @file_ref, @sop_class_uid, @instance_number, @rows, @columns, @pixel_spacing,
         @slice_thickness, @image_position, @image_orientation, @frame_positions, @slice_location, @gantry_tilt, @rescale_slope,
         @rescale_intercept, @rescale_type, @bits_allocated, @bits_stored, @high_bit, @pixel_representation, @photometric,
         @samples_per_pixel, @transfer_syntax, @number_of_frames, @pixel_padding_value, @pixel_padding_range_limit,
         @window_center, @window_width, @has_pixel_data, @image_type, @acquisition_time, @uid_derived, @identifiers_indexed)
       RETURNING id`,
    ),
    deleteInstance: db.prepare(`DELETE FROM instances WHERE id = ?`),
    setInstanceFile: db.prepare(`UPDATE instances SET file_ref = ? WHERE id = ?`),
    markSeriesDirty: db.prepare(`UPDATE series SET geometry_dirty = 1 WHERE id = ?`),
    duplicateOf: db.prepare(`SELECT id FROM files WHERE instance_ref = ? AND status = 'duplicate' AND id != ? ORDER BY id LIMIT 1`),
    promote: db.prepare(`UPDATE files SET status = 'indexed' WHERE id = ?`),
    seriesOfInstance: db.prepare(`SELECT series_ref FROM instances WHERE id = ?`),
  };
}

type Stmts = ReturnType<typeof statements>;

/**
 * Detaches a file from what it contributed: if it was the primary file of an instance, a duplicate
 * file takes over, or the instance goes.
 */
function detachFile(s: Stmts, fileId: number): void {
  const f = s.fileById.get(fileId) as { id: number; status: string; instance_ref: number | null } | undefined;
  if (!f) return;
  s.deleteSkipped.run(fileId);
  if (f.status === 'indexed' && f.instance_ref !== null) {
    const inst = s.seriesOfInstance.get(f.instance_ref) as { series_ref: number } | undefined;
    const dup = s.duplicateOf.get(f.instance_ref, fileId) as { id: number } | undefined;
    if (dup) {
      s.setInstanceFile.run(dup.id, f.instance_ref);
      s.promote.run(dup.id);
    } else {
      s.deleteInstance.run(f.instance_ref);
    }
    if (inst) s.markSeriesDirty.run(inst.series_ref);
  }
}

function cleanupOrphans(db: Database): void {
  db.exec(`
    DELETE FROM series WHERE id NOT IN (SELECT DISTINCT series_ref FROM instances);
    DELETE FROM studies WHERE id NOT IN (SELECT DISTINCT study_ref FROM series);
    DELETE FROM patients WHERE id NOT IN (SELECT DISTINCT patient_ref FROM studies);
  `);
}

function totals(db: Database) {
  const one = (sql: string) => (db.prepare(sql).pluck().get() as number) ?? 0;
  return {
    instances: one('SELECT COUNT(*) FROM instances'),
    series: one('SELECT COUNT(*) FROM series'),
    studies: one('SELECT COUNT(*) FROM studies'),
    patients: one('SELECT COUNT(*) FROM patients'),
    duplicates: one(`SELECT COUNT(*) FROM files WHERE status = 'duplicate'`),
  };
}

function likePrefix(folder: string): string {
  const base = folder.endsWith(sep) ? folder : folder + sep;
  return base.replace(/[\\%_]/g, (c) => '\\' + c) + '%';
}

/** Lists skipped files under the given folders, with reasons. */
export function skippedUnder(db: Database, folders: string[], limit = 100000): SkippedFile[] {
  const out: SkippedFile[] = [];
  const q = db.prepare(
    `SELECT f.path AS path, s.reason AS reason FROM skipped s JOIN files f ON f.id = s.file_ref
     WHERE f.path LIKE ? ESCAPE '\\' ORDER BY f.path LIMIT ?`,
  );
  for (const folder of folders) out.push(...(q.all(likePrefix(folder), limit) as SkippedFile[]));
  return out;
}

export async function indexFolders(db: Database, folderArgs: string[], opts: IndexOptions = {}): Promise<IndexSummary> {
  const started = Date.now();
  const jobId = opts.jobId ?? randomUUID();
  const folders = checkFolders(folderArgs);
  const batchSize = opts.batchSize ?? 500;
  const headChunk = opts.headChunk ?? 64 * 1024;
  const interval = opts.progressInterval ?? 250;
  const s = statements(db);
  const warnings: string[] = [];
  const warn = (w: string) => {
    if (warnings.length < MAX_LISTED_WARNINGS) warnings.push(w);
  };

  let phase: IndexProgress['phase'] = 'scanning';
  let filesFound = 0;
  let filesDone = 0;
  let skippedCount = 0;
  let parsed = 0;
  let removed = 0;
  let parseStart = Date.now();
  let lastEmit = 0;
  const emit = (force = false, extra: Partial<IndexProgress> = {}) => {
    const now = Date.now();
    if (!force && now - lastEmit < interval) return;
    lastEmit = now;
    const secs = (now - parseStart) / 1000;
    const rate = phase === 'parsing' && secs > 0 ? filesDone / secs : 0;
    const left = filesFound - filesDone;
    opts.onProgress?.({
      jobId,
      phase,
      folders,
      filesFound,
      filesDone,
      filesPerSecond: Math.round(rate * 10) / 10,
      etaSeconds: phase === 'parsing' && rate > 0 ? Math.round(left / rate) : null,
      skipped: skippedCount,
      ...extra,
    });
  };
  const aborted = () => opts.signal?.aborted === true;
  const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

  // 1. Count the files (names only, no stat), for the progress bar and ETA.
  const now = new Date().toISOString();
  const folderIds = new Map<string, number>();
  for (const f of folders) folderIds.set(f, (s.upsertFolder.get(f, now) as { id: number }).id);
  // A folder inside another folder of this job is covered by the outer one.
  const roots = folders.filter((f) => !folders.some((o) => o !== f && f.startsWith(o + sep)));
  for (const f of roots) {
    for (const _ of walk(f, opts.signal, false)) {
      filesFound++;
      if ((filesFound & 4095) === 0) {
        emit();
        await yieldToLoop();
      }
    }
  }

  // 2. Stream the files again: unchanged ones are only marked as seen by this run; new and
  //    changed ones are parsed. Memory stays flat in the number of files.
  phase = 'parsing';
  parseStart = Date.now();
  const runId = Date.now();
  const buf = new Uint8Array(headChunk);
  const derivedFolders = new Map<string, number>();
  const seriesSeen = new Map<string, number>();
  // Patient identifiers for the export check: one row per distinct value per series, written
  // once per job (this job's rows are remembered, the table's primary key ignores older ones).
  const identifiersSeen = new Map<number, Set<string>>();
  const recordIdentifiers = (seriesRef: number, ids: InstanceHeader['identifiers']) => {
    let seen = identifiersSeen.get(seriesRef);
    if (!seen) identifiersSeen.set(seriesRef, (seen = new Set()));
    for (const { kind, value } of ids) {
      const key = `${kind}\u0000${value}`;
      if (seen.has(key)) continue;
      seen.add(key);
      s.insertIdentifier.run(seriesRef, kind, value);
    }
  };
  const applyOne = (file: ScannedFile, folderId: number, read: Map<string, ReadResult>) => {
    const prev = s.fileByPath.get(file.path) as KnownFile | undefined;
    if (prev && prev.size === file.size && prev.mtime_ms === file.mtimeMs) {
      s.markSeen.run(runId, prev.id);
      return;
    }
    const res = file.skip !== undefined ? { skip: file.skip } : (read.get(file.path) ?? readFileHeader(file.path, file.size, headChunk, buf));
    parsed++;
    let fileId: number;
    if (prev) {
      detachFile(s, prev.id);
      fileId = prev.id;
    } else {
      fileId = (s.insertFile.get(file.path, folderId, file.size, file.mtimeMs, 'skipped', null, null) as { id: number }).id;
    }
    s.markSeen.run(runId, fileId);
    if ('skip' in res) {
      s.updateFile.run(file.size, file.mtimeMs, 'skipped', null, null, fileId);
      s.insertSkipped.run(fileId, res.skip);
      skippedCount++;
      return;
    }
    const h = res.header;
    const dir = dirname(file.path);
    const id = resolveIdentity(h, dir);
    if (id.derived.length > 0) derivedFolders.set(dir, (derivedFolders.get(dir) ?? 0) + 1);
    // Patient, study and series rows are written once per series per job (the first file of a
    // series brings them up to date; its other files only add instances).
    let seriesRef = seriesSeen.get(id.seriesUid);
    if (seriesRef === undefined) {
      const patientRef = (
        s.upsertPatient.get(id.patientKey, id.patientId, h.patientSex, h.patientBirthDate, h.ethnicGroup, id.derived.includes('patient') ? 1 : 0) as {
          id: number;
        }
      ).id;
      const studyRef = (
        s.upsertStudy.get(id.studyUid, patientRef, h.studyDate, h.studyTime, h.studyId, h.studyDescription, h.patientAge, id.derived.includes('study') ? 1 : 0) as {
          id: number;
        }
      ).id;
      seriesRef = (
        s.upsertSeries.get(
          id.seriesUid,
          studyRef,
          h.modality,
          h.seriesNumber === null ? null : Math.round(h.seriesNumber),
          h.seriesDescription,
          h.bodyPart,
          h.manufacturer,
          h.model,
          h.contrastAgent,
          h.kernel,
          h.seriesDate || h.studyDate,
          h.frameOfReferenceUid,
          id.derived.includes('series') ? 1 : 0,
        ) as { id: number }
      ).id;
      seriesSeen.set(id.seriesUid, seriesRef);
    }
    // Duplicates too: a copy of an instance may carry other identifiers, and may become its file.
    if (h.identifiers) recordIdentifiers(seriesRef, h.identifiers);
    const existing = s.instanceBySop.get(id.sopUid) as { id: number; file_ref: number | null; series_ref: number } | undefined;
    const fileWarnings = h.warnings.length ? JSON.stringify(h.warnings) : null;
    if (existing && existing.file_ref !== null && existing.file_ref !== fileId) {
      s.updateFile.run(file.size, file.mtimeMs, 'duplicate', existing.id, fileWarnings, fileId);
      return;
    }
    if (existing) s.deleteInstance.run(existing.id);
    const instanceId = (
      s.insertInstance.get({
        sop_uid: id.sopUid,
        series_ref: seriesRef,
        file_ref: fileId,
        sop_class_uid: h.sopClassUid,
        instance_number: h.instanceNumber === null ? null : Math.round(h.instanceNumber),
        rows: h.rows,
        columns: h.columns,
        pixel_spacing: json(h.pixelSpacing),
        slice_thickness: h.sliceThickness,
        image_position: json(h.imagePosition),
        image_orientation: json(h.imageOrientation),
        frame_positions: json(h.framePositions),
        slice_location: h.sliceLocation,
        gantry_tilt: h.gantryTilt,
        rescale_slope: h.rescaleSlope,
        rescale_intercept: h.rescaleIntercept,
        rescale_type: h.rescaleType,
        bits_allocated: h.bitsAllocated,
        bits_stored: h.bitsStored,
        high_bit: h.highBit,
        pixel_representation: h.pixelRepresentation,
        photometric: h.photometric,
        samples_per_pixel: h.samplesPerPixel,
        transfer_syntax: h.transferSyntaxUid,
        number_of_frames: h.numberOfFrames,
        pixel_padding_value: h.pixelPaddingValue,
        pixel_padding_range_limit: h.pixelPaddingRangeLimit,
        window_center: h.windowCenter,
        window_width: h.windowWidth,
        has_pixel_data: isImage(h) ? 1 : 0,
        image_type: h.imageType,
        acquisition_time: h.acquisitionTime,
        uid_derived: id.derived.includes('instance') ? 1 : 0,
        identifiers_indexed: h.identifiers ? 1 : 0,
      }) as { id: number }
    ).id;
    s.updateFile.run(file.size, file.mtimeMs, 'indexed', instanceId, fileWarnings, fileId);
  };

  const applyBatch = db.transaction((batch: { file: ScannedFile; folderId: number }[], read: Map<string, ReadResult>) => {
    for (const { file, folderId } of batch) {
      try {
        applyOne(file, folderId, read);
      } catch (err) {
        // A database constraint or an unexpected header shape: record, never lose the batch.
        const row = s.fileByPath.get(file.path) as KnownFile | undefined;
        const fid = row?.id ?? (s.insertFile.get(file.path, folderId, file.size, file.mtimeMs, 'skipped', null, null) as { id: number }).id;
        s.updateFile.run(file.size, file.mtimeMs, 'skipped', null, null, fid);
        s.insertSkipped.run(fid, `could not index: ${(err as Error).message}`);
        s.markSeen.run(runId, fid);
        skippedCount++;
      }
    }
  });

  // Headers of new and changed files are read ahead (in a worker thread when there is a second
  // core) while the previous batch is written: reading and writing overlap.
  const reader = await headerReader(
    opts.workers ?? (cpus().length >= 2 ? 1 : 0),
    headChunk,
    warn,
    opts.signal,
    opts.readerStallMs ?? 60_000,
    opts.workerEntry ?? siblingModule(import.meta.url, 'index-worker'),
  );
  const prepare = (items: { file: ScannedFile; folderId: number }[]) => {
    const need = items
      .map((x) => x.file)
      .filter((f) => {
        if (f.skip !== undefined) return false; // decided from stat data: never opened
        const prev = s.fileByPath.get(f.path) as KnownFile | undefined;
        return !(prev && prev.size === f.size && prev.mtime_ms === f.mtimeMs);
      });
    return { items, read: reader.read(need) };
  };
  let inflight: ReturnType<typeof prepare> | null = null;
  const apply = async (p: ReturnType<typeof prepare>) => {
    const read = await p.read;
    if (aborted()) return; // cancelled while reading: the batch is left for the next run
    applyBatch(p.items, read);
    filesDone += p.items.length;
    if (filesDone > filesFound) filesFound = filesDone; // files added since the count
    emit();
    await yieldToLoop();
  };
  let cancelled = false;
  let batch: { file: ScannedFile; folderId: number }[] = [];
  const flush = async () => {
    const next = prepare(batch);
    batch = [];
    if (inflight) await apply(inflight);
    inflight = next;
  };
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
    if (inflight) await apply(inflight);
  } finally {
    await reader.close();
  }
  if (aborted()) cancelled = true;

  // 3. Drop files that are gone (only after a complete walk: a cancelled one saw too little).
  if (!cancelled) {
    const gone: number[] = [];
    for (const f of roots) gone.push(...(s.unseenUnder.pluck().all(f, likePrefix(f), runId) as number[]));
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
  } else {
    db.transaction(() => cleanupOrphans(db))();
  }

  // 5. Series geometry for what changed.
  if (!cancelled) {
    phase = 'geometry';
    emit(true);
    updateDirtyGeometry(db);
  }

  for (const [dir, n] of derivedFolders) {
    warn(`${n} file(s) in ${dir} have empty UIDs or PatientID: indexed under stable derived identities`);
  }
  const summary: IndexSummary = {
    files: filesFound,
    ...totals(db),
    skipped: skippedUnder(db, folders),
    parsed,
    removed,
    warnings,
    cancelled,
    seconds: Math.round((Date.now() - started) / 10) / 100,
  };
  phase = cancelled ? 'cancelled' : 'done';
  emit(true, { summary });
  return summary;
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
