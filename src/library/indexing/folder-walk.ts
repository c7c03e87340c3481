/**
 * Walking the folders to index: every non-folder entry in a stable order (names sorted, depth
 * first), with its size and mtime or the reason it is skipped unread, decided from the entry
 * type and stat data alone (see file-kind.ts). Real subfolders only, never pseudo file systems.
 */
import { lstatSync, readdirSync, realpathSync, statSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { pseudoFileSystem, pseudoRoot, specialEntryReason, unreadableReason } from './file-kind';

/** A non-folder entry of a walked folder. */
export interface ScannedFile {
  path: string;
  size: number;
  mtimeMs: number;
  /** Decided from stat data alone: the file is recorded as skipped with this reason, never opened. */
  skip?: string;
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
export function* walk(root: string, signal: AbortSignal | undefined, withStat: boolean, onSkippedFolder?: (dir: string, why: string) => void): Generator<ScannedFile> {
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
