/** `ctssl labels import|list|export`: annotations in their native formats, with provenance (import and list through the host's services). */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { Services } from '../../host/services';
import { dbOption, out, withServices } from '../common';
import { registerExport } from './labels-export';

type LabelImport = Awaited<ReturnType<Services['labels']['import']>>;

export function register(program: Command): void {
  const labels = program.command('labels').description('Import, list and export labels (LIDC XML, RSNA PE CSV, DICOM SEG, patient attributes)');

  labels
    .command('import')
    .description('Import label files into the library; reports what matched indexed images and what did not, and why')
    .argument('<file...>', 'LIDC-IDRI XML, RSNA STR PE train.csv, DICOM SEG, or a CSV of patient attributes')
    .addOption(dbOption())
    .option('--json', 'print the import reports as JSON')
    .action(async (files: string[], o: { db?: string; json?: boolean }) => {
      // The app's labels.import, for files named by the user in their own shell.
      await withServices(o, async ({ labels }) => {
        const imports: LabelImport[] = [];
        for (const f of files) imports.push(await labels.import(resolve(f)));
        // JSON: the reports as stored; text: what each report says, as its format words it.
        const reports = imports.map(({ view: _view, ...report }) => report);
        out(o.json, reports.length === 1 ? reports[0] : reports, () => imports.map((r) => r.view.text).join('\n'));
      });
    });

  labels
    .command('list')
    .description('List imported label files')
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action(async (o: { db?: string; json?: boolean }) => {
      // The app's labels.sources.
      await withServices(o, ({ labels }) => {
        const rows = labels.sources();
        out(o.json, rows, () => rows.map((r) => `${r.id}  ${r.kind.padEnd(14)} ${r.importedAt.slice(0, 19)}  ${r.file}`).join('\n') || 'no labels imported');
      });
    });

  registerExport(labels);
}
