/** `ctssl labels import|list|export`: annotations in their native formats, with provenance (import and list through the host's services). */
import type { Command } from 'commander';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Services } from '../../host/services';
import type { LabelFolderImport } from '../../shared/results';
import { dbOption, out, withServices } from '../common';
import { bar, interruptible, progressLine } from '../progress';
import { registerExport } from './labels-export';

type LabelImport = Awaited<ReturnType<Services['labels']['import']>>;

const isFolder = (p: string) => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** A folder import's summary for people: counts, then every file not imported and why. */
export function folderText(r: LabelFolderImport): string {
  const kinds = Object.entries(r.byKind).map(([k, n]) => `${n} ${k}`).join(', ');
  const lines = [
    `${r.folder}: ${r.files} files, ${r.imported.length} imported${kinds ? ` (${kinds})` : ''}, ${r.skipped.length} skipped, ${r.failed.length} failed${r.cancelled ? `, cancelled (${r.notStarted} not started)` : ''} in ${r.seconds.toFixed(1)} s`,
    ...r.imported.filter((i) => i.incomplete || i.warnings).map((i) => `  ${i.file}: ${i.headline}${i.warnings ? ` (${i.warnings} warnings)` : ''}`),
    ...r.failed.map((f) => `  failed ${f.file}: ${f.error}`),
    ...r.skipped.slice(0, 50).map((s) => `  skipped ${s.file}: ${s.reason}`),
    ...(r.skipped.length > 50 ? [`  … and ${r.skipped.length - 50} more skipped (--json lists them all)`] : []),
    ...r.warnings.map((w) => `  warning: ${w}`),
  ];
  return lines.join('\n');
}

export function register(program: Command): void {
  const labels = program.command('labels').description('Import, list and export labels (LIDC XML, RSNA PE CSV, DICOM SEG, patient attributes)');

  labels
    .command('import')
    .description('Import label files, or every label file under a folder (recursively); reports what matched indexed images, what did not, and why')
    .argument('<path...>', 'LIDC-IDRI XML, RSNA STR PE train.csv, DICOM SEG, a CSV of patient attributes, or a folder of them')
    .addOption(dbOption())
    .option('--json', 'print the import reports as JSON')
    .action(async (paths: string[], o: { db?: string; json?: boolean }) => {
      // The app's labels.import for files, labels.importFolder for folders, named by the user in their own shell.
      await withServices(o, async ({ labels }) => {
        const results: (Omit<LabelImport, 'view'> | LabelFolderImport)[] = [];
        const text: string[] = [];
        for (const p of paths.map((x) => resolve(x))) {
          if (!isFolder(p)) {
            const { view, ...report } = await labels.import(p);
            results.push(report);
            text.push(view.text);
            continue;
          }
          const line = progressLine();
          const ac = interruptible(() => process.stderr.write('\ncancelling after the file being imported…\n'));
          try {
            const r = await labels.importFolder(p, { signal: ac.signal, onProgress: (x) => line.update(`${bar(x.total ? x.done / x.total : 0)} ${x.done}/${x.total} files  ${x.file}`) });
            line.done();
            results.push(r);
            text.push(folderText(r));
          } finally {
            ac.off();
          }
        }
        // JSON: the reports as stored (a folder: its summary); text: what each says.
        out(o.json, results.length === 1 ? results[0] : results, () => text.join('\n'));
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
