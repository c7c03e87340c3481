/** `ctssl export` and `ctssl import`: sharing pretrained weights as one checked file. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { defaultDataDir } from '../../platform/paths';
import { dbOption, out, withLibrary } from '../common';

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
      await withLibrary(o, async (db) => {
        const { exportRun } = await import('../../host/export-package');
        const r = await exportRun(db, resolve(o.run), resolve(o.out), { licence: o.licence, author: o.author });
        out(o.json, r, () => `wrote ${r.file} (${(r.bytes / 2 ** 20).toFixed(1)} MB, sha256 ${r.sha256})\n  ${r.files.join('\n  ')}`);
      });
    });

  program
    .command('import')
    .description('Import a weights package: checksums and compatibility checked; the encoder becomes available as an initialisation')
    .argument('<file>', 'package file')
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action(async (file: string, o: { db?: string; json?: boolean }) => {
      // The same verified import as the app's packages.import / packages.importBytes.
      const { importPackageAsRun } = await import('../../host/package-import');
      await withLibrary(o, (db) => {
        const { run, ...r } = importPackageAsRun(db, resolve(file), defaultDataDir());
        out(o.json, { ...r, runId: run.id }, () => `imported "${r.name}" (${r.task}, ${r.preset} ${r.size}px, licence ${r.licence}) into ${r.dir}\nuse it with: ctssl pretrain --init ${r.dir} ...`);
      });
    });
}
