/**
 * Installing a weights package made by `export-package.ts` (ours or a stranger's) as a run that
 * can initialise fine-tuning. The package is hostile until verified.
 *
 * How (one function, `importPackage`, for `ctssl import` and `packages.import`
 * (a path, or the file a server upload wrote; the bytes of a file are accepted too):
 *  1. Read, without writing anything: the zip's central directory (parsed here, never trusting a
 *     library to pick file names), every entry name checked (relative, canonical, no `..`/`.`/empty
 *     segments, no drive letters, backslashes, colons, control characters; letters, digits and
 *     `._-` only), duplicates refused (also after case folding: macOS and Windows file systems
 *     fold case), symlinks and other special files refused, each entry's local header matched to
 *     the central directory, entries not overlapping, declared sizes within the caps below.
 *     `checksums.json` must list every other entry and only those; config.json, model-card.json,
 *     ledger.json and checksums.json are untrusted JSON checked by schemas; the safetensors header
 *     of the weights is checked against this app's model (shapes) before a byte is written.
 *  2. Write only into a fresh staging folder inside `into` (`.import-XXXXXX`): package files under
 *     `<staging>/package/<name>`, the weights only to `checkpoints/step-imported/weights.safetensors`,
 *     every path re-checked to stay inside the staging folder, files created exclusively (never
 *     through an existing file or link). Entries are inflated as a stream that stops as soon as
 *     an entry exceeds its declared size (declared sizes are never trusted alone), and every file
 *     is SHA-256 checked against checksums.json.
 *  3. Install by one rename of the staging folder to a new folder name. An existing folder is never
 *     written into: the same package imported again returns the existing run; a different one
 *     whose name collides gets a suffix. Any refusal removes the staging folder and throws a
 *     `PackageError` naming the entry and the reason.
 *
 * Caps (`IMPORT_LIMITS`), sized from the largest real package: the `paper` preset's VQ-VAE weights
 * are 405.5 MB and its TF.js encoder 206.9 MB (613 MB of weights; float weights barely compress,
 * so the file is about as large):
 *  - package file: 2 GiB; entries: 64 (a package has 11); central directory: 1 MiB;
 *  - per entry, inflated: 1 GiB for `weights/model.safetensors` and `tfjs/encoder/weights.bin`,
 *    4 MiB for JSON files, 16 MiB for any other file; all entries together: 2 GiB;
 *  - compression ratio: an entry over 1 MiB may not declare more than 100:1 (float weights
 *    compress about 1.1:1, JSON and Markdown under 20:1; a deflate bomb is about 1000:1);
 *  - entry names: 200 characters, 8 levels; safetensors header: 16 MiB;
 *  - free disk space: the inflated total plus 64 MiB must fit.
 * Peak memory while inflating is bounded by the slices fed to the inflater (sized from the ratio seen
 * so far for about 1 MiB of output each; at most 4 KiB, so 4 MiB out, before a ratio is known), not
 * by the package.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as fsc, existsSync, fstatSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { basename, join, resolve, sep } from 'node:path';
import { Inflate } from 'fflate';
import { z } from 'zod';
import { parsePretrainConfig, pretextTaskSchema, PRESETS, taskOptionSchema } from '../shared/run-config';
import { allTaskOptions, type TaskOptionValues } from '../shared/pretext-tasks';
import { classifierPreset, classifierSpecs } from '../core/ml/specs/classifier';
import { vqvaePreset, vqvaeSpecs, type VqvaePresetName } from '../core/ml/specs/vqvae';
import { isReconstructionTask, taskClasses } from '../shared/pretext-tasks';
import { writeJsonAtomic } from '../library/runs/checkpoint';
import { PACKAGE_FORMAT, PACKAGE_VERSION } from './export-package';
import { configHash } from '../library/runs/run-hash';
import { registerImportedRun, type RunRow } from './runs/run-store';
import type { Database } from '../library/db/sqlite';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** The caps of an import; see the module comment for why these values. */
export const IMPORT_LIMITS = {
  /** Size of the package file (compressed) read at all. */
  maxPackageBytes: 2 * GiB,
  maxEntries: 64,
  maxCentralDirectoryBytes: 1 * MiB,
  /** Inflated size of `weights/model.safetensors` and `tfjs/encoder/weights.bin`. */
  maxWeightsBytes: 1 * GiB,
  /** Inflated size of each `*.json` entry (these are parsed in memory). */
  maxJsonBytes: 4 * MiB,
  /** Inflated size of any other entry. */
  maxOtherBytes: 16 * MiB,
  /** Inflated size of all entries together. */
  maxTotalBytes: 2 * GiB,
  /** Largest declared inflated/compressed ratio of an entry above `ratioFloorBytes`. */
  maxRatio: 100,
  ratioFloorBytes: 1 * MiB,
  maxNameLength: 200,
  maxNameDepth: 8,
  maxSafetensorsHeaderBytes: 16 * MiB,
  /** Free space kept on the data folder's disk beyond the inflated package. */
  diskMarginBytes: 64 * MiB,
};
export type ImportLimits = typeof IMPORT_LIMITS;

/** The weights entries: the only ones allowed past the 16 MiB cap. */
const WEIGHTS = 'weights/model.safetensors';
const LARGE_ENTRIES = new Set([WEIGHTS, 'tfjs/encoder/weights.bin']);
const REQUIRED = ['checksums.json', 'config.json', 'ledger.json', 'model-card.json', WEIGHTS];
/**
 * Compressed bytes fed to the inflater at a time, which bounds the output of one step (deflate
 * inflates at most 1032:1): chosen from the ratio seen so far so that a step yields about
 * 1 MiB (16 KiB slices for weights, which barely compress, so at most 17 MB out even if the
 * data turns into a bomb; 1 KiB slices once a bomb of zeros is seen).
 */
const STEP_OUTPUT = 1 * MiB;
const MIN_SLICE = 256;
const MAX_SLICE = 16 * KiB;
const FIRST_SLICE = 4 * KiB;
const READ = 256 * KiB;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface ImportResult {
  dir: string;
  name: string;
  preset: string;
  task: string;
  size: number;
  tensors: number;
  licence: string;
}

export class PackageError extends Error {
  /**
   * @param file the package file (or the uploaded file's name)
   * @param message why it is refused
   * @param entry the zip entry (or package file) concerned, when there is one
   */
  constructor(
    file: string,
    message: string,
    readonly entry?: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'PackageError';
  }
}

/** A package file, or the bytes of one (an upload) with the name it came with. */
export type PackageSource = string | { name: string; bytes: Uint8Array };

export interface Reader {
  /** Shown in messages: the resolved path, or the upload's name. */
  label: string;
  /** The file name the installed folder is named after. */
  fileName: string;
  size: number;
  read(pos: number, len: number): Uint8Array;
  close(): void;
}

export function openSource(source: PackageSource, limits: Pick<ImportLimits, 'maxPackageBytes'>): Reader {
  if (typeof source !== 'string') {
    const label = JSON.stringify(String(source.name).slice(0, 255));
    if (source.bytes.length > limits.maxPackageBytes) throw new PackageError(label, `the package is ${source.bytes.length} bytes, more than the ${fmtBytes(limits.maxPackageBytes)} a package may have`);
    const bytes = source.bytes;
    return { label, fileName: String(source.name), size: bytes.length, read: (pos, len) => bytes.subarray(pos, pos + len), close: () => {} };
  }
  const path = resolve(source);
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | (fsc.O_NONBLOCK ?? 0));
  } catch (err) {
    throw new PackageError(path, `cannot open: ${(err as Error).message}`);
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new PackageError(path, 'not a regular file');
  }
  if (st.size > limits.maxPackageBytes) {
    closeSync(fd);
    throw new PackageError(path, `the package is ${st.size} bytes, more than the ${fmtBytes(limits.maxPackageBytes)} a package may have`);
  }
  return {
    label: path,
    fileName: basename(path),
    size: st.size,
    read(pos, len) {
      const out = Buffer.allocUnsafe(Math.max(0, Math.min(len, st.size - pos)));
      let got = 0;
      while (got < out.length) {
        const n = readSync(fd, out, got, out.length - got, pos + got);
        if (n === 0) break;
        got += n;
      }
      return out.subarray(0, got);
    },
    close: () => closeSync(fd),
  };
}

const fmtBytes = (n: number) => (n >= GiB ? `${+(n / GiB).toFixed(2)} GiB` : n >= MiB ? `${+(n / MiB).toFixed(2)} MiB` : `${n} bytes`);

// ---------------------------------------------------------------------------------------------
// Entry names

/** A name for messages: quoted, control characters escaped. */
export const showName = (name: string) => JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name);

const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;

/**
 * Why an entry name is not a safe relative file name, or null when it is. `dir` allows the one
 * trailing slash of a directory entry. Names are checked as written (never decoded or repaired):
 * a name that normalisation would change is refused.
 */
export function unsafeNameReason(name: string, limits: ImportLimits = IMPORT_LIMITS): string | null {
  if (name.length === 0) return 'the name is empty';
  if (name.length > limits.maxNameLength) return `the name is longer than ${limits.maxNameLength} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'the name contains a control character (NUL, newline, ...)';
  if (name.includes('\\')) return 'the name contains a backslash (a Windows path separator)';
  if (name.startsWith('/')) return 'the name is an absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'the name starts with a drive letter';
  if (name.includes(':')) return 'the name contains a colon (drive letter or alternate data stream)';
  if (name.normalize('NFC') !== name) return 'the name is not in Unicode normal form (NFC)';
  const segments = (name.endsWith('/') ? name.slice(0, -1) : name).split('/');
  if (segments.length > limits.maxNameDepth) return `the name is more than ${limits.maxNameDepth} folders deep`;
  for (const s of segments) {
    if (s === '') return 'the name has an empty path segment (//)';
    if (s === '..') return "the name has a '..' segment (it would leave the package folder)";
    if (s === '.') return "the name has a '.' segment (not a canonical name)";
    if (s.endsWith('.') || s.endsWith(' ')) return 'a path segment ends with a dot or space (Windows drops them)';
    if (WINDOWS_DEVICE.test(s)) return `a path segment is a Windows device name (${s})`;
    const bad = /[^A-Za-z0-9._-]/.exec(s);
    if (bad) return `the name contains ${JSON.stringify(bad[0])}: only letters, digits, '.', '_' and '-' are allowed`;
    if (s.startsWith('.') || s.startsWith('-')) return "a path segment starts with '.' or '-'";
  }
  return null;
}

/** The key two names collide on in a case-insensitive, normalising file system. */
const foldKey = (name: string) => name.normalize('NFKC').toLowerCase();

/**
 * The file base name of a package as a folder-name part: path parts of either platform dropped,
 * the extension dropped, anything but letters, digits, '.', '_', '-' replaced, no leading or
 * trailing dots, at most 64 characters. Never empty, '.' or '..'.
 */
export function packageBaseName(fileName: string): string {
  const last = String(fileName).split(/[\\/]/).pop() ?? '';
  const base = last
    .replace(/\.[^.]*$/, '')
    .replace(/[^\w.-]+/g, '_')
    .replace(/^[.\-_]+/, '')
    .slice(0, 64)
    .replace(/[.\s]+$/, '');
  return base && !/^\.+$/.test(base) ? base : 'package';
}

// ---------------------------------------------------------------------------------------------
// The zip container

interface Entry {
  name: string;
  dir: boolean;
  method: 0 | 8;
  compSize: number;
  /** Inflated size declared by the central directory (checked while inflating). */
  size: number;
  headerOffset: number;
  dataOffset: number;
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

/** Reads and checks the central directory; refuses anything but plain files and folders with safe names. */
function readEntries(r: Reader, limits: ImportLimits): Entry[] {
  const fail = (message: string, entry?: string): never => {
    throw new PackageError(r.label, entry === undefined ? message : `entry ${showName(entry)}: ${message}`, entry);
  };
  const corrupt = (why: string): never => fail(`not a readable package (corrupt or truncated zip): ${why}`);
  if (r.size < 22) corrupt('shorter than a zip end record');
  const tailLen = Math.min(r.size, 22 + 0xffff);
  const tail = r.read(r.size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (u32(tail, i) === 0x06054b50 && i + 22 + u16(tail, i + 20) === tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) corrupt('no end of central directory record');
  const eocdPos = r.size - tailLen + eocd;
  if (eocd >= 20 && u32(tail, eocd - 20) === 0x07064b50) fail('ZIP64 packages are not supported (no real package needs it)');
  const disk = u16(tail, eocd + 4);
  const cdDisk = u16(tail, eocd + 6);
  const onDisk = u16(tail, eocd + 8);
  const count = u16(tail, eocd + 10);
  const cdSize = u32(tail, eocd + 12);
  const cdOffset = u32(tail, eocd + 16);
  if (disk !== 0 || cdDisk !== 0 || onDisk !== count) fail('multi-volume zips are not supported');
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) fail('ZIP64 packages are not supported (no real package needs it)');
  if (count > limits.maxEntries) fail(`${count} entries, more than the ${limits.maxEntries} a package may have`);
  if (cdSize > limits.maxCentralDirectoryBytes) fail(`a central directory of ${cdSize} bytes, more than ${fmtBytes(limits.maxCentralDirectoryBytes)}`);
  if (cdOffset + cdSize !== eocdPos) corrupt('the central directory is not where the end record says');
  const cd = r.read(cdOffset, cdSize);
  if (cd.length !== cdSize) corrupt('the central directory is cut short');

  const entries: Entry[] = [];
  const seen = new Map<string, string>();
  let at = 0;
  for (let k = 0; k < count; k++) {
    if (at + 46 > cd.length || u32(cd, at) !== 0x02014b50) corrupt(`central directory record ${k + 1} is damaged`);
    const madeBy = u16(cd, at + 4);
    const flags = u16(cd, at + 8);
    const method = u16(cd, at + 10);
    const compSize = u32(cd, at + 20);
    const size = u32(cd, at + 24);
    const nameLen = u16(cd, at + 28);
    const extraLen = u16(cd, at + 30);
    const commentLen = u16(cd, at + 32);
    const diskStart = u16(cd, at + 34);
    const external = u32(cd, at + 38);
    const headerOffset = u32(cd, at + 42);
    if (at + 46 + nameLen + extraLen + commentLen > cd.length) corrupt(`central directory record ${k + 1} is cut short`);
    const rawName = cd.subarray(at + 46, at + 46 + nameLen);
    at += 46 + nameLen + extraLen + commentLen;
    let name: string;
    if (flags & 0x800) {
      try {
        name = new TextDecoder('utf-8', { fatal: true }).decode(rawName);
      } catch {
        return fail(`the name of entry ${k + 1} is not valid UTF-8`, Buffer.from(rawName).toString('latin1'));
      }
    } else {
      name = Buffer.from(rawName).toString('latin1');
      if (rawName.some((b) => b >= 0x80)) fail('the name is not ASCII and not marked as UTF-8', name);
    }
    const why = unsafeNameReason(name, limits);
    if (why) fail(why, name);
    const dir = name.endsWith('/');
    const key = foldKey(dir ? name.slice(0, -1) : name);
    const prev = seen.get(key);
    if (prev !== undefined) fail(prev === name ? 'the package has two entries of this name' : `the package also has ${showName(prev)}: names that differ only in case collide on macOS and Windows`, name);
    seen.set(key, name);
    if (flags & 0x41) fail('the entry is encrypted', name);
    if (method !== 0 && method !== 8) fail(`compression method ${method} is not supported (stored or deflate only)`, name);
    if (diskStart !== 0) fail('multi-volume zips are not supported', name);
    if (size === 0xffffffff || compSize === 0xffffffff || headerOffset === 0xffffffff) fail('ZIP64 sizes are not supported', name);
    // Unix mode in the high 16 bits (any host: a symlink is refused whoever made the zip).
    const type = (external >>> 16) & S_IFMT;
    if (type === S_IFLNK) fail('the entry is a symbolic link: links are refused', name);
    if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) fail(`the entry is a special file (mode ${((external >>> 16) & 0xffff).toString(8)}): only files and folders are allowed`, name);
    const dosDir = (madeBy >> 8 === 0 || madeBy >> 8 === 11 || madeBy >> 8 === 14) && (external & 0x10) !== 0;
    if ((type === S_IFDIR || dosDir) !== dir && (type === S_IFDIR || dosDir || type === S_IFREG)) fail(dir ? 'a folder entry has file attributes' : 'a file entry has folder attributes', name);
    if (dir && size !== 0) fail('a folder entry has content', name);
    if (method === 0 && compSize !== size) fail('a stored entry whose compressed and inflated sizes differ', name);
    entries.push({ name, dir, method: method as 0 | 8, compSize, size, headerOffset, dataOffset: -1 });
  }
  if (at !== cd.length) corrupt('the central directory has trailing bytes');

  // A file cannot also be a folder of another entry ('a' and 'a/b').
  const fileKeys = new Map(entries.filter((e) => !e.dir).map((e) => [foldKey(e.name), e.name]));
  for (const e of entries) {
    const parts = (e.dir ? e.name.slice(0, -1) : e.name).split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = fileKeys.get(foldKey(parts.slice(0, i).join('/')));
      if (parent !== undefined) fail(`its folder ${showName(parent)} is also a file in the package`, e.name);
    }
  }

  // Local headers: the same name and method as the central directory, data inside the file,
  // no two entries sharing bytes (overlapping entries are how the worst zip bombs are built).
  for (const e of entries) {
    const lh = r.read(e.headerOffset, 30);
    if (lh.length < 30 || u32(lh, 0) !== 0x04034b50) fail('its local header is missing or damaged', e.name);
    const nameLen = u16(lh, 26);
    const extraLen = u16(lh, 28);
    const localName = r.read(e.headerOffset + 30, nameLen);
    // Names are ASCII by now (unsafeNameReason), so the bytes compare directly.
    if (Buffer.compare(Buffer.from(localName), Buffer.from(e.name, 'latin1')) !== 0) {
      fail(`its local header names it ${showName(Buffer.from(localName).toString('latin1'))}: the two names must agree`, e.name);
    }
    if (u16(lh, 8) !== e.method) fail('its local header gives another compression method', e.name);
    if (u16(lh, 6) & 0x41) fail('the entry is encrypted', e.name);
    e.dataOffset = e.headerOffset + 30 + nameLen + extraLen;
    if (e.dataOffset + e.compSize > cdOffset) fail('its data run past the end of the entries (a truncated or damaged zip)', e.name);
  }
  const byOffset = [...entries].sort((a, b) => a.headerOffset - b.headerOffset);
  for (let i = 1; i < byOffset.length; i++) {
    const p = byOffset[i - 1];
    if (byOffset[i].headerOffset < p.dataOffset + p.compSize) fail(`its bytes overlap entry ${showName(p.name)} (an overlapping-entries zip bomb?)`, byOffset[i].name);
  }

  // Declared sizes, before inflating anything; the inflation checks them again.
  let total = 0;
  for (const e of entries) {
    if (e.dir) continue;
    const cap = LARGE_ENTRIES.has(e.name) ? limits.maxWeightsBytes : e.name.endsWith('.json') ? limits.maxJsonBytes : limits.maxOtherBytes;
    if (e.size > cap) fail(`declares ${fmtBytes(e.size)} inflated, more than the ${fmtBytes(cap)} allowed for this entry`, e.name);
    if (e.size > limits.ratioFloorBytes && e.size > limits.maxRatio * e.compSize) {
      fail(`declares ${fmtBytes(e.size)} from ${fmtBytes(e.compSize)} compressed (${Math.round(e.size / Math.max(1, e.compSize))}:1, more than ${limits.maxRatio}:1): a decompression bomb`, e.name);
    }
    total += e.size;
  }
  if (total > limits.maxTotalBytes) fail(`the entries declare ${fmtBytes(total)} inflated, more than the ${fmtBytes(limits.maxTotalBytes)} a package may have`);
  return entries;
}

/**
 * Inflates one entry as a stream, handing the output to `sink` in pieces. Stops, refusing, as soon
 * as the output exceeds the declared size; `sink` returning false stops early (enough read).
 * Returns the number of bytes produced.
 */
function inflateEntry(r: Reader, e: Entry, sink: (chunk: Uint8Array) => boolean | void): number {
  const fail = (message: string): never => {
    throw new PackageError(r.label, `entry ${showName(e.name)}: ${message}`, e.name);
  };
  let out = 0;
  let stopped = false;
  const take = (chunk: Uint8Array) => {
    if (stopped || chunk.length === 0) return;
    out += chunk.length;
    if (out > e.size) fail(`inflates to more than the ${e.size} bytes its zip header declares (a decompression bomb or a damaged package): stopped`);
    if (sink(chunk) === false) stopped = true;
  };
  const inflater = e.method === 8 ? new Inflate((chunk) => take(chunk)) : null;
  let pos = 0;
  let slice = FIRST_SLICE;
  try {
    if (e.compSize === 0 && inflater) inflater.push(new Uint8Array(0), true);
    while (pos < e.compSize && !stopped) {
      const buf = r.read(e.dataOffset + pos, Math.min(READ, e.compSize - pos));
      if (buf.length === 0) fail('its data is cut short (truncated zip)');
      for (let s = 0; s < buf.length && !stopped; ) {
        const piece = buf.subarray(s, Math.min(buf.length, s + slice));
        const last = pos + s + piece.length >= e.compSize;
        const before = out;
        if (inflater) inflater.push(piece, last);
        else take(piece);
        s += piece.length;
        const ratio = (out - before) / piece.length;
        slice = Math.max(MIN_SLICE, Math.min(MAX_SLICE, Math.floor(STEP_OUTPUT / Math.max(1, ratio))));
      }
      pos += buf.length;
    }
  } catch (err) {
    if (err instanceof PackageError) throw err;
    fail(`corrupt compressed data (${(err as Error).message})`);
  }
  if (!stopped && out !== e.size) fail(`inflates to ${out} bytes, not the ${e.size} its zip header declares (a damaged package)`);
  return out;
}

/** An entry's bytes in memory (small entries only: the caller caps the size). */
function readEntry(r: Reader, e: Entry): Uint8Array {
  const bytes = new Uint8Array(e.size);
  let at = 0;
  inflateEntry(r, e, (chunk) => {
    bytes.set(chunk, at);
    at += chunk.length;
  });
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// The package's JSON files: untrusted

const shortText = (max: number) => z.string().max(max);
const finite = z.number().finite();

const checksumsSchema = z.object({
  format: z.string().max(200),
  formatVersion: z.number().int().min(1),
  sha256: z.record(z.string().max(1000), z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase SHA-256 hex digest')),
});

const architectureSchema = z
  .object({
    model: z.enum(['vqvae', 'classifier']),
    preset: z.enum(PRESETS),
    size: z.number().int().min(16).max(1024),
    channels: z.number().int().min(1).max(4),
    widths: z.tuple([z.number().int().min(1).max(4096), z.number().int().min(1).max(4096)]),
    resBlocks: z.number().int().min(0).max(64),
    latent: z.number().int().min(1).max(4096),
    codes: z.number().int().min(1).max(65536).optional(),
    commitment: finite.optional(),
    leak: finite.optional(),
    classes: z.number().int().min(2).max(1000).optional(),
    headWidth: z.number().int().min(1).max(4096).optional(),
  })
  .strict();

const configSchema = z.object({
  architecture: architectureSchema,
  preprocessing: z.object({
    window: z.object({ level: finite, width: finite.positive() }),
    scalingMode: z.enum(['fixed', 'minmax']),
    size: z.number().int(),
  }),
  // A registered task, and every task option field: the task's value, or null for another task's option.
  task: z.object({
    name: pretextTaskSchema,
    ...(Object.fromEntries(allTaskOptions().map((o) => [o.key, taskOptionSchema(o).nullable()])) as unknown as {
      [K in keyof TaskOptionValues]: z.ZodNullable<z.ZodType<TaskOptionValues[K]>>;
    }),
  }),
  training: z.object({
    optimizer: z.enum(['adam', 'radam']),
    lr: finite.positive().max(1),
    batchSize: z.number().int().min(1).max(256),
    steps: z.number().int().min(0).max(1e9),
    seed: z.number().int().min(0).max(2 ** 31),
  }),
});

const cardSchema = z.object({ name: shortText(10_000), licence: shortText(10_000) });

/** The ledger as written into the imported run's run.json: known fields only, bounded. */
const ledgerSchema = z.object({
  app: shortText(200).optional(),
  appVersion: shortText(64).nullable().optional(),
  exportedAt: shortText(64).optional(),
  runUid: shortText(200).nullable().optional(),
  trainedWith: z.object({ appVersion: shortText(64).nullable().optional(), backend: shortText(200).nullable().optional() }).optional(),
  backendAtExport: shortText(200).optional(),
  seeds: z.record(shortText(64), finite).optional(),
  manifestHash: shortText(128).optional(),
  configHash: shortText(128).optional(),
  checkpoint: z.object({ step: z.number().int().min(0).optional(), savedAt: shortText(64).optional() }).optional(),
});

const safetensorsHeaderSchema = z.record(
  z.string().max(512),
  z.union([
    z.object({ dtype: z.literal('F32'), shape: z.array(z.number().int().min(0).max(2 ** 31)).max(8), data_offsets: z.tuple([z.number().int().min(0), z.number().int().min(0)]) }),
    z.record(z.string().max(512), z.string().max(4096)),
  ]),
);

/** Display text from an untrusted string: control and bidi-override characters dropped, length capped (also checkpoint-import.ts). */
export function cleanText(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const chars = Array.from(s.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, ' ').trim());
  return chars.slice(0, max).join('').trim();
}

// ---------------------------------------------------------------------------------------------

export interface ImportOptions {
  /** Caps overriding `IMPORT_LIMITS` (tests; a stricter deployment). */
  limits?: Partial<ImportLimits>;
}

/**
 * Verifies a package (names, sizes, checksums, format, architecture against this app's models)
 * and installs it as an importable run under `into`. Nothing outside a fresh staging folder in
 * `into` is written; the run appears by one rename, so a refusal never leaves a half-imported
 * run and never changes an existing one.
 */
export function importPackage(source: PackageSource, into: string, opts: ImportOptions = {}): ImportResult {
  const limits: ImportLimits = { ...IMPORT_LIMITS, ...opts.limits };
  const r = openSource(source, limits);
  try {
    return importFrom(r, resolve(into), limits);
  } catch (err) {
    if (err instanceof PackageError) throw err;
    throw new PackageError(r.label, `could not import: ${(err as Error).message}`);
  } finally {
    r.close();
  }
}

/** Imports a package and records it in the library: the one path for the CLI and the app. */
export function importPackageAsRun(db: Database, source: PackageSource, dataDir: string, opts: ImportOptions = {}): ImportResult & { run: RunRow } {
  const r = importPackage(source, join(resolve(dataDir), 'imported'), opts);
  return { ...r, run: registerImportedRun(db, r.dir) };
}

function importFrom(r: Reader, into: string, limits: ImportLimits): ImportResult {
  return install(r, verify(r, limits), into, limits);
}

/** What `verify` found: enough to install the package without reading its JSON again. */
interface Verified {
  files: Map<string, Entry>;
  /** checksums.json's digests by entry name. */
  listed: Map<string, string>;
  /** Entries already read and verified, written from memory. */
  kept: Map<string, Uint8Array>;
  /** The weights' first bytes (the safetensors header) whose tensors were checked. */
  weightsHead: Uint8Array;
  runConfig: ReturnType<typeof parsePretrainConfig>;
  ledger: z.infer<typeof ledgerSchema>;
  steps: number;
  result: Omit<ImportResult, 'dir'>;
}

/** Step 1: everything that can be checked without writing, in bounded memory. */
function verify(r: Reader, limits: ImportLimits): Verified {
  const path = r.label;
  const entries = readEntries(r, limits);
  const files = new Map(entries.filter((e) => !e.dir).map((e) => [e.name, e]));
  for (const n of REQUIRED) if (!files.has(n)) throw new PackageError(path, `entry ${showName(n)}: missing, so this is not a CT SSL Studio weights package`, n);
  const refuse = (file: string, message: string): never => {
    throw new PackageError(path, `${file}: ${message}`, file);
  };
  const parseJson = (file: string, bytes: Uint8Array): unknown => {
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes), (k, v: unknown) => {
        if (k === '__proto__') throw new Error('a "__proto__" key');
        return v;
      });
    } catch (err) {
      return refuse(file, `not valid JSON: ${(err as Error).message}`);
    }
  };
  const check = <T>(file: string, schema: z.ZodType<T>, value: unknown): T => {
    const res = schema.safeParse(value);
    if (res.success) return res.data;
    const i = res.error.issues[0];
    return refuse(file, `${i.path.join('.') || '(top level)'}: ${i.message}`);
  };

  // checksums.json: the list of what the package is; every other entry must be on it.
  const sumsBytes = readEntry(r, files.get('checksums.json')!);
  const sumsRaw = parseJson('checksums.json', sumsBytes) as { format?: unknown; formatVersion?: unknown };
  if (sumsRaw?.format !== PACKAGE_FORMAT) refuse('checksums.json', `unknown package format ${JSON.stringify(sumsRaw?.format)?.slice(0, 80)}`);
  if (typeof sumsRaw.formatVersion === 'number' && sumsRaw.formatVersion > PACKAGE_VERSION) {
    throw new PackageError(path, `package format version ${sumsRaw.formatVersion} is newer than this app understands (${PACKAGE_VERSION}): update the app`);
  }
  check('checksums.json', checksumsSchema, sumsRaw);
  const listed = new Map(Object.entries((sumsRaw as { sha256: Record<string, string> }).sha256));
  if (listed.size > limits.maxEntries) refuse('checksums.json', `lists ${listed.size} files, more than ${limits.maxEntries}`);
  for (const name of listed.keys()) {
    const why = name.endsWith('/') ? 'a folder name' : unsafeNameReason(name, limits);
    if (why) throw new PackageError(path, `checksums.json lists ${showName(name)}: ${why}`, name);
    if (name === 'checksums.json') throw new PackageError(path, 'checksums.json lists itself', name);
    if (!files.has(name)) throw new PackageError(path, `entry ${showName(name)}: listed in checksums.json but not in the package`, name);
  }
  for (const name of files.keys()) {
    if (name !== 'checksums.json' && !listed.has(name)) throw new PackageError(path, `entry ${showName(name)}: not listed in checksums.json: refused`, name);
  }
  const verified = (name: string): Uint8Array => {
    const bytes = readEntry(r, files.get(name)!);
    if (sha256(bytes) !== listed.get(name)) refuse(name, `checksum mismatch for ${name}: the file was altered or damaged`);
    return bytes;
  };

  // The small JSON files, verified and parsed in memory (each at most maxJsonBytes).
  const configBytes = verified('config.json');
  const cardBytes = verified('model-card.json');
  const ledgerBytes = verified('ledger.json');
  const config = check('config.json', configSchema, parseJson('config.json', configBytes));
  const card = check('model-card.json', cardSchema, parseJson('model-card.json', cardBytes));
  const ledger = check('ledger.json', ledgerSchema, parseJson('ledger.json', ledgerBytes));
  const a = config.architecture;
  const preset = a.preset as VqvaePresetName;

  // The weights' safetensors header (read from the start of the entry only) against the model.
  // A refusal of damaged weights says so: their checksum is then checked (streamed, not kept).
  const weightsEntry = files.get(WEIGHTS)!;
  let head: ReturnType<typeof readPrefix>;
  let tensors: [string, { shape: number[] }][];
  try {
    head = readPrefix(r, weightsEntry, limits);
    tensors = [...head.tensors.entries()];
    let specs;
    try {
      specs = a.model === 'vqvae' ? vqvaeSpecs({ ...vqvaePreset(preset), ...a } as never) : classifierSpecs({ ...classifierPreset(preset, a.classes ?? 2), ...a } as never);
    } catch (err) {
      return refuse('config.json', `architecture not supported by this app: ${(err as Error).message}`);
    }
    if (config.preprocessing.size !== a.size) throw new PackageError(path, `input size ${config.preprocessing.size} does not match the architecture (${a.size})`, 'config.json');
    for (const s of specs) {
      const w = head.tensors.get(s.name);
      if (!w) throw new PackageError(path, `incompatible weights: tensor ${s.name} is missing`, WEIGHTS);
      if (w.shape.join(',') !== s.shape.join(',')) throw new PackageError(path, `incompatible weights: ${s.name} has shape [${w.shape}], this app's ${a.preset} model expects [${s.shape}]`, WEIGHTS);
    }
    if (tensors.length !== specs.length) throw new PackageError(path, `incompatible weights: ${tensors.length} tensors, this app's ${a.preset} model has ${specs.length}`, WEIGHTS);
  } catch (err) {
    if (err instanceof PackageError && err.entry === WEIGHTS) {
      const hash = createHash('sha256');
      inflateEntry(r, weightsEntry, (chunk) => void hash.update(chunk));
      if (hash.digest('hex') !== listed.get(WEIGHTS)) refuse(WEIGHTS, `checksum mismatch for ${WEIGHTS}: the file was altered or damaged`);
    }
    throw err;
  }
  // The run built from this package uses this app's preset at the package's size: the
  // architecture must be exactly that, or the weights would be loaded into another network.
  if (isReconstructionTask(config.task.name) !== (a.model === 'vqvae')) refuse('config.json', `architecture.model ${a.model} cannot be trained on task ${config.task.name}`);
  // 1 (grey) or 3 input channels (the reference's); any other count is refused below as a mismatch
  const channels = a.channels === 3 ? 3 : 1;
  const expected: Record<string, unknown> =
    a.model === 'vqvae' ? { model: 'vqvae', preset, ...vqvaePreset(preset, { size: a.size, channels }) } : { model: 'classifier', preset, ...classifierPreset(preset, taskClasses(config.task.name), { size: a.size, channels }) };
  for (const k of new Set([...Object.keys(expected), ...Object.keys(a)])) {
    const got = JSON.stringify((a as Record<string, unknown>)[k]);
    const want = JSON.stringify(expected[k]);
    if (got !== want) refuse('config.json', `architecture.${k} is ${got ?? 'absent'}, this app's ${preset} model has ${want ?? 'no such field'}: incompatible`);
  }

  // The run config the installed folder gets (the run config caps the name at 120 characters).
  const name = cleanText(card.name, 120);
  const licence = cleanText(card.licence, 200);
  let runConfig;
  try {
    runConfig = parsePretrainConfig({
      name,
      task: config.task.name,
      ...Object.fromEntries(Object.entries(config.task).filter(([k, v]) => k !== 'name' && v !== null)),
      preset: a.preset,
      size: a.size,
      ...(channels === 3 ? { channels } : {}),
      steps: Math.max(1, config.training.steps),
      batchSize: config.training.batchSize,
      optimizer: config.training.optimizer,
      lr: config.training.lr,
      seed: config.training.seed,
      windowLevel: config.preprocessing.window.level,
      windowWidth: config.preprocessing.window.width,
      scaling: config.preprocessing.scalingMode,
    });
  } catch (err) {
    return refuse('config.json', (err as Error).message);
  }
  return {
    files,
    listed,
    kept: new Map([
      ['checksums.json', sumsBytes],
      ['config.json', configBytes],
      ['model-card.json', cardBytes],
      ['ledger.json', ledgerBytes],
    ]),
    weightsHead: head.prefix,
    runConfig,
    ledger,
    steps: config.training.steps,
    result: { name, preset: a.preset, task: config.task.name, size: a.size, tensors: tensors.length, licence },
  };
}

/**
 * Step 2: the package's files into a fresh staging folder (streamed, size- and checksum-checked),
 * the run's own files beside them, then one rename to a folder name nothing uses yet.
 */
function install(r: Reader, v: Verified, into: string, limits: ImportLimits): ImportResult {
  const path = r.label;
  const { files, listed } = v;
  const refuse = (file: string, message: string): never => {
    throw new PackageError(path, `${file}: ${message}`, file);
  };
  const describe = (dir: string): ImportResult => ({ dir, ...v.result });
  const sumsBytes = v.kept.get('checksums.json')!;
  let total = 0;
  for (const e of files.values()) total += e.size;
  mkdirSync(into, { recursive: true });
  removeStaleStaging(into);
  try {
    const fsInfo = statfsSync(into);
    const free = fsInfo.bavail * fsInfo.bsize;
    if (free < total + limits.diskMarginBytes) throw new PackageError(path, `not enough free disk space in ${into}: the package needs ${fmtBytes(total)}, ${fmtBytes(free)} are free`);
  } catch (err) {
    if (err instanceof PackageError) throw err; // statfs unsupported: the writes themselves fail cleanly
  }
  const staging = mkdtempSync(join(into, '.import-'));
  try {
    const inside = (...parts: string[]): string => {
      const p = resolve(staging, ...parts);
      if (!p.startsWith(staging + sep)) throw new PackageError(path, `internal: ${showName(parts.join('/'))} resolves outside the staging folder`, parts.join('/'));
      return p;
    };
    for (const [entryName, e] of [...files].sort(([x], [y]) => (x < y ? -1 : 1))) {
      const dest = entryName === WEIGHTS ? inside('checkpoints', 'step-imported', 'weights.safetensors') : inside('package', ...entryName.split('/'));
      mkdirInside(staging, dest);
      const fd = openSync(dest, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (fsc.O_NOFOLLOW ?? 0), 0o644);
      try {
        const kept = v.kept.get(entryName);
        if (kept) {
          writeAll(fd, kept);
          continue;
        }
        const hash = createHash('sha256');
        const prefix = entryName === WEIGHTS ? new Uint8Array(v.weightsHead.length) : null;
        let at = 0;
        inflateEntry(r, e, (chunk) => {
          if (prefix && at < prefix.length) prefix.set(chunk.subarray(0, prefix.length - at), at);
          at += chunk.length;
          hash.update(chunk);
          writeAll(fd, chunk);
        });
        if (hash.digest('hex') !== listed.get(entryName)) refuse(entryName, `checksum mismatch for ${entryName}: the file was altered or damaged`);
        // The bytes written are the bytes whose header was checked (the file cannot change in between).
        if (prefix && Buffer.compare(Buffer.from(prefix), Buffer.from(v.weightsHead)) !== 0) refuse(entryName, 'changed while it was being read');
      } finally {
        closeSync(fd);
      }
    }
    // A run folder the trainer can start from (config.init) and the app can list.
    writeJsonAtomic(inside('config.json'), v.runConfig);
    writeJsonAtomic(inside('checkpoints', 'step-imported', 'state.json'), {
      step: v.steps,
      epoch: 0,
      batch: 0,
      configHash: configHash(v.runConfig),
      manifestHash: '',
      losses: {},
      savedAt: new Date().toISOString(),
    });
    writeJsonAtomic(inside('checkpoints', 'latest.json'), { step: v.steps, dir: 'step-imported' });
    writeJsonAtomic(inside('run.json'), { ...v.ledger, importedFrom: cleanText(basename(r.fileName.replace(/\\/g, '/')), 255), importedAt: new Date().toISOString() });

    // Install: a new folder by one rename. The same package again is the run already there;
    // a different folder of that name (another package, a damaged earlier import) is left alone.
    const stem = `${packageBaseName(r.fileName)}-${listed.get(WEIGHTS)!.slice(0, 16)}`;
    return describe(installStaged(staging, into, stem, (dir) => samePackage(dir, sumsBytes), path));
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    if (err instanceof PackageError) throw err;
    throw new PackageError(path, `could not install: ${(err as Error).message}`);
  }
}

/**
 * Installs a filled staging folder (inside `into`) by one rename to `<into>/<stem>`, else
 * `<stem>-2`... (an existing folder is never written into). When a folder of that name already is
 * this same import (`same`), the staging folder is removed and that folder returned. The one
 * installation step of package and checkpoint imports (checkpoint-import.ts).
 */
export function installStaged(staging: string, into: string, stem: string, same: (dir: string) => boolean, label: string): string {
  for (let k = 1; k <= 100; k++) {
    const final = join(into, k === 1 ? stem : `${stem}-${k}`);
    if (existsSync(final) || isLink(final)) {
      if (same(final)) {
        rmSync(staging, { recursive: true, force: true });
        return final;
      }
      continue;
    }
    try {
      renameSync(staging, final);
    } catch (err) {
      // Another import made that folder meanwhile: the same import is that run; else next name.
      if (!['EEXIST', 'ENOTEMPTY', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '') || !existsSync(final)) throw err;
      if (same(final)) {
        rmSync(staging, { recursive: true, force: true });
        return final;
      }
      continue;
    }
    return final;
  }
  throw new PackageError(label, `100 folders named ${stem}* already exist in ${into}: refused`);
}

/** The safetensors header of the weights, inflating only as far as it goes. */
function readPrefix(r: Reader, e: Entry, limits: ImportLimits): { prefix: Uint8Array; tensors: Map<string, { shape: number[] }> } {
  const fail = (message: string): never => {
    throw new PackageError(r.label, `${e.name}: ${message}`, e.name);
  };
  // Copies of the bytes needed only (never a view keeping a large inflated piece alive).
  const parts: Uint8Array[] = [];
  let have = 0;
  let need = 8;
  let sized = false;
  inflateEntry(r, e, (chunk) => {
    let off = 0;
    for (;;) {
      const n = Math.min(chunk.length - off, need - have);
      if (n > 0) {
        parts.push(chunk.slice(off, off + n));
        have += n;
        off += n;
      }
      if (!sized && have === 8) {
        const first = Buffer.concat(parts);
        const len = first.readUInt32LE(0) + first.readUInt32LE(4) * 2 ** 32;
        if (len > limits.maxSafetensorsHeaderBytes) fail(`a safetensors header of ${len} bytes, more than ${fmtBytes(limits.maxSafetensorsHeaderBytes)}`);
        need = 8 + len;
        sized = true;
        continue;
      }
      return have < need;
    }
  });
  if (have < need) fail('safetensors: header length exceeds the file (truncated?)');
  const prefix = new Uint8Array(Buffer.concat(parts).subarray(0, need));
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(prefix.subarray(8)), (k, v: unknown) => {
      if (k === '__proto__') throw new Error('a "__proto__" key');
      return v;
    });
  } catch (err) {
    return fail(`safetensors: the header is not valid JSON: ${(err as Error).message}`);
  }
  const res = safetensorsHeaderSchema.safeParse(header);
  if (!res.success) return fail(`safetensors: ${res.error.issues[0].path.join('.')}: ${res.error.issues[0].message}`);
  // Every tensor inside the data, none overlapping, the data exactly covered.
  const dataLen = e.size - need;
  const tensors = new Map<string, { shape: number[] }>();
  const spans: [number, number, string][] = [];
  for (const [name, t] of Object.entries(header as Record<string, { dtype?: string; shape: number[]; data_offsets: [number, number] }>)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') fail(`safetensors: ${name} has dtype ${t.dtype}; only F32 is supported`);
    const [b, end] = t.data_offsets;
    const n = t.shape.reduce((x, y) => x * y, 1);
    if (end < b || end > dataLen) fail(`safetensors: ${name} lies outside the file (truncated?)`);
    if ((end - b) / 4 !== n) fail(`safetensors: ${name} has ${(end - b) / 4} values for shape [${t.shape}]`);
    tensors.set(name, { shape: t.shape });
    spans.push([b, end, name]);
  }
  spans.sort((x, y) => x[0] - y[0]);
  let at = 0;
  for (const [b, end, name] of spans) {
    if (b !== at) fail(`safetensors: ${name} ${b < at ? 'overlaps another tensor' : 'leaves a gap before it'}`);
    at = end;
  }
  if (at !== dataLen) fail(`safetensors: ${dataLen - at} bytes after the last tensor`);
  return { prefix, tensors };
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
}

/** Creates the folders of `file` below `root`, refusing to pass through anything but real folders. */
function mkdirInside(root: string, file: string): void {
  const rel = file.slice(root.length + 1).split(sep).slice(0, -1);
  let cur = root;
  for (const part of rel) {
    cur = join(cur, part);
    try {
      if (!lstatSync(cur).isDirectory()) throw new Error(`${cur} is not a folder`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(cur);
    }
  }
}

const isLink = (p: string) => {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
};

/** Whether an installed folder is this very package (same checksums.json, so same files). */
function samePackage(dir: string, sums: Uint8Array): boolean {
  try {
    if (!lstatSync(dir).isDirectory() || !existsSync(join(dir, 'config.json'))) return false;
    const p = join(dir, 'package', 'checksums.json');
    const st = lstatSync(p);
    return st.isFile() && st.size === sums.length && Buffer.compare(readFileSync(p), Buffer.from(sums)) === 0;
  } catch {
    return false;
  }
}

/** Staging folders of imports that died (a killed process) a day or more ago. */
export function removeStaleStaging(into: string): void {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const name of readdirSync(into)) {
    if (!/^\.import-[A-Za-z0-9]{6}$/.test(name)) continue;
    try {
      const st = lstatSync(join(into, name));
      if (st.isDirectory() && st.mtimeMs < dayAgo) rmSync(join(into, name), { recursive: true, force: true });
    } catch {
      /* gone meanwhile */
    }
  }
}
