/**
 * What kind of file a path is, decided from stat data before anything is opened: the indexer
 * reads regular files only. Named pipes (opening one blocks), sockets, devices (opening one can
 * have side effects), files over 2 GiB, and the pseudo files of /proc, /sys and /dev (and of
 * file systems like them: their sizes and contents are not files on disk) are skipped with a
 * reason and never opened.
 */
import { type Dirent, type Stats, statfsSync } from 'node:fs';
import { sep } from 'node:path';

/** Files larger than this are skipped unread: the pixel pipeline reads a file into one buffer. */
export const MAX_FILE_BYTES = 2 * 1024 ** 3;

/** Folders whose files are pseudo files on Linux and macOS. */
const PSEUDO_ROOTS = process.platform === 'win32' ? [] : ['/proc', '/sys', '/dev'];

/** Linux statfs f_type magic numbers of pseudo file systems (linux/magic.h). */
const PSEUDO_FS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0x62656570, 'configfs'],
  [0xde5e81e4, 'efivarfs'],
  [0x65735543, 'fusectl'],
  [0x42494e4d, 'binfmt_misc'],
  [0xf97cff8c, 'selinuxfs'],
  [0x19800202, 'mqueue'],
  [0x6e736673, 'nsfs'],
]);

/** The pseudo root a real path lies under (/proc, /sys, /dev), if any. */
export function pseudoRoot(realPath: string): string | null {
  for (const r of PSEUDO_ROOTS) if (realPath === r || realPath.startsWith(r + sep)) return r;
  return null;
}

/** The name of the pseudo file system a path lies on (Linux statfs), or null. Never throws. */
export function pseudoFileSystem(path: string): string | null {
  if (process.platform !== 'linux' || typeof statfsSync !== 'function') return null;
  try {
    const type = Number(statfsSync(path).type) >>> 0;
    return PSEUDO_FS.get(type) ?? null;
  } catch {
    return null;
  }
}

/** Why a folder is not walked (a pseudo file system), or null. `realPath` must be resolved. */
export function pseudoFolderReason(realPath: string): string | null {
  const root = pseudoRoot(realPath);
  if (root) return `under ${root}: its entries are pseudo files of the system, not files on disk`;
  const fs = pseudoFileSystem(realPath);
  if (fs) return `on the ${fs} pseudo file system: its entries are not files on disk`;
  return null;
}

/** Why a directory entry of a special type is skipped (from its Dirent, i.e. lstat), or null. */
export function specialEntryReason(e: Dirent | Stats): string | null {
  if (e.isFIFO()) return 'a named pipe (FIFO), not a file: never opened';
  if (e.isSocket()) return 'a socket, not a file: never opened';
  if (e.isCharacterDevice()) return 'a character device, not a file: never opened';
  if (e.isBlockDevice()) return 'a block device, not a file: never opened';
  return null;
}

/**
 * Why a file (stat data, symlinks followed) is not read, or null when it is a regular file that
 * may be read. Checked before opening, and again on the open descriptor.
 */
export function unreadableReason(st: Stats): string | null {
  const special = specialEntryReason(st);
  if (special) return special;
  if (st.isDirectory()) return 'a folder, not a file';
  if (!st.isFile()) return 'not a regular file: never opened';
  if (st.size === 0) return 'empty file';
  if (st.size > MAX_FILE_BYTES) return `larger than 2 GiB (${st.size} bytes): not read (no DICOM image this app reads is that large)`;
  return null;
}
