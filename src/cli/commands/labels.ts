/** `ctssl labels import|list|export`: annotations in their native formats, with provenance (import and list through the host's services). */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import type { Services } from '../../host/services';
import { dbOption, out, withServices } from '../common';
import { registerExport } from './labels-export';

type ImportReport = Awaited<ReturnType<Services['labels']['import']>>;

function describe(r: ImportReport): string {
  switch (r.kind) {
    case 'lidc-xml': {
      const lines = [
        `${r.file}: LIDC XML for series ${r.seriesInstanceUid}${r.seriesIndexed ? '' : ' (not indexed)'}`,
        `  ${r.readers} readers, ${r.nodules} nodule annotations (${r.smallNodules} < 3 mm, ${r.groupedNodules} distinct nodules >= 3 mm), ${r.nonNodules} non-nodules`,
        `  ${r.rois} ROIs: ${r.matchedRois} on indexed slices, ${r.unmatchedRois.length} not`,
        ...r.unmatchedRois.slice(0, 10).map((u) => `    reader ${u.reader} ${u.nodule} z=${u.z ?? '?'} ${u.sopUid}: ${u.reason}`),
      ];
      if (r.unmatchedRois.length > 10) lines.push(`    ... ${r.unmatchedRois.length - 10} more (--json lists them)`);
      return [...lines, ...r.warnings.map((w) => `  warning: ${w}`)].join('\n');
    }
    case 'rsna-csv':
    case 'attributes-csv':
      return [
        `${r.file}: ${r.kind === 'rsna-csv' ? 'RSNA PE per-image labels' : 'patient attributes'}: ${r.rows} rows, ${r.matchedRows} matched, ${r.unmatchedRows} not`,
        ...(r.positiveImages !== undefined ? [`  ${r.positiveImages} images with PE, ${r.exams} exams`] : []),
        ...r.unmatched.slice(0, 10).map((u) => `    row ${u.row} ${u.key}: ${u.reason}`),
        ...r.warnings.map((w) => `  warning: ${w}`),
      ].join('\n');
    case 'dicom-seg':
      return [
        `${r.file}: DICOM SEG of series ${r.seriesInstanceUid}: ${r.segments.length} segments, ${r.frames} frames, ${r.matchedFrames} on indexed slices`,
        ...r.segments.map((s) => `  segment ${s.number} "${s.label}": ${s.frames} frames, ${s.areaPx} px`),
        ...r.unmatchedFrames.slice(0, 10).map((u) => `    frame ${u.frame} ${u.sopUid}: ${u.reason}`),
        ...r.warnings.map((w) => `  warning: ${w}`),
      ].join('\n');
  }
}

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
        const reports: ImportReport[] = [];
        for (const f of files) reports.push(await labels.import(resolve(f)));
        out(o.json, reports.length === 1 ? reports[0] : reports, () => reports.map(describe).join('\n'));
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
