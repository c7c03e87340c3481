/**
 * The label formats, one module each in ./formats/, and what the app does with a label file through
 * them: tell its kind from its first KiB (formats are asked in this order; the first that claims the
 * file has it), refuse it when it is over its format's cap, import it, and say what the import's
 * report means. The kinds here are the kinds `label_sources` accepts (checked when a source is
 * recorded, not by a CHECK constraint: see migration 6 in ../db/schema.ts).
 *
 * Adding a format: its module in ./formats/ and its line in LABEL_FORMATS. Tests and plug-ins add
 * one at run time with `registerLabelFormat`.
 */
import type { Database } from '../db/sqlite';
import type { BuiltinLabelKind, ImportReport, LabelImport, LabelImportReport, LabelKind, ReportView } from '../../shared/results';
import { acceptLabelKinds, checkSize, labelFileHead, readHead, SNIFF_BYTES } from './label-files';
import { attributesCsv } from './formats/attributes-csv';
import { dicomSeg } from './formats/dicom-seg';
import type { LabelFormat } from './formats/format';
import { lidcXml } from './formats/lidc-xml';
import { rsnaCsv } from './formats/rsna-csv';

export type { LabelFormat };

/** The formats this app reads, in the order they are asked about a file. */
const LABEL_FORMATS: LabelFormat[] = [
  lidcXml as LabelFormat,
  rsnaCsv as LabelFormat,
  dicomSeg as LabelFormat,
  attributesCsv as LabelFormat,
];
const BUILTIN_COUNT = LABEL_FORMATS.length;
// label_sources holds the kinds of registered formats only (validated in code, not by a CHECK).
acceptLabelKinds((kind) => LABEL_FORMATS.some((f) => f.kind === kind));

/** Every registered format, in the order they are asked. */
export function labelFormats(): readonly LabelFormat[] {
  return LABEL_FORMATS;
}

/** The registered kinds (what `label_sources.kind` may hold). */
export function labelKinds(): string[] {
  return LABEL_FORMATS.map((f) => f.kind);
}

/** The format of a kind; throws naming the known ones. */
export function labelFormat(kind: string): LabelFormat {
  const f = LABEL_FORMATS.find((x) => x.kind === kind);
  if (!f) throw new Error(`unknown label format '${kind}' (known: ${labelKinds().join(', ')})`);
  return f;
}

/** Registers a format at run time (plug-ins, tests), asked after the others. Returns the undo. */
export function registerLabelFormat<R extends LabelImportReport>(format: LabelFormat<R>): () => void {
  if (LABEL_FORMATS.some((f) => f.kind === format.kind)) throw new Error(`label format '${format.kind}' is registered already`);
  LABEL_FORMATS.push(format as unknown as LabelFormat);
  return () => {
    const i = LABEL_FORMATS.findIndex((f) => f.kind === format.kind);
    if (i >= BUILTIN_COUNT) LABEL_FORMATS.splice(i, 1);
  };
}

/** The largest file of each kind. */
export function labelSizeCaps(): Record<BuiltinLabelKind, number> & Record<LabelKind, number> {
  return Object.fromEntries(LABEL_FORMATS.map((f) => [f.kind, f.maxBytes])) as Record<BuiltinLabelKind, number>;
}

/** Extensions a label file may have ('' = none), every format's, once each. */
export function labelExtensions(): string[] {
  return [...new Set(LABEL_FORMATS.flatMap((f) => f.extensions))];
}

/** "LIDC-IDRI XML, RSNA STR PE train.csv, DICOM SEG, or a CSV of ...": what the app reads. */
function whatWeRead(): string {
  const r = LABEL_FORMATS.map((f) => f.reads);
  return r.length > 1 ? `${r.slice(0, -1).join(', ')}, or ${r[r.length - 1]}` : r.join('');
}

/**
 * The kind of a label file from its first bytes (at most SNIFF_BYTES are looked at) and its name;
 * throws naming the file, and saying why, when it is none of the kinds this app reads.
 */
export function sniffLabelKind(head: Uint8Array, name: string): LabelKind {
  const h = labelFileHead(head);
  const format = LABEL_FORMATS.find((f) => f.sniff(h));
  if (format) return format.kind;
  const reads = whatWeRead();
  if (h.xml)
    throw new Error(
      h.xmlRoot
        ? `${name}: an XML file whose root element is <${h.xmlRoot}>, not an LIDC-IDRI <LidcReadMessage>: not a label file this app reads (${reads})`
        : `${name}: no XML root element in its first ${SNIFF_BYTES} bytes: not a label file this app reads (${reads})`,
    );
  if (h.dicom)
    throw new Error(
      `${name}: a DICOM object of SOP class ${h.dicomSopClass ?? 'unknown'}${h.dicomSopClass?.startsWith('1.2.840.10008.5.1.4.1.1.2') ? ' (CT image)' : ''}, not a DICOM SEG: images are added to the library by indexing their folder (${reads})`,
    );
  if (h.binary) throw new Error(`${name}: not a label file this app reads: binary data without the DICOM preamble (DICM at byte 128) (${reads})`);
  if (h.longLine) throw new Error(`${name}: not a label file this app reads: line 1 is longer than ${SNIFF_BYTES} bytes, no CSV header (${reads})`);
  throw new Error(`${name}: not a label file this app reads (${reads})`);
}

/** Refuses a file larger than its kind's cap, naming it. */
export function checkLabelSize(kind: LabelKind, bytes: number, name: string): void {
  checkSize(labelFormat(kind), bytes, name);
}

/** Detects the kind of a label file from its first KiB (and checks its size cap). */
export function detectLabelKind(path: string): LabelKind {
  const { head, size } = readHead(path);
  const kind = sniffLabelKind(head, path);
  checkLabelSize(kind, size, path);
  return kind;
}

/** Imports a label file of any registered kind (told from its first KiB, its cap checked first). */
export async function importLabelFile(db: Database, path: string): Promise<LabelImportReport> {
  return labelFormat(detectLabelKind(path)).import(db, path);
}

/** What a report says (its format's `describe`); a report of a kind no longer registered by its common fields. */
export function describeLabelReport(report: ImportReport | LabelImportReport): ReportView {
  const format = LABEL_FORMATS.find((f) => f.kind === report.kind);
  const base = { kind: report.kind, format: format?.title ?? report.kind, file: report.file };
  if (!format)
    return { ...base, headline: `imported as source ${report.sourceId}`, facts: [], unmatched: [], unmatchedCount: 0, warnings: report.warnings, incomplete: false, text: `${report.file}: ${report.kind}` };
  const v = format.describe(report);
  return { ...base, ...v, incomplete: v.incomplete || v.unmatchedCount > 0 };
}

/** A report with what it says, as labels.import answers. */
export function withView(report: LabelImportReport): LabelImport {
  return { ...report, view: describeLabelReport(report) } as LabelImport;
}
