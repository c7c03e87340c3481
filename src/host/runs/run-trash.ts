/**
 * The trash of runs: deleting moves a run's folder to `<data>/trash/runs` (only folders the app
 * made inside its data folder move; others are only forgotten), restoring brings it back,
 * emptying deletes for good. Runs of an experiment follow their experiment's folder.
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type { Database } from '../../library/db/sqlite';
import { purgeFolder } from '../folder-trash';
import { isTraining } from './run-lock';
import { getRun, toRun, type RunDbRow, type RunRow } from './run-store';

/** `deleted_at` prefix of runs that went to the trash with their experiment's folder. */
const WITH_EXPERIMENT = 'experiment:';

/** SQL: runs whose folder is inside the folder given twice as (prefix, prefix). */
const UNDER = 'substr(dir, 1, length(?)) = ?';

/** Runs in the trash on their own (not with a deleted experiment), newest deletion first. */
export function listTrashedRuns(db: Database): RunRow[] {
  return (db.prepare(`SELECT * FROM runs WHERE deleted_at != '' AND deleted_at NOT LIKE '${WITH_EXPERIMENT}%' ORDER BY deleted_at DESC`).all() as RunDbRow[]).map(toRun);
}

/**
 * The runs of an experiment whose folder moved from `from` to `to` (trash or back): their folders
 * follow; to the trash they leave the run lists with the experiment, back they return to them.
 */
export function moveExperimentRuns(db: Database, from: string, to: string, toTrash: boolean): number {
  const prefix = resolve(from) + sep;
  const dest = resolve(to) + sep;
  const r = toTrash
    ? db
        .prepare(`UPDATE runs SET deleted_at = ?, original_dir = dir, dir = ? || substr(dir, ?) WHERE deleted_at = '' AND ${UNDER}`)
        .run(WITH_EXPERIMENT + new Date().toISOString(), dest, prefix.length + 1, prefix, prefix)
    : db
        .prepare(`UPDATE runs SET deleted_at = '', original_dir = '', dir = ? || substr(dir, ?) WHERE deleted_at LIKE '${WITH_EXPERIMENT}%' AND ${UNDER}`)
        .run(dest, prefix.length + 1, prefix, prefix);
  return r.changes;
}

/** Forgets the runs of an experiment folder in the trash (when the trash is emptied). */
export function forgetExperimentRuns(db: Database, trashedDir: string): number {
  const prefix = resolve(trashedDir) + sep;
  return db.prepare(`DELETE FROM runs WHERE deleted_at LIKE '${WITH_EXPERIMENT}%' AND ${UNDER}`).run(prefix, prefix).changes;
}

/**
 * Moves a run to the trash: its folder goes to `<dataRoot>/trash/runs` (nothing is deleted;
 * `restoreRun` undoes it) and it leaves the run lists. Only folders inside the app's data folder move (the
 * app made them); a run folder elsewhere (`--out` anywhere, which may hold other files) or on
 * another file system stays where it is, and emptying the trash never deletes it.
 * Refused while a trainer works in it.
 */
export function trashRun(db: Database, id: number, dataRoot: string): { run: RunRow; movedTo: string | null } {
  const run = getRun(db, id);
  if (!run || run.deletedAt) throw new Error(`no run with id ${id}`);
  if (isTraining(run.dir)) throw new Error(`run ${id} is training: stop it first`);
  // A grid's run belongs to its experiment (report, resume): not deleted on its own.
  const experiments = resolve(dataRoot, 'experiments') + sep;
  if (resolve(run.dir).startsWith(experiments)) throw new Error(`run ${id} is part of the experiment in ${run.dir.slice(experiments.length).split(sep)[0]}: its report and resume need it`);
  let target: string | null = null;
  if (resolve(run.dir).startsWith(resolve(dataRoot) + sep)) {
    const trashRoot = join(dataRoot, 'trash', 'runs');
    mkdirSync(trashRoot, { recursive: true });
    target = join(trashRoot, `${id}-${basename(run.dir)}`);
    for (let n = 2; existsSync(target); n++) target = join(trashRoot, `${id}-${basename(run.dir)}-${n}`);
    try {
      renameSync(run.dir, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'ENOENT') throw new Error(`could not move ${run.dir} to the trash: ${(err as Error).message}`);
      target = null;
    }
  }
  db.prepare("UPDATE runs SET deleted_at = ?, original_dir = dir, dir = ? WHERE id = ?").run(new Date().toISOString(), target ?? run.dir, id);
  return { run: getRun(db, id)!, movedTo: target };
}

/** Brings a run back from the trash to its folder. */
export function restoreRun(db: Database, id: number): RunRow {
  const r = db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunDbRow | undefined;
  if (!r || !r.deleted_at) throw new Error(`run ${id} is not in the trash`);
  if (r.deleted_at.startsWith(WITH_EXPERIMENT)) throw new Error(`run ${id} went to the trash with its experiment: restore the experiment`);
  const back = r.original_dir || r.dir;
  if (back !== r.dir) {
    if (existsSync(back)) throw new Error(`cannot restore run ${id}: ${back} exists again`);
    mkdirSync(dirname(back), { recursive: true });
    renameSync(r.dir, back);
  }
  db.prepare("UPDATE runs SET deleted_at = '', dir = ?, original_dir = '' WHERE id = ?").run(back, id);
  return getRun(db, id)!;
}

/**
 * Deletes runs in the trash for good (all of them, or the given ids, e.g. those a confirmation
 * showed): the folders the trash moved, records and curves. A run whose folder stayed where it was
 * (outside the data folder) is only forgotten; one that is training is skipped; a folder that
 * cannot be removed keeps its run in the trash and is reported.
 */
export function emptyTrash(db: Database, ids?: readonly number[]): { removed: number; failed: { id: number; error: string }[] } {
  const want = ids ? new Set(ids) : null;
  const rows = db.prepare(`SELECT * FROM runs WHERE deleted_at != '' AND deleted_at NOT LIKE '${WITH_EXPERIMENT}%'`).all() as RunDbRow[];
  let removed = 0;
  const failed: { id: number; error: string }[] = [];
  for (const r of rows) {
    if (want && !want.has(r.id)) continue;
    if (isTraining(r.dir)) {
      failed.push({ id: r.id, error: 'training' });
      continue;
    }
    try {
      // Moved by the trash (its folder is no longer where the run was made): delete that folder.
      if (r.original_dir && r.original_dir !== r.dir && existsSync(r.dir)) purgeFolder(r.dir);
      db.prepare('DELETE FROM runs WHERE id = ?').run(r.id);
      removed++;
    } catch (err) {
      failed.push({ id: r.id, error: (err as Error).message });
    }
  }
  return { removed, failed };
}
