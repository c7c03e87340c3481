/** `ctssl job export`: a pretraining job as a folder for PyTorch DDP on a cluster, through the host's cluster-job service. */
import { type Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { PretrainConfigInput } from '../../shared/run-config';
import type { JobImportResult } from '../../host/cluster-job/import-job';
import { dbOption, nonNegativeInt, out, positiveInt, withServices } from '../common';
import { bar, interruptible, progressLine } from '../progress';

/** What `ctssl import` prints for a job output folder. */
export function describeJobImport(r: Omit<JobImportResult, 'run'>): string {
  const again = r.existing ? ' (imported before: the same run)' : '';
  return `imported cluster job ${r.jobId.slice(0, 8)} (${r.task}, ${r.preset}, step ${r.step} of ${r.totalSteps}) into ${r.dir}${again}\n` +
    `  curves: ${r.metrics.points} points${r.metrics.skippedLines ? `, ${r.metrics.skippedLines} line(s) of metrics.jsonl left out` : ''}\n` +
    `use it with: ctssl eval-ssl --run ${r.dir}   ctssl finetune --init ${r.dir} ...`;
}

export function register(program: Command): void {
  const job = program.command('job').description('Hand a pretraining job to PyTorch DistributedDataParallel on a cluster (bring it back with `ctssl import FOLDER`)');
  job
    .command('export')
    .description('Write a self-contained job folder: the cohort as .npy shards, the config, and the PyTorch program (torchrun, Slurm)')
    .option('--config <file>', 'a pretraining config as JSON (the fields of ctssl pretrain; a run folder\'s config.json works)')
    .option('--run <dir>', 'export an existing pretraining run\'s config and data instead')
    .requiredOption('--out <dir>', 'job folder to write (new or empty; an interrupted export of the same job is completed)')
    .addOption(new Option('--dtype <type>', 'shard values: int16 (x 32767; the default) or uint8 (x 255, half the size; the reference recipe\'s 8-bit slices)').choices(['int16', 'uint8']))
    .option('--shard-mb <n>', 'megabytes of slices per shard', positiveInt, 256)
    .option('--workers <n>', 'threads decoding slices (default: the cores less one, at most 8; none on 2 cores)', nonNegativeInt)
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action(async (o: { config?: string; run?: string; out: string; dtype?: 'int16' | 'uint8'; shardMb: number; workers?: number; db?: string; json?: boolean }) => {
      if (!!o.config === !!o.run) throw new Error('give --config FILE or --run DIR (one of them)');
      let from: { config: PretrainConfigInput } | { runDir: string };
      if (o.config) {
        let raw: unknown;
        try {
          raw = JSON.parse(readFileSync(resolve(o.config), 'utf8'));
        } catch (err) {
          throw new Error(`--config ${o.config}: ${(err as Error).message}`);
        }
        from = { config: { ...(raw as PretrainConfigInput), init: (raw as { init?: string }).init ? resolve((raw as { init: string }).init) : undefined } };
      } else from = { runDir: resolve(o.run!) };
      // The services' cluster-job service: the one the app's jobs.export calls.
      await withServices(o, async ({ clusterJobs }) => {
        const line = progressLine();
        const ac = interruptible(() => process.stderr.write('\ncancelling the export (run it again to continue)…\n'));
        const r = await clusterJobs.export(from, {
          out: resolve(o.out),
          dtype: o.dtype,
          shardBytes: o.shardMb * 2 ** 20,
          workers: o.workers,
          signal: ac.signal,
          onProgress: (p) => line.update(`${bar(p.done / p.total)} ${p.done}/${p.total} slices`),
        });
        line.done();
        out(o.json, r, () =>
          [
            `wrote cluster job ${r.jobId} to ${r.dir}`,
            `  ${r.task}, ${r.preset} (${r.size} px): ${r.slices.train} training and ${r.slices.val} validation slices as ${r.dtype} in ${r.shards} shard(s), ${(r.bytes / 2 ** 20).toFixed(1)} MB, ${r.seconds.toFixed(1)} s`,
            `  ${r.heldOut} held-out slices stay here for ctssl eval-ssl after the import`,
            `run it: ${r.commands.oneNode}   (README.md: several nodes, Slurm)`,
            `bring it home: ${r.commands.importBack}`,
          ].join('\n'),
        );
      });
    });
}
