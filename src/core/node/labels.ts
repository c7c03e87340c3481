/**
 * Importing labels into the library, with provenance: LIDC-IDRI XML, RSNA STR PE 2020 train.csv,
 * DICOM SEG, and CSVs of patient attributes. Each import is one `label_sources` row; importing
 * the same file again replaces its labels. Reports say what matched the index, what did not, and why.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import Papa from 'papaparse';
import { groupNodules, locate, parseLidcXml, type LocatedNodule } from '../labels/lidc';
import { area, roisToMask } from '../labels/raster';
import type { Database } from './sqlite';
import { readSeg } from './seg';

export type LabelKind = 'lidc-xml' | 'rsna-csv' | 'dicom-seg' | 'attributes-csv';

export interface UnmatchedRoi {
  sopUid: string;
  reader: number;
  nodule: string;
  z: number | null;
  reason: string;
}

export interface LidcImportReport {
  kind: 'lidc-xml';
  file: string;
  sourceId: number;
  seriesInstanceUid: string;
  seriesIndexed: boolean;
  readers: number;
  nodules: number;
  smallNodules: number;
  nonNodules: number;
  /** Nodules after grouping the readers' annotations of the same lesion. */
  groupedNodules: number;
  rois: number;
  matchedRois: number;
  unmatchedRois: UnmatchedRoi[];
  warnings: string[];
}

export interface CsvImportReport {
  kind: 'rsna-csv' | 'attributes-csv';
  file: string;
  sourceId: number;
  rows: number;
  matchedRows: number;
  unmatchedRows: number;
  /** The first unmatched rows, with the reason. */
  unmatched: { row: number; key: string; reason: string }[];
  exams?: number;
  positiveImages?: number;
  warnings: string[];
}

export interface SegImportReport {
  kind: 'dicom-seg';
  file: string;
  sourceId: number;
  seriesInstanceUid: string;
  segments: { number: number; label: string; frames: number; areaPx: number }[];
  frames: number;
  matchedFrames: number;
  unmatchedFrames: { frame: number; sopUid: string; reason: string }[];
  warnings: string[];
}

export type ImportReport = LidcImportReport | CsvImportReport | SegImportReport;

const MAX_LISTED = 200;

function sha1(path: string): string {
  return createHash('sha1').update(readFileSync(path)).digest('hex');
}

/** Replaces any earlier import of the same file, then records the new source. */
function newSource(db: Database, kind: LabelKind, path: string, seriesUid = ''): number {
  db.prepare('DELETE FROM label_sources WHERE kind = ? AND path = ?').run(kind, path);
  return (
    db
      .prepare('INSERT INTO label_sources (kind, path, sha1, imported_at, series_uid) VALUES (?, ?, ?, ?, ?) RETURNING id')
      .get(kind, path, sha1(path), new Date().toISOString(), seriesUid) as { id: number }
  ).id;
}

function saveReport(db: Database, sourceId: number, report: unknown) {
  db.prepare('UPDATE label_sources SET report = ? WHERE id = ?').run(JSON.stringify(report), sourceId);
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

/** Detects the kind of a label file from its name and first bytes. */
export function detectLabelKind(path: string): LabelKind {
  const head = readFileSync(path).subarray(0, 4096);
  const textHead = head.toString('latin1');
  if (head.length >= 132 && textHead.slice(128, 132) === 'DICM') return 'dicom-seg';
  if (/<LidcReadMessage/.test(textHead) || (/\.xml$/i.test(path) && /LidcReadMessage/.test(readFileSync(path, 'utf8')))) return 'lidc-xml';
  const firstLine = textHead.split(/\r?\n/)[0].toLowerCase();
  if (firstLine.includes('sopinstanceuid') && firstLine.includes('pe_present_on_image')) return 'rsna-csv';
  if (/(^|,)\s*(patient_?id|patientid|study_?instance_?uid|studyinstanceuid)\s*(,|$)/.test(firstLine) && /(sex|age|ethnic|race)/.test(firstLine))
    return 'attributes-csv';
  throw new Error(
    `${path}: not a label file this app reads (LIDC-IDRI XML, RSNA STR PE train.csv, DICOM SEG, or a CSV of patient attributes with a patient_id or study_uid column and sex/age/ethnic_group columns)`,
  );
}

export async function importLabels(db: Database, file: string): Promise<ImportReport> {
  const path = resolve(file);
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
  } catch {
    throw new Error(`label file not found: ${path}`);
  }
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
  let doc;
  try {
    doc = parseLidcXml(readFileSync(path, 'utf8'));
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
    sourceId = newSource(db, 'lidc-xml', path, doc.seriesInstanceUid);
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

/** Streams a CSV file row by row (header row gives the keys). */
async function eachCsvRow(path: string, onRow: (row: Record<string, string>, index: number) => void): Promise<string[]> {
  let fields: string[] = [];
  let index = 0;
  await new Promise<void>((resolveDone, reject) => {
    Papa.parse<Record<string, string>>(createReadStream(path, 'utf8') as unknown as File, {
      header: true,
      skipEmptyLines: true,
      transformHeader: (h) => h.trim(),
      step: (res) => {
        if (index === 0) fields = res.meta.fields ?? [];
        onRow(res.data, index++);
      },
      complete: () => resolveDone(),
      error: (err) => reject(new Error(`${path}: ${err.message}`)),
    });
  });
  return fields;
}

const RSNA_KEYS = ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'];

export async function importRsnaCsv(db: Database, path: string): Promise<CsvImportReport> {
  const lookup = instanceBySop(db);
  const unmatched: CsvImportReport['unmatched'] = [];
  const warnings: string[] = [];
  let rows = 0;
  let matchedRows = 0;
  let positives = 0;
  const exams = new Set<string>();
  const sourceId = newSource(db, 'rsna-csv', path);
  const insImage = db.prepare('INSERT OR REPLACE INTO image_labels (source_ref, sop_uid, name, value) VALUES (?, ?, ?, ?)');
  const insExam = db.prepare('INSERT OR REPLACE INTO exam_labels (source_ref, study_uid, series_uid, name, value) VALUES (?, ?, ?, ?, ?)');
  let batch: Record<string, string>[] = [];
  let examColumns: string[] = [];
  const flush = db.transaction((items: Record<string, string>[]) => {
    for (const row of items) {
      rows++;
      const sop = (row.SOPInstanceUID ?? '').trim();
      const seriesUid = (row.SeriesInstanceUID ?? '').trim();
      const studyUid = (row.StudyInstanceUID ?? '').trim();
      const pe = Number(row.pe_present_on_image);
      if (!sop || !Number.isFinite(pe)) {
        if (unmatched.length < MAX_LISTED) unmatched.push({ row: rows, key: sop, reason: 'missing SOPInstanceUID or pe_present_on_image' });
        continue;
      }
      const inst = lookup(sop);
      if (!inst) {
        if (unmatched.length < MAX_LISTED) unmatched.push({ row: rows, key: sop, reason: 'no indexed image has this SOP Instance UID' });
      } else {
        matchedRows++;
        if (seriesUid && inst.series_uid !== seriesUid && warnings.length < 50)
          warnings.push(`row ${rows}: image ${sop} is in series ${inst.series_uid}, the CSV says ${seriesUid}`);
      }
      insImage.run(sourceId, sop, 'pe_present_on_image', pe);
      if (pe > 0) positives++;
      if (!exams.has(seriesUid)) {
        exams.add(seriesUid);
        for (const c of examColumns) {
          const v = Number(row[c]);
          if (Number.isFinite(v)) insExam.run(sourceId, studyUid, seriesUid, c, v);
        }
      }
    }
  });
  const fields = await eachCsvRow(path, (row, i) => {
    if (i === 0) examColumns = Object.keys(row).filter((k) => !RSNA_KEYS.includes(k) && k !== 'pe_present_on_image');
    batch.push(row);
    if (batch.length >= 5000) {
      flush(batch);
      batch = [];
    }
  });
  flush(batch);
  const missing = RSNA_KEYS.filter((k) => !fields.includes(k));
  if (missing.length) warnings.push(`columns missing: ${missing.join(', ')}`);
  const report: CsvImportReport = {
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
  };
  saveReport(db, sourceId, report);
  return report;
}

const pick = (row: Record<string, string>, names: string[]) => {
  for (const k of Object.keys(row)) if (names.includes(k.toLowerCase().replace(/[^a-z]/g, ''))) return (row[k] ?? '').trim();
  return '';
};

export async function importAttributesCsv(db: Database, path: string): Promise<CsvImportReport> {
  const unmatched: CsvImportReport['unmatched'] = [];
  const sourceId = newSource(db, 'attributes-csv', path);
  const ins = db.prepare('INSERT OR REPLACE INTO patient_attributes (source_ref, key, sex, age_years, ethnic_group) VALUES (?, ?, ?, ?, ?)');
  const byPatient = db.prepare('SELECT 1 FROM patients WHERE patient_id = ?');
  const byStudy = db.prepare('SELECT 1 FROM studies WHERE study_uid = ?');
  const rowsAll: Record<string, string>[] = [];
  await eachCsvRow(path, (row) => rowsAll.push(row));
  let matched = 0;
  db.transaction(() => {
    rowsAll.forEach((row, i) => {
      const key = pick(row, ['patientid', 'studyinstanceuid', 'studyuid']);
      if (!key) {
        unmatched.push({ row: i + 1, key: '', reason: 'no patient_id or study_uid value' });
        return;
      }
      const sexRaw = pick(row, ['sex', 'patientsex', 'gender']).toUpperCase();
      const sex = sexRaw.startsWith('M') ? 'M' : sexRaw.startsWith('F') ? 'F' : sexRaw ? 'O' : '';
      const ageRaw = pick(row, ['age', 'ageyears', 'patientage']);
      const age = ageRaw === '' ? null : Number.parseFloat(ageRaw);
      const ethnic = pick(row, ['ethnicgroup', 'ethnicity', 'race']);
      ins.run(sourceId, key, sex, age !== null && Number.isFinite(age) ? age : null, ethnic);
      if (byPatient.get(key) || byStudy.get(key)) matched++;
      else if (unmatched.length < MAX_LISTED) unmatched.push({ row: i + 1, key, reason: 'no indexed patient or study with this key' });
    });
  })();
  const report: CsvImportReport = {
    kind: 'attributes-csv',
    file: path,
    sourceId,
    rows: rowsAll.length,
    matchedRows: matched,
    unmatchedRows: rowsAll.length - matched,
    unmatched,
    warnings: [],
  };
  saveReport(db, sourceId, report);
  return report;
}

export async function importSeg(db: Database, path: string): Promise<SegImportReport> {
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
    sourceId = newSource(db, 'dicom-seg', path, seg.referencedSeriesUid);
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

export interface LabelSourceRow {
  id: number;
  kind: LabelKind;
  file: string;
  name: string;
  importedAt: string;
  seriesInstanceUid: string;
  report: ImportReport;
}

export function listLabelSources(db: Database): LabelSourceRow[] {
  return (
    db.prepare('SELECT id, kind, path, imported_at, series_uid, report FROM label_sources ORDER BY id').all() as {
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
