/**
 * `ctssl predict`: a fine-tuned run's model on one series, through the host's predict service (the
 * app's predict.run: a trainer process, the prediction kept with the run), then written out as the
 * file's name asks (per-slice scores as JSON or CSV; a U-Net's mask as NIfTI or DICOM SEG).
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import type { BackendName } from '../../shared/backends';
import { backendOption, dbOption, out, withServices } from '../common';
import { bar, interruptible, progressLine } from '../progress';

export function register(program: Command): void {
  program
    .command('predict')
    .description("Run a fine-tuned classifier (per-slice scores) or U-Net (a mask) on a series, in a trainer process")
    .requiredOption('--run <dir>', 'fine-tuning run folder')
    .requiredOption('--series <uid>', 'Series Instance UID of an indexed series')
    .option('--out <file>', 'write the prediction: .json or .csv (per-slice scores), .nii.gz or .nii (mask, on the grid of export-nifti), .dcm (mask as DICOM SEG)')
    .option('--threshold <p>', 'U-Net: foreground where the probability is at least p (default 0.5)', (v) => {
      const p = Number(v);
      if (!(p > 0 && p < 1)) throw new InvalidArgumentError('expected a probability between 0 and 1');
      return p;
    })
    .addOption(new Option('--format <f>', 'output format (default: from the --out name)').choices(['json', 'csv', 'nifti', 'seg']))
    .addOption(dbOption())
    .addOption(backendOption())
    .option('--json', 'print the prediction summary as JSON')
    .action(async (o: { run: string; series: string; threshold?: number; out?: string; format?: 'json' | 'csv' | 'nifti' | 'seg'; db?: string; backend?: BackendName; json?: boolean }) => {
      const { predictFormatOf } = await import('../../host/predict');
      // Refuse a bad output name before the model runs.
      const format = o.out ? (o.format ?? predictFormatOf(o.out)) : undefined;
      const r = await withServices(o, async (s) => {
        const series = { id: s.predict.seriesIdOf(o.series) };
        const run = s.runs.byDir(o.run, { adopt: true });
        const line = progressLine();
        const ac = interruptible(() => process.stderr.write('\ncancelling…\n'));
        try {
          const summary = await s.predict.run({
            runId: run.id,
            seriesId: series.id,
            threshold: o.threshold,
            backend: o.backend,
            signal: ac.signal,
            onProgress: (done, total) => line.update(`${bar(done / total)} ${done}/${total} slices`),
          });
          line.done();
          const written = o.out ? await s.predict.exportTo(run.id, series.id, resolve(o.out), format) : null;
          return { ...summary, written };
        } finally {
          ac.off();
        }
      });
      out(o.json, r, () => {
        const lines = [`run ${r.runId} (${r.model}, step ${r.checkpointStep}) on series ${r.seriesUid}: ${r.slices} slices in ${r.seconds.toFixed(1)} s on ${r.backend}`];
        if (r.task === 'classification') lines.push(`top slices (display index: score): ${r.top.slice(0, 5).map((i) => `${i}: ${r.scores[i].toFixed(3)}`).join(', ')}`);
        else lines.push(`mask on ${r.maskSlices.length} slices, ${r.maskVoxels} voxels${r.maskSlices.length ? ` (slices ${r.maskSlices[0]}-${r.maskSlices[r.maskSlices.length - 1]})` : ''}`);
        if (r.written) lines.push(`wrote ${r.written.file} (${r.written.format})`);
        return lines.join('\n');
      });
    });
}
