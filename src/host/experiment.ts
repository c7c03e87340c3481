/**
 * The paper's experiment grid: fine-tuning runs over initialisations (random, supervised CNN,
 * pretrained runs) x training fractions x seeds, with one patient split for all, then one report:
 * held-out AUROC (or Dice) against fraction with 95% intervals over seeds (and the patient-level
 * interval of their mean), validation curves against iterations, ROC curves, patient-level paired
 * tests of pretrained vs each baseline at each fraction, per seed and pooled over seeds, Holm-
 * adjusted (./experiment-statistics.ts; slice-level DeLong beside them, labelled as such), the
 * warnings of a small test split, and for segmentation the iterations needed to reach a Dice
 * level. CSV, SVG plots and an offline HTML page. Completed runs are kept: re-running the command
 * continues an interrupted experiment.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseExperimentSpec, parseRunConfig, type ExperimentSpec, type ExperimentSpecInput, type FinetuneConfigInput } from '../shared/run-config';
import { taskTitle } from '../shared/pretext-tasks';
import type { TrainerEvent } from '../shared/trainer-protocol';
import type { ExperimentCell, ExperimentReport, FinetuneResults } from '../shared/results';
import { iterationsToReach } from '../core/metrics/segmentation';
import { meanCi } from '../core/metrics/stats';
import { linePlot, rocPlot } from '../core/plots';
import type { SpawnTrainer } from './runs/trainer-host';
import { getRun, runMetrics } from './runs/run-store';
import { createFinetuneRun, initPreprocessing } from './runs/create-run';
import { startRun } from './runs/start-run';
import type { Database } from '../library/db/sqlite';
import { runSplit } from '../library/runs/lineage';
import type { RunSplit } from '../shared/types';
import { experimentStatistics, summaryKey } from './experiment-statistics';
import type { BackendName } from '../shared/backends';

/** A grid's cells and report are declared in src/shared/results.ts, where the contract carries them. */
export type { ExperimentCell, ExperimentReport };

export interface ExperimentOptions {
  outDir: string;
  dataDir: string;
  cacheDir: string | null;
  spawn?: SpawnTrainer;
  backend?: BackendName;
  onEvent?: (cell: { index: number; total: number; init: string; fraction: number; seed: number }, e: TrainerEvent) => void;
  onCell?: (index: number, total: number, cell: ExperimentCell) => void;
  signal?: AbortSignal;
}

function initLabel(init: string): string {
  if (init === 'random') return 'random init';
  if (init === 'cnn') return 'supervised CNN (scratch)';
  try {
    const c = parseRunConfig(JSON.parse(readFileSync(join(init, 'config.json'), 'utf8')));
    const what = c.kind === 'pretrain' ? taskTitle(c) : c.task;
    return c.name ? c.name : `pretrained: ${what}`;
  } catch {
    return basename(init);
  }
}

const slug = (s: string) => s.replace(/[^\w.-]+/g, '_').slice(-40);

/** A grid run's name, within a run name's 120 characters: the experiment's name is shortened first. */
export function cellRunName(experiment: string, cell: string, max = 120): string {
  const full = `${experiment}: ${cell}`;
  if (full.length <= max) return full;
  const room = max - cell.length - 3; // ': ' and '…'
  return room >= 8 ? `${experiment.slice(0, room).trimEnd()}…: ${cell}` : full.slice(0, max - 1) + '…';
}

/** The preprocessing of the first of these run folders that records one (read until found). */
function firstPreprocessing(dirs: readonly string[]): ReturnType<typeof initPreprocessing> {
  for (const d of dirs) {
    const p = initPreprocessing(d);
    if (p) return p;
  }
  return null;
}

export async function runExperiment(db: Database, specInput: ExperimentSpecInput, o: ExperimentOptions): Promise<ExperimentReport> {
  const spec = parseExperimentSpec(specInput);
  const outDir = resolve(o.outDir);
  mkdirSync(join(outDir, 'runs'), { recursive: true });
  const inits = spec.inits.map((i) => (i === 'random' || i === 'cnn' ? i : resolve(i)));
  const pretrained = inits.filter((i) => i !== 'random' && i !== 'cnn');
  const cells: ExperimentCell[] = [];
  for (const init of inits) for (const fraction of spec.fractions) for (const seed of spec.seeds) {
    const name = `${init === 'random' || init === 'cnn' ? init : 'init-' + slug(basename(init))}-f${fraction}-s${seed}`;
    cells.push({ init, initLabel: initLabel(init), fraction, seed, runDir: join(outDir, 'runs', name), status: 'pending', results: null });
  }
  // One preprocessing for every run, so that the initialisations are compared on the same inputs.
  // Continuing a grid: the window its first runs were made with (also for grids whose spec.json
  // predates these fields), never one worked out again from init folders that may have changed.
  const fromInit = firstPreprocessing(inits.filter((i) => i !== 'random' && i !== 'cnn'));
  const fromCells = firstPreprocessing(cells.map((c) => c.runDir));
  const preprocessing = {
    windowLevel: spec.windowLevel ?? fromCells?.windowLevel ?? fromInit?.windowLevel ?? 50,
    windowWidth: spec.windowWidth ?? fromCells?.windowWidth ?? fromInit?.windowWidth ?? 350,
    scaling: spec.scaling ?? fromCells?.scaling ?? fromInit?.scaling ?? 'fixed',
  };
  // The resolved window goes into spec.json, so the report and a later resume state it.
  writeFileSync(join(outDir, 'spec.json'), JSON.stringify({ ...spec, ...preprocessing }, null, 2));
  const total = cells.length;
  for (const [index, cell] of cells.entries()) {
    if (o.signal?.aborted) break;
    const resultsPath = join(cell.runDir, 'results.json');
    if (existsSync(resultsPath)) {
      cell.status = 'done';
      cell.results = JSON.parse(readFileSync(resultsPath, 'utf8')) as FinetuneResults;
      o.onCell?.(index, total, cell);
      continue;
    }
    let run = getRun(db, cell.runDir);
    if (!run) {
      const config: FinetuneConfigInput = {
        kind: 'finetune',
        name: cellRunName(spec.name, `${cell.initLabel}, ${Math.round(cell.fraction * 100)}% of training data, seed ${cell.seed}`),
        task: spec.task,
        model: spec.task === 'segmentation' ? 'unet' : cell.init === 'cnn' ? 'cnn' : 'encoder-classifier',
        label:
          spec.label === 'nodule'
            ? { kind: 'nodule', ...(spec.consensusK !== undefined && { consensusK: spec.consensusK }) }
            : { kind: 'image-label', name: spec.label === 'pe' ? 'pe_present_on_image' : spec.label },
        preset: spec.preset,
        ...(spec.size !== undefined && { size: spec.size }),
        ...(cell.init !== 'random' && cell.init !== 'cnn' && { init: cell.init }),
        trainFraction: cell.fraction,
        freezeEpochs: cell.init === 'random' || cell.init === 'cnn' ? 0 : spec.freezeEpochs,
        ...(spec.steps !== undefined && { steps: spec.steps }),
        ...(spec.epochs !== undefined && { epochs: spec.epochs }),
        batchSize: spec.batchSize,
        lr: spec.lr,
        seed: cell.seed,
        splitSeed: spec.splitSeed,
        fractions: spec.splitFractions,
        evalEvery: spec.evalEvery,
        ...(spec.earlyStopPatience !== undefined && { earlyStopPatience: spec.earlyStopPatience }),
        checkpointEvery: Math.max(spec.evalEvery, 50),
        ...preprocessing,
        ...(spec.seriesIds ? { seriesIds: spec.seriesIds } : { filter: spec.filter ?? { modality: 'CT' } }),
        ...(spec.allowOverlap && { allowOverlap: true }),
      };
      // One split for the grid: every run keeps the patients any pretrained init trained on in training.
      run = createFinetuneRun(db, config, { dataDir: o.dataDir, dir: cell.runDir, splitParents: pretrained });
    }
    const handle = startRun(db, run, {
      resume: true,
      cacheDir: o.cacheDir,
      spawn: o.spawn,
      backend: o.backend,
      onEvent: (e) => o.onEvent?.({ index, total, init: cell.init, fraction: cell.fraction, seed: cell.seed }, e),
    });
    const onAbort = () => handle.stop();
    o.signal?.addEventListener('abort', onAbort);
    const r = await handle.done;
    o.signal?.removeEventListener('abort', onAbort);
    cell.status = r.status;
    if (existsSync(resultsPath)) cell.results = JSON.parse(readFileSync(resultsPath, 'utf8')) as FinetuneResults;
    o.onCell?.(index, total, cell);
  }
  return writeReport(db, spec, cells, outDir);
}

const pct = (f: number) => `${+(f * 100).toFixed(1)}%`;
/** A cell's classification results with an AUROC (not segmentation, not a split with one class). */
const scored = (r: FinetuneResults | null | undefined) => (r && r.task === 'classification' && !('error' in r) ? r : undefined);
const segmented = (r: FinetuneResults | null | undefined) => (r && r.task === 'segmentation' ? r : undefined);

function writeReport(db: Database, spec: ExperimentSpec, cells: ExperimentCell[], outDir: string): ExperimentReport {
  const metric = spec.task === 'classification' ? 'auroc' : 'dice';
  const value = (c: ExperimentCell) => Number(metric === 'auroc' ? scored(c.results)?.auroc : segmented(c.results)?.dice);
  const inits = [...new Set(cells.map((c) => c.init))];
  const labelOf = new Map(cells.map((c) => [c.init, c.initLabel]));
  const summary: ExperimentReport['summary'] = [];
  for (const init of inits)
    for (const fraction of spec.fractions) {
      const xs = cells.filter((c) => c.init === init && c.fraction === fraction).map(value).filter(Number.isFinite);
      const m = meanCi(xs);
      // AUROC and Dice live in [0, 1]: clip the t interval (very wide with few seeds) to it.
      const clip = (v: number) => Math.min(1, Math.max(0, v));
      summary.push({ init, fraction, n: m.n, mean: m.mean, lower: m.n > 1 ? clip(m.lower) : m.mean, upper: m.n > 1 ? clip(m.upper) : m.mean, patientCi95: null });
    }

  // Patient-level statistics: the interval of each mean, the paired tests (classification), Holm, warnings.
  const stats = experimentStatistics(spec.task === 'classification' ? cells : [], { fractions: spec.fractions, seeds: spec.seeds, labelOf: (i) => labelOf.get(i)! });
  for (const s of summary) s.patientCi95 = stats.patientCi.get(summaryKey(s.init, s.fraction)) ?? null;
  const comparisons = stats.comparisons;
  const warnings = spec.task === 'classification' ? stats.warnings : [...new Set(cells.flatMap((c) => c.results?.warnings ?? []))];

  // Validation curves against iterations (mean over seeds), and iterations to reach a Dice level.
  const curveOf = (c: ExperimentCell, name: string) => {
    const run = getRun(db, c.runDir);
    if (!run) return null;
    const m = runMetrics(db, run.id, 'val').filter((x) => x.name === name);
    return { steps: m.map((x) => x.step), values: m.map((x) => x.value) };
  };
  const valName = spec.task === 'classification' ? 'auroc' : 'dice';
  const maxFraction = Math.max(...spec.fractions);
  const iterSeries = inits.map((init) => {
    const curves = cells.filter((c) => c.init === init && c.fraction === maxFraction).map((c) => curveOf(c, valName)).filter((c): c is { steps: number[]; values: number[] } => !!c && c.steps.length > 0);
    const steps = curves[0]?.steps ?? [];
    const mean = steps.map((_, k) => meanCi(curves.map((c) => c.values[k]).filter((v) => v !== undefined)));
    return { name: labelOf.get(init)!, x: steps, y: mean.map((m) => m.mean), lower: mean.map((m) => (m.n > 1 ? m.lower : m.mean)), upper: mean.map((m) => (m.n > 1 ? m.upper : m.mean)) };
  });
  const reach: ExperimentReport['iterationsToReach'] = [];
  if (spec.task === 'segmentation')
    for (const init of inits)
      for (const fraction of spec.fractions) {
        const its = cells
          .filter((c) => c.init === init && c.fraction === fraction)
          .map((c) => curveOf(c, 'dice'))
          .map((c) => (c && c.steps.length ? iterationsToReach(c.steps.map((step, k) => ({ step, value: c.values[k] })), spec.diceLevel, { window: 1 }) : null));
        const hit = its.filter((v): v is number => v !== null);
        reach.push({ init: labelOf.get(init)!, fraction, level: spec.diceLevel, meanIterations: hit.length ? hit.reduce((a, b) => a + b, 0) / hit.length : null, runsReaching: hit.length, runs: its.length });
      }

  const svgs: string[] = [];
  const write = (name: string, svg: string) => {
    const p = join(outDir, name);
    writeFileSync(p, svg);
    svgs.push(p);
    return svg;
  };
  const metricLabel = spec.task === 'classification' ? 'held-out AUROC' : 'held-out Dice';
  const fracSvg = write(
    `${metric}-vs-fraction.svg`,
    linePlot({
      title: `${metricLabel} against training-set fraction`,
      subtitle: `mean over ${spec.seeds.length} seed(s), 95% CI`,
      xLabel: 'fraction of the training set',
      yLabel: metricLabel,
      xLog: spec.fractions.length > 1 && Math.min(...spec.fractions) > 0,
      xTicks: [...spec.fractions].sort((a, b) => a - b),
      xTickFormat: (v) => pct(v),
      yDomain: [0, 1],
      series: inits.map((init) => {
        const rows = summary.filter((s) => s.init === init).sort((a, b) => a.fraction - b.fraction);
        return { name: labelOf.get(init)!, x: rows.map((r) => r.fraction), y: rows.map((r) => r.mean), lower: rows.map((r) => r.lower), upper: rows.map((r) => r.upper) };
      }),
    }),
  );
  const iterSvg = write(
    `${valName}-vs-iterations.svg`,
    linePlot({
      title: `validation ${valName === 'auroc' ? 'AUROC' : 'Dice'} against iterations (${pct(maxFraction)} of the training set)`,
      xLabel: 'iterations',
      yLabel: valName === 'auroc' ? 'AUROC' : 'Dice',
      yDomain: [0, 1],
      series: iterSeries.filter((s) => s.x.length > 0).map((s) => ({ ...s, lower: s.lower.map((v) => Math.max(0, v)), upper: s.upper.map((v) => Math.min(1, v)) })),
      hlines: spec.task === 'segmentation' ? [{ value: spec.diceLevel, label: `Dice ${spec.diceLevel}` }] : undefined,
    }),
  );
  let rocSvg = '';
  if (spec.task === 'classification') {
    const curves = inits
      .map((init) => {
        const c = cells.find((x) => x.init === init && x.fraction === maxFraction && scored(x.results)?.roc);
        const r = scored(c?.results);
        return r ? { name: `${labelOf.get(init)} (seed ${c!.seed})`, fpr: r.roc.fpr, tpr: r.roc.tpr, auc: r.auroc, ci: r.aurocCi95 } : null;
      })
      .filter((c): c is NonNullable<typeof c> => !!c);
    if (curves.length) rocSvg = write('roc.svg', rocPlot({ title: `held-out ROC curves (${pct(maxFraction)} of the training set)`, curves }));
  }

  const split = gridSplit(db, cells);
  const csvPath = join(outDir, 'results.csv');
  // ci_unit: 'patient' (patient-level bootstrap) or 'slice' (results written before it).
  const head =
    spec.task === 'classification'
      ? 'init,fraction,seed,status,auroc,ci_lower,ci_upper,ci_unit,sensitivity,specificity,threshold,test_slices,test_patients,test_positives'
      : 'init,fraction,seed,status,dice,ci_lower,ci_upper,ci_unit,iou,mean_slice_dice,test_slices,test_patients';
  const rows = cells.map((c) => {
    const r = (c.results ?? {}) as Record<string, unknown>;
    const q = (v: unknown) => (v === undefined || v === null ? '' : String(v));
    const ci = (r.aurocCi95 ?? r.diceCi95) as number[] | undefined;
    const unit = ci ? ((r.ci as { unit?: string } | undefined)?.unit ?? 'slice') : '';
    return spec.task === 'classification'
      ? [JSON.stringify(c.initLabel), c.fraction, c.seed, c.status, q(r.auroc), q(ci?.[0]), q(ci?.[1]), unit, q(r.sensitivity), q(r.specificity), q((r.threshold as { value?: number } | undefined)?.value), q(r.slices), q(r.patients), q(r.positives)].join(',')
      : [JSON.stringify(c.initLabel), c.fraction, c.seed, c.status, q(r.dice), q(ci?.[0]), q(ci?.[1]), unit, q(r.iou), q(r.meanSliceDice), q(r.slices), q(r.patients)].join(',');
  });
  writeFileSync(csvPath, [head, ...rows].join('\n') + '\n');
  const htmlPath = join(outDir, 'report.html');
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
  const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
  const fp = (v: number | null) => (v === null || !Number.isFinite(v) ? 'n/a' : v < 0.001 ? '&lt; 0.001' : v.toFixed(3));
  const stat = stats.statistics;
  writeFileSync(
    htmlPath,
    `<!doctype html><meta charset="utf-8"><title>${esc(spec.name)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}figure{margin:1em 0}.warnings{background:#fff4d6;border:1px solid #e0b000;padding:.5em 1em}.secondary{color:#777}small{color:#555}</style>
<h1>${esc(spec.name)}</h1>
<p>${spec.task === 'classification' ? 'Slice classification' : 'Nodule segmentation'}, preset ${spec.preset}; initialisations × fractions ${spec.fractions.map(pct).join(', ')} × seeds ${spec.seeds.join(', ')}; one patient split (seed ${spec.splitSeed}) for every run. Completed runs: ${cells.filter((c) => c.results).length} of ${cells.length}.</p>
${split ? splitHtml(split, esc) : ''}
${warnings.length ? `<div class="warnings" id="warnings"><strong>Warnings</strong><ul>${warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>` : ''}
<h2>${esc(metricLabel)} (mean, 95% CI over seeds)</h2>
<table><tr><th>initialisation</th>${spec.fractions.map((f) => `<th>${pct(f)}</th>`).join('')}</tr>
${inits.map((i) => `<tr><td>${esc(labelOf.get(i)!)}</td>${spec.fractions.map((f) => {
      const s = summary.find((x) => x.init === i && x.fraction === f)!;
      const pc = s.patientCi95;
      return `<td>${f3(s.mean)}${s.n > 1 ? ` [${f3(s.lower)}, ${f3(s.upper)}]` : ''}${pc ? `<br><small>patients [${f3(pc[0])}, ${f3(pc[1])}]</small>` : ''}</td>`;
    }).join('')}</tr>`).join('\n')}</table>
<p><small>The interval after the mean is a t interval over seeds (training variability on this test set); “patients” is the patient-level bootstrap 95% interval of the mean (the variability of sampling test patients).</small></p>
<figure>${fracSvg}</figure><figure>${iterSvg}</figure>${rocSvg ? `<figure>${rocSvg}</figure>` : ''}
${comparisons.length ? `<h2>Paired comparisons (same held-out slices)</h2><table><tr><th>pretrained</th><th>baseline</th><th>fraction</th><th>seed</th><th>AUROC pretrained</th><th>AUROC baseline</th><th>difference [95% CI]</th><th>p (patient-level)</th><th>p Holm</th><th>verdict</th><th class="secondary">p slice-level DeLong (assumes independent slices)</th></tr>${comparisons.map((d) => `<tr><td>${esc(d.pretrained)}</td><td>${esc(d.baseline)}</td><td>${pct(d.fraction)}</td><td>${d.seed === null ? `pooled (${d.seeds.length} seeds)` : d.seed}</td><td>${f3(d.aurocPretrained)}</td><td>${f3(d.aurocBaseline)}</td><td>${f3(d.difference)} [${f3(d.ci95[0])}, ${f3(d.ci95[1])}]</td><td>${fp(d.p)}</td><td><strong>${fp(d.pHolm)}</strong></td><td>${esc(d.verdict)}</td><td class="secondary">${fp(d.sliceLevelP)}</td></tr>`).join('')}</table>
<p><small>${esc(stat.method)} Held-out split: ${[...new Set(comparisons.map((d) => `${d.patients} patients, ${d.slices} slices, ${d.positives} positive`))].join('; ')}.</small></p>` : ''}
${reach.length ? `<h2>Iterations to reach validation Dice ${spec.diceLevel}</h2><table><tr><th>initialisation</th><th>fraction</th><th>mean iterations</th><th>runs reaching it</th></tr>${reach.map((r) => `<tr><td>${esc(r.init)}</td><td>${pct(r.fraction)}</td><td>${r.meanIterations === null ? 'not reached' : r.meanIterations.toFixed(0)}</td><td>${r.runsReaching} of ${r.runs}</td></tr>`).join('')}</table>` : ''}
<p>Per-run numbers: <a href="results.csv">results.csv</a>; run folders under runs/.</p>`,
  );
  const report: ExperimentReport = {
    name: spec.name,
    task: spec.task,
    metric,
    cells,
    summary,
    comparisons,
    statistics: stats.statistics,
    warnings,
    iterationsToReach: reach,
    split,
    files: { csv: csvPath, html: htmlPath, json: join(outDir, 'report.json'), svg: svgs },
  };
  writeFileSync(report.files.json, JSON.stringify({ ...report, cells: report.cells.map((c) => ({ ...c, results: c.results ? { ...c.results, scores: undefined, labels: undefined, patientOfSlice: undefined, roc: undefined } : null })) }, null, 2));
  return report;
}

/** The patient split of a grid: every run shares it (one split seed, one set of parents), so the first created run's is shown once. */
function gridSplit(db: Database, cells: ExperimentCell[]): RunSplit | null {
  for (const c of cells) {
    const run = getRun(db, c.runDir);
    if (run) return runSplit(db, run.id, run.dir);
  }
  return null;
}

/** The report's patient split section: counts per split, what the pretrained inits imply, the patients of each split. */
function splitHtml(split: RunSplit, esc: (s: string) => string): string {
  const name = { train: 'training', val: 'validation', test: 'held-out' } as const;
  const l = split.lineage;
  const counts = (['train', 'val', 'test'] as const)
    .map((sp) => {
      const g = split.splits[sp];
      return `<tr><td>${name[sp]}</td><td>${g.patients}</td><td>${g.positivePatients ?? ''}</td><td>${g.series}</td><td>${g.slices}</td><td>${g.positives ?? ''}</td></tr>`;
    })
    .join('');
  const lists = (['train', 'val', 'test'] as const)
    .map((sp) => `<details><summary>${name[sp]}: ${split.splits[sp].patients} patients</summary><p>${split.splits[sp].list.map((p) => `${esc(p.key)}${p.positive ? ' (positive)' : ''}${p.parentTrained ? ' (trained a pretrained init)' : ''}`).join(', ')}</p></details>`)
    .join('');
  return `<h2>Patient split</h2>
<table><tr><th>split</th><th>patients</th><th>positive patients</th><th>series</th><th>slices</th><th>positive slices</th></tr>${counts}</table>
<p><small>Seed ${split.seed}${l?.stratified ? ', stratified by patient class (any positive slice)' : ''}.${l && l.keptInTrain.length ? ` ${l.keptInTrain.length} patients in training because a pretrained initialisation trained on them (never in validation or held-out).` : ''}${l && l.overlap.length ? ` ${l.overlap.length} patients a pretrained initialisation trained on are in validation or held-out (overlap allowed).` : ''}</small></p>
${l && l.warnings.length ? `<div class="warnings"><ul>${l.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>` : ''}${lists}`;
}
