/**
 * Importing labels into the library, with provenance: LIDC-IDRI XML, RSNA STR PE 2020 train.csv,
 * DICOM SEG, and CSVs of patient attributes. Each import is one `label_sources` row; importing
 * the same file again replaces its labels. Reports say what matched the index, what did not, and why.
 *
 * Bounded work whatever the file: the kind is told from the first KiB (the XML root element
 * `LidcReadMessage`, the CSV header's columns, `DICM` at offset 128), each kind has a size cap
 * (`LABEL_SIZE_CAPS`), and CSVs are streamed in 1 MiB chunks, written in batches, with a cap on the
 * length of one record, so memory does not grow with the file.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { closeSync, constants, createReadStream, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import Papa from 'papaparse';
import { groupNodules, locate, parseLidcXml, type LocatedNodule } from '../../core/labels/lidc';
import { area, roisToMask } from '../../core/labels/raster';
import type { Database } from '../db/sqlite';
import { readSeg } from './seg';
import type { CsvImportReport, ImportReport, LabelKind, LidcImportReport, SegImportReport, UnmatchedRoi } from '../../shared/results';
import type { LabelSource } from '../../shared/types';

/** The reports are declared in src/shared/results.ts, where the contract carries them. */
export type { CsvImportReport, ImportReport, LabelKind, LidcImportReport, SegImportReport, UnmatchedRoi };

const MiB = 2 ** 20;
/** Bytes the kind is told from: nothing past them is read before the size cap is checked. */
export const SNIFF_BYTES = 1024;
/**
 * Largest file of each kind. CSVs stream (memory stays bounded), so their cap bounds time and the
 * database: the full RSNA STR PE train.csv (1.79 M rows) is about 0.4 GB. LIDC XML is parsed as one
 * document (real files are under 2 MB). A DICOM SEG is read whole: 1 GiB holds a bit-packed SEG of
 * 100 segments over 300 slices of 512 x 512.
 */
export const LABEL_SIZE_CAPS: Record<LabelKind, number> = {
  'lidc-xml': 50 * MiB,
  'rsna-csv': 1024 * MiB,
  'attributes-csv': 1024 * MiB,
  'dicom-seg': 1024 * MiB,
};
/** Longest CSV record (RSNA rows are about 300 bytes): a file without line breaks is refused here. */
export const MAX_CSV_RECORD = MiB;

const MAX_LISTED = 200;

const sha1 = (bytes: Uint8Array) => createHash('sha1').update(bytes).digest('hex');

/** SHA-1 of a file, streamed. */
async function sha1File(path: string): Promise<string> {
  const h = createHash('sha1');
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Replaces any earlier import of the same file, then records the new source. */
function newSource(db: Database, kind: LabelKind, path: string, hash: string, seriesUid = ''): number {
  db.prepare('DELETE FROM label_sources WHERE kind = ? AND path = ?').run(kind, path);
  return (
    db
      .prepare('INSERT INTO label_sources (kind, path, sha1, imported_at, series_uid) VALUES (?, ?, ?, ?, ?) RETURNING id')
      .get(kind, path, hash, new Date().toISOString(), seriesUid) as { id: number }
  ).id;
}

function saveReport(db: Database, sourceId: number, report: unknown) {
  db.prepare('UPDATE label_sources SET report = ? WHERE id = ?').run(JSON.stringify(report), sourceId);
}

/**
 * A streamed import writes in batches, so its source is recorded under a provisional path while it
 * runs (`importing:<pid>:<uuid>:<path>`, never listed) and swapped for the earlier import of the same
 * file in one transaction at the end; a failure deletes it. Provisional rows of a process that died
 * mid-import are removed by the next import.
 */
const PROVISIONAL = 'importing:';
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

async function withProvisionalSource<R extends CsvImportReport>(db: Database, kind: LabelKind, path: string, work: (sourceId: number, hash: Hash) => Promise<R>): Promise<R> {
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

interface InstanceLookup {
  id: number;
  series_uid: string;
  rows: number | null;
  columns: number | null;
  image_position: string | null;
  pixel_spacing: string | null;
}

function instanceBySop(db: Database) {
  const q = db.prepare(
    `SELECT i.id, se.series_uid, i.rows, i.columns, i.image_position, i.pixel_spacing
     FROM instances i JOIN series se ON se.id = i.series_ref WHERE i.sop_uid = ?`,
  );
  return (sop: string) => q.get(sop) as InstanceLookup | undefined;
}

const WHAT_WE_READ =
  'LIDC-IDRI XML, RSNA STR PE train.csv, DICOM SEG, or a CSV of patient attributes with a patient_id or study_uid column and sex/age/ethnic_group columns';

/** The XML root element's name from the start of a document (after a BOM, declaration, comments, doctype), or null. */
function xmlRoot(text: string): string | null {
  let t = text.replace(/^\uFEFF/, '');
  for (;;) {
    t = t.replace(/^\s+/, '');
    const skip = /^(<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<!DOCTYPE[^>]*>)/i.exec(t);
    if (!skip) break;
    t = t.slice(skip[0].length);
  }
  return /^<([\w.-]+:)?([\w.-]+)[\s>/]/.exec(t)?.[2] ?? null;
}

/**
 * The kind of a label file from its first bytes (at most SNIFF_BYTES are looked at) and its name;
 * throws naming the file when it is none of the kinds this app reads.
 */
export function sniffLabelKind(head: Uint8Array, name: string): LabelKind {
  const bytes = head.subarray(0, SNIFF_BYTES);
  const latin = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  if (bytes.length >= 132 && latin.slice(128, 132) === 'DICM') return 'dicom-seg';
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').replace(/^\uFEFF/, '');
  if (/^\s*</.test(text)) {
    const root = xmlRoot(text);
    if (root === 'LidcReadMessage') return 'lidc-xml';
    throw new Error(
      root
        ? `${name}: an XML file whose root element is <${root}>, not an LIDC-IDRI <LidcReadMessage>: not a label file this app reads (${WHAT_WE_READ})`
        : `${name}: no XML root element in its first ${SNIFF_BYTES} bytes: not a label file this app reads (${WHAT_WE_READ})`,
    );
  }
  const newline = text.search(/\r?\n/);
  const firstLine = (newline < 0 ? text : text.slice(0, newline)).toLowerCase();
  if (firstLine.includes('\0')) throw new Error(`${name}: not a label file this app reads: binary data without the DICOM preamble (DICM at byte 128) (${WHAT_WE_READ})`);
  if (newline < 0 && bytes.length >= SNIFF_BYTES)
    throw new Error(`${name}: not a label file this app reads: line 1 is longer than ${SNIFF_BYTES} bytes, no CSV header (${WHAT_WE_READ})`);
  if (firstLine.includes('sopinstanceuid') && firstLine.includes('pe_present_on_image')) return 'rsna-csv';
  if (/(^|,)\s*"?(patient_?id|patientid|study_?instance_?uid|studyinstanceuid|study_?uid)"?\s*(,|$)/.test(firstLine) && /(sex|age|ethnic|race)/.test(firstLine))
    return 'attributes-csv';
  throw new Error(`${name}: not a label file this app reads (${WHAT_WE_READ})`);
}

/** Refuses a file larger than its kind's cap, naming it. */
export function checkLabelSize(kind: LabelKind, bytes: number, name: string): void {
  const cap = LABEL_SIZE_CAPS[kind];
  if (bytes > cap) throw new Error(`${name}: ${bytes} bytes, over the ${cap / MiB} MiB cap of a ${kindName[kind]}`);
}

const kindName: Record<LabelKind, string> = {
  'lidc-xml': 'LIDC-IDRI XML file',
  'rsna-csv': 'RSNA PE CSV',
  'attributes-csv': 'patient attributes CSV',
  'dicom-seg': 'DICOM SEG',
};

/**
 * The first bytes and the size of a label file, read without blocking (a FIFO or device is refused
 * before anything waits on it); throws naming the file when it is missing or not a regular file.
 */
function readHead(path: string): { head: Uint8Array; size: number } {
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

/** Detects the kind of a label file from its first KiB (and checks its size cap). */
export function detectLabelKind(path: string): LabelKind {
  const { head, size } = readHead(path);
  const kind = sniffLabelKind(head, path);
  checkLabelSize(kind, size, path);
  return kind;
}

export async function importLabels(db: Database, file: string): Promise<ImportReport> {
  const path = resolve(file);
  const kind = detectLabelKind(path);
  switch (kind) {
    case 'lidc-xml':
      return importLidc(db, path);
    case 'rsna-csv':
      return importRsnaCsv(db, path);
    case 'attributes-csv':
      return importAttributesCsv(db, path);
    case 'dicom-seg':
      return importSeg(db, path);
  }
}

export function importLidc(db: Database, path: string): LidcImportReport {
  const bytes = readFileSync(path);
  checkLabelSize('lidc-xml', bytes.length, path);
  let doc;
  try {
    doc = parseLidcXml(bytes.toString('utf8'));
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
  const lookup = instanceBySop(db);
  const warnings: string[] = [];
  const series = db.prepare('SELECT id, pixel_spacing_row, pixel_spacing_col FROM series WHERE series_uid = ?').get(doc.seriesInstanceUid) as
    | { id: number; pixel_spacing_row: number | null; pixel_spacing_col: number | null }
    | undefined;
  if (!doc.seriesInstanceUid) warnings.push('the XML names no SeriesInstanceUid: ROIs are matched by SOP Instance UID only');
  else if (!series) warnings.push(`series ${doc.seriesInstanceUid} is not in the index: index its folder to see these labels`);
  const spacing: [number, number] = series?.pixel_spacing_row && series.pixel_spacing_col ? [series.pixel_spacing_row, series.pixel_spacing_col] : [0.7, 0.7];
  if (!series?.pixel_spacing_row) warnings.push('pixel spacing unknown: nodules grouped assuming 0.7 mm pixels');

  // Group each reader's nodules across readers (>= 3 mm nodules and small ones separately).
  const located: (LocatedNodule & { key: string })[] = [];
  doc.readers.forEach((r) =>
    r.nodules.forEach((n) => {
      const l = locate(r.session, n, spacing);
      if (l) located.push({ ...l, key: `${r.session}|${n.id}` });
    }),
  );
  const groupOf = new Map<string, string>();
  for (const small of [false, true]) {
    const subset = located.filter((l) => l.nodule.small === small);
    groupNodules(subset).forEach((g, i) => {
      for (const idx of g) groupOf.set(subset[idx].key, `${small ? 'S' : 'N'}${i + 1}`);
    });
  }

  const unmatched: UnmatchedRoi[] = [];
  let rois = 0;
  let matched = 0;
  let sourceId = 0;
  db.transaction(() => {
    sourceId = newSource(db, 'lidc-xml', path, sha1(bytes), doc.seriesInstanceUid);
    const insFinding = db.prepare(
      'INSERT INTO findings (source_ref, series_uid, kind, reader, finding_key, group_key, attributes) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id',
    );
    const insRoi = db.prepare(
      'INSERT INTO rois (finding_ref, sop_uid, frame, z, inclusion, contour, rows, columns, area_px) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?)',
    );
    for (const r of doc.readers) {
      const reader = String(r.session);
      for (const n of r.nodules) {
        const fid = (
          insFinding.get(
            sourceId,
            doc.seriesInstanceUid,
            n.small ? 'small-nodule' : 'nodule',
            reader,
            n.id,
            groupOf.get(`${r.session}|${n.id}`) ?? '',
            JSON.stringify({ ...n.characteristics, radiologistId: r.radiologistId }),
          ) as { id: number }
        ).id;
        for (const roi of n.rois) {
          rois++;
          const inst = roi.sopUid ? lookup(roi.sopUid) : undefined;
          let areaPx: number | null = null;
          if (!inst) {
            if (unmatched.length < MAX_LISTED)
              unmatched.push({
                sopUid: roi.sopUid,
                reader: r.session,
                nodule: n.id,
                z: roi.z,
                reason: roi.sopUid ? 'no indexed image has this SOP Instance UID' : 'the ROI names no imageSOP_UID',
              });
          } else {
            matched++;
            if (doc.seriesInstanceUid && inst.series_uid !== doc.seriesInstanceUid)
              warnings.push(`ROI on ${roi.sopUid} belongs to series ${inst.series_uid}, not the XML's ${doc.seriesInstanceUid}`);
            const ipp = inst.image_position ? (JSON.parse(inst.image_position) as number[]) : null;
            if (ipp && roi.z !== null && Math.abs(ipp[2] - roi.z) > 0.6)
              warnings.push(`ROI z ${roi.z} differs from the image position z ${ipp[2]} of ${roi.sopUid}`);
            if (inst.rows && inst.columns) areaPx = area(roisToMask([roi], inst.rows, inst.columns));
          }
          insRoi.run(fid, roi.sopUid, roi.z, roi.inclusion ? 1 : 0, JSON.stringify(roi.points), inst?.rows ?? null, inst?.columns ?? null, areaPx);
        }
      }
      for (const nn of r.nonNodules) {
        const fid = (insFinding.get(sourceId, doc.seriesInstanceUid, 'non-nodule', reader, nn.id, '', '{}') as { id: number }).id;
        if (nn.point) insRoi.run(fid, nn.sopUid, nn.z, 1, JSON.stringify([nn.point]), null, null, null);
      }
    }
  })();
  const groups = new Set([...groupOf.values()].filter((g) => g.startsWith('N')));
  const report: LidcImportReport = {
    kind: 'lidc-xml',
    file: path,
    sourceId,
    seriesInstanceUid: doc.seriesInstanceUid,
    seriesIndexed: !!series,
    readers: doc.readers.length,
    nodules: doc.readers.reduce((s, r) => s + r.nodules.length, 0),
    smallNodules: doc.readers.reduce((s, r) => s + r.nodules.filter((n) => n.small).length, 0),
    nonNodules: doc.readers.reduce((s, r) => s + r.nonNodules.length, 0),
    groupedNodules: groups.size,
    rois,
    matchedRois: matched,
    unmatchedRois: unmatched,
    warnings: [...new Set(warnings)].slice(0, 50),
  };
  saveReport(db, sourceId, report);
  return report;
}

/**
 * Streams a CSV file: the header, then batches of records (arrays of fields) as each 1 MiB chunk
 * arrives. Records end at line breaks outside quotes (RFC 4180); a record longer than
 * MAX_CSV_RECORD is refused naming the file and the line it starts on. Memory: one chunk, one batch
 * and the longest record.
 */
async function streamCsv(path: string, hash: Hash, onHeader: (fields: string[]) => void, onRecords: (records: string[][]) => void): Promise<void> {
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
    const res = Papa.parse<string[]>(text, { delimiter: ',', skipEmptyLines: true });
    let records = res.data;
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

/**
 * A copy of a field kept past its chunk: fields are slices of the chunk's text, and a kept slice
 * would keep the whole chunk alive (a 1 MiB string per distinct exam).
 */
const own = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

/** Runs `write` over batches of at most `size` records, each batch in one transaction. */
function batched(db: Database, write: (records: string[][]) => void, size = 5000) {
  const tx = db.transaction(write);
  return (records: string[][]) => {
    for (let i = 0; i < records.length; i += size) tx(records.slice(i, i + size));
  };
}

const RSNA_KEYS = ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'];
/** Distinct exams counted one by one; past this the count is a lower bound (real RSNA: 7,279). */
const MAX_EXAMS_COUNTED = 100_000;

export async function importRsnaCsv(db: Database, path: string): Promise<CsvImportReport> {
  checkLabelSize('rsna-csv', readHead(path).size, path);
  const lookup = instanceBySop(db);
  return withProvisionalSource(db, 'rsna-csv', path, async (sourceId, hash) => {
    const unmatched: CsvImportReport['unmatched'] = [];
    const warnings: string[] = [];
    let rows = 0;
    let matchedRows = 0;
    let positives = 0;
    const exams = new Set<string>();
    let lastExam: string | null = null;
    const insImage = db.prepare('INSERT OR REPLACE INTO image_labels (source_ref, sop_uid, name, value) VALUES (?, ?, ?, ?)');
    const insExam = db.prepare('INSERT OR REPLACE INTO exam_labels (source_ref, study_uid, series_uid, name, value) VALUES (?, ?, ?, ?, ?)');
    let fields: string[] = [];
    let col = { sop: -1, series: -1, study: -1, pe: -1 };
    let examColumns: { name: string; index: number }[] = [];
    const write = batched(db, (records) => {
      for (const r of records) {
        rows++;
        const at = (i: number) => (i >= 0 ? (r[i] ?? '') : undefined);
        const sop = (at(col.sop) ?? '').trim();
        const seriesUid = (at(col.series) ?? '').trim();
        const studyUid = (at(col.study) ?? '').trim();
        const pe = Number(at(col.pe));
        if (!sop || !Number.isFinite(pe)) {
          if (unmatched.length < MAX_LISTED) unmatched.push({ row: rows, key: own(sop), reason: 'missing SOPInstanceUID or pe_present_on_image' });
          continue;
        }
        const inst = lookup(sop);
        if (!inst) {
          if (unmatched.length < MAX_LISTED) unmatched.push({ row: rows, key: own(sop), reason: 'no indexed image has this SOP Instance UID' });
        } else {
          matchedRows++;
          if (seriesUid && inst.series_uid !== seriesUid && warnings.length < 50)
            warnings.push(own(`row ${rows}: image ${sop} is in series ${inst.series_uid}, the CSV says ${seriesUid}`));
        }
        insImage.run(sourceId, sop, 'pe_present_on_image', pe);
        if (pe > 0) positives++;
        // Rows of an exam are adjacent in train.csv; exam values are written once per run of rows
        // (INSERT OR REPLACE keeps one row per exam and column whatever the order).
        if (seriesUid !== lastExam) {
          lastExam = own(seriesUid);
          if (exams.size < MAX_EXAMS_COUNTED) exams.add(lastExam);
          for (const c of examColumns) {
            const v = Number(r[c.index]);
            if (Number.isFinite(v)) insExam.run(sourceId, studyUid, seriesUid, c.name, v);
          }
        }
      }
    });
    await streamCsv(
      path,
      hash,
      (h) => {
        fields = h.map(own);
        col = { sop: h.indexOf('SOPInstanceUID'), series: h.indexOf('SeriesInstanceUID'), study: h.indexOf('StudyInstanceUID'), pe: h.indexOf('pe_present_on_image') };
        examColumns = fields.map((name, index) => ({ name, index })).filter((c) => c.name && !RSNA_KEYS.includes(c.name) && c.name !== 'pe_present_on_image').slice(0, 64);
      },
      write,
    );
    const missing = RSNA_KEYS.filter((k) => !fields.includes(k));
    if (missing.length) warnings.push(`columns missing: ${missing.join(', ')}`);
    if (exams.size >= MAX_EXAMS_COUNTED) warnings.push(`more than ${MAX_EXAMS_COUNTED} exams: counted up to ${MAX_EXAMS_COUNTED}`);
    return {
      kind: 'rsna-csv',
      file: path,
      sourceId,
      rows,
      matchedRows,
      unmatchedRows: rows - matchedRows,
      unmatched,
      exams: exams.size,
      positiveImages: positives,
      warnings,
    } satisfies CsvImportReport;
  });
}

/** Index of the first column whose name, lower case without non-letters, is one of `names`; -1 if none. */
const columnOf = (fields: string[], names: string[]) => fields.findIndex((k) => names.includes(k.toLowerCase().replace(/[^a-z]/g, '')));

export async function importAttributesCsv(db: Database, path: string): Promise<CsvImportReport> {
  checkLabelSize('attributes-csv', readHead(path).size, path);
  return withProvisionalSource(db, 'attributes-csv', path, async (sourceId, hash) => {
    const unmatched: CsvImportReport['unmatched'] = [];
    const ins = db.prepare('INSERT OR REPLACE INTO patient_attributes (source_ref, key, sex, age_years, ethnic_group) VALUES (?, ?, ?, ?, ?)');
    const byPatient = db.prepare('SELECT 1 FROM patients WHERE patient_id = ?');
    const byStudy = db.prepare('SELECT 1 FROM studies WHERE study_uid = ?');
    let col = { key: -1, sex: -1, age: -1, ethnic: -1 };
    let rows = 0;
    let matched = 0;
    const write = batched(db, (records) => {
      for (const r of records) {
        const row = ++rows;
        const at = (i: number) => (i >= 0 ? (r[i] ?? '').trim() : '');
        const key = at(col.key);
        if (!key) {
          if (unmatched.length < MAX_LISTED) unmatched.push({ row, key: '', reason: 'no patient_id or study_uid value' });
          continue;
        }
        const sexRaw = at(col.sex).toUpperCase();
        const sex = sexRaw.startsWith('M') ? 'M' : sexRaw.startsWith('F') ? 'F' : sexRaw ? 'O' : '';
        const ageRaw = at(col.age);
        const age = ageRaw === '' ? null : Number.parseFloat(ageRaw);
        ins.run(sourceId, key, sex, age !== null && Number.isFinite(age) ? age : null, at(col.ethnic));
        if (byPatient.get(key) || byStudy.get(key)) matched++;
        else if (unmatched.length < MAX_LISTED) unmatched.push({ row, key: own(key), reason: 'no indexed patient or study with this key' });
      }
    });
    await streamCsv(
      path,
      hash,
      (h) => {
        col = {
          key: columnOf(h, ['patientid', 'studyinstanceuid', 'studyuid']),
          sex: columnOf(h, ['sex', 'patientsex', 'gender']),
          age: columnOf(h, ['age', 'ageyears', 'patientage']),
          ethnic: columnOf(h, ['ethnicgroup', 'ethnicity', 'race']),
        };
      },
      write,
    );
    return {
      kind: 'attributes-csv',
      file: path,
      sourceId,
      rows,
      matchedRows: matched,
      unmatchedRows: rows - matched,
      unmatched,
      warnings: [],
    } satisfies CsvImportReport;
  });
}

export async function importSeg(db: Database, path: string): Promise<SegImportReport> {
  checkLabelSize('dicom-seg', readHead(path).size, path);
  const hash = await sha1File(path);
  const seg = await readSeg(path);
  const lookup = instanceBySop(db);
  const unmatchedFrames: SegImportReport['unmatchedFrames'] = [];
  const warnings = [...seg.warnings];
  // Frames without a source reference are matched by position within the referenced series.
  const byPosition = seg.referencedSeriesUid
    ? (db
        .prepare(
          `SELECT i.sop_uid, i.image_position FROM instances i JOIN series se ON se.id = i.series_ref WHERE se.series_uid = ? AND i.image_position IS NOT NULL`,
        )
        .all(seg.referencedSeriesUid) as { sop_uid: string; image_position: string }[])
    : [];
  const findSop = (frame: (typeof seg.frames)[number]): string => {
    if (frame.sourceSopUid) return frame.sourceSopUid;
    if (!frame.position) return '';
    let best = '';
    let bestD = 0.5; // mm
    for (const r of byPosition) {
      const p = JSON.parse(r.image_position) as number[];
      const d = Math.hypot(p[0] - frame.position[0], p[1] - frame.position[1], p[2] - frame.position[2]);
      if (d < bestD) {
        bestD = d;
        best = r.sop_uid;
      }
    }
    return best;
  };
  let matchedFrames = 0;
  let sourceId = 0;
  const segStats = new Map<number, { frames: number; areaPx: number }>();
  db.transaction(() => {
    sourceId = newSource(db, 'dicom-seg', path, hash, seg.referencedSeriesUid);
    const findingIds = new Map<number, number>();
    const insFinding = db.prepare(
      "INSERT INTO findings (source_ref, series_uid, kind, reader, finding_key, group_key, attributes) VALUES (?, ?, 'segment', '', ?, ?, ?) RETURNING id",
    );
    for (const s of seg.segments) {
      findingIds.set(
        s.number,
        (insFinding.get(sourceId, seg.referencedSeriesUid, String(s.number), `SEG${s.number}`, JSON.stringify({ label: s.label, category: s.category, type: s.type })) as { id: number }).id,
      );
    }
    const insRoi = db.prepare(
      'INSERT INTO rois (finding_ref, sop_uid, frame, z, inclusion, mask, rows, columns, area_px) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)',
    );
    seg.frames.forEach((f, i) => {
      const fid = findingIds.get(f.segment);
      if (fid === undefined) {
        warnings.push(`frame ${i + 1} refers to segment ${f.segment}, which the SegmentSequence does not define`);
        return;
      }
      const sop = findSop(f);
      const inst = sop ? lookup(sop) : undefined;
      if (!inst) {
        if (unmatchedFrames.length < MAX_LISTED)
          unmatchedFrames.push({ frame: i + 1, sopUid: sop, reason: sop ? 'no indexed image has this SOP Instance UID' : 'the frame references no source image and no indexed plane is at its position' });
      } else matchedFrames++;
      const st = segStats.get(f.segment) ?? { frames: 0, areaPx: 0 };
      st.frames++;
      st.areaPx += f.area;
      segStats.set(f.segment, st);
      insRoi.run(fid, sop, 0, f.position?.[2] ?? null, Buffer.from(f.packed), seg.rows, seg.columns, f.area);
    });
  })();
  const report: SegImportReport = {
    kind: 'dicom-seg',
    file: path,
    sourceId,
    seriesInstanceUid: seg.referencedSeriesUid,
    segments: seg.segments.map((s) => ({ number: s.number, label: s.label, ...(segStats.get(s.number) ?? { frames: 0, areaPx: 0 }) })),
    frames: seg.frames.length,
    matchedFrames,
    unmatchedFrames,
    warnings: warnings.slice(0, 50),
  };
  saveReport(db, sourceId, report);
  return report;
}

/** An imported label file as the app lists it. */
export type LabelSourceRow = LabelSource;

/** Imported label sources (not the ones an import is still writing). */
export function listLabelSources(db: Database): LabelSourceRow[] {
  return (
    db.prepare(`SELECT id, kind, path, imported_at, series_uid, report FROM label_sources WHERE substr(path, 1, ${PROVISIONAL.length}) != ? ORDER BY id`).all(PROVISIONAL) as {
      id: number;
      kind: LabelKind;
      path: string;
      imported_at: string;
      series_uid: string;
      report: string;
    }[]
  ).map((r) => ({
    id: r.id,
    kind: r.kind,
    file: r.path,
    name: basename(r.path),
    importedAt: r.imported_at,
    seriesInstanceUid: r.series_uid,
    report: JSON.parse(r.report) as ImportReport,
  }));
}

export function removeLabelSource(db: Database, id: number): boolean {
  return db.prepare('DELETE FROM label_sources WHERE id = ?').run(id).changes > 0;
}
