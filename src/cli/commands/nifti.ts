/** `ctssl export-nifti`: a series as NIfTI (.nii.gz) in HU with its affine. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { dbOption, out, withLibrary } from '../common';

function finiteNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`expected a number, got "${v}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command('export-nifti')
    .description('Export a series as NIfTI-1 (.nii.gz) in Hounsfield units with its qform/sform affine')
    .addOption(dbOption())
    .requiredOption('--series <uid>', 'SeriesInstanceUID (as listed by `ctssl series`)')
    .requiredOption('--out <file>', 'output file, e.g. series.nii.gz')
    .option('--padding-hu <hu>', 'HU written for padding pixels (PixelPaddingValue)', finiteNumber, -1024)
    .option('--json', 'print a JSON summary on stdout')
    .action(async (o: { db?: string; series: string; out: string; paddingHu: number; json?: boolean }) => {
      if (!/\.nii\.gz$/i.test(o.out)) throw new Error(`--out must end in .nii.gz, got ${o.out}`);
      await withLibrary(o, async (db) => {
        const { findSeriesByUid } = await import('../../library/db/catalog');
        const { exportSeriesNifti } = await import('../../library/volumes/nifti');
        const series = findSeriesByUid(db, o.series);
        if (!series) throw new Error(`no series with SeriesInstanceUID ${o.series} in the library`);
        const r = await exportSeriesNifti(db, series.id, resolve(o.out), { paddingHU: o.paddingHu });
        out(!!o.json, { seriesInstanceUid: o.series, ...r }, () =>
          [
            `Wrote ${r.path} (${(r.bytes / 1e6).toFixed(1)} MB)`,
            `  ${r.dims.join(' x ')} voxels of ${r.pixdim.map((v) => v.toFixed(4)).join(' x ')} mm, ${r.datatype} HU`,
            ...r.affine.slice(0, 3).map((row, i) => `  ${['srow_x', 'srow_y', 'srow_z'][i]} ${row.map((v) => v.toFixed(4).padStart(10)).join(' ')}`),
            ...r.warnings.map((w) => `warning: ${w}`),
          ].join('\n'),
        );
      });
    });
}
