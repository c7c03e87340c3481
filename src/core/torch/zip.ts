/**
 * The zip container of a PyTorch checkpoint (torch.save since 1.6): stored (uncompressed) entries
 * `<prefix>/data.pkl`, `<prefix>/data/<key>` (raw little-endian storages), `<prefix>/version` and
 * a few more, where the prefix is `archive` (or, in older versions, the file's stem). The file is
 * hostile: the central directory is read once, bounded; every entry must be a plain name under
 * the one prefix, stored, inside the file, not overlapping another; sizes come from the central
 * directory (torch writes data descriptors, so local headers carry none), ZIP64 records included
 * (torch writes them even for small files). Nothing is inflated: a compressed entry is refused.
 */
import { crc32 } from '../crc32';

/** Random access to the file's bytes (a file descriptor, or bytes in memory). */
export interface RandomAccess {
  readonly size: number;
  /** Up to `len` bytes at `pos` (fewer only at the end of the file). */
  read(pos: number, len: number): Uint8Array;
}

export interface TorchZipLimits {
  maxEntries: number;
  maxCentralDirectoryBytes: number;
  maxNameLength: number;
}

export interface TorchZipEntry {
  /** Name below the prefix, e.g. `data.pkl`, `data/12`. */
  name: string;
  /** Offset of the entry's data in the file. */
  offset: number;
  size: number;
  crc32: number;
}

export interface TorchZip {
  prefix: string;
  entries: Map<string, TorchZipEntry>;
}

/** A refusal of a checkpoint, naming what is wrong (the caller prefixes the file). */
export class TorchFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TorchFormatError';
  }
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
/** Little-endian 64-bit as a number; refused above 2^53. */
function u64(b: Uint8Array, o: number, what: string): number {
  const hi = u32(b, o + 4);
  if (hi >= 2 ** 21) throw new TorchFormatError(`${what} is larger than 2^53`);
  return hi * 2 ** 32 + u32(b, o);
}

/** What kind of file the first bytes say: a zip, the legacy pickle format of torch < 1.6, or neither. */
export function sniffTorchFile(head: Uint8Array): 'zip' | 'legacy' | 'other' {
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return 'zip';
  // legacy: a pickle (PROTO 2) whose first object is the magic number 0x1950a86a20f9469cfc6c (LONG1 of 10 bytes)
  if (head.length >= 3 && head[0] === 0x80 && head[1] === 0x02 && head[2] === 0x8a) return 'legacy';
  return 'other';
}

/**
 * Reads the central directory: the entries under the one prefix, or a refusal. `nameOk` says which
 * names below the prefix are expected at all.
 */
export function readTorchZip(r: RandomAccess, limits: TorchZipLimits): TorchZip {
  const corrupt = (why: string): never => {
    throw new TorchFormatError(`not a readable PyTorch checkpoint (corrupt or truncated zip): ${why}`);
  };
  if (r.size < 22) corrupt('shorter than a zip end record');
  const tailLen = Math.min(r.size, 22 + 0xffff + 20 + 56);
  const tailPos = r.size - tailLen;
  const tail = r.read(tailPos, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (u32(tail, i) === 0x06054b50 && i + 22 + u16(tail, i + 20) === tail.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) corrupt('no end of central directory record');
  let count = u16(tail, eocd + 10);
  let cdSize = u32(tail, eocd + 12);
  let cdOffset = u32(tail, eocd + 16);
  if (u16(tail, eocd + 4) !== 0 || u16(tail, eocd + 6) !== 0) corrupt('multi-volume zip');
  let cdEnd = tailPos + eocd;
  if (eocd >= 20 && u32(tail, eocd - 20) === 0x07064b50) {
    // ZIP64 locator -> ZIP64 end record, which holds the real counts and offsets
    const z64 = u64(tail, eocd - 20 + 8, 'the ZIP64 end record offset');
    if (z64 + 56 > tailPos + eocd - 20) corrupt('the ZIP64 end record is not before its locator');
    const rec = r.read(z64, 56);
    if (rec.length < 56 || u32(rec, 0) !== 0x06064b50) corrupt('the ZIP64 end record is missing');
    count = u64(rec, 32, 'the entry count');
    cdSize = u64(rec, 40, 'the central directory size');
    cdOffset = u64(rec, 48, 'the central directory offset');
    cdEnd = z64;
  }
  if (count > limits.maxEntries) throw new TorchFormatError(`${count} zip entries, more than the ${limits.maxEntries} a checkpoint may have`);
  if (cdSize > limits.maxCentralDirectoryBytes) throw new TorchFormatError(`a central directory of ${cdSize} bytes, more than ${limits.maxCentralDirectoryBytes}`);
  if (cdOffset + cdSize !== cdEnd) corrupt('the central directory is not where the end record says');
  const cd = r.read(cdOffset, cdSize);
  if (cd.length !== cdSize) corrupt('the central directory is cut short');

  const raw: { name: string; method: number; compSize: number; size: number; headerOffset: number; crc32: number }[] = [];
  let at = 0;
  for (let k = 0; k < count; k++) {
    if (at + 46 > cd.length || u32(cd, at) !== 0x02014b50) corrupt(`central directory record ${k + 1} is damaged`);
    const flags = u16(cd, at + 8);
    const method = u16(cd, at + 10);
    const crc32 = u32(cd, at + 16);
    let compSize = u32(cd, at + 20);
    let size = u32(cd, at + 24);
    const nameLen = u16(cd, at + 28);
    const extraLen = u16(cd, at + 30);
    const commentLen = u16(cd, at + 32);
    let headerOffset = u32(cd, at + 42);
    if (at + 46 + nameLen + extraLen + commentLen > cd.length) corrupt(`central directory record ${k + 1} is cut short`);
    if (nameLen > limits.maxNameLength) throw new TorchFormatError(`zip entry ${k + 1} has a name longer than ${limits.maxNameLength} bytes`);
    const nameBytes = cd.subarray(at + 46, at + 46 + nameLen);
    // ASCII letters, digits and ._-/ only: torch writes nothing else
    for (const b of nameBytes) {
      const ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2e || b === 0x5f || b === 0x2d || b === 0x2f;
      if (!ok) throw new TorchFormatError(`zip entry ${k + 1}: its name has the byte 0x${b.toString(16).padStart(2, '0')}; a PyTorch checkpoint's names are ASCII letters, digits and ./_-`);
    }
    const name = String.fromCharCode(...nameBytes);
    // ZIP64 extra field: the 0xffffffff fields, in order
    let e = at + 46 + nameLen;
    const eEnd = e + extraLen;
    while (e + 4 <= eEnd) {
      const id = u16(cd, e);
      const len = u16(cd, e + 2);
      if (e + 4 + len > eEnd) corrupt(`entry ${JSON.stringify(name)}: its extra field is cut short`);
      if (id === 0x0001) {
        let p = e + 4;
        const next = (what: string) => {
          if (p + 8 > e + 4 + len) corrupt(`entry ${JSON.stringify(name)}: its ZIP64 field is too short`);
          const v = u64(cd, p, what);
          p += 8;
          return v;
        };
        if (size === 0xffffffff) size = next('an entry size');
        if (compSize === 0xffffffff) compSize = next('an entry size');
        if (headerOffset === 0xffffffff) headerOffset = next('an entry offset');
      }
      e += 4 + len;
    }
    at += 46 + nameLen + extraLen + commentLen;
    if (flags & 0x41) throw new TorchFormatError(`entry ${JSON.stringify(name)} is encrypted`);
    raw.push({ name, method, compSize, size, headerOffset, crc32 });
  }
  if (at !== cd.length) corrupt('the central directory has trailing bytes');

  // One prefix: the folder of data.pkl
  const pkl = raw.filter((x) => /^[A-Za-z0-9._-]+\/data\.pkl$/.test(x.name));
  if (pkl.length !== 1) {
    throw new TorchFormatError(pkl.length === 0 ? 'a zip without <name>/data.pkl: not a PyTorch checkpoint' : 'a zip with more than one data.pkl: not a PyTorch checkpoint');
  }
  const prefix = pkl[0].name.slice(0, -'/data.pkl'.length);
  if (prefix === '.' || prefix === '..') throw new TorchFormatError(`zip folder ${JSON.stringify(prefix)} is not a name`);
  const entries = new Map<string, TorchZipEntry>();
  const spans: [number, number, string][] = [];
  for (const x of raw) {
    if (!x.name.startsWith(prefix + '/')) throw new TorchFormatError(`zip entry ${JSON.stringify(x.name)} is outside the checkpoint's folder ${JSON.stringify(prefix)}`);
    const name = x.name.slice(prefix.length + 1);
    if (name.endsWith('/')) continue; // a folder entry
    if (name.split('/').some((s) => s === '' || s === '.' || s === '..')) throw new TorchFormatError(`zip entry ${JSON.stringify(x.name)}: not a canonical name`);
    if (entries.has(name)) throw new TorchFormatError(`zip entry ${JSON.stringify(x.name)} appears twice`);
    if (x.method !== 0) throw new TorchFormatError(`zip entry ${JSON.stringify(x.name)} is compressed (method ${x.method}); torch.save stores entries uncompressed: re-save the checkpoint with torch.save`);
    if (x.compSize !== x.size) corrupt(`entry ${JSON.stringify(x.name)}: stored with different compressed and inflated sizes`);
    const lh = r.read(x.headerOffset, 30);
    if (lh.length < 30 || u32(lh, 0) !== 0x04034b50) corrupt(`entry ${JSON.stringify(x.name)}: its local header is missing or damaged`);
    const ln = u16(lh, 26);
    const le = u16(lh, 28);
    const localName = r.read(x.headerOffset + 30, ln);
    if (ln !== x.name.length || String.fromCharCode(...localName) !== x.name) corrupt(`entry ${JSON.stringify(x.name)}: its local header names another file`);
    if (u16(lh, 8) !== 0) corrupt(`entry ${JSON.stringify(x.name)}: its local header gives another compression method`);
    const offset = x.headerOffset + 30 + ln + le;
    if (offset + x.size > cdOffset) corrupt(`entry ${JSON.stringify(x.name)}: its ${x.size} bytes run past the end of the entries (a truncated file?)`);
    entries.set(name, { name, offset, size: x.size, crc32: x.crc32 });
    spans.push([x.headerOffset, offset + x.size, x.name]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) if (spans[i][0] < spans[i - 1][1]) throw new TorchFormatError(`zip entry ${JSON.stringify(spans[i][2])} overlaps ${JSON.stringify(spans[i - 1][2])}`);
  return { prefix, entries };
}

/** An entry's bytes, CRC-checked against the central directory. */
export function readTorchEntry(r: RandomAccess, e: TorchZipEntry, prefix: string): Uint8Array {
  const bytes = r.read(e.offset, e.size);
  if (bytes.length !== e.size) throw new TorchFormatError(`zip entry ${JSON.stringify(`${prefix}/${e.name}`)} is cut short (a truncated file)`);
  if (crc32(bytes) !== e.crc32) throw new TorchFormatError(`zip entry ${JSON.stringify(`${prefix}/${e.name}`)}: CRC-32 mismatch (the file is damaged)`);
  return bytes;
}
