/**
 * Paths the user chose, as the services accept them: the one policy for both doors (Electron IPC,
 * the `ctssl serve` WebSocket bridge), applied by the service handlers before any file is read.
 *
 * - The renderer names data by ids. Three channels take a path: `library.addFolder` (a folder picked
 *   in the native dialog or typed in the add-folder field), `labels.import` and `packages.import`.
 * - Electron: a file path is accepted only when this window's native dialog returned it or the user
 *   dropped the file on this window (the preload resolves the dropped File and reports the path to
 *   main on its own channel): a `PathGrants` set per window. A typed folder to add is an explicit
 *   act of the user and is accepted without a grant.
 * - Server mode: no dialogs and no local files in the browser. Folders and label files are typed as
 *   paths on the server (where the data of a headless GPU box lives); files on the browser's machine
 *   are sent as bytes (`labels.importBytes`) or uploaded over HTTP (packages: src/server).
 * - Every path, in both doors: absolute (relative paths would resolve against a working folder the
 *   user cannot see), no NUL, existing, of the right kind (a directory to add; a regular file with
 *   the channel's extension and under its size cap to import), and not on a pseudo file system
 *   (/proc, /sys, /dev and their kin) nor a FIFO, socket or device. Symlinks are followed and the
 *   target is what is checked.
 *
 * Refusals are `invalid-argument` errors that name the channel and the argument.
 */
import { realpathSync, statSync, statfsSync, type Stats } from 'node:fs';
import { extname, isAbsolute, resolve, sep } from 'node:path';
import { ApiError } from '../shared/envelope';
import { labelExtensions, labelFormats } from '../library/labels/label-formats';

export interface PathRule {
  /** The argument in words, as messages name it ('folder', 'label file', 'package'). */
  what: string;
  type: 'folder' | 'file';
  /** Files: accepted extensions, lower case with the dot ('' = no extension). */
  extensions?: readonly string[];
  /** Files: the largest size accepted. */
  maxBytes?: number;
}

const GiB = 2 ** 30;

export const MAX_PACKAGE_BYTES = 2 * GiB;

export const FOLDER: PathRule = { what: 'folder', type: 'folder' };
/** A label file: the extensions of the registered label formats (.xml, .csv, .dcm, .dicom, .seg, none), the largest of their caps. */
export function labelFileRule(): PathRule {
  return { what: 'label file', type: 'file', extensions: labelExtensions(), maxBytes: Math.max(...labelFormats().map((f) => f.maxBytes)) };
}
/** A weights package (.ctssl.zip) or the authors' PyTorch checkpoint (.pth.tar, .pth, .pt), told apart by their bytes. */
export const PACKAGE_FILE: PathRule = { what: 'package', type: 'file', extensions: ['.zip', '.ctssl', '.tar', '.pth', '.pt'], maxBytes: MAX_PACKAGE_BYTES };
/** A file dropped on a window: its channel (labels or a package) checks it again with its own rule. */
export const DROPPED_FILE: PathRule = { what: 'dropped file', type: 'file', maxBytes: MAX_PACKAGE_BYTES };

/** Folders of pseudo file systems: kernel and device files, never studies or labels. */
const PSEUDO_ROOTS = ['/proc', '/sys', '/dev'];
/**
 * Linux statfs magic numbers of pseudo file systems (proc, sysfs, devpts, debugfs, tracefs,
 * securityfs, cgroup, cgroup2, configfs, bpf, pstore, efivarfs, fusectl, mqueue, binfmt_misc, nsfs,
 * selinuxfs), for ones mounted elsewhere.
 */
const PSEUDO_FS = new Set([
  0x9fa0, 0x62656572, 0x1cd1, 0x64626720, 0x74726163, 0x73636673, 0x27e0eb, 0x63677270, 0x62656570, 0xcafe4a11, 0x6165676c, 0xde5e81e4, 0x65735543,
  0x19800202, 0x42494e4d, 0x6e736673, 0xf97cff8c,
]);

const fail = (channel: string, message: string): never => {
  throw new ApiError('invalid-argument', `${channel}: ${message}`);
};

const under = (p: string, root: string) => p === root || p.startsWith(root + '/');

function onPseudoFs(real: string): string | null {
  if (process.platform !== 'win32') {
    const root = PSEUDO_ROOTS.find((r) => under(real, r));
    if (root) return root;
  }
  if (process.platform === 'linux') {
    try {
      if (PSEUDO_FS.has(Number(statfsSync(real).type))) return 'a pseudo file system';
    } catch {
      // statfs unsupported: the prefix check stands
    }
  }
  return null;
}

function fileType(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isFile()) return 'a regular file';
  return 'a special file';
}

const size = (n: number) => (n >= GiB ? `${(n / GiB).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);

/**
 * Checks a path the user chose against a rule; resolves to its real path (symlinks followed), or
 * throws `invalid-argument` naming the channel and the argument.
 */
export function checkUserPath(channel: string, rule: PathRule, raw: string): string {
  const what = rule.what;
  if (typeof raw !== 'string' || raw.length === 0) fail(channel, `${what}: no path given`);
  if (raw.includes('\0')) fail(channel, `${what} path contains NUL`);
  if (raw.length > 4096) fail(channel, `${what} path is longer than 4096 characters`);
  if (/^[\\/]{2}[.?][\\/]/.test(raw)) fail(channel, `${what} ${JSON.stringify(raw)} is a device path`);
  if (!isAbsolute(raw)) fail(channel, `${what} ${JSON.stringify(raw)} is not an absolute path: give the full path (e.g. ${sep === '/' ? '/data/ct' : 'D:\\data\\ct'})`);
  const abs = resolve(raw);
  let real = '';
  let st: Stats | undefined;
  try {
    real = realpathSync(abs);
    st = statSync(real);
  } catch {
    fail(channel, `${what} not found: ${abs}`);
  }
  const pseudo = onPseudoFs(real);
  if (pseudo) fail(channel, `${what} ${abs} is on ${pseudo.startsWith('/') ? `a pseudo file system (${pseudo})` : pseudo}: kernel and device files are never read`);
  const type = fileType(st!);
  if (rule.type === 'folder') {
    if (!st!.isDirectory()) fail(channel, `${what} ${abs} is ${type}, not a folder`);
    return real;
  }
  if (!st!.isFile()) fail(channel, `${what} ${abs} is ${type}, not a regular file`);
  if (rule.extensions) {
    const ext = extname(real).toLowerCase();
    const named = extname(abs).toLowerCase();
    if (!rule.extensions.includes(ext) && !rule.extensions.includes(named))
      fail(channel, `${what} ${abs}: a ${named || 'file without extension'} is not a ${what} (${rule.extensions.map((e) => e || 'no extension').join(', ')})`);
  }
  if (rule.maxBytes !== undefined && st!.size > rule.maxBytes) fail(channel, `${what} ${abs} is ${st!.size} bytes (${size(st!.size)}): over the ${size(rule.maxBytes)} cap of a ${what}`);
  return real;
}

/**
 * Paths the user chose in one window this session (native dialog results, dropped files), by real
 * path. Bounded: the oldest grants go first past `limit`.
 */
export class PathGrants {
  private readonly paths = new Set<string>();
  constructor(private readonly limit = 10_000) {}

  /** Records a chosen path (its real path; one that no longer resolves is not recorded). */
  add(path: string): void {
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      return;
    }
    this.paths.delete(real);
    this.paths.add(real);
    while (this.paths.size > this.limit) this.paths.delete(this.paths.values().next().value!);
  }

  /** Whether a real path (as checkUserPath returns it) was chosen. */
  has(real: string): boolean {
    return this.paths.has(real);
  }
}
