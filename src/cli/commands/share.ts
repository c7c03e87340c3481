/** `ctssl export` and `ctssl import`: sharing pretrained weights as one checked file, through the host's run service. */
import type { Command } from 'commander';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { dbOption, out, withServices } from '../common';
import type { CheckpointImportResult } from '../../host/checkpoint-import';
import { describeJobImport } from './job';

export function register(program: Command): void {
  program
    .command('export')
    .description('Export a run as one file: weights (safetensors + TF.js layers encoder), model card, ledger, checksums; refuses if patient identifiers would leak')
    .requiredOption('--run <dir>', 'run folder')
    .requiredOption('--out <file>', 'package file to write (e.g. encoder.ctssl.zip)')
    .requiredOption('--licence <licence>', 'licence of the weights, e.g. CC-BY-4.0 (your choice)')
    .option('--author <name>', 'author or lab shown in the model card')
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action(async (o: { run: string; out: string; licence: string; author?: string; db?: string; json?: boolean }) => {
      // The app's runs.export, written to --out instead of <data>/exports.
      await withServices(o, async ({ runs }) => {
        const r = await runs.exportRun(runs.byDir(o.run, { adopt: true }).id, { licence: o.licence, author: o.author, out: resolve(o.out) });
        out(o.json, r, () => `wrote ${r.file} (${(r.bytes / 2 ** 20).toFixed(1)} MB, sha256 ${r.sha256})\n  ${r.files.join('\n  ')}`);
      });
    });

  program
    .command('import')
    .description(
      "Import a weights package (checksums and compatibility checked; the encoder becomes available as an initialisation), the authors' PyTorch checkpoint (.pth.tar, read without Python; installed as a run), or a cluster job's output folder (a run with its curves)",
    )
    .argument('<file>', "package file, PyTorch checkpoint, or the output folder of a cluster job")
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action(async (file: string, o: { db?: string; json?: boolean }) => {
      // A folder: a cluster job's output (ctssl job export), installed as a run with its curves.
      if (statSync(resolve(file), { throwIfNoEntry: false })?.isDirectory()) {
        return withServices(o, ({ clusterJobs }) => {
          const { run, ...r } = clusterJobs.import(resolve(file));
          out(o.json, { ...r, runId: run.id }, () => describeJobImport(r));
        });
      }
      // The app's packages.import: the same verified import (a package or a PyTorch checkpoint, told
      // apart by the host from the bytes), for a file named in the user's own shell.
      await withServices(o, ({ runs }) => {
        const { run, ...r } = runs.importPackage(resolve(file));
        const ck = (r as Partial<CheckpointImportResult>).kind === 'pytorch-checkpoint' ? (r as CheckpointImportResult) : null;
        const what = ck ? `${r.preset} at ${ck.channels} channel${ck.channels === 1 ? '' : 's'}, ${r.size}px, ${r.tensors} tensors from ${ck.stateKey}${ck.epoch !== null ? `, epoch ${ck.epoch}` : ''}; not used: ${ck.ignored.join(', ') || 'nothing'}` : `${r.task}, ${r.preset} ${r.size}px, licence ${r.licence}`;
        out(o.json, { ...r, runId: run.id }, () => `imported "${r.name}" (${what}) into ${r.dir}\nuse it with: ctssl finetune --init ${r.dir} ..., ctssl eval-ssl --run ${r.dir}, ctssl pretrain --init ${r.dir} ...`);
      });
    });
}
