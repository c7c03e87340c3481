/** `ctssl index` and `ctssl series`: the DICOM library from the command line. */
import { type Command, Option } from 'commander';
import type { CohortFilter, SeriesRow } from '../../shared/types';
import { PAPER_COHORT } from '../../shared/presets';
import { dbOption, nonNegativeInt, out, positiveNumber, withLibrary } from '../common';
import { bar, formatEta, interruptible, progressLine } from '../progress';

function seriesTable(rows: SeriesRow[]): string {
  const head = ['id', 'patient', 'mod', 'orient', 'slices', 'size', 'thick', 'spacing', 'uniform', 'tilt', 'description'];
  const lines = rows.map((r) => [
    String(r.id),
    r.patientId.slice(0, 18),
    r.modality,
    r.orientation,
    String(r.slices),
    r.rows && r.columns ? `${r.columns}x${r.rows}` : '-',
    r.sliceThickness === null ? '-' : r.sliceThickness.toFixed(2),
    r.spacing === null ? '-' : r.spacing.toFixed(2),
    r.uniformSpacing ? 'yes' : 'no',
    r.gantryTilt ? r.gantryTilt.toFixed(1) : '0',
    r.description.slice(0, 30),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [fmt(head), ...lines.map(fmt)].join('\n') + `\n${rows.length} series`;
}

export function register(program: Command): void {
  program
    .command('index')
    .description('Index DICOM folders (recursively, headers only) into the library database')
    .argument('<folder...>', 'folders to scan')
    .addOption(dbOption())
    .option('--json', 'print a JSON summary on stdout')
    .action(async (folders: string[], o: { db?: string; json?: boolean }) => {
      const { indexFolders } = await import('../../library/indexing/indexer');
      // Should the job ever stop without settling (nothing left to run, its promise pending),
      // say so and fail instead of exiting silently with Node's code 13.
      let settled = false;
      const unsettled = () => {
        if (settled) return;
        process.stderr.write('ctssl index: the indexing job stopped without finishing (an internal error); the database keeps what was committed: run the command again\n');
        process.exit(1);
      };
      process.once('beforeExit', unsettled);
      try {
        await withLibrary(o, async (db, dbPath) => {
          const line = progressLine();
          const ac = interruptible(() => line.done('cancelling: finishing the current batch...'));
          try {
            const summary = await indexFolders(db, folders, {
              signal: ac.signal,
              onProgress: (p) => {
                if (p.phase === 'scanning') line.update(`scanning: ${p.filesFound} files found`);
                else if (p.phase === 'parsing')
                  line.update(
                    `${bar(p.filesFound ? p.filesDone / p.filesFound : 0)} ${p.filesDone}/${p.filesFound} files  ${p.filesPerSecond.toFixed(0)} files/s  ETA ${formatEta(p.etaSeconds)}`,
                  );
                else if (p.phase === 'geometry') line.update('computing series geometry...');
              },
            });
            line.done();
            out(!!o.json, summary, () => {
              const s = summary;
              const lines = [
                `${s.cancelled ? 'Cancelled' : 'Indexed'} in ${s.seconds}s: ${s.files} files (${s.parsed} read, ${s.removed} removed)`,
                `Index holds ${s.patients} patients, ${s.studies} studies, ${s.series} series, ${s.instances} instances, ${s.duplicates} duplicates`,
              ];
              if (s.skipped.length) lines.push(`Skipped ${s.skipped.length} files:`, ...s.skipped.slice(0, 20).map((k) => `  ${k.path}: ${k.reason}`));
              if (s.skipped.length > 20) lines.push(`  ... and ${s.skipped.length - 20} more (--json lists all)`);
              for (const w of s.warnings) lines.push(`warning: ${w}`);
              lines.push(`Database: ${dbPath}`);
              return lines.join('\n');
            });
            // Skipped files are not failures: the exit code is 0 unless cancelled (130) or an error (1).
            if (summary.cancelled) process.exitCode = 130;
          } finally {
            line.done();
          }
        });
      } finally {
        settled = true;
        process.off('beforeExit', unsettled);
      }
    });

  program
    .command('series')
    .description('List indexed series, optionally filtered to a cohort')
    .addOption(dbOption())
    .addOption(new Option('--cohort <name>', 'a named cohort: "paper" = CT, axial, thickness <= 3 mm').choices(['paper', 'all']))
    .option('--modality <m>', 'modality, e.g. CT')
    .addOption(new Option('--orientation <o>', 'slice orientation').choices(['axial', 'coronal', 'sagittal', 'oblique', 'unknown']))
    .option('--axial', 'axial series only')
    .option('--max-thickness <mm>', 'maximum slice thickness in mm', positiveNumber)
    .option('--min-slices <n>', 'minimum number of slices', nonNegativeInt)
    .addOption(new Option('--contrast <yes|no>', 'contrast agent recorded').choices(['yes', 'no']))
    .option('--uniform', 'uniformly spaced series only')
    .option('--text <s>', 'text in patient ID, description, manufacturer or UID')
    .option('--json', 'print JSON on stdout')
    .action(
      async (o: {
        db?: string;
        cohort?: string;
        modality?: string;
        orientation?: CohortFilter['orientation'];
        axial?: boolean;
        maxThickness?: number;
        minSlices?: number;
        contrast?: 'yes' | 'no';
        uniform?: boolean;
        text?: string;
        json?: boolean;
      }) => {
        const { listSeries } = await import('../../library/db/catalog');
        await withLibrary(o, (db) => {
          const filter: CohortFilter = { ...(o.cohort === 'paper' ? PAPER_COHORT : {}) };
          if (o.modality) filter.modality = o.modality;
          if (o.orientation) filter.orientation = o.orientation;
          if (o.axial) filter.orientation = 'axial';
          if (o.maxThickness !== undefined) filter.maxThickness = o.maxThickness;
          if (o.minSlices !== undefined) filter.minSlices = o.minSlices;
          if (o.contrast) filter.contrast = o.contrast;
          if (o.uniform) filter.uniformOnly = true;
          if (o.text) filter.text = o.text;
          const rows = listSeries(db, filter);
          out(!!o.json, rows, () => seriesTable(rows));
        });
      },
    );

}
