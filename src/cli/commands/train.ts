/** `ctssl pretrain`, `ctssl eval-ssl` and `ctssl runs`: self-supervised pretraining from the command line, through the host's run service. */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { join, resolve } from 'node:path';
import type { Services } from '../../host/services';
import type { PretrainConfigInput } from '../../shared/run-config';
import { allTaskOptions, pretextTaskIds, type TaskOption } from '../../shared/pretext-tasks';
import { PAPER_COHORT, PRESETS } from '../../shared/presets';
import { RECIPES, type Recipe } from '../../shared/recipes';
import type { RunSplit, RunSummary } from '../../shared/types';
import { backendOption, dbOption, finiteNumber, out, positiveInt, positiveNumber, withServices } from '../common';
import { type ConsoleSink, fmtLosses } from '../console-sink';
import { onInterrupt } from '../progress';

/** What `eval-ssl` prints of an evaluation (SslEvaluation of src/trainer/eval-ssl.ts). */
interface SslEvaluationOutput {
  table: string;
  warnings: string[];
  samples: { input: string }[];
}

type FlaggedOption = TaskOption & { cli: NonNullable<TaskOption['cli']> };

/** A task option's flag (src/shared/pretext-tasks.ts): its choices, or a number parser. */
function taskOptionFlag(o: FlaggedOption): Option {
  const flag = new Option(o.cli.flag, o.cli.description);
  if (o.type === 'choice') return flag.choices(o.values.map(String));
  return flag.argParser(o.type === 'int' && o.min >= 1 ? positiveInt : finiteNumber);
}

/** A flag's value as the option takes it (a choice among numbers is a number). */
const taskOptionValue = (o: FlaggedOption, v: unknown) => (o.type === 'choice' && typeof o.default === 'number' ? Number(v) : v);

/** `--split 0.8,0.1,0.1`: the patient split's train, validation and held-out fractions. */
export function splitFractions(v: string): number[] {
  const f = v.split(',').map(Number);
  if (f.length !== 3 || f.some((x) => !Number.isFinite(x) || x < 0) || f[0] <= 0) throw new InvalidArgumentError('expected three fractions like 0.8,0.1,0.1');
  return f;
}

export function register(program: Command): void {
  const taskFlags = allTaskOptions()
    .filter((o): o is FlaggedOption => o.cli !== undefined)
    .map((option) => ({ option, flag: taskOptionFlag(option) }));
  const pretrain = program
    .command('pretrain')
    .description('Self-supervised pretraining on a cohort of the library, in a trainer process (resumable)')
    .addOption(dbOption())
    .addOption(new Option('--task <task>', 'pretext task').choices(pretextTaskIds()));
  for (const f of taskFlags) pretrain.addOption(f.flag);
  pretrain
    .option('--init <run>', "start from the weights of this run folder (curriculum): its data and patient split too, unless --new-cohort")
    .option('--new-cohort', "with --init: select the cohort and split it anew (the parent's training patients stay in training)")
    .option('--allow-overlap', "let patients a parent run trained on into validation and held-out (recorded as a warning) instead of refusing")
    .addOption(
      new Option('--recipe <r>', "'ours' (default) or 'reference': everything as the authors' public code (batch 16, side mask, masked term summed over the batch, uniform codebook, per-slice min-max to 8 bits, SSIM on min-max-scaled output, RAdam 1e-3, 3 channels); a flag that contradicts it is refused").choices([...RECIPES]),
    )
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
    .option('--split <fractions>', 'patient split train,validation,held-out (default 0.8,0.1,0.1)', splitFractions)
    .option('--checkpoint-every <n>', 'steps between checkpoints', positiveInt)
    .option('--eval-every <n>', 'steps between validation evaluations', positiveInt)
    .option('--window-level <hu>', 'input window level (default: the --init run\'s, else 50, soft tissue as in the paper)', Number)
    .option('--window-width <hu>', 'input window width (default: the --init run\'s, else 350)', positiveNumber)
    .option('--no-cache', 'do not cache preprocessed slices on disk')
    .addOption(backendOption())
    .option('--out <dir>', 'run folder (default: <data dir>/runs/...)')
    .option('--resume <dir>', 'continue the run in this folder from its latest checkpoint')
    .option('--json', 'print a JSON summary on stdout')
    .action(async (o: Record<string, string | number | boolean | undefined> & { db?: string; json?: boolean }) => {
      await withServices(o, async ({ runs }, sink) => {
        let run;
        if (o.resume) {
          // The CLI names runs by folder; one copied from another machine is recorded first.
          run = runs.byDir(String(o.resume), { adopt: true });
        } else {
          if (!o.task) throw new Error('--task is required (or --resume RUN_DIR)');
          if (o.steps === undefined && o.epochs === undefined) throw new Error('give --steps N or --epochs N');
          const input: PretrainConfigInput = {
            task: o.task as PretrainConfigInput['task'],
            preset: o.preset as PretrainConfigInput['preset'],
            // Task options (--mask, --mask-definition, --gap, --noise-fraction): the run config checks their values.
            ...Object.fromEntries(
              taskFlags.filter((f) => o[f.flag.attributeName()] !== undefined).map((f) => [f.option.key, taskOptionValue(f.option, o[f.flag.attributeName()])]),
            ),
            ...(o.recipe !== undefined && { recipe: o.recipe as Recipe }),
            ...(o.init !== undefined && { init: resolve(String(o.init)) }),
            ...(o.newCohort === true && { newCohort: true }),
            ...(o.allowOverlap === true && { allowOverlap: true }),
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
          run = runs.create(input, { dir: o.out ? String(o.out) : undefined });
        }
        const split = runs.split(run.id);
        if (!o.json) printSplit(split);
        const { result: res, run: final } = await trainToEnd(runs, sink, run, o.backend as string | undefined, 'stopping after this step (a checkpoint is written; resume with --resume)...');
        const summary = {
          run: final.dir,
          id: final.id,
          status: res.status,
          task: final.task,
          preset: final.preset,
          backend: final.backend,
          steps: res.step,
          totalSteps: final.totalSteps,
          finalLosses: res.finalLosses,
          files: { config: join(final.dir, 'config.json'), manifest: join(final.dir, 'manifest.json'), ledger: join(final.dir, 'run.json'), metrics: join(final.dir, 'metrics.jsonl'), checkpoints: join(final.dir, 'checkpoints') },
          error: res.error,
          split,
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
    .addOption(backendOption())
    .option('--json', 'print JSON')
    .action(async (o: { run: string; db?: string; split: 'test' | 'val' | 'train'; maxSlices?: number; backend?: string; json?: boolean }) => {
      // The app's runs.evaluate: in a trainer process, the result kept in the run's summary as the app keeps it.
      const r = (await withServices(o, ({ runs }) => runs.evaluate(runs.byDir(o.run, { adopt: true }).id, { split: o.split, maxSlices: o.maxSlices, backend: o.backend }))) as unknown as SslEvaluationOutput;
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
      // The app's runs.delete, runs.restore, runs.emptyTrash, runs.trash and runs.list.
      await withServices(o, ({ runs }) => {
        if (o.delete !== undefined) {
          const dir = runs.get(o.delete).dir;
          const r = runs.delete(o.delete);
          return out(o.json, r, () => `run ${o.delete} moved to the trash${r.movedTo ? `: ${r.movedTo}` : ` (its folder, outside the data folder, stays where it is: ${dir})`}; undo with --restore ${o.delete}`);
        }
        if (o.restore !== undefined) {
          const r = runs.restore(o.restore);
          return out(o.json, { id: r.id, dir: r.dir }, () => `run ${r.id} restored: ${r.dir}`);
        }
        if (o.emptyTrash) {
          const r = runs.emptyTrash();
          return out(o.json, r, () => [`${r.removed} run(s) deleted for good`, ...r.failed.map((f) => `run ${f.id} kept in the trash: ${f.error}`)].join('\n'));
        }
        const list = o.trash ? runs.trash() : runs.list();
        out(o.json, list, () => list.map((r) => `${r.id}  ${r.status.padEnd(8)} ${r.task.padEnd(10)} ${r.preset.padEnd(8)} ${r.step}/${r.totalSteps}  ${r.dir}`).join('\n') || (o.trash ? 'the trash is empty' : 'no runs'));
      });
    });
}

const SPLIT_NAMES = { train: 'training', val: 'validation', test: 'held-out' } as const;

/** A run's patient split in a few lines: counts per split, the parents' patients, warnings (--json carries every patient and series as `split`). */
export function splitLines(split: RunSplit | null): string[] {
  if (!split) return [];
  const l = split.lineage;
  const parts = (['train', 'val', 'test'] as const).map((sp) => {
    const g = split.splits[sp];
    return `${SPLIT_NAMES[sp]} ${g.patients} patient${g.patients === 1 ? '' : 's'} (${g.series} series${g.positivePatients !== null ? `, ${g.positivePatients} positive` : ''})`;
  });
  return [
    `split: ${parts.join(', ')}${l?.stratified ? '; stratified by patient class' : ''}`,
    ...(l?.inheritedFrom ? [`  the data and split of ${l.inheritedFrom}`] : []),
    ...(l && l.keptInTrain.length ? [`  ${l.keptInTrain.length} patient(s) kept in training: a parent run trained on them`] : []),
    ...(l?.warnings ?? []).map((w) => `  warning: ${w}`),
  ];
}

/** Prints a run's split on stderr (progress and notes go there; stdout keeps the result). */
export function printSplit(split: RunSplit | null): void {
  const lines = splitLines(split);
  if (lines.length) process.stderr.write(lines.join('\n') + '\n');
}

/**
 * Starts a run through the run service (as runs.start) and waits for its trainer to end, its
 * progress printed by the console sink; Ctrl-C stops it at its next step (a checkpoint is
 * written), a second Ctrl-C ends the trainer at once.
 */
export async function trainToEnd(runs: Services['runs'], sink: ConsoleSink, run: RunSummary, backend: string | undefined, stopping: string) {
  sink.watchRun(run.id, run.dir);
  runs.start(run.id, { backend });
  const done = runs.wait(run.id);
  const off = onInterrupt(
    () => {
      sink.line.done(stopping);
      runs.stop(run.id);
    },
    () => runs.kill(run.id),
  );
  try {
    const result = await done;
    sink.line.done();
    return { result, run: runs.get(run.id) };
  } finally {
    off();
  }
}
