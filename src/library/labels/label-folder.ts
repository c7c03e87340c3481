/**
 * Labels by the folder: every label file under a folder (recursively), each through the label
 * format registry (label-formats.ts) as a single file would be, with progress, cancel between
 * files, and a summary that says for every file what happened: imported (its format and headline),
 * skipped (not a label file, and why: a DICOM image, an XML of another kind, ...) or failed (the
 * import's error). One failed file does not stop the others.
 *
 * Bounded walk whatever the folder: only regular files are opened (links to files are followed,
 * links to folders are not, so a loop cannot trap it), at most `maxFiles` files and `maxDepth`
 * levels, and each file's kind is told from its first KiB before anything else is read. Files are
 * imported in a stable order (path order) with attribute CSVs and SEGs after the rest, so that a
 * re-run gives the same sources in the same order.
 */
import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Database } from '../db/sqlite';
import type { LabelFolderImport, LabelKind } from '../../shared/results';
import { checkLabelSize, describeLabelReport, importLabelFile, labelFormat, sniffLabelKind } from './label-formats';
import { readHead } from './label-files';

export interface LabelFolderOptions {
  onProgress?: (p: { done: number; total: number; file: string }) => void;
  /** Checked between files: the file being imported finishes (its import is one transaction), the rest are not started. */
  signal?: AbortSignal;
  maxFiles?: number;
  maxDepth?: number;
}

export const MAX_FOLDER_FILES = 200_000;
const MAX_DEPTH = 32;
/** Names never looked into: version control, OS metadata. */
const SKIP_DIRS = new Set(['.git', '.svn', '.hg', '__MACOSX', 'node_modules']);

/** Regular files under `folder` (sorted), and what was left out of the walk. */
export function labelFolderFiles(folder: string, o: { maxFiles?: number; maxDepth?: number } = {}): { files: string[]; skipped: { file: string; reason: string }[]; truncated: boolean } {
  const root = resolve(folder);
  let st;
  try {
    st = statSync(root);
  } catch {
    throw new Error(`label folder not found: ${root}`);
  }
  if (!st.isDirectory()) throw new Error(`${root}: not a folder`);
  const maxFiles = o.maxFiles ?? MAX_FOLDER_FILES;
  const maxDepth = o.maxDepth ?? MAX_DEPTH;
  const files: string[] = [];
  const skipped: { file: string; reason: string }[] = [];
  let truncated = false;
  const walk = (dir: string, depth: number) => {
    if (truncated) return;
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      skipped.push({ file: dir, reason: `folder not readable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      return;
    }
    for (const name of names) {
      const p = join(dir, name);
      let l;
      try {
        l = lstatSync(p);
      } catch {
        continue;
      }
      if (l.isDirectory()) {
        if (SKIP_DIRS.has(name)) continue;
        if (depth >= maxDepth) skipped.push({ file: p, reason: `deeper than ${maxDepth} folders: not looked into` });
        else walk(p, depth + 1);
        continue;
      }
      let s = l;
      if (l.isSymbolicLink()) {
        try {
          s = statSync(p);
        } catch {
          skipped.push({ file: p, reason: 'a link whose target is missing' });
          continue;
        }
        if (s.isDirectory()) {
          skipped.push({ file: p, reason: 'a link to a folder: not followed' });
          continue;
        }
        try {
          realpathSync(p);
        } catch {
          skipped.push({ file: p, reason: 'a link that cannot be resolved' });
          continue;
        }
      }
      if (!s.isFile()) {
        skipped.push({ file: p, reason: 'not a regular file (FIFO, socket or device): not opened' });
        continue;
      }
      if (name.startsWith('._') || name === '.DS_Store' || name === 'Thumbs.db') continue;
      if (files.length >= maxFiles) {
        truncated = true;
        return;
      }
      files.push(p);
    }
  };
  walk(root, 0);
  return { files, skipped, truncated };
}

/** Kinds imported last: patient attributes and SEGs do not depend on the others, but keep a stable order. */
const LATE: readonly string[] = ['attributes-csv', 'dicom-seg'];

/** Imports every label file under `folder`; the summary names every file that was not imported, and why. */
export async function importLabelFolder(db: Database, folder: string, o: LabelFolderOptions = {}): Promise<LabelFolderImport> {
  const t0 = Date.now();
  const root = resolve(folder);
  const walk = labelFolderFiles(root, o);
  const rel = (p: string) => relative(root, p) || p;
  const skipped: LabelFolderImport['skipped'] = walk.skipped.map((s) => ({ file: rel(s.file), reason: s.reason }));
  const failed: LabelFolderImport['failed'] = [];
  const imported: LabelFolderImport['imported'] = [];
  const total = walk.files.length;
  const warnings: string[] = [];
  if (walk.truncated) warnings.push(`more than ${o.maxFiles ?? MAX_FOLDER_FILES} files: the rest were not looked at`);
  // Tell each file's kind from its first KiB (cheap); keep the label files.
  const todo: { file: string; kind: LabelKind }[] = [];
  let done = 0;
  let sniffed = 0;
  let cancelled = false;
  for (const file of walk.files) {
    if (o.signal?.aborted) {
      cancelled = true;
      break;
    }
    try {
      const { head, size } = readHead(file);
      const kind = sniffLabelKind(head, rel(file));
      checkLabelSize(kind, size, rel(file));
      todo.push({ file, kind });
    } catch (err) {
      skipped.push({ file: rel(file), reason: reasonOf(err, rel(file)) });
      done++;
    }
    if (++sniffed % 200 === 0) {
      o.onProgress?.({ done, total, file: rel(file) });
      await new Promise((r) => setImmediate(r));
    }
  }
  todo.sort((a, b) => Number(LATE.includes(a.kind)) - Number(LATE.includes(b.kind)) || LATE.indexOf(a.kind) - LATE.indexOf(b.kind));
  for (const { file, kind } of todo) {
    if (cancelled || o.signal?.aborted) {
      cancelled = true;
      break;
    }
    o.onProgress?.({ done, total, file: rel(file) });
    try {
      const report = await importLabelFile(db, file);
      const view = describeLabelReport(report);
      imported.push({ file: rel(file), kind, format: labelFormat(kind).title, sourceId: report.sourceId, headline: view.headline, incomplete: view.incomplete, warnings: report.warnings.length });
    } catch (err) {
      failed.push({ file: rel(file), kind, error: reasonOf(err, rel(file), file) });
    }
    done++;
  }
  o.onProgress?.({ done, total, file: '' });
  const byKind: Record<string, number> = {};
  for (const i of imported) byKind[i.kind] = (byKind[i.kind] ?? 0) + 1;
  return {
    folder: root,
    files: total,
    imported,
    skipped,
    failed,
    byKind,
    notStarted: cancelled ? total - done : 0,
    cancelled,
    warnings,
    seconds: (Date.now() - t0) / 1000,
  };
}

/** An error's message without the file's absolute path repeated (the summary lists files relative to the folder). */
function reasonOf(err: unknown, relName: string, abs?: string): string {
  let m = err instanceof Error ? err.message : String(err);
  if (abs) m = m.split(abs).join(relName);
  return m.startsWith(`${relName}: `) ? m.slice(relName.length + 2) : m;
}
