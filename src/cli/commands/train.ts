/** `ctssl pretrain` and `ctssl runs`: self-supervised pretraining from the command line. */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { join, resolve } from 'node:path';
import type { PretrainConfigInput } from '../../shared/run-config';
import { PAPER_COHORT, PRESETS, TASK_NAMES } from '../../shared/presets';
import { defaultDataDir } from '../../platform/paths';
import { dbOption, out, positiveInt, positiveNumber, withLibrary } from '../common';
import { bar, formatEta, progressLine } from '../progress';

function fmtLosses(l: Record<string, number>): string {
  return Object.entries(l)
    .map(([k, v]) => `${k} ${Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : v.toFixed(4)}`)
    .join('  ');
}

export function register(program: Command): void {
  program
    .command('pretrain')
    .description('Self-supervised pretraining on a cohort of the library, in a trainer process (resumable)')
    .addOption(dbOption())
    .addOption(new Option('--task <task>', 'pretext task').choices([...TASK_NAMES]))
    .addOption(new Option('--mask <percent>', 'masked region size, % (with --mask-definition)').choices(['5', '10', '20', '33']))
    .addOption(new Option('--mask-definition <d>', "'area' = the paper (p% of the area), 'side' = the public code (p% of the side)").choices(['area', 'side']))
    .option('--gap <n>', 'next-slice distance', positiveInt)
    .option('--init <run>', 'start from the weights of this run folder (curriculum)')
    .addOption(new Option('--preset <name>', 'model preset').choices([...PRESETS]).default('tiny'))
    .option('--size <px>', 'input size (default: the preset\'s)', positiveInt)
    .option('--steps <n>', 'optimisation steps', positiveInt)
    .option('--epochs <n>', 'epochs over the training split', positiveNumber)
    .option('--batch <n>', 'batch size', positiveInt)
    .option('--lr <x>', 'learning rate', positiveNumber)
    .addOption(new Option('--optimizer <o>').choices(['adam', 'radam']))
    .addOption(new Option('--codebook-init <how>', "VQ codebook start: 'data' = encoder outputs of the first batch, 'uniform' = the reference's").choices(['data', 'uniform']))
    .option('--seed <n>', 'seed of splits, weights and batches', (v) => Number(v))
    .option('--series <ids>', 'comma-separated series ids (default: the paper cohort: CT, axial, <= 3 mm)')
    .option('--slice-stride <k>', 'use every k-th slice', positiveInt)
    .option('--split <fractions>', 'patient split train,validation,held-out (default 0.8,0.1,0.1)', (v) => {
      const f = v.split(',').map(Number);
      if (f.length !== 3 || f.some((x) => !Number.isFinite(x) || x < 0) || f[0] <= 0) throw new InvalidArgumentError('expected three fractions like 0.8,0.1,0.1');
      return f;
    })
    .option('--checkpoint-every <n>', 'steps between checkpoints', positiveInt)
    .option('--eval-every <n>', 'steps between validation evaluations', positiveInt)
    .option('--window-level <hu>', 'input window level (default: the --init run\'s, else 50, soft tissue as in the paper)', Number)
    .option('--window-width <hu>', 'input window width (default: the --init run\'s, else 350)', positiveNumber)
    .option('--no-cache', 'do not cache preprocessed slices on disk')
    .addOption(new Option('--backend <b>', 'force a compute backend').choices(['tensorflow', 'wasm', 'cpu']))
    .option('--out <dir>', 'run folder (default: <data dir>/runs/...)')
    .option('--resume <dir>', 'continue the run in this folder from its latest checkpoint')
    .option('--json', 'print a JSON summary on stdout')
    .action(async (o: Record<string, string | number | boolean | undefined> & { db?: string; json?: boolean }) => {
      const { adoptRun, createRun, getRun, startRun } = await import('../../host/runs');
      await withLibrary(o, async (db) => {
        const dataDir = defaultDataDir();
        let run;
        if (o.resume) {
          run = getRun(db, String(o.resume)) ?? adoptRun(db, String(o.resume));
        } else {
          if (!o.task) throw new Error('--task is required (or --resume RUN_DIR)');
          if (o.steps === undefined && o.epochs === undefined) throw new Error('give --steps N or --epochs N');
          const input: PretrainConfigInput = {
            task: o.task as PretrainConfigInput['task'],
            preset: o.preset as PretrainConfigInput['preset'],
            ...(o.mask !== undefined && { maskPercent: Number(o.mask) as 5 | 10 | 20 | 33 }),
            ...(o.maskDefinition !== undefined && { maskDefinition: o.maskDefinition as 'area' | 'side' }),
            ...(o.gap !== undefined && { gap: Number(o.gap) }),
            ...(o.init !== undefined && { init: resolve(String(o.init)) }),
            ...(o.size !== undefined && { size: Number(o.size) }),
            ...(o.steps !== undefined && { steps: Number(o.steps) }),
            ...(o.epochs !== undefined && { epochs: Number(o.epochs) }),
            ...(o.batch !== undefined && { batchSize: Number(o.batch) }),
            ...(o.lr !== undefined && { lr: Number(o.lr) }),
            ...(o.optimizer !== undefined && { optimizer: o.optimizer as 'adam' | 'radam' }),
            ...(o.codebookInit !== undefined && { codebookInit: o.codebookInit as 'data' | 'uniform' }),
            ...(o.seed !== undefined && { seed: Number(o.seed) }),
            ...(o.sliceStride !== undefined && { sliceStride: Number(o.sliceStride) }),
            ...(o.split !== undefined && { fractions: { train: (o.split as unknown as number[])[0], val: (o.split as unknown as number[])[1], test: (o.split as unknown as number[])[2] } }),
            ...(o.checkpointEvery !== undefined && { checkpointEvery: Number(o.checkpointEvery) }),
            ...(o.evalEvery !== undefined && { evalEvery: Number(o.evalEvery) }),
            ...(o.windowLevel !== undefined && { windowLevel: Number(o.windowLevel) }),
            ...(o.windowWidth !== undefined && { windowWidth: Number(o.windowWidth) }),
            useCache: o.cache !== false,
            ...(o.series ? { seriesIds: String(o.series).split(',').map((x) => Number(x.trim())) } : { filter: { ...PAPER_COHORT } }),
          };
          run = createRun(db, input, { dataDir, dir: o.out ? String(o.out) : undefined });
        }
        const line = progressLine();
        let backend = '';
        let total = 0;
        const handle = startRun(db, run, {
          resume: true,
          cacheDir: join(dataDir, 'cache', 'slices'),
          backend: o.backend as string | undefined,
          onEvent: (e) => {
            if (e.type === 'ready') backend = `${e.backend.package}@${e.backend.version}`;
            if (e.type === 'started') {
              total = e.totalSteps;
              line.done(`${run.dir}: ${e.params.toLocaleString()} parameters, ${e.totalSteps} steps on ${backend}${e.resumedFrom !== null ? `, resuming at step ${e.resumedFrom}` : ''}`);
            }
            if (e.type === 'step')
              line.update(`${bar(e.step / Math.max(1, total))} step ${e.step}  ${fmtLosses(e.losses)}  ${e.slicesPerSecond} slices/s  ETA ${formatEta(e.etaSeconds)}`);
            if (e.type === 'eval') line.done(`step ${e.step} validation: ${fmtLosses(e.metrics)}`);
            if (e.type === 'error') line.done(`error: ${e.message}`);
          },
        });
        let interrupted = 0;
        const onSig = () => {
          interrupted++;
          if (interrupted === 1) {
            line.done('stopping after this step (a checkpoint is written; resume with --resume)...');
            handle.stop();
          } else handle.child.kill('SIGKILL');
        };
        process.on('SIGINT', onSig);
        process.on('SIGTERM', onSig);
        const res = await handle.done;
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
        line.done();
        const final = getRun(db, run.id)!;
        const summary = {
          run: final.dir,
          id: final.id,
          status: res.status,
          task: final.task,
          preset: final.config.preset,
          backend: final.backend,
          steps: res.step,
          totalSteps: final.totalSteps,
          finalLosses: res.finalLosses,
          files: { config: join(final.dir, 'config.json'), manifest: join(final.dir, 'manifest.json'), ledger: join(final.dir, 'run.json'), metrics: join(final.dir, 'metrics.jsonl'), checkpoints: join(final.dir, 'checkpoints') },
          error: res.error,
        };
        out(o.json, summary, () => `${res.status}: ${final.dir} after ${res.step} steps on ${final.backend}\n  final: ${fmtLosses(res.finalLosses)}${res.error ? `\n  ${res.error}` : ''}`);
        if (res.status !== 'done' && res.status !== 'stopped') process.exitCode = 1;
      });
    });

  program
    .command('eval-ssl')
    .description("Evaluate a run's pretext task on held-out scans, as the paper's Table II (mean and sd)")
    .requiredOption('--run <dir>', 'run folder')
    .addOption(dbOption())
    .addOption(new Option('--split <s>', 'which split').choices(['test', 'val', 'train']).default('test'))
    .option('--max-slices <n>', 'evaluate at most n slices', positiveInt)
    .addOption(new Option('--backend <b>', 'force a compute backend').choices(['tensorflow', 'wasm', 'cpu']))
    .option('--json', 'print JSON')
    .action(async (o: { run: string; db?: string; split: 'test' | 'val' | 'train'; maxSlices?: number; backend?: string; json?: boolean }) => {
      const { evaluateRun } = await import('../../trainer/eval-ssl');
      const r = await evaluateRun(resolve(o.run), { split: o.split, maxSlices: o.maxSlices, backend: o.backend, cacheDir: join(defaultDataDir(), 'cache', 'slices') });
      const { getRun } = await import('../../host/runs');
      await withLibrary(o, (db) => {
        const run = getRun(db, resolve(o.run));
        if (run) {
          const summary = { ...run.summary, eval: { split: r.split, perVolume: r.perVolume, perImage: r.perImage, step: r.checkpointStep } };
          db.prepare('UPDATE runs SET summary = ? WHERE id = ?').run(JSON.stringify(summary), run.id);
        }
      });
      out(o.json, r, () => [r.table, ...r.warnings.map((w) => `warning: ${w}`), `samples: ${r.samples.length ? r.samples[0].input.replace(/sample-0.*$/, '') : '-'}`].join('\n'));
    });

  program
    .command('runs')
    .description('List training runs; move one to the trash, restore it, or empty the trash')
    .addOption(dbOption())
    .option('--delete <id>', 'move a run (not training) to the trash: its folder goes to <data>/trash/runs', positiveInt)
    .option('--restore <id>', 'bring a run back from the trash', positiveInt)
    .option('--trash', 'list the runs in the trash')
    .option('--empty-trash', 'delete the runs in the trash for good')
    .option('--json', 'print JSON')
    .action(async (o: { db?: string; json?: boolean; delete?: number; restore?: number; trash?: boolean; emptyTrash?: boolean }) => {
      const { emptyTrash, listRuns, listTrashedRuns, restoreRun, trashRun } = await import('../../host/runs');
      await withLibrary(o, (db) => {
        if (o.delete !== undefined) {
          const r = trashRun(db, o.delete, defaultDataDir());
          return out(o.json, { id: o.delete, movedTo: r.movedTo }, () => `run ${o.delete} moved to the trash${r.movedTo ? `: ${r.movedTo}` : ` (its folder, outside the data folder, stays where it is: ${r.run.dir})`}; undo with --restore ${o.delete}`);
        }
        if (o.restore !== undefined) {
          const r = restoreRun(db, o.restore);
          return out(o.json, { id: r.id, dir: r.dir }, () => `run ${r.id} restored: ${r.dir}`);
        }
        if (o.emptyTrash) {
          const r = emptyTrash(db);
          return out(o.json, r, () => [`${r.removed} run(s) deleted for good`, ...r.failed.map((f) => `run ${f.id} kept in the trash: ${f.error}`)].join('\n'));
        }
        const runs = o.trash ? listTrashedRuns(db) : listRuns(db);
        out(o.json, runs, () => runs.map((r) => `${r.id}  ${r.status.padEnd(8)} ${r.task.padEnd(10)} ${r.config.preset.padEnd(8)} ${r.step}/${r.totalSteps}  ${r.dir}`).join('\n') || (o.trash ? 'the trash is empty' : 'no runs'));
      });
    });
}
