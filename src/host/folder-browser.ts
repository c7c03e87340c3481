/**
 * The server's folders, listed for the folder picker of a browser on `ctssl serve` (no native
 * dialog there): the sub-folders of one folder, nothing else. Only token holders reach it (every
 * socket call is authenticated), and the server is the user's own machine, so it lists what is
 * there, as a file manager would, with these rules:
 *
 * - folders only (files are counted, never named); hidden folders flagged, not left out;
 * - a symbolic link to a folder is listed with where it leads (its real path), so following it
 *   is never a surprise; a dangling or looping link is listed as such and cannot be opened;
 * - a folder that cannot be read says why (permission denied, not found, not a folder) naming it;
 * - pseudo file systems (/proc, /sys, /dev) are listed where they are but refused when opened, as
 *   checkUserPath refuses to index them;
 * - at most MAX_ENTRIES entries (the rest counted), sorted by name.
 */
import { opendirSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, parse, resolve } from 'node:path';
import { ApiError } from '../shared/envelope';
import type { FolderListing } from '../shared/types';
import { checkUserPath, FOLDER } from './user-paths';

export const MAX_ENTRIES = 5000;
/** Directory entries read at most (a folder of millions of files is not walked to the end to count them). */
const MAX_READ = 200_000;

const why = (err: unknown): string => {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOENT') return 'not found';
  if (code === 'ENOTDIR') return 'not a folder';
  if (code === 'ELOOP') return 'a symbolic link loop';
  return (err as Error)?.message ?? String(err);
};

/** Lists the sub-folders of `path` (default: the user's home folder). */
export function listFolder(path?: string): FolderListing {
  const channel = 'files.listFolder';
  const asked = path === undefined || path === '' ? homedir() : path;
  if (!isAbsolute(asked)) throw new ApiError('invalid-argument', `${channel}: ${JSON.stringify(asked)} is not an absolute path`);
  // The same policy as a folder to add: exists, is a folder, not a pseudo file system.
  const real = checkUserPath(channel, FOLDER, asked);
  const shown = resolve(asked);
  let dir;
  try {
    dir = opendirSync(real);
  } catch (err) {
    throw new ApiError('invalid-argument', `${channel}: cannot open ${shown}: ${why(err)}`);
  }
  const entries: FolderListing['entries'] = [];
  let files = 0;
  let more = 0;
  try {
    let read = 0;
    for (let d = dir.readSync(); d !== null && read < MAX_READ; d = dir.readSync(), read++) {
      const full = join(shown, d.name);
      if (d.isDirectory()) {
        if (entries.length >= MAX_ENTRIES) more++;
        else entries.push({ name: d.name, path: full, link: null, hidden: d.name.startsWith('.'), problem: null });
      } else if (d.isSymbolicLink()) {
        let target: string;
        try {
          target = realpathSync(full);
        } catch (err) {
          if (entries.length >= MAX_ENTRIES) more++;
          else entries.push({ name: d.name, path: full, link: '?', hidden: d.name.startsWith('.'), problem: `broken link: ${why(err)}` });
          continue;
        }
        let isDir = false;
        try {
          isDir = statSync(target).isDirectory();
        } catch {
          // unreadable target: counted with the files
        }
        if (!isDir) files++;
        else if (entries.length >= MAX_ENTRIES) more++;
        else entries.push({ name: d.name, path: full, link: target, hidden: d.name.startsWith('.'), problem: null });
      } else files++;
    }
  } catch (err) {
    throw new ApiError('invalid-argument', `${channel}: cannot list ${shown}: ${why(err)}`);
  } finally {
    dir.closeSync();
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const root = parse(shown).root;
  return { path: shown, real, parent: shown === root ? null : dirname(shown), entries, files, more, home: homedir() };
}
