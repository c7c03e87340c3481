/**
 * RSNA STR PE 2020 train.csv (one row per image: the study, series and SOP Instance UIDs,
 * pe_present_on_image and exam-level columns): per-image and per-exam labels, streamed (the full
 * file is about 0.4 GB) and written in batches.
 */
import type { CsvImportReport } from '../../../shared/results';
import type { Database } from '../../db/sqlite';
import { batched, checkSize, MAX_LISTED, MiB, own, readHead, streamCsv, withProvisionalSource } from '../label-files';
import type { LabelFormat } from './format';

const n = (v: number) => v.toLocaleString('en-US');

export const rsnaCsv: LabelFormat<CsvImportReport> = {
  kind: 'rsna-csv',
  title: 'RSNA PE CSV',
  noun: 'RSNA PE CSV',
  reads: 'RSNA STR PE train.csv',
  extensions: ['.csv'],
  // Streamed: the cap bounds time and the database (the full train.csv, 1.79 M rows, is about 0.4 GB).
  maxBytes: 1024 * MiB,
  sniff: (h) => h.csvHeader !== null && h.csvHeader.includes('sopinstanceuid') && h.csvHeader.includes('pe_present_on_image'),
  import: importRsnaCsv,
  describe: (r) => describeRows(r, { matched: 'images', what: 'RSNA PE per-image labels' }),
};

/** What a CSV import's report says (RSNA per-image labels, patient attributes), `matched` naming what its rows match. */
export function describeRows(r: CsvImportReport, o: { matched: string; what: string }): ReturnType<LabelFormat['describe']> {
  const facts: [string, string][] = [];
  const fact = (label: string, v: number | undefined) => {
    if (v !== undefined) facts.push([label, n(v)]);
  };
  fact('rows', r.rows);
  fact('matched rows', r.matchedRows);
  fact('unmatched rows', r.unmatchedRows);
  fact('exams', r.exams);
  fact('PE-positive images', r.positiveImages);
  return {
    headline: `${n(r.matchedRows)} of ${n(r.rows)} rows matched indexed ${o.matched}`,
    facts,
    unmatched: r.unmatched.map((u) => ({ what: `row ${u.row}: ${u.key}`, reason: u.reason })),
    unmatchedCount: Math.max(r.unmatched.length, r.unmatchedRows),
    warnings: r.warnings,
    incomplete: false,
    text: [
      `${r.file}: ${o.what}: ${r.rows} rows, ${r.matchedRows} matched, ${r.unmatchedRows} not`,
      ...(r.positiveImages !== undefined ? [`  ${r.positiveImages} images with PE, ${r.exams} exams`] : []),
      ...r.unmatched.slice(0, 10).map((u) => `    row ${u.row} ${u.key}: ${u.reason}`),
      ...r.warnings.map((w) => `  warning: ${w}`),
    ].join('\n'),
  };
}

const RSNA_KEYS = ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'];
/** Distinct exams counted one by one; past this the count is a lower bound (real RSNA: 7,279). */
const MAX_EXAMS_COUNTED = 100_000;

export async function importRsnaCsv(db: Database, path: string): Promise<CsvImportReport> {
  checkSize(rsnaCsv, readHead(path).size, path);
  // The instance's series by its SOP Instance UID (the unique index), its UID from a per-series cache:
  // one index look-up per row, nothing else read (rows of a million images).
  const seriesOfSop = db.prepare('SELECT series_ref FROM instances WHERE sop_uid = ?').pluck();
  const seriesUidOf = db.prepare('SELECT series_uid FROM series WHERE id = ?').pluck();
  const seriesUids = new Map<number, string>();
  const lookup = (sop: string): string | undefined => {
    const ref = seriesOfSop.get(sop) as number | undefined;
    if (ref === undefined) return undefined;
    let uid = seriesUids.get(ref);
    if (uid === undefined) seriesUids.set(ref, (uid = seriesUidOf.get(ref) as string));
    return uid;
  };
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
        const indexedSeries = lookup(sop);
        if (indexedSeries === undefined) {
          if (unmatched.length < MAX_LISTED) unmatched.push({ row: rows, key: own(sop), reason: 'no indexed image has this SOP Instance UID' });
        } else {
          matchedRows++;
          if (seriesUid && indexedSeries !== seriesUid && warnings.length < 50)
            warnings.push(own(`row ${rows}: image ${sop} is in series ${indexedSeries}, the CSV says ${seriesUid}`));
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
