/** `ctssl bias-probe` (and the fine-tuning commands): what pretrained encoders are worth downstream. */
import { type Command, Option } from 'commander';
import { join, resolve } from 'node:path';
import { PAPER_COHORT, PRESETS } from '../../shared/presets';
import type { Events } from '../../shared/contract';
import type { ExperimentSpecInput, FinetuneConfigInput } from '../../shared/run-config';
import { backendOption, dbOption, out, positiveInt, positiveNumber, withLibrary, withServices } from '../common';
import { onInterrupt, progressLine } from '../progress';
import type { FinetuneResults } from '../../shared/results';
import { printSplit, splitFractions, trainToEnd } from './train';

export function register(program: Command): void {
  program
    .command('finetune')
    .description('Fine-tune on labelled slices: slice classification (e.g. PE) or nodule segmentation, from a pretrained encoder or random')
    .addOption(new Option('--task <t>', 'downstream task').choices(['classification', 'segmentation']).makeOptionMandatory())
    .addOption(new Option('--model <m>', 'encoder-classifier (default for classification), cnn (supervised baseline, from scratch), unet (segmentation)').choices(['encoder-classifier', 'cnn', 'unet']))
    .option('--label <spec>', "slice label: 'pe' (RSNA pe_present_on_image), 'nodule' (LIDC/SEG), or an imported per-image label name", 'nodule')
    .option('--consensus <k>', 'nodule label: at least k readers', positiveInt)
    .option('--min-area <px>', "nodule label: a slice is positive from this nodule area (stored pixels); slices showing less of a nodule (its cap) are left out, not counted as negatives (default 1)", positiveInt)
    .option('--init <run>', 'pretrained run folder (its encoder initialises the model; its training patients stay in training); omit for random initialisation')
    .option('--allow-overlap', 'let patients the pretrained run trained on into validation and held-out (recorded as a warning) instead of refusing')
    .addOption(new Option('--preset <name>', 'model preset (must match the pretrained run)').choices([...PRESETS]).default('tiny'))
    .option('--size <px>', 'input size (default: the preset\'s)', positiveInt)
    .addOption(new Option('--pool <p>', "classifier head pooling: mean (the paper's, default) or mean-max (keeps small findings)").choices(['mean', 'mean-max']))
    .option('--fraction <f>', 'fraction of the training slices to use', positiveNumber, 1)
    .option('--freeze-epochs <n>', 'epochs with the encoder frozen', positiveNumber)
    .option('--steps <n>', 'optimisation steps', positiveInt)
    .option('--epochs <n>', 'epochs', positiveNumber)
    .option('--batch <n>', 'batch size', positiveInt)
    .option('--lr <x>', 'learning rate', positiveNumber)
    .option('--seed <n>', 'seed of splits, subsets, weights and batches', (v) => Number(v))
    .option('--split-seed <n>', 'seed of the patient split alone (default: --seed): other seeds on the same patients', (v) => Number(v))
    .option('--series <ids>', 'comma-separated series ids (default: every CT series with such labels)')
    .option('--split <fractions>', 'patient split train,validation,held-out (default 0.6,0.2,0.2)', splitFractions)
    .option('--train-series <ids>', 'comma-separated labelled series added to the training split only, after the cohort is split (more training patients, the same validation and held-out ones)')
    .option('--eval-every <n>', 'steps between validation evaluations', positiveInt)
    .option('--early-stop <patience>', 'stop after this many validation evaluations in a row without a gain in validation AUROC or Dice, and keep the best evaluation\'s weights (results.json: earlyStop)', positiveInt)
    .option('--window-level <hu>', "input window level (default: the pretrained encoder's, else 50)", Number)
    .option('--window-width <hu>', "input window width (default: the pretrained encoder's, else 350)", positiveNumber)
    .option('--out <dir>', 'run folder')
    .addOption(backendOption())
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action(async (o: Record<string, string | number | undefined> & { db?: string; json?: boolean }) => {
      await withServices(o, async ({ runs }, sink) => {
        const task = o.task as 'classification' | 'segmentation';
        const labelArg = String(o.label);
        const input: FinetuneConfigInput = {
          kind: 'finetune',
          task,
          model: (o.model as FinetuneConfigInput['model']) ?? (task === 'segmentation' ? 'unet' : 'encoder-classifier'),
          label:
            labelArg === 'nodule'
              ? { kind: 'nodule', ...(o.consensus !== undefined && { consensusK: Number(o.consensus) }), ...(o.minArea !== undefined && { minAreaPx: Number(o.minArea) }) }
              : { kind: 'image-label', name: labelArg === 'pe' ? 'pe_present_on_image' : labelArg },
          preset: o.preset as FinetuneConfigInput['preset'],
          trainFraction: Number(o.fraction),
          ...(o.init !== undefined && { init: resolve(String(o.init)) }),
          ...(o.allowOverlap !== undefined && { allowOverlap: true }),
          ...(o.size !== undefined && { size: Number(o.size) }),
          ...(o.pool !== undefined && { pool: o.pool as 'mean' | 'mean-max' }),
          ...(o.freezeEpochs !== undefined && { freezeEpochs: Number(o.freezeEpochs) }),
          ...(o.steps !== undefined && { steps: Number(o.steps) }),
          ...(o.epochs !== undefined && { epochs: Number(o.epochs) }),
          ...(o.batch !== undefined && { batchSize: Number(o.batch) }),
          ...(o.lr !== undefined && { lr: Number(o.lr) }),
          ...(o.seed !== undefined && { seed: Number(o.seed) }),
          ...(o.splitSeed !== undefined && { splitSeed: Number(o.splitSeed) }),
          ...(o.evalEvery !== undefined && { evalEvery: Number(o.evalEvery) }),
          ...(o.earlyStop !== undefined && { earlyStopPatience: Number(o.earlyStop) }),
          ...(o.windowLevel !== undefined && { windowLevel: Number(o.windowLevel) }),
          ...(o.windowWidth !== undefined && { windowWidth: Number(o.windowWidth) }),
          ...(o.split !== undefined && { fractions: { train: (o.split as unknown as number[])[0], val: (o.split as unknown as number[])[1], test: (o.split as unknown as number[])[2] } }),
          ...(o.trainSeries !== undefined && { trainSeriesIds: String(o.trainSeries).split(',').map((x) => Number(x.trim())) }),
          ...(o.series ? { seriesIds: String(o.series).split(',').map((x) => Number(x.trim())) } : { filter: { modality: 'CT' } }),
        };
        if (input.steps === undefined && input.epochs === undefined) throw new Error('give --steps N or --epochs N');
        // The app's runs.create and runs.start, waited for; the held-out results come as the app's run.event.
        const run = runs.create(input, { dir: o.out ? String(o.out) : undefined });
        const split = runs.split(run.id);
        if (!o.json) printSplit(split);
        let results: FinetuneResults | null = null;
        const off = sink.on((event, payload) => {
          const p = payload as Events['run.event'];
          if (event === 'run.event' && p.runId === run.id && p.event.type === 'results') results = p.event.results;
        });
        const { result: r, run: final } = await trainToEnd(runs, sink, run, o.backend as string | undefined, 'stopping after this step (a checkpoint is written)...').finally(off);
        const summary = { run: final.dir, id: final.id, status: r.status, backend: final.backend, steps: r.step, finalLosses: r.finalLosses, results, error: r.error, split };
        out(o.json, summary, () => [`${r.status}: ${final.dir}`, ...heldOutLines(results), ...(r.error ? [`  ${r.error}`] : [])].join('\n'));
        if (r.status !== 'done') process.exitCode = 1;
      });
    });

  program
    .command('experiment')
    .description('Run an experiment grid (initialisations x training fractions x seeds) and write one report (CSV, SVG plots, offline HTML); re-run to continue')
    .argument('<spec>', 'experiment spec (JSON, see the README)')
    .requiredOption('--out <dir>', 'experiment folder')
    .addOption(backendOption())
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action(async (specPath: string, o: { out: string; backend?: string; db?: string; json?: boolean }) => {
      const { readFileSync } = await import('node:fs');
      let spec: unknown;
      try {
        spec = JSON.parse(readFileSync(resolve(specPath), 'utf8'));
      } catch (err) {
        throw new Error(`${resolve(specPath)}: ${(err as Error).message}`);
      }
      // The app's experiments.start, in the --out folder (one that holds the grid continues it), waited for.
      await withServices(o, async ({ experiments }, sink) => {
        const { id } = experiments.start(spec as ExperimentSpecInput, { dir: resolve(o.out), backend: o.backend });
        const off = onInterrupt(() => {
          sink.line.done('stopping after the current run step (completed runs are kept; re-run to continue)...');
          experiments.stop(id);
        });
        const r = await experiments.wait(id).finally(off);
        sink.line.done();
        out(o.json, { ...r, cells: r.cells.map((c) => ({ ...c, results: c.results ? { ...c.results, roc: undefined, scores: undefined, labels: undefined, patientOfSlice: undefined } : null })) }, () =>
          [
            `${r.name}: report ${r.files.html}`,
            ...r.warnings.map((w) => `warning: ${w}`),
            ...r.summary.map(
              (s) =>
                `  ${s.init === 'random' || s.init === 'cnn' ? s.init : 'pretrained ' + s.init}  fraction ${s.fraction}: ${r.metric} ${s.mean.toFixed(3)}${s.n > 1 ? ` [${s.lower.toFixed(3)}, ${s.upper.toFixed(3)}]` : ''} (n=${s.n})${s.patientCi95 ? `, patient-level CI [${s.patientCi95[0].toFixed(3)}, ${s.patientCi95[1].toFixed(3)}]` : ''}`,
            ),
            ...(r.comparisons.length ? ['paired comparisons (patient-level p, Holm-adjusted over the report; slice-level DeLong p, which assumes independent slices, for reference):'] : []),
            ...r.comparisons.map(
              (c) =>
                `  ${c.pretrained} vs ${c.baseline} at ${c.fraction}, ${c.seed === null ? `pooled over seeds ${c.seeds.join(', ')}` : `seed ${c.seed}`}: difference ${fmt(c.difference)} [${fmt(c.ci95[0])}, ${fmt(c.ci95[1])}], p ${fmtP(c.p)}, Holm ${fmtP(c.pHolm)}${c.sliceLevelP === null ? '' : `, slice-level ${fmtP(c.sliceLevelP)}`}: ${c.verdict}`,
            ),
          ].join('\n'),
        );
      });
    });

  program
    .command('bias-probe')
    .description("Probe embeddings of each scan's middle slice for sex, ethnic group and age group (cross-validated AUROC), against a CNN trained from scratch on raw slices, on scans the encoders did not train on")
    .requiredOption('--out <dir>', 'folder for bias-probe.{json,csv,svg,html}')
    .option('--encoder <runs...>', 'run folders whose encoders are probed (pretrained or imported)')
    .option('--series <ids>', 'comma-separated series ids (default: CT, axial)')
    .addOption(new Option('--attributes <list>', 'comma-separated: sex, ethnicGroup, ageGroup').default('sex,ethnicGroup,ageGroup'))
    .option('--folds <k>', 'cross-validation folds', positiveInt, 5)
    .option('--seed <n>', 'seed of the folds and bootstrap', positiveInt, 1)
    .option('--include-training-scans', "also probe the scans a probed encoder trained or validated on (default: left out, from its run manifest, as the paper probes held-out exams)")
    .addOption(dbOption())
    .addOption(backendOption())
    .option('--json', 'print JSON')
    .action(async (o: { out: string; encoder?: string[]; series?: string; attributes: string; folds: number; seed: number; includeTrainingScans?: boolean; db?: string; backend?: string; json?: boolean }) => {
      // The embeddings and cross-validation run in a trainer process; the report is written here.
      const { runBiasProbe } = await import('../../host/probe');
      await withLibrary(o, async (db) => {
        const line = progressLine();
        const r = await runBiasProbe(db, {
          encoders: (o.encoder ?? []).map((e) => resolve(e)),
          seriesIds: o.series ? o.series.split(',').map((x) => Number(x.trim())) : undefined,
          filter: o.series ? undefined : { modality: PAPER_COHORT.modality, orientation: 'axial' },
          attributes: o.attributes.split(',').map((a) => a.trim()) as ('sex' | 'ethnicGroup' | 'ageGroup')[],
          folds: o.folds,
          seed: o.seed,
          includeTrainingScans: o.includeTrainingScans === true,
          outDir: resolve(o.out),
          backend: o.backend,
          onProgress: (done, total, what) => line.update(`${what}: ${done}/${total}`),
        });
        line.done();
        out(o.json, r, () =>
          [
            `${r.scans} scans probed${r.excluded && !r.excluded.training ? ` (${r.excluded.scans} left out: in a probed encoder's training or validation split)` : ''}; report: ${r.files.html}`,
            ...r.scores.map((s) => `  ${s.attribute.padEnd(12)} ${s.features.padEnd(48)} AUROC ${s.auroc.toFixed(3)}${s.ci95 ? ` [${s.ci95[0].toFixed(3)}, ${s.ci95[1].toFixed(3)}]` : ''} (n=${s.n}, ${s.classes.length} classes)`),
            ...r.warnings.map((w) => `warning: ${w}`),
          ].join('\n'),
        );
      });
      void join;
    });
}

const fmt = (v: number | null) => (v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(3));
const fmtP = (v: number | null) => (v === null || !Number.isFinite(v) ? 'n/a' : v < 0.001 ? '< 0.001' : v.toPrecision(2));

/** A fine-tuning run's held-out results for the terminal: the numbers, how the interval was made, the warnings. */
function heldOutLines(r: FinetuneResults | null): string[] {
  if (!r) return ['  held-out: no results'];
  const where = `${r.slices} slices${r.patients === undefined ? '' : ` of ${r.patients} patient${r.patients === 1 ? '' : 's'}`} on the ${r.split} split${r.heldOut ? '' : ' (not held out: the model trained on it)'}`;
  const how = !('error' in r) && r.ci ? `patient-level bootstrap, ${r.ci.resamples} resamples` : 'slice-level bootstrap';
  const lines =
    'error' in r
      ? [`  held-out: ${r.error} (${where})`]
      : r.task === 'classification'
        ? [`  held-out AUROC ${fmt(r.auroc)}, 95% CI [${fmt(r.aurocCi95[0])}, ${fmt(r.aurocCi95[1])}] (${how}); ${where}, ${r.positives} positive`, `  at the Youden threshold ${fmt(r.threshold.value)} (chosen on ${r.threshold.chosenOn}): sensitivity ${fmt(r.sensitivity)}, specificity ${fmt(r.specificity)}, PPV ${fmt(r.ppv)}, NPV ${fmt(r.npv)}`]
        : [`  held-out Dice ${fmt(r.dice)}${r.diceCi95 ? `, 95% CI [${fmt(r.diceCi95[0])}, ${fmt(r.diceCi95[1])}] (${how})` : ''}, IoU ${fmt(r.iou)}; ${where}`];
  const es = r.earlyStop;
  const early = es
    ? [`  early stopping (patience ${es.patience} evaluations of validation ${es.metric}): ${es.stoppedAtStep === null ? 'trained every step' : `stopped at step ${es.stoppedAtStep}`}; ${es.bestStep >= 0 ? `scored the weights of step ${es.bestStep} (validation ${es.metric} ${fmt(es.bestValue)})` : `validation ${es.metric} was never defined: scored the last weights`}`]
    : [];
  return [...lines, ...early, ...(r.warnings ?? []).map((w) => `warning: ${w}`)];
}
