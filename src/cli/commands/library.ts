/** `ctssl index` and `ctssl series`: the DICOM library from the command line, through the host's services. */
import { type Command, Option } from 'commander';
import type { CohortFilter, SeriesRow } from '../../shared/types';
import { PAPER_COHORT } from '../../shared/presets';
import { dbOption, dbPathOf, nonNegativeInt, out, positiveNumber, withServices } from '../common';
import { onInterrupt } from '../progress';

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
        // The app's indexing job (library.addFolder, library.reindex): same folder checks, same job, its progress on stderr.
        await withServices(o, async ({ indexing }, sink) => {
          const { jobId } = indexing.start(folders);
          let cancelling = false;
          const off = onInterrupt(
            () => {
              cancelling = true;
              sink.line.done('cancelling: finishing the current batch...');
              indexing.jobs.cancel(jobId);
            },
            () => process.exit(130),
          );
          let end;
          try {
            end = await indexing.jobs.finished(jobId);
          } finally {
            off();
            sink.line.done();
          }
          const summary = end.summary;
          if (!summary) {
            const why = end.message ?? `the indexing job ended (${end.phase}) without a summary`;
            if (!cancelling) throw new Error(why);
            // Released after a cancel (the indexer did not stop in time): the database keeps what was committed.
            process.stderr.write(`ctssl index: ${why}\n`);
            process.exitCode = 130;
            return;
          }
          out(!!o.json, summary, () => {
            const s = summary;
            const lines = [
              `${s.cancelled ? 'Cancelled' : 'Indexed'} in ${s.seconds}s: ${s.files} files (${s.parsed} read, ${s.removed} removed)`,
              `Index holds ${s.patients} patients, ${s.studies} studies, ${s.series} series, ${s.instances} instances, ${s.duplicates} duplicates`,
            ];
            if (s.skipped.length) lines.push(`Skipped ${s.skipped.length} files:`, ...s.skipped.slice(0, 20).map((k) => `  ${k.path}: ${k.reason}`));
            if (s.skipped.length > 20) lines.push(`  ... and ${s.skipped.length - 20} more (--json lists all)`);
            for (const w of s.warnings) lines.push(`warning: ${w}`);
            lines.push(`Database: ${dbPathOf(o)}`);
            return lines.join('\n');
          });
          // Skipped files are not failures: the exit code is 0 unless cancelled (130) or an error (1).
          if (summary.cancelled) process.exitCode = 130;
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
        await withServices(o, async ({ handlers }) => {
          const filter: CohortFilter = { ...(o.cohort === 'paper' ? PAPER_COHORT : {}) };
          if (o.modality) filter.modality = o.modality;
          if (o.orientation) filter.orientation = o.orientation;
          if (o.axial) filter.orientation = 'axial';
          if (o.maxThickness !== undefined) filter.maxThickness = o.maxThickness;
          if (o.minSlices !== undefined) filter.minSlices = o.minSlices;
          if (o.contrast) filter.contrast = o.contrast;
          if (o.uniform) filter.uniformOnly = true;
          if (o.text) filter.text = o.text;
          const rows = await handlers['library.series'](filter);
          out(!!o.json, rows, () => seriesTable(rows));
        });
      },
    );

}
