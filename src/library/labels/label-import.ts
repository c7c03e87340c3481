/**
 * Importing labels into the library, with provenance: LIDC-IDRI XML, RSNA STR PE 2020 train.csv,
 * DICOM SEG, CSVs of patient attributes, and any other registered format (label-formats.ts lists
 * them, one module each in ./formats/). Each import is one `label_sources` row; importing the same
 * file again replaces its labels. Reports say what matched the index, what did not, and why.
 *
 * Bounded work whatever the file: the kind is told from the first KiB (the XML root element
 * `LidcReadMessage`, the CSV header's columns, `DICM` at offset 128), each kind has a size cap
 * (`LABEL_SIZE_CAPS`), and CSVs are streamed in 1 MiB chunks, written in batches, with a cap on the
 * length of one record, so memory does not grow with the file.
 */
import { basename, resolve } from 'node:path';
import type { Database } from '../db/sqlite';
import { checkLabelSize, detectLabelKind, importLabelFile, labelFormats, labelSizeCaps, sniffLabelKind } from './label-formats';
import { MAX_CSV_RECORD, PROVISIONAL, SNIFF_BYTES } from './label-files';
import { importAttributesCsv } from './formats/attributes-csv';
import { importSeg } from './formats/dicom-seg';
import { importLidc } from './formats/lidc-xml';
import { importRsnaCsv } from './formats/rsna-csv';
import type { CsvImportReport, ImportReport, LabelKind, LidcImportReport, SegImportReport, UnmatchedRoi } from '../../shared/results';
import type { LabelSource } from '../../shared/types';

/** The reports are declared in src/shared/results.ts, where the contract carries them. */
export type { CsvImportReport, ImportReport, LabelKind, LidcImportReport, SegImportReport, UnmatchedRoi };
export { checkLabelSize, detectLabelKind, importAttributesCsv, importLidc, importRsnaCsv, importSeg, MAX_CSV_RECORD, sniffLabelKind, SNIFF_BYTES };

/** The largest file of each built-in kind (each format's `maxBytes`). */
export const LABEL_SIZE_CAPS = labelSizeCaps();

/** Imports a label file of any registered kind; the report says what matched and what did not. */
export async function importLabels(db: Database, file: string): Promise<ImportReport> {
  return (await importLabelFile(db, resolve(file))) as ImportReport;
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
    format: labelFormats().find((f) => f.kind === r.kind)?.title ?? r.kind,
    report: JSON.parse(r.report) as ImportReport,
  }));
}

export function removeLabelSource(db: Database, id: number): boolean {
  return db.prepare('DELETE FROM label_sources WHERE id = ?').run(id).changes > 0;
}
