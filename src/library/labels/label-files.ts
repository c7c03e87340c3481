/**
 * What every label format's import uses: the label source of an import (one `label_sources` row per
 * file; importing the same file again replaces its labels, a streamed import writes under a
 * provisional path until it succeeds), instance look-ups, bounded reading (the head of a file,
 * CSVs streamed in 1 MiB chunks with a cap on the length of one record), and the facts about a
 * file's first KiB that the formats' sniffers look at.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { closeSync, constants, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import Papa from 'papaparse';
import type { Database } from '../db/sqlite';

export const MiB = 2 ** 20;
/** Bytes the kind is told from: nothing past them is read before the size cap is checked. */
export const SNIFF_BYTES = 1024;
/** Longest CSV record (RSNA rows are about 300 bytes): a file without line breaks is refused here. */
export const MAX_CSV_RECORD = MiB;
/** Unmatched items a report lists (their count is reported in full). */
export const MAX_LISTED = 200;

export const sha1 = (bytes: Uint8Array) => createHash('sha1').update(bytes).digest('hex');

/** SHA-1 of a file, streamed. */
export async function sha1File(path: string): Promise<string> {
  const h = createHash('sha1');
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * The kinds a label source may be recorded with: the registered formats' (label-formats.ts sets
 * this when it loads). It stands for the CHECK constraint the label_sources table had, so that a
 * format is added without a migration; none is known before the registry is loaded.
 */
let knownKind: (kind: string) => boolean = () => false;
export function acceptLabelKinds(known: (kind: string) => boolean): void {
  knownKind = known;
}

/** Replaces any earlier import of the same file, then records the new source (of a registered kind). */
export function newSource(db: Database, kind: string, path: string, hash: string, seriesUid = ''): number {
  if (!knownKind(kind)) throw new Error(`label kind '${kind}' is not a registered label format (src/library/labels/label-formats.ts)`);
  db.prepare('DELETE FROM label_sources WHERE kind = ? AND path = ?').run(kind, path);
  return (
    db
      .prepare('INSERT INTO label_sources (kind, path, sha1, imported_at, series_uid) VALUES (?, ?, ?, ?, ?) RETURNING id')
      .get(kind, path, hash, new Date().toISOString(), seriesUid) as { id: number }
  ).id;
}

export function saveReport(db: Database, sourceId: number, report: unknown) {
  db.prepare('UPDATE label_sources SET report = ? WHERE id = ?').run(JSON.stringify(report), sourceId);
}

/**
 * A streamed import writes in batches, so its source is recorded under a provisional path while it
 * runs (`importing:<pid>:<uuid>:<path>`, never listed) and swapped for the earlier import of the same
 * file in one transaction at the end; a failure deletes it. Provisional rows of a process that died
 * mid-import are removed by the next import.
 */
export const PROVISIONAL = 'importing:';
const ownImports = new Set<number>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function dropStaleImports(db: Database): void {
  const rows = db.prepare(`SELECT id, path FROM label_sources WHERE substr(path, 1, ${PROVISIONAL.length}) = ?`).all(PROVISIONAL) as { id: number; path: string }[];
  for (const r of rows) {
    const pid = Number(r.path.slice(PROVISIONAL.length).split(':')[0]);
    const stale = pid === process.pid ? !ownImports.has(r.id) : !Number.isInteger(pid) || !alive(pid);
    if (stale) db.prepare('DELETE FROM label_sources WHERE id = ?').run(r.id);
  }
}

export async function withProvisionalSource<R>(db: Database, kind: string, path: string, work: (sourceId: number, hash: Hash) => Promise<R>): Promise<R> {
  dropStaleImports(db);
  const hash = createHash('sha1');
  const sourceId = newSource(db, kind, `${PROVISIONAL}${process.pid}:${randomUUID()}:${path}`, '');
  ownImports.add(sourceId);
  try {
    const report = await work(sourceId, hash);
    db.transaction(() => {
      db.prepare('DELETE FROM label_sources WHERE kind = ? AND path = ? AND id != ?').run(kind, path, sourceId);
      db.prepare('UPDATE label_sources SET path = ?, sha1 = ?, imported_at = ? WHERE id = ?').run(path, hash.digest('hex'), new Date().toISOString(), sourceId);
      saveReport(db, sourceId, report);
    })();
    return report;
  } catch (err) {
    db.prepare('DELETE FROM label_sources WHERE id = ?').run(sourceId);
    throw err;
  } finally {
    ownImports.delete(sourceId);
  }
}

export interface InstanceLookup {
  id: number;
  series_uid: string;
  rows: number | null;
  columns: number | null;
  image_position: string | null;
  pixel_spacing: string | null;
}

export function instanceBySop(db: Database) {
  const q = db.prepare(
    `SELECT i.id, se.series_uid, i.rows, i.columns, i.image_position, i.pixel_spacing
     FROM instances i JOIN series se ON se.id = i.series_ref WHERE i.sop_uid = ?`,
  );
  return (sop: string) => q.get(sop) as InstanceLookup | undefined;
}

/**
 * The Media Storage SOP Class UID of a DICOM file's meta group (explicit VR little endian, as Part
 * 10 requires), from its first bytes; null when it is not there.
 */
export function metaSopClass(bytes: Uint8Array): string | null {
  for (let i = 132; i + 8 <= bytes.length; ) {
    const group = bytes[i] | (bytes[i + 1] << 8);
    if (group !== 0x0002) return null;
    const element = bytes[i + 2] | (bytes[i + 3] << 8);
    const vr = String.fromCharCode(bytes[i + 4], bytes[i + 5]);
    const long = vr === 'OB' || vr === 'OW' || vr === 'UN' || vr === 'SQ' || vr === 'UT';
    const len = long ? (i + 12 <= bytes.length ? bytes[i + 8] | (bytes[i + 9] << 8) | (bytes[i + 10] << 16) | (bytes[i + 11] << 24) : -1) : bytes[i + 6] | (bytes[i + 7] << 8);
    const start = i + (long ? 12 : 8);
    if (len < 0 || start + len > bytes.length) return null;
    if (element === 0x0002) return String.fromCharCode(...bytes.subarray(start, start + len)).replace(/[\0 ]+$/, '');
    i = start + len;
  }
  return null;
}

/** The XML root element's name from the start of a document (after a BOM, declaration, comments, doctype), or null. */
export function xmlRoot(text: string): string | null {
  let t = text.replace(/^\uFEFF/, '');
  for (;;) {
    t = t.replace(/^\s+/, '');
    const skip = /^(<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<!DOCTYPE[^>]*>)/i.exec(t);
    if (!skip) break;
    t = t.slice(skip[0].length);
  }
  return /^<([\w.-]+:)?([\w.-]+)[\s>/]/.exec(t)?.[2] ?? null;
}

/** Refuses a file larger than its format's cap, naming it. */
export function checkSize(format: { noun: string; maxBytes: number }, bytes: number, name: string): void {
  if (bytes > format.maxBytes) throw new Error(`${name}: ${bytes} bytes, over the ${format.maxBytes / MiB} MiB cap of a ${format.noun}`);
}

/** What a format's sniffer sees of a file: facts about its first bytes (at most SNIFF_BYTES). */
export interface LabelFileHead {
  /** The first bytes. */
  bytes: Uint8Array;
  /** `DICM` at byte 128 (a DICOM file). */
  dicom: boolean;
  /** A DICOM file's Media Storage SOP Class UID (0002,0002) when its file meta holds it within the first bytes, else null. */
  dicomSopClass?: string | null;
  /** Not DICOM, and the text starts with '<' (after a BOM and white space): an XML document. */
  xml: boolean;
  /** The XML root element's local name, or null. */
  xmlRoot: string | null;
  /** Not DICOM or XML, and line 1 holds a NUL: binary data. */
  binary: boolean;
  /** Not DICOM or XML, and line 1 does not end within SNIFF_BYTES. */
  longLine: boolean;
  /** A CSV header's candidate: line 1 in lower case, when the file is none of the above; else null. */
  csvHeader: string | null;
}

/** The facts a format's sniffer reads from the first bytes of a file. */
export function labelFileHead(head: Uint8Array): LabelFileHead {
  const bytes = head.subarray(0, SNIFF_BYTES);
  const latin = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  const none = { bytes, xml: false, xmlRoot: null, binary: false, longLine: false, csvHeader: null };
  if (bytes.length >= 132 && latin.slice(128, 132) === 'DICM') return { ...none, dicom: true, dicomSopClass: metaSopClass(bytes) };
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').replace(/^\uFEFF/, '');
  if (/^\s*</.test(text)) return { ...none, dicom: false, xml: true, xmlRoot: xmlRoot(text) };
  const newline = text.search(/\r?\n/);
  const firstLine = (newline < 0 ? text : text.slice(0, newline)).toLowerCase();
  if (firstLine.includes('\0')) return { ...none, dicom: false, binary: true };
  if (newline < 0 && bytes.length >= SNIFF_BYTES) return { ...none, dicom: false, longLine: true };
  return { ...none, dicom: false, csvHeader: firstLine };
}

/**
 * The first bytes and the size of a label file, read without blocking (a FIFO or device is refused
 * before anything waits on it); throws naming the file when it is missing or not a regular file.
 */
export function readHead(path: string): { head: Uint8Array; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch {
    throw new Error(`label file not found: ${path}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path}: not a regular file`);
    const head = Buffer.alloc(Math.min(SNIFF_BYTES, st.size));
    let got = 0;
    while (got < head.length) {
      const n = readSync(fd, head, got, head.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return { head: head.subarray(0, got), size: st.size };
  } finally {
    closeSync(fd);
  }
}

/**
 * Streams a CSV file: the header, then batches of records (arrays of fields) as each 1 MiB chunk
 * arrives. Records end at line breaks outside quotes (RFC 4180); a record longer than
 * MAX_CSV_RECORD is refused naming the file and the line it starts on. Memory: one chunk, one batch
 * and the longest record.
 */
export async function streamCsv(path: string, hash: Hash, onHeader: (fields: string[]) => void, onRecords: (records: string[][]) => void): Promise<void> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  /**
   * Quote state at the end of what was scanned, as Papa reads it: a quote opens a quoted field at
   * the start of a field (or right after a closing quote: "" is an escaped quote); elsewhere it is
   * a literal character.
   */
  let quoted = false;
  let justClosed = false;
  let prev = 10;
  /** Physical line (1-based) on which `pending` starts, and lines seen so far. */
  let pendingLine = 1;
  let lines = 1;
  let header: string[] | null = null;
  let first = true;
  const tooLong = (line: number): never => {
    throw new Error(`${path}: line ${line} is longer than ${MAX_CSV_RECORD / MiB} MiB without a line break (or opens a quote it never closes): not a label CSV`);
  };
  const parse = (text: string) => {
    if (!text) return;
    // Complete records without a quote or CR (RSNA's train.csv has none) are split at line breaks
    // and commas, as Papa would split them; anything else goes through Papa.
    let records = text.indexOf('"') < 0 && text.indexOf('\r') < 0 ? splitPlain(text) : Papa.parse<string[]>(text, { delimiter: ',', skipEmptyLines: true }).data;
    if (!header && records.length > 0) {
      header = records[0].map((h) => h.trim());
      onHeader(header);
      records = records.slice(1);
    }
    if (records.length) onRecords(records);
  };
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) {
    hash.update(chunk as Buffer);
    let text = decoder.write(chunk as Buffer);
    if (first) {
      text = text.replace(/^\uFEFF/, '');
      first = false;
    }
    if (!quoted && text.indexOf('"') < 0) {
      // No quote open and none in the chunk: every line break ends a record (found with indexOf,
      // not character by character), each checked against the record cap.
      let start = 0;
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) {
        if (i - start + (start === 0 ? pending.length : 0) > MAX_CSV_RECORD) tooLong(start === 0 ? pendingLine : lines);
        lines++;
        start = i + 1;
      }
      if (text.length > 0) prev = text.charCodeAt(text.length - 1);
      justClosed = false;
      if (start === 0) {
        pending += text;
      } else {
        parse(pending + text.slice(0, start));
        pending = text.slice(start);
        pendingLine = lines;
      }
      if (pending.length > MAX_CSV_RECORD) tooLong(pendingLine);
      continue;
    }
    // The last line break outside quotes ends the complete records of this chunk.
    let boundary = -1;
    let recordStart = 0;
    let startLine = pendingLine;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        if (quoted) {
          quoted = false;
          justClosed = true;
        } else if (justClosed || prev === 44 || prev === 10 || prev === 13) {
          quoted = true;
          justClosed = false;
        }
        prev = c;
        continue;
      }
      justClosed = false;
      prev = c;
      if (c === 10) {
        lines++;
        if (!quoted) {
          if (i - recordStart + (recordStart === 0 ? pending.length : 0) > MAX_CSV_RECORD) tooLong(startLine);
          boundary = i;
          recordStart = i + 1;
          startLine = lines;
        }
      }
    }
    if (boundary < 0) {
      pending += text;
    } else {
      parse(pending + text.slice(0, boundary + 1));
      pending = text.slice(boundary + 1);
      pendingLine = startLine;
    }
    if (pending.length > MAX_CSV_RECORD) tooLong(pendingLine);
  }
  parse(pending + decoder.end());
}

/** Records of CSV text holding no quote and no CR: lines (empty ones skipped, as Papa's skipEmptyLines) split at commas. */
function splitPlain(text: string): string[][] {
  const out: string[][] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    if (line !== '') out.push(line.split(','));
    start = end + 1;
  }
  return out;
}

/**
 * A copy of a field kept past its chunk: fields are slices of the chunk's text, and a kept slice
 * would keep the whole chunk alive (a 1 MiB string per distinct exam).
 */
export const own = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

/** Runs `write` over batches of at most `size` records, each batch in one transaction. */
export function batched(db: Database, write: (records: string[][]) => void, size = 5000) {
  const tx = db.transaction(write);
  return (records: string[][]) => {
    for (let i = 0; i < records.length; i += size) tx(records.slice(i, i + size));
  };
}
