/**
 * `ctssl labels export`: a series' labels as DICOM SEG or NIfTI. The app has no such command, so
 * this one calls the library's writers directly (src/cli/README.md).
 */
import { type Command, Option } from 'commander';
import { resolve } from 'node:path';
import { dbOption, out, positiveInt, withLibrary } from '../common';

export function registerExport(labels: Command): void {
  labels
    .command('export')
    .description("Write a series' labels back out")
    .addOption(new Option('--format <format>', 'output format').choices(['seg', 'nifti']).makeOptionMandatory())
    .requiredOption('--series <uid>', 'SeriesInstanceUID of the indexed series')
    .requiredOption('--out <file>', 'output file')
    .option('--source <id>', 'only labels from this imported file (see `labels list`)', positiveInt)
    .option('--reader <n>', 'only this LIDC reading session')
    .option('--consensus <k>', 'pixels marked by at least k readers', positiveInt)
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action(async (o: { format: 'seg' | 'nifti'; series: string; out: string; source?: number; reader?: string; consensus?: number; db?: string; json?: boolean }) => {
      await withLibrary(o, async (db) => {
        const { findSeriesByUid } = await import('../../library/db/catalog');
        const series = findSeriesByUid(db, o.series);
        if (!series) throw new Error(`series not in the index: ${o.series}`);
        const q = { sourceId: o.source, reader: o.reader, consensusK: o.consensus };
        if (o.format === 'seg') {
          const { exportSeriesSeg } = await import('../../library/labels/seg-export');
          const r = exportSeriesSeg(db, series.id, resolve(o.out), q);
          out(o.json, r, () => `wrote ${r.file}: ${r.segments.length} segments, ${r.frames} frames`);
        } else {
          const { exportSeriesLabelNifti } = await import('../../library/labels/nifti-export');
          const r = await exportSeriesLabelNifti(db, series.id, resolve(o.out), q);
          out(o.json, r, () => `wrote ${r.file}: ${r.labels.length} label value(s) on ${r.labelledSlices} slices, ${r.voxels} voxels (same grid as ctssl export-nifti)`);
        }
      });
    });
}
