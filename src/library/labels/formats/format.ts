/**
 * What a label format is: the module of each format in this folder exports one, and
 * ../label-formats.ts lists them. Everything the app does with a kind of label file goes through
 * it: telling it from its first KiB, its size cap, importing it into the library, and saying what
 * its import report means (in the app and on the command line).
 */
import type { Database } from '../../db/sqlite';
import type { LabelImportReport, ReportView } from '../../../shared/results';
import type { LabelFileHead } from '../label-files';

export interface LabelFormat<R extends LabelImportReport = LabelImportReport> {
  /** Stored with each import (`label_sources.kind`) and in its report. */
  readonly kind: string;
  /** Its name in lists ('LIDC-IDRI XML'). */
  readonly title: string;
  /** A file of it, in messages ('LIDC-IDRI XML file': "over the 50 MiB cap of a LIDC-IDRI XML file"). */
  readonly noun: string;
  /** How it is named in the list of what the app reads ('RSNA STR PE train.csv'). */
  readonly reads: string;
  /** Extensions a file of it may have, lower case with the dot ('' = none): the paths the services accept. */
  readonly extensions: readonly string[];
  /** Largest file imported: bigger ones are refused before they are read. */
  readonly maxBytes: number;
  /** True when the file's first bytes are this format's (formats are asked in the registry's order). */
  sniff(head: LabelFileHead): boolean;
  /** Imports the file (its kind told and its size checked already) and records its report with the source. */
  import(db: Database, path: string): Promise<R>;
  /** What the report says, for the app's report panel and the command line. */
  describe(report: R): Omit<ReportView, 'kind' | 'file' | 'format'>;
}
